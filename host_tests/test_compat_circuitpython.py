"""evse.compat under simulated CircuitPython behaviour: supervisor.ticks_ms
wrapping at 2**29, time.monotonic_ns without ticks_ms, no time.sleep_ms,
hashlib with only new(); and the station over a filesystem that refuses
writes, as CircuitPython's does while USB storage is on."""
import builtins
import errno
import hashlib
import os
import sys
import types

import pytest

from evse import compat
from evse.compat import TICKS_PERIOD, ticks_diff

P29 = 1 << 29


class Supervisor:
    """supervisor.ticks_ms: ms since boot modulo 2**29."""

    def __init__(self, ms):
        self.ms = ms

    def ticks_ms(self):
        return self.ms % P29


def test_supervisor_ticks_are_extended_across_the_2_29_wrap():
    sup = Supervisor(P29 - 300)
    ticks = compat.make_ticks(types.SimpleNamespace(monotonic=lambda: 0.0), sup)
    t0 = ticks()
    prev, steps = t0, 0
    for _ in range(2000):  # 2000 x 777 ms: across 2**29 and then our own 2**30 wrap
        sup.ms += 777
        t = ticks()
        assert 0 <= t < TICKS_PERIOD
        assert ticks_diff(t, prev) == 777  # what the core computes stays right
        prev = t
        steps += 1
    assert ticks_diff(prev, t0) == 777 * steps
    sup.ms += P29 - 1  # one call per 2**29 ms is enough
    assert ticks_diff(ticks(), prev) == P29 - 1


def test_ticks_cross_the_2_30_wrap_like_micropython():
    sup = Supervisor(0)
    ticks = compat.make_ticks(types.SimpleNamespace(), sup)
    seen = []
    for _ in range(5):
        sup.ms += P29 - 5
        seen.append(ticks())
    assert any(b < a for a, b in zip(seen, seen[1:]))  # wrapped at 2**30
    assert all(ticks_diff(b, a) == P29 - 5 for a, b in zip(seen, seen[1:]))


def test_monotonic_ns_keeps_milliseconds_after_hours():
    now = [5 * 3600 * 10**9 + 123456789]  # 5 h of uptime
    tm = types.SimpleNamespace(monotonic_ns=lambda: now[0], monotonic=lambda: 0.0)
    ticks = compat.make_ticks(tm, None)
    a = ticks()
    now[0] += 1_000_000  # 1 ms
    assert ticks_diff(ticks(), a) == 1
    assert a == (now[0] - 1_000_000) // 10**6 % TICKS_PERIOD


def test_preference_order():
    mp = types.SimpleNamespace(ticks_ms=lambda: 42, monotonic_ns=lambda: 0)
    assert compat.make_ticks(mp, Supervisor(7))() == 42  # MicroPython's own
    assert compat.make_ticks(types.SimpleNamespace(monotonic_ns=lambda: 9 * 10**6), Supervisor(7))() == 7
    assert compat.make_ticks(types.SimpleNamespace(monotonic=lambda: 2.5), None)() == 2500
    assert isinstance(compat.ticks_ms(), int)  # the host's choice works


def test_sleep_ms_without_time_sleep_ms(monkeypatch):
    slept = []
    monkeypatch.setattr(compat, "time", types.SimpleNamespace(sleep=slept.append))
    compat.sleep_ms(250)
    assert slept == [0.25]
    calls = []
    monkeypatch.setattr(compat, "time", types.SimpleNamespace(sleep_ms=calls.append, sleep=slept.append))
    compat.sleep_ms(5)
    assert calls == [5] and slept == [0.25]


