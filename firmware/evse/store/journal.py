"""A bounded append-only journal of CRC'd, sequence-numbered records.

Every record carries a CRC32: FAT and host file systems can keep torn
writes, littlefs commits only on flush() or close().

Journal layout: segment files `dir/00000001.log`, ... Each record is
    seq u32 | kind u8 | len u16 | payload (len bytes) | CRC32 u32 of all before
little-endian. Every record (also deletes) takes the next sequence number, so
each record's seq is the previous one + 1 (only the records a compaction
copied keep gaps). On boot the first record that is short, fails its CRC or
breaks that sequence (a lost segment) ends the log: the file is cut there
and later segments are removed.

Reserved kinds: 255 delete (payload: target seq), 253 checkpoint (seq 0, payload: highest seq used;
only as the first record of a segment written by compaction).

RAM: payloads stay on flash. The index is four lists of small ints per live
record (seq, segment, offset, size: ~16 bytes per record on a 32-bit port),
bounded by max_bytes / 11; live() reads payloads one at a time.
Disk: about 2 * max_bytes, plus the live bytes while compaction runs.
"""
import json
import os
import struct
import sys

from evse.compat import const, crc32
from evse.store.files import ensure_dir, remove, rename


_HDR = "<IBH"
_HDR_SIZE = const(7)
_OVERHEAD = const(11)  # header + CRC32
_K_CHECKPOINT = const(253)
_K_DELETE = const(255)
KIND_MAX = const(252)  # kinds above are the journal's own
DATA_MAX = const(65530)  # len is u16
_SEQ_END = 0xFFFFFFFF  # seq is u32 (a big int on 32-bit ports: no const)
_BIG = const(1024)  # records longer than this are parsed from the file (load)
_PIECE = const(256)  # bytes per write of a record written in pieces


def _bounded(f, n):
    """The next n bytes of file f as a stream json.load reads in place
    (MicroPython: io.IOBase calls readinto), or None where that is missing."""
    import io

    base = getattr(io, "IOBase", None)
    if base is None or sys.implementation.name == "cpython":
        return None

    class Part(base):
        def readinto(self, buf):
            k = min(len(buf), self.n)
            if k <= 0:
                return 0
            got = f.readinto(memoryview(buf)[:k])
            self.n -= got
            return got
    part = Part()
    part.n = n
    return part


class JournalFull(Exception):
    """The record would take the live bytes past max_bytes: nothing was written."""


