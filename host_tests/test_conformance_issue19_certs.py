"""Issue 19, part C (certificates and the security log): each deviation over
the wire against the real CSMS peer (tools/csms.py on the `ocpp` package,
WebSockets and TLS on loopback) where it is on the wire, plus the sans-IO
rig where only the station's clock or its flash can show it. The case ids
are the item numbers of issue 19 (not OCTT ids)."""
from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import ssl
from pathlib import Path
from typing import Any

import pki_factory as pf
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from ocpp.v16 import call

from evse import seclog
from evse.compat import ticks_add, ticks_diff, ticks_ms, unix_time
from evse.pki import chain as pchain
from evse.pki import x509 as px
from live import CsmsThread, StationThread, wait_for
from rig import Rig
from test_conformance_harness import case
from test_security_live import PW, Pki, accepted, events, make_cert, seed

CS_ROOT = "CentralSystemRootCertificate"
MF_ROOT = "ManufacturerRootCertificate"
NOW = dt.datetime.now(dt.timezone.utc)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: Any) -> Pki:
    return Pki(tmp_path_factory.mktemp("i19pki"))


class ShiftClock:
    """The station's clock (ticks and wall time) as SystemClock, moved on by
    shift(): a test jumps the station ahead instead of sleeping."""

    def __init__(self) -> None:
        self.offset = 0
        self.skew = 0  # seconds moved on

    def ms(self) -> int:
        return ticks_add(ticks_ms(), self.skew * 1000)

    def unix(self) -> int:
        return unix_time() + self.offset + self.skew

    def set_unix(self, t: int) -> None:
        self.offset = int(t) - unix_time()  # the skew stays: the station runs ahead of the CSMS

    def shift(self, s: int) -> None:
        self.skew += s


def ca_cert(key: Any, cn: str, issuer_key: Any = None, issuer: str | None = None) -> x509.Certificate:
    return make_cert(key.public_key(), issuer_key or key, cn, issuer or cn, ca=True)


def hash_data(c: x509.Certificate, issuer: x509.Certificate) -> dict[str, str]:
    """CertificateHashData as the CSMS computes it (whitepaper 6.1)."""
    key = issuer.public_key().public_bytes(serialization.Encoding.X962,
                                           serialization.PublicFormat.UncompressedPoint)
    return {"hash_algorithm": "SHA256", "issuer_name_hash": hashlib.sha256(c.issuer.public_bytes()).hexdigest(),
            "issuer_key_hash": hashlib.sha256(key).hexdigest(), "serial_number": "%x" % c.serial_number}


def station(pki: Pki, tmp: Path, cp: str, profile: int = 0, seeds: dict[str, str] | None = None,
            clock: Any = None, **kw: Any) -> tuple[CsmsThread, StationThread]:
    """A CSMS (TLS for profile 2) and a station whose factory CSMS root is
    the test PKI's."""
    c = CsmsThread(ssl=pki.server() if profile >= 2 else None, passwords={cp: PW} if profile else None, **kw)
    seed(str(tmp), cp, pki.pem(pki.ca))
    s = StationThread(c.url, cp, str(tmp), seeds=dict(seeds or {}, SecurityProfile=str(profile)),
                      password=PW if profile else None, clock=clock)
    accepted(s)
    return c, s


def csr_of(c: CsmsThread, cp: str) -> x509.CertificateSigningRequest:
    n = len(c.calls("SignCertificate", cp))
    r = c.call(cp, call.ExtendedTriggerMessage(requested_message="SignChargePointCertificate"))
    assert r.status == "Accepted"
    return x509.load_pem_x509_csr(c.wait_call("SignCertificate", n + 1, cp_id=cp)[-1]["csr"].encode())