def test_sha256_with_hashlib_new_only(monkeypatch):
    fake = types.SimpleNamespace(new=lambda name, data=b"": hashlib.new(name, data))
    monkeypatch.setitem(sys.modules, "hashlib", fake)
    assert compat.sha256(b"abc") == bytes.fromhex(
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    h = compat.sha256_hasher(b"a")
    h.update(b"bc")
    assert h.digest() == compat.sha256(b"abc")


def test_pki_signs_and_verifies_with_hashlib_new_only(monkeypatch):
    # CircuitPython: hashlib.sha256 is missing; the crypto goes through compat.
    from evse.pki import ecdsa, hashes
    d, pub = ecdsa.keygen()
    digest = hashlib.sha256(b"firmware").digest()
    want = ecdsa.sign(d, digest)
    fake = types.SimpleNamespace(new=lambda name, data=b"": hashlib.new(name, data))
    monkeypatch.setitem(sys.modules, "hashlib", fake)
    assert ecdsa.sign(d, digest) == want  # RFC 6979: HMAC-SHA-256 through compat
    assert ecdsa.verify(pub, digest, want)
    assert hashes.digest("SHA256", b"firmware") == digest


# -- a filesystem that refuses writes ------------------------------------------------
@pytest.fixture
def read_only(monkeypatch, tmp_path):
    """CircuitPython with USB storage on: reads work, every write, mkdir,
    rename and remove under tmp_path fails with EROFS."""
    root = str(tmp_path)
    real_open = builtins.open

    def ro_open(path, mode="r", *a, **k):
        if str(path).startswith(root) and any(c in mode for c in "wax+"):
            raise OSError(errno.EROFS, "Read-only filesystem")
        return real_open(path, mode, *a, **k)

    monkeypatch.setattr(builtins, "open", ro_open)
    for name in ("mkdir", "rename", "remove"):
        real = getattr(os, name)

        def refuse(path, *a, _real=real, **k):
            if str(path).startswith(root):
                raise OSError(errno.EROFS, "Read-only filesystem")
            return _real(path, *a, **k)
        monkeypatch.setattr(os, name, refuse)
    return tmp_path


def _station(data):
    from scenarios.vclock import VirtualClock

    from boards.sim.board import SimBoard
    from evse.station import Station
    from evse.store.storage import FileStorage
    return Station(board=SimBoard(), clock=VirtualClock(), storage=FileStorage(data), log=lambda *a: None)


def test_read_only_filesystem_is_detected_before_the_station_starts(read_only):
    from boards.cp_picow.board import storage_writable
    assert storage_writable(str(read_only / "data")) is False


def test_writable_filesystem_is_detected(tmp_path):
    from boards.cp_picow.board import storage_writable
    assert storage_writable(str(tmp_path / "data")) is True
    assert os.listdir(tmp_path) == []  # the probe is gone


def test_station_over_a_read_only_filesystem_reports_and_runs(read_only):
    """A file system that refuses writes (CircuitPython with USB storage on):
    the station runs from RAM, logs why and reports connector 0 Faulted
    (OtherError, vendorErrorCode StorageReadOnly); it never raises."""
    from scenarios.scripted import ScriptedCsms
    from scenarios.vclock import VirtualClock

    from boards.sim.board import SimBoard
    from evse.station import Station
    from evse.store.storage import FileStorage
    logs = []
    clock = VirtualClock()
    board = SimBoard()
    st = Station(board=board, clock=clock, storage=FileStorage(str(read_only / "data")),
                 log=lambda lvl, text: logs.append((lvl, text)))
    assert st.storage.error and any(lvl == "error" and "refuses writes" in t for lvl, t in logs)
    cs = ScriptedCsms(st, clock)
    cs.tags = {"AA": "Accepted"}
    st.connected(clock.ms())
    cs.pump()
    sent = [e["msg"] for e in cs.transcript if e["dir"] == "cs" and e["msg"][0] == 2]
    assert sent[0][2] == "BootNotification"
    zero = [m[3] for m in sent if m[2] == "StatusNotification" and m[3]["connectorId"] == 0]
    assert zero and zero[0]["status"] == "Faulted" and zero[0]["vendorErrorCode"] == "StorageReadOnly"
    for cmd, args in (("card", ["AA"]), ("plug", [])):  # a session still runs, from RAM
        board.command(cmd, args)
        st.tick(clock.ms())
        cs.pump()
    cs.run_for(5000)
    assert st.connectors[1].status == "Charging"