class Journal:
    """Bounded durable queue of (seq, kind, data) records; see the module docstring.

    Call open() once before anything else. An OSError from the file system
    leaves the journal closed until open() replays it again.
    """

    def __init__(self, dir, max_bytes=32768, segment_bytes=4096):
        self.dir = dir
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.error = None  # None | "corrupt" after open()
        self.live_bytes = 0  # record bytes (header, payload, CRC) of live records
        self._opened = False
        self._buf = bytearray(64)
        self._reset()

    def _reset(self):
        # Index, sorted by seq: parallel lists of small ints (no payloads).
        self._seqs = []
        self._segs = []
        self._offs = []
        self._lens = []
        self.live_bytes = 0
        self._files = []  # segment numbers on disk, ascending; the last one takes appends
        self._sizes = []
        self._hi = 0  # highest segment number seen: new ones go above it
        self._high = -1  # highest seq a checkpoint covers (replay only)
        self._next = 1

    @property
    def count(self):
        return len(self._seqs)

    def _path(self, n, ext=".log"):
        return f"{self.dir}/{n:08d}{ext}"

    # -- index ---------------------------------------------------------------

    def _find(self, seq):
        s = self._seqs
        lo, hi = 0, len(s)
        while lo < hi:
            mid = (lo + hi) >> 1
            if s[mid] < seq:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def _index(self, seq):
        i = self._find(seq)
        if i < len(self._seqs) and self._seqs[i] == seq:
            return i
        return -1

    def _put(self, seq, seg, off, size):
        i = self._find(seq)
        if i < len(self._seqs) and self._seqs[i] == seq:
            self.live_bytes -= self._lens[i]
            self._segs[i] = seg
            self._offs[i] = off
            self._lens[i] = size
        else:
            self._seqs.insert(i, seq)
            self._segs.insert(i, seg)
            self._offs.insert(i, off)
            self._lens.insert(i, size)
        self.live_bytes += size

    def _drop(self, i):
        self._seqs.pop(i)
        self._segs.pop(i)
        self._offs.pop(i)
        self.live_bytes -= self._lens.pop(i)

    # -- replay --------------------------------------------------------------

    def open(self, records=True):
        """Replay the log (cutting it at the first bad record) and return the
        live records in order (or, with records=False, just their count, so
        the payloads need not all sit in RAM at boot: iterate live() instead).
        Never raises on bad content; sets self.error. Once replayed, the
        index is the disk's: open(False) again costs nothing (the storage
        adapter opens a journal to check the file system, then its owner)."""
        if self._opened and not records:
            return self.count
        ensure_dir(self.dir)
        self._reset()
        self.error = None
        nums = []
        for name in os.listdir(self.dir):
            if name.endswith(".tmp"):
                # Unfinished compaction or cut: its source is still intact.
                remove(self.dir + "/" + name)
            elif name.endswith(".log") and len(name) == 12 and name[:8].isdigit():
                nums.append(int(name[:8]))
        nums.sort()
        if nums:
            self._hi = nums[-1]
        # A complete compaction supersedes every older segment, whatever a
        # crash left of them.
        start = 0
        for i in range(len(nums) - 1, -1, -1):
            if self._checkpoint(nums[i]):
                start = i
                break
        for n in nums[:start]:
            remove(self._path(n))
        nums = nums[start:]
        prev = 0
        for i in range(len(nums)):
            n = nums[i]
            prev, end, ok = self._replay(n, prev, i == 0)
            if not ok:
                self.error = "corrupt"
                for m in nums[i + 1:]:
                    remove(self._path(m))
                self._truncate(n, end)
            if end or ok:
                self._files.append(n)
                self._sizes.append(end)
            if not ok:
                break
        self._opened = True
        self._trim()
        return list(self.live()) if records else len(self._seqs)

    def _checkpoint(self, n):
        """True if segment n starts with a valid checkpoint record."""
        try:
            with open(self._path(n), "rb") as f:
                h = f.read(_HDR_SIZE)
                if len(h) < _HDR_SIZE:
                    return False
                seq, kind, ln = struct.unpack(_HDR, h)
                if seq or kind != _K_CHECKPOINT or ln != 4:
                    return False
                rest = f.read(8)
                return len(rest) == 8 and struct.unpack("<I", rest[4:])[0] == crc32(rest[:4], crc32(h))
        except OSError:
            return False

    def _replay(self, n, prev, first):
        """Index segment n. Returns (last seq, end of the good part, whole file good)."""
        path = self._path(n)
        off = 0
        try:
            size = os.stat(path)[6]
            with open(path, "rb") as f:
                while off < size:
                    r = self._record(f, size - off)
                    if r is None:
                        return prev, off, False
                    seq, kind, ln, arg = r
                    if max(seq, arg) >= _SEQ_END:
                        # A u32 that leaves no next seq is no record we
                        # wrote (4e9 of them): the log ends here.
                        return prev, off, False
                    if kind == _K_CHECKPOINT:
                        if seq or off or not first:
                            return prev, off, False
                        self._high = arg
                        self._next = max(self._next, arg + 1)
                    else:
                        high = self._high
                        if not prev and high < 0:
                            good = seq > 0  # the oldest segments may be gone
                        elif seq <= high:
                            good = seq > prev  # compacted: gaps are deletions
                        else:
                            good = seq == max(prev, high) + 1  # no lost file or record
                        if not good:
                            return prev, off, False
                        prev = seq
                        self._next = max(self._next, seq + 1)
                        if kind == _K_DELETE:
                            i = self._index(arg)
                            if i >= 0:
                                self._drop(i)
                        else:
                            self._put(seq, n, off, _OVERHEAD + ln)
                    off += _OVERHEAD + ln
        except OSError:
            return prev, off, False
        return prev, off, True

    def _record(self, f, avail):
        """Check the record at the file position: (seq, kind, len, target seq) or None."""
        if avail < _OVERHEAD:
            return None
        h = f.read(_HDR_SIZE)
        if len(h) < _HDR_SIZE:
            return None
        seq, kind, ln = struct.unpack(_HDR, h)
        if ln > avail - _OVERHEAD:  # also keeps a corrupt len from allocating
            return None
        crc = crc32(h)
        arg = 0
        rest = ln
        if kind >= _K_CHECKPOINT:
            if ln != 4:
                return None
            p = f.read(4)
            if len(p) < 4:
                return None
            crc = crc32(p, crc)
            arg = struct.unpack("<I", p)[0]
            rest = 0
        mv = memoryview(self._buf)
        while rest:
            k = f.readinto(mv[:min(rest, len(mv))])
            if not k:
                return None
            crc = crc32(mv[:k], crc)
            rest -= k
        t = f.read(4)
        if len(t) < 4 or struct.unpack("<I", t)[0] != crc:
            return None
        return seq, kind, ln, arg

    def _truncate(self, n, end):
        """Cut segment n to `end` bytes: copy, then rename (no truncate() on MicroPython)."""
        src = self._path(n)
        if not end:
            remove(src)
            return
        tmp = self._path(n, ".tmp")
        mv = memoryview(self._buf)
        with open(src, "rb") as a, open(tmp, "wb") as b:
            while end:
                k = a.readinto(mv[:min(end, len(mv))])
                if not k:
                    break
                b.write(mv[:k])
                end -= k
        rename(tmp, src)

    # -- reading -------------------------------------------------------------

    def _read(self, i, head=False):
        """(kind, data) of index entry i, CRC-checked; data is None if head."""
        with open(self._path(self._segs[i]), "rb") as f:
            f.seek(self._offs[i])
            h = f.read(_HDR_SIZE)
            if len(h) < _HDR_SIZE:
                raise OSError(f"journal record {self._seqs[i]} damaged")
            _, kind, ln = struct.unpack(_HDR, h)
            crc = crc32(h)
            if head:
                return kind, None
            data = f.read(ln)
            crc = crc32(data, crc)
            t = f.read(4)
        if len(data) != ln or len(t) != 4 or struct.unpack("<I", t)[0] != crc:
            raise OSError(f"journal record {self._seqs[i]} damaged")
        return kind, data

    def read(self, seq):
        """Payload of live record `seq` (KeyError if it is not live)."""
        i = self._index(seq)
        if i < 0:
            raise KeyError(seq)
        return self._read(i)[1]

    def load(self, seq):
        """json.loads(read(seq)). A big record (a StopTransaction with its
        meter values) is CRC-checked through the small buffer, then parsed
        straight from the file: neither its bytes nor its text are in RAM."""
        i = self._index(seq)
        if i < 0:
            raise KeyError(seq)
        size = self._lens[i]
        if size - _OVERHEAD <= _BIG:
            return json.loads(self._read(i)[1])
        with open(self._path(self._segs[i]), "rb") as f:
            f.seek(self._offs[i])
            if self._record(f, size) is None:
                raise OSError("journal record %d damaged" % seq)
            f.seek(self._offs[i] + _HDR_SIZE)
            part = _bounded(f, size - _OVERHEAD)
            return json.loads(f.read(size - _OVERHEAD)) if part is None else json.load(part)

    def live(self):
        """Iterator over live (seq, kind, data) in append order; payloads are
        read from flash one at a time. Deleting while iterating is fine."""
        for seq in list(self._seqs):  # 4 bytes a record; the index may change meanwhile
            i = self._index(seq)
            if i >= 0:
                kind, data = self._read(i)
                yield seq, kind, data

    # -- writing -------------------------------------------------------------

    def _check(self):
        if not self._opened:
            raise RuntimeError("journal not open")

    def _emit(self, f, seq, kind, prefix, data):
        h = struct.pack(_HDR, seq, kind, len(prefix) + len(data))
        f.write(h)
        if prefix:
            f.write(prefix)
        f.write(data)
        f.write(struct.pack("<I", crc32(data, crc32(prefix, crc32(h)))))
        return _OVERHEAD + len(prefix) + len(data)

    def _emit_json(self, f, seq, kind, obj, ln):
        from evse.wire.jsonout import Chunks, dump

        h = struct.pack(_HDR, seq, kind, ln)
        f.write(h)
        crc = [crc32(h)]

        def emit(mv):
            f.write(mv)
            crc[0] = crc32(mv, crc[0])
        ch = Chunks(emit, _PIECE)
        dump(obj, ch.write)
        ch.flush()
        if ch.total != ln:  # jsonout.size() and dump() disagree: a bug, not data
            raise ValueError("record size")
        f.write(struct.pack("<I", crc[0]))

    def _write(self, kind, prefix, data, obj=None, ln=0):
        """Append one record with the next seq; (seq, segment, offset).
        With `obj`, the payload is its JSON (ln bytes), written in pieces."""
        n = _OVERHEAD + (ln if obj is not None else len(prefix) + len(data))
        self._opened = False  # until the record is safely out
        if not self._files or (self._sizes[-1] and self._sizes[-1] + n > self.segment_bytes):
            self._roll(n)
        seq = self._next
        seg = self._files[-1]
        off = self._sizes[-1]
        # One open/write/close per record: close() is the littlefs commit.
        with open(self._path(seg), "ab") as f:
            if obj is not None:
                self._emit_json(f, seq, kind, obj, ln)
            else:
                self._emit(f, seq, kind, prefix, data)
        self._next = seq + 1
        self._sizes[-1] = off + n
        self._opened = True
        return seq, seg, off

    def _roll(self, n):
        self._trim()
        if sum(self._sizes) + n > 2 * self.max_bytes:
            self._compact()
            if self._sizes[-1] + n <= self.segment_bytes:
                return
        self._hi += 1
        self._files.append(self._hi)
        self._sizes.append(0)

    def _trim(self):
        """Remove the oldest segments that hold no live record, oldest first:
        a delete record always follows its target, so a crash part way never
        revives a deleted record. The newest segment stays (it keeps the seq)."""
        lo = min(self._segs) if self._segs else self._hi + 1
        while len(self._files) > 1 and self._files[0] < lo:
            remove(self._path(self._files.pop(0)))
            self._sizes.pop(0)

    def append(self, kind, data):
        """Store a record durably (on return); its seq. Raises JournalFull."""
        self._check()
        if not 0 <= kind <= KIND_MAX or len(data) > DATA_MAX:
            raise ValueError("kind or size")
        size = _OVERHEAD + len(data)
        if self.live_bytes + size > self.max_bytes:
            raise JournalFull()
        seq, seg, off = self._write(kind, b"", data)
        self._put(seq, seg, off, size)
        return seq

    def replace(self, seqs, kind, data):
        """append() of (kind, data) and delete() of every seq in `seqs` in
        one write (one littlefs commit). The new record goes first: a torn
        write keeps it or keeps them all, never the deletes without it.
        Returns its seq. KeyError if one of `seqs` is not live."""
        self._check()
        if not 0 <= kind <= KIND_MAX or len(data) > DATA_MAX:
            raise ValueError("kind or size")
        freed = 0
        for s in seqs:
            i = self._index(s)
            if i < 0:
                raise KeyError(s)
            freed += self._lens[i]
        size = _OVERHEAD + len(data)
        if self.live_bytes + size - freed > self.max_bytes:
            raise JournalFull()
        total = size + len(seqs) * (_OVERHEAD + 4)
        self._opened = False
        if not self._files or (self._sizes[-1] and self._sizes[-1] + total > self.segment_bytes):
            self._roll(total)
        seq = self._next
        seg = self._files[-1]
        off = self._sizes[-1]
        end = off
        with open(self._path(seg), "ab") as f:
            end += self._emit(f, seq, kind, b"", data)
            for i, s in enumerate(seqs):
                end += self._emit(f, seq + 1 + i, _K_DELETE, b"", struct.pack("<I", s))
        self._next = seq + 1 + len(seqs)
        self._sizes[-1] = end
        self._opened = True
        self._put(seq, seg, off, size)
        first = False
        for s in seqs:
            i = self._index(s)
            first = first or self._segs[i] == self._files[0]
            self._drop(i)
        if first:
            self._trim()
        return seq

    def append_json(self, kind, obj):
        """append() of obj's JSON text, written in pieces (evse.wire.jsonout):
        the text of a big record is never in RAM."""
        from evse.wire import jsonout

        self._check()
        ln = jsonout.size(obj)
        if not 0 <= kind <= KIND_MAX or ln > DATA_MAX:
            raise ValueError("kind or size")
        size = _OVERHEAD + ln
        if self.live_bytes + size > self.max_bytes:
            raise JournalFull()
        seq, seg, off = self._write(kind, b"", None, obj, ln)
        self._put(seq, seg, off, size)
        return seq

    def delete(self, seq):
        """Mark a live record consumed, durably (a delete record). KeyError if not live."""
        self._check()
        if self._index(seq) < 0:
            raise KeyError(seq)
        self._write(_K_DELETE, b"", struct.pack("<I", seq))
        i = self._index(seq)
        first = self._segs[i] == self._files[0]
        self._drop(i)
        if first:
            self._trim()

    def compact(self):
        """Rewrite the live records into one new segment and drop the rest."""
        self._check()
        self._opened = False
        self._compact()
        self._opened = True

    def _compact(self):
        # Written as .tmp and renamed, so the new segment exists only when
        # complete. It starts with a checkpoint, and open() starts at the newest
        # checkpoint: old segments a crash leaves behind are ignored, so no
        # record is lost or doubled.
        num = self._hi + 1
        tmp = self._path(num, ".tmp")
        offs = []
        lens = []
        with open(tmp, "wb") as f:
            off = self._emit(f, 0, _K_CHECKPOINT, b"", struct.pack("<I", self._next - 1))
            for i in range(len(self._seqs)):
                kind, data = self._read(i)
                offs.append(off)
                n = self._emit(f, self._seqs[i], kind, b"", data)
                lens.append(n)
                off += n
        rename(tmp, self._path(num))
        self._hi = num
        old = self._files
        self._files = [num]
        self._sizes = [off]
        self._segs = [num] * len(offs)
        self._offs = offs
        self._lens = lens
        self.live_bytes = sum(lens)
        for n in old:
            remove(self._path(n))