def signed(pki: Pki, csr: x509.CertificateSigningRequest, cn: str, org: str | None,
           days: tuple[float, float] = (-1, 30), serial: int = 0x77) -> str:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org)] if org else []
    subject = x509.Name(attrs + [x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    issuer = pki.ca.subject
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(csr.public_key())
         .serial_number(serial).not_valid_before(NOW + dt.timedelta(days=days[0]))
         .not_valid_after(NOW + dt.timedelta(days=days[1])))
    return Pki.pem(b.sign(pki.ca_key, hashes.SHA256()))


def settled(c: CsmsThread, s: StationThread, cp: str) -> None:
    """Wait until the station is on a connection with its present link
    parameters (a reconnect the station makes after a change is over)."""
    def up() -> bool:
        st, rt = s.station, s.runtime
        return st.online and st.registration == "Accepted" and rt._version == st.link.version
    wait_for(lambda: s.do(up) and c.connected(cp), 10, "the link settled")


def idle(s: StationThread) -> None:
    """Wait until no CALL of the station is in flight or queued."""
    def quiet() -> bool:
        st = s.station
        return st.rpc.pending is None and not st.outbox and not st.seclog.queue.count
    wait_for(lambda: s.do(quiet), 10, "an idle station")


def stop(*things: Any) -> None:
    for t in things:
        t.stop()


# ---- item 6 ------------------------------------------------------------------
@case("ISSUE19_06", "The root that validates the live TLS connection is not deleted (M04.FR.06)", "Security")
def test_06_root_of_the_live_link_is_not_deleted(pki: Pki, tmp_path: Path) -> None:
    c, s = station(pki, tmp_path, "I06", profile=2, seeds={"AdditionalRootCertificateCheck": "false"})
    try:
        other = Pki.pem(pki.other)  # a second CSMS root, not the one this link chains to
        assert c.call("I06", call.InstallCertificate(certificate_type=CS_ROOT, certificate=other)).status == \
            "Accepted"
        settled(c, s, "I06")
        ids = c.call("I06", call.GetInstalledCertificateIds(certificate_type=CS_ROOT)).certificate_hash_data
        assert len(ids) == 2
        by_serial = {h["serial_number"]: h for h in ids}
        live = by_serial["%x" % pki.ca.serial_number]
        spare = by_serial["%x" % pki.other.serial_number]
        # Two roots installed: the one in use still may not go ...
        assert c.call("I06", call.DeleteCertificate(certificate_hash_data=live)).status == "Failed"
        # ... the other one may.
        assert c.call("I06", call.DeleteCertificate(certificate_hash_data=spare)).status == "Accepted"
        assert s.do(lambda: s.station.link.ca) == pki.pem(pki.ca)
    finally:
        stop(s, c)


def test_06_root_in_use_from_the_peer_certificate_alone(tmp_path: Any) -> None:
    # MicroPython gives only the CSMS's own certificate: the root that issued
    # it is the one in use; a platform that gives nothing keeps every root.
    r = Rig(str(tmp_path), seeds={"AdditionalRootCertificateCheck": "false"})
    r.connect()
    ka, kb = pf.key("ec", "i06a"), pf.key("ec", "i06b")
    a = pf.cert(ka, ka, "Root A", "Root A", ca=True, days=(-400, 400), serial=0xA)
    b = pf.cert(kb, kb, "Root B", "Root B", ca=True, days=(-400, 400), serial=0xB)
    for c in (a, b):
        assert r.call("InstallCertificate", {"certificateType": CS_ROOT, "certificate": pf.pem(c)})[2] == \
            {"status": "Accepted"}
    leaf = pf.cert(pf.key("ec", "i06srv"), ka, "csms", "Root A", days=(-400, 400))

    def delete(c: x509.Certificate) -> str:
        h = {k2: v for k2, v in zip(("hashAlgorithm", "issuerNameHash", "issuerKeyHash", "serialNumber"),
                                    hash_data(c, c).values())}
        return r.call("DeleteCertificate", {"certificateHashData": h})[2]["status"]
    r.st.link.peer = []  # a TLS link, the platform tells nothing
    assert (delete(a), delete(b)) == ("Failed", "Failed")
    r.st.link.peer = [pf.der(leaf)]
    assert (delete(a), delete(b)) == ("Failed", "Accepted")
    r.disconnect()  # no live link: nothing is in use
    r.connect()
    r.st.link.peer = None
    assert delete(a) == "Accepted"


# ---- item 10 -----------------------------------------------------------------
@case("ISSUE19_10", "issuerKeyHash of a CA that is not self-signed is its issuer's key (6.1)", "Security")
def test_10_issuer_key_hash_of_a_sub_ca(pki: Pki, tmp_path: Path) -> None:
    c, s = station(pki, tmp_path, "I10")
    try:
        rk, sk = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
        root = ca_cert(rk, "Maker Root")
        sub = ca_cert(sk, "Maker Sub", rk, "Maker Root")
        for cert in (root, sub):
            r = c.call("I10", call.InstallCertificate(certificate_type=MF_ROOT, certificate=Pki.pem(cert)))
            assert r.status == "Accepted"
        got = c.call("I10", call.GetInstalledCertificateIds(certificate_type=MF_ROOT)).certificate_hash_data
        want = hash_data(sub, root)
        assert want in got and hash_data(root, root) in got
        assert c.call("I10", call.DeleteCertificate(certificate_hash_data=want)).status == "Accepted"
        left = c.call("I10", call.GetInstalledCertificateIds(certificate_type=MF_ROOT)).certificate_hash_data
        assert left == [hash_data(root, root)]
    finally:
        stop(s, c)


# ---- item 13 -----------------------------------------------------------------
def _send_raw(c: CsmsThread, cp: str, text: str) -> None:
    tap = c.csms.stations[cp]._connection
    c.run(tap.send(text))


@case("ISSUE19_13", "Frames that are not valid OCPP are recorded as InvalidMessages, a flood once (A04.FR.04)",
      "Security")
def test_13_invalid_messages_are_logged_rate_limited(pki: Pki, tmp_path: Path) -> None:
    c, s = station(pki, tmp_path, "I13", clock=ShiftClock())
    try:
        _send_raw(c, "I13", "this is not OCPP")
        wait_for(lambda: any(" InvalidMessages " in ln for ln in events(s)), 5, "InvalidMessages")
        for i in range(30):  # a flood: bad JSON, unknown actions, schema violations
            _send_raw(c, "I13", ["{", '[2,"x%d","NoSuchAction",{}]' % i, '[2,"y%d","Reset",{"type":1}]' % i][i % 3])
        r = c.call("I13", call.GetConfiguration(key=["SecurityProfile"]))  # answered after the flood
        assert r.configuration_key[0]["value"] == "0"
        lines = [ln for ln in events(s) if " InvalidMessages " in ln]
        assert len(lines) == 1 and "invalid JSON" in lines[0], lines
        # Log only: never sent to the CSMS (a flood would become our own flood).
        assert not [p for p in c.calls("SecurityEventNotification", "I13") if p["type"] == "InvalidMessages"]
        # When the window ends the count of the flood is recorded (the station's clock moves on).
        idle(s)
        s.do(lambda: s.clock.shift(601))
        s.do(s.runtime.poke)
        wait_for(lambda: len([ln for ln in events(s) if " InvalidMessages " in ln]) == 2, 5, "the count")
        assert "30 more invalid messages" in [ln for ln in events(s) if " InvalidMessages " in ln][1]
    finally:
        stop(s, c)


def test_13_invalid_message_windows_on_the_rig(tmp_path: Any) -> None:
    r = Rig(str(tmp_path))
    r.connect()

    def bad() -> list[str]:
        return [ln for ln in seclog.lines(r.st) if " InvalidMessages " in ln]
    r.st.receive("garbage", r.clock.ms())
    assert len(bad()) == 1
    for _ in range(100):
        r.st.receive("[2,", r.clock.ms())
    assert len(bad()) == 1  # counted, not written
    assert sum("InvalidMessages" in t or "bad frame" in t for _, t in r.logs) == 1  # nor in the diagnostics log
    r.run(600000)
    assert len(bad()) == 2 and "100 more invalid messages" in bad()[1]
    r.run(600000)
    assert len(bad()) == 2  # nothing new: the window records nothing
    r.st.receive("[5]", r.clock.ms())
    assert len(bad()) == 3  # a new streak is recorded at once


# ---- item 14 -----------------------------------------------------------------
@case("ISSUE19_14", "CertificateSigned without O = CpoName is Rejected (A02.FR.06, A00.FR.509)", "Security")
def test_14_certificate_signed_needs_the_cpo_name(pki: Pki, tmp_path: Path) -> None:
    c, s = station(pki, tmp_path, "I14", seeds={"CpoName": "Test CPO"})
    try:
        csr = csr_of(c, "I14")
        for org in (None, "Someone Else"):
            chain = signed(pki, csr, "I14", org)
            assert c.call("I14", call.CertificateSigned(certificate_chain=chain)).status == "Rejected"
        got = c.wait_call("SecurityEventNotification", 2, cp_id="I14",
                          where=lambda p: p["type"] == "InvalidChargePointCertificate")
        assert all("is not the CpoName of our request" in p["techInfo"] for p in got)
        assert s.do(lambda: s.station.link.cert) is None
        good = signed(pki, csr, "I14", "Test CPO")
        assert c.call("I14", call.CertificateSigned(certificate_chain=good)).status == "Accepted"
        assert s.do(lambda: s.station.link.cert) == good
    finally:
        stop(s, c)


# ---- item 18 -----------------------------------------------------------------
@case("ISSUE19_18", "CertificateStoreMaxLength bounds the total of Root/CA certificates, factory ones too (7.4)",
      "Security")
def test_18_store_max_length_is_the_total(pki: Pki, tmp_path: Path) -> None:
    c, s = station(pki, tmp_path, "I18", seeds={"AdditionalRootCertificateCheck": "false"})
    try:
        r = c.call("I18", call.GetConfiguration(key=["CertificateStoreMaxLength"]))
        assert r.configuration_key[0] == {"key": "CertificateStoreMaxLength", "readonly": True, "value": "3"}
        roots = [Pki.pem(ca_cert(ec.generate_private_key(ec.SECP256R1()), "R%d" % i)) for i in range(3)]
        # The factory CSMS root takes one place; two more of any type fit.
        assert c.call("I18", call.InstallCertificate(certificate_type=MF_ROOT, certificate=roots[0])).status == \
            "Accepted"
        assert c.call("I18", call.InstallCertificate(certificate_type=MF_ROOT, certificate=roots[1])).status == \
            "Accepted"
        for kind in (MF_ROOT, CS_ROOT):
            assert c.call("I18", call.InstallCertificate(certificate_type=kind, certificate=roots[2])).status == \
                "Rejected"
            settled(c, s, "I18")
        n = sum(len(c.call("I18", call.GetInstalledCertificateIds(certificate_type=k)).certificate_hash_data)
                for k in (CS_ROOT, MF_ROOT))
        assert n == 3
    finally:
        stop(s, c)


# ---- item 21 -----------------------------------------------------------------
@case("ISSUE19_21", "A signed certificate valid from a later notBefore is kept and used from then (A02.FR.08)",
      "Security")
def test_21_future_certificate_switches_at_its_not_before(pki: Pki, tmp_path: Path) -> None:
    clock = ShiftClock()
    c, s = station(pki, tmp_path, "I21", seeds={"CpoName": "Test CPO"}, clock=clock)
    try:
        csr = csr_of(c, "I21")
        later = signed(pki, csr, "I21", "Test CPO", days=(1, 30))  # valid from tomorrow
        assert c.call("I21", call.CertificateSigned(certificate_chain=later)).status == "Accepted"
        assert s.do(lambda: s.station.link.cert) is None  # not yet
        assert not c.calls("SecurityEventNotification", "I21")
        idle(s)
        s.do(lambda: clock.shift(12 * 3600))
        t = s.do(clock.ms)
        s.do(s.runtime.poke)
        wait_for(lambda: s.do(lambda: ticks_diff(s.runtime.beat, t) >= 0), 5, "a timer round")
        assert s.do(lambda: s.station.link.cert) is None  # still not: half a day to go
        idle(s)  # a jump of the clock would time out a CALL in flight
        s.do(lambda: clock.shift(12 * 3600 + 5))
        s.do(s.runtime.poke)
        wait_for(lambda: s.do(lambda: s.station.link.cert) == later, 5, "the switch at notBefore")
        got = c.wait_call("SecurityEventNotification", cp_id="I21", timeout=10,
                          where=lambda p: p["techInfo"] == "new ChargePointCertificate")
        assert got[0]["type"] == "ReconfigurationOfSecurityParameters"
    finally:
        stop(s, c)


def test_21_future_certificate_survives_a_reboot(tmp_path: Any) -> None:
    # The waiting certificate is on flash: a power cut before its notBefore
    # does not lose it, and the switch needs no connection (the rig's
    # virtual clock, no sleeps).
    r = Rig(str(tmp_path), seeds={"CpoName": "Test CPO"})
    r.connect()
    k = pf.key("ec", "i21")
    root = pf.cert(k, k, "Root i21", "Root i21", ca=True, days=(-400, 400), serial=7)
    assert r.call("InstallCertificate", {"certificateType": CS_ROOT, "certificate": pf.pem(root)})[2] == \
        {"status": "Accepted"}
    r.call("ExtendedTriggerMessage", {"requestedMessage": "SignChargePointCertificate"})
    csr = x509.load_pem_x509_csr(r.sent("SignCertificate")[-1]["csr"].encode())
    start = r.clock.unix() + 7200
    b = (x509.CertificateBuilder().subject_name(pf.name("SIM-0001", "Test CPO"))
         .issuer_name(pf.name("Root i21", "Test")).public_key(csr.public_key()).serial_number(0x21)
         .not_valid_before(dt.datetime.fromtimestamp(start, dt.timezone.utc))
         .not_valid_after(dt.datetime.fromtimestamp(start + 86400 * 30, dt.timezone.utc)))
    text = b.sign(k, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()
    assert r.call("CertificateSigned", {"certificateChain": text})[2] == {"status": "Accepted"}
    r.run(3600 * 1000)
    assert r.st.link.cert is None
    r.reboot()  # and no CSMS: the switch does not wait for one
    r.run(3601 * 1000)
    assert r.st.link.cert == text and r.st.certs.future() is None
    assert any(" ReconfigurationOfSecurityParameters new ChargePointCertificate" in ln for ln in seclog.lines(r.st))


# ---- item 22 -----------------------------------------------------------------
@case("ISSUE19_22", "MemoryExhaustion is raised once per streak when a bounded queue is full", "Security")
def test_22_memory_exhaustion_when_the_event_queue_overflows(pki: Pki, tmp_path: Path) -> None:
    c, s = station(pki, tmp_path, "I22")
    try:
        c.run(c.csms.stop())  # the CSMS goes away: events pile up on flash
        wait_for(lambda: not s.do(lambda: s.station.online), 5, "offline")

        def flood() -> None:
            for i in range(60):  # 3 KB of queue, 8 KB of log: the queue overflows, the log keeps all
                s.station.security_event("TamperDetectionActivated", "lid opened, case %d" % i)
        s.do(flood)
        assert sum(" MemoryExhaustion " in ln for ln in events(s)) == 1  # once for the streak
        c.run(c.csms.start(port=c.port))
        got = c.wait_call("SecurityEventNotification", cp_id="I22", timeout=15,
                          where=lambda p: p["type"] == "MemoryExhaustion")
        assert got[0]["techInfo"] == "security event queue full"
    finally:
        stop(s, c)


def test_22_memory_exhaustion_for_the_transaction_queue_and_the_flash(tmp_path: Any, monkeypatch: Any) -> None:
    r = Rig(str(tmp_path))
    r.connect()

    def exhaustions() -> list[str]:
        return [ln for ln in seclog.lines(r.st) if " MemoryExhaustion " in ln]
    q = r.st.transactions.queue
    from evse.store.journal import MemJournal
    q.j = MemJournal(2000)
    for _ in range(60):
        q.meter(1, {"connectorId": 1, "meterValue": [{"timestamp": "2026-01-01T00:00:00Z",
                                                      "sampledValue": [{"value": "1"}]}]})
    assert [ln.split(" ", 2)[2] for ln in exhaustions()] == ["transaction queue full"]
    # The flash refusing a save (ENOSPC): once, until a save works again.
    from evse.store import snapshot

    def full(self: Any, obj: Any) -> None:
        raise OSError(28, "ENOSPC")
    real = snapshot.Snapshot.save
    monkeypatch.setattr(snapshot.Snapshot, "save", full)
    def change(v: str) -> None:
        try:
            r.st.config.change("HeartbeatInterval", v)
        except OSError:
            pass  # the owner's business; here only the event counts
    for _ in range(3):
        change("77")
    assert [ln.split(" ", 2)[2] for ln in exhaustions()][1:] == ["flash full"]
    monkeypatch.setattr(snapshot.Snapshot, "save", real)
    change("78")
    monkeypatch.setattr(snapshot.Snapshot, "save", full)
    change("79")
    assert len(exhaustions()) == 3  # a new streak
    monkeypatch.setattr(snapshot.Snapshot, "save", real)
    # The diagnostics log's flash refusing its files: once (it runs on from RAM).
    d = r.st.diag.log
    (tmp_path / "a-file").write_text("x")
    d.dir = str(tmp_path / "a-file" / "diag")  # under a file: every write fails
    for _ in range(2):
        d.add("info", "x" * 100)
        d.flush()
    assert [ln.split(" ", 2)[2] for ln in exhaustions()][3:] == ["flash (diagnostics log) full"]


# ---- item 23 -----------------------------------------------------------------
@case("ISSUE19_23", "A CSMS answering SecurityEventNotification with NotImplemented does not block the queue",
      "Security")
def test_23_not_implemented_is_final(pki: Pki, tmp_path: Path) -> None:
    c, s = station(pki, tmp_path, "I23", unimplemented=("SecurityEventNotification",))
    try:
        for i in range(3):
            s.do(lambda i=i: s.station.security_event("TamperDetectionActivated", "case %d" % i))
        got = c.wait_call("SecurityEventNotification", 3, cp_id="I23", timeout=10,
                          where=lambda p: p["type"] == "TamperDetectionActivated")
        errors = [m for m in (e["msg"] for e in list(c.csms.log) if e["dir"] == "out" and e["cp"] == "I23")
                  if m[0] == 4]
        assert errors and all(m[2] == "NotImplemented" for m in errors)
        assert [p["techInfo"] for p in got] == ["case 0", "case 1", "case 2"]  # each once, none blocked
        assert s.do(lambda: s.station.seclog.queue.count) == 0
        assert sum(" TamperDetectionActivated " in ln for ln in events(s)) == 3  # the log keeps them
        # A Soft Reset: its ResetOrReboot event is refused at once; the reboot does not wait the grace.
        assert c.call("I23", call.Reset(type="Soft")).status == "Accepted"
        wait_for(lambda: s.reboots == ["Soft"], 10, "reboot")
        assert s.do(lambda: s.station.seclog.queue.count) == 0
        sent = c.calls("SecurityEventNotification", "I23")
        assert sum(p["type"] == "TamperDetectionActivated" for p in sent) == 3  # nothing sent twice
    finally:
        stop(s, c)


def test_23_not_implemented_and_bounded_retries_on_the_rig(tmp_path: Any) -> None:
    r = Rig(str(tmp_path))
    r.connect()
    r.cs.fail.add("SecurityEventNotification")
    r.cs.fail_code["SecurityEventNotification"] = "NotImplemented"
    r.st.security_event("TamperDetectionActivated", "a")
    r.st.security_event("TamperDetectionActivated", "b")
    r.run(1000)
    assert [p["techInfo"] for p in r.sent("SecurityEventNotification")
            if p["type"] == "TamperDetectionActivated"] == ["a", "b"]
    assert r.st.seclog.queue.count == 0
    # A Soft Reset does not wait the 5 s grace for an event the CSMS refuses.
    r.call("Reset", {"type": "Soft"})
    r.run(100)
    assert r.st.reboot == "Soft"
    # Other failures: retried, 5 sends in all, then given up (the log keeps it).
    r.reboot()
    r.connect()
    r.cs.fail.add("SecurityEventNotification")  # InternalError
    n = len(r.sent("SecurityEventNotification"))
    r.st.security_event("TamperDetectionActivated", "c")
    r.run(10 * 60000)
    tries = [p for p in r.sent("SecurityEventNotification")[n:] if p.get("techInfo") == "c"]
    assert len(tries) == 5 and r.st.seclog.queue.count == 0


# ---- item 25 -----------------------------------------------------------------
def _tlv(buf: bytes, i: int) -> tuple[int, int]:
    """(start of the value, end) of the DER element at `i`."""
    n = buf[i + 1]
    if n < 0x80:
        return i + 2, i + 2 + n
    k = n & 0x7F
    return i + 2 + k, i + 2 + k + int.from_bytes(buf[i + 2:i + 2 + k], "big")


def _enc(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        return bytes([tag, n]) + body
    k = (n.bit_length() + 7) // 8
    return bytes([tag, 0x80 | k]) + n.to_bytes(k, "big") + body


def v1_cert(key: Any, cn: str, issuer_key: Any = None, issuer: str | None = None) -> x509.Certificate:
    """An X.509 v1 certificate (no extensions; self-signed without an
    issuer), as EVerest's test PKI has: `cryptography` writes v3 only, so
    its TBS loses the [0] version field and is signed again."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    by = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer or cn)])
    signer = issuer_key or key
    v3 = (x509.CertificateBuilder().subject_name(subject).issuer_name(by).public_key(key.public_key())
          .serial_number(0x1F).not_valid_before(NOW - dt.timedelta(days=1))
          .not_valid_after(NOW + dt.timedelta(days=30)).sign(signer, hashes.SHA256()))
    der = v3.public_bytes(serialization.Encoding.DER)
    s, _ = _tlv(der, 0)
    tbs_s, tbs_e = _tlv(der, s)
    alg_e = _tlv(der, tbs_e)[1]
    body = der[tbs_s:tbs_e]
    assert body[0] == 0xA0  # the version
    tbs = _enc(0x30, body[_tlv(body, 0)[1]:])
    sig = signer.sign(tbs, ec.ECDSA(hashes.SHA256()))
    return x509.load_der_x509_certificate(_enc(0x30, tbs + der[tbs_e:alg_e] + _enc(0x03, b"\0" + sig)))


@case("ISSUE19_25", "An X.509 v1 self-signed root: installed by InstallCertificate and trusted by TLS alike",
      "Security")
def test_25_v1_root_is_installed_and_trusted(pki: Pki, tmp_path: Path) -> None:
    k = ec.generate_private_key(ec.SECP256R1())
    root = v1_cert(k, "V1 CSMS Root")
    assert root.version == x509.Version.v1
    # The CSMS's certificate comes from the v1 root; the station trusts that root (factory) over TLS ...
    srv = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "csms")]))
           .issuer_name(root.subject).public_key(pki.srv_key.public_key()).serial_number(0x2F)
           .not_valid_before(NOW - dt.timedelta(days=1)).not_valid_after(NOW + dt.timedelta(days=30))
           .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                          critical=False).sign(k, hashes.SHA256()))
    pki.write("v1srv.pem", Pki.pem(srv))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki.d / "v1srv.pem", pki.d / "srv.key")
    c = CsmsThread(ssl=ctx, passwords={"I25": PW})
    seed(str(tmp_path), "I25", Pki.pem(root))
    s = StationThread(c.url, "I25", str(tmp_path), seeds={"SecurityProfile": "2",
                                                          "AdditionalRootCertificateCheck": "false"}, password=PW)
    try:
        accepted(s)
        # ... and InstallCertificate takes another v1 root, of either type.
        other = v1_cert(ec.generate_private_key(ec.SECP256R1()), "V1 Other Root")
        for kind in (CS_ROOT, MF_ROOT):
            r = c.call("I25", call.InstallCertificate(certificate_type=kind, certificate=Pki.pem(other)))
            assert r.status == "Accepted", kind
            settled(c, s, "I25")
        ids = c.call("I25", call.GetInstalledCertificateIds(certificate_type=MF_ROOT)).certificate_hash_data
        assert ids == [hash_data(other, other)]
    finally:
        stop(s, c)
    # The station's own chain check takes a v1 root as a trust anchor, never a
    # v1 certificate that is not self-issued as a CA.
    anchor = px.load_all(Pki.pem(root))[0]
    assert anchor.version == 1 and not anchor.ca and anchor.v1_root
    assert pchain.validate(px.load_all(Pki.pem(srv)), [anchor], int(NOW.timestamp())) is None
    sub = px.load_all(Pki.pem(v1_cert(ec.generate_private_key(ec.SECP256R1()), "V1 Sub", k, "V1 CSMS Root")))[0]
    assert sub.version == 1 and not sub.ca and not sub.v1_root