class MemJournal:
    """The Journal interface in RAM, bounded the same way: what the station
    falls back to when the file system refuses writes (e.g. CircuitPython
    with USB storage on). Nothing survives a power cut; the station says so."""

    def __init__(self, max_bytes=32768):
        self.max_bytes = max_bytes
        self.error = None
        self.live_bytes = 0
        self._recs = []  # [seq, kind, data]
        self._next = 1

    @property
    def count(self):
        return len(self._recs)

    def open(self, records=True):
        return [tuple(r) for r in self._recs] if records else len(self._recs)

    def live(self):
        for r in list(self._recs):  # deleting while iterating is fine
            yield r[0], r[1], r[2]

    def append(self, kind, data):
        if kind < 0 or kind > KIND_MAX or len(data) > DATA_MAX:
            raise ValueError("kind or size")
        if self.live_bytes + _OVERHEAD + len(data) > self.max_bytes:
            raise JournalFull()
        seq = self._next
        self._next += 1
        self._recs.append([seq, kind, bytes(data)])
        self.live_bytes += _OVERHEAD + len(data)
        return seq

    def _find(self, seq):
        for i in range(len(self._recs)):
            if self._recs[i][0] == seq:
                return i
        raise KeyError(seq)

    def read(self, seq):
        return self._recs[self._find(seq)][2]

    def replace(self, seqs, kind, data):
        for s in seqs:
            self._find(s)
        seq = self.append(kind, data)
        for s in seqs:
            self.delete(s)
        return seq

    def load(self, seq):
        return json.loads(self.read(seq))

    def append_json(self, kind, obj):
        return self.append(kind, json.dumps(obj).encode())

    def delete(self, seq):
        r = self._recs.pop(self._find(seq))
        self.live_bytes -= _OVERHEAD + len(r[2])
        self._next += 1
