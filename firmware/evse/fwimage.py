"""Firmware images and the A/B slots they install into (docs/FIRMWARE_IMAGE.md).

Image: a 12-byte header (magic "EVFW", format u8, flags u8, manifest length
u16, CRC32 of the manifest u32; little-endian), the manifest, then every
file's bytes in manifest order. Manifest (ASCII text): a JSON line
{"format": 1, "version": ..., "board": ..., "files": N}, then N lines
"<sha256 hex> <size> <path>". It installs while it streams in: no seeking,
no file and not even the file list held in RAM (the manifest goes to the
slot first and is read back one line per file).

Slots: `<root>/slot_a`, `<root>/slot_b`. A slot is complete when its
`slot.json` marker (a CRC'd snapshot, renamed into place) exists; it is
written last, after every file was hash-checked and closed, and removed
first when a slot is reused. `<root>/fwstate.json` (also a snapshot) holds
the boot state. Every change of the boot choice is one atomic rename, so a
power cut at any point leaves one consistent, bootable choice.
"""
import json
import os
import struct

from evse.compat import const, crc32, hexlify, sha256_hasher

from evse.store.files import ensure_dir, is_dir, remove
from evse.store.snapshot import Snapshot

MAGIC = b"EVFW"
FORMAT = const(1)
HEADER = "<4sBBHI"  # magic, format, flags, manifest length, manifest CRC32
_HEADER_SIZE = const(12)
_MAX_LINE = const(200)
MARKER = "slot.json"  # exists only in a complete slot
MANIFEST = "manifest.txt"
_ALLOWED = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./"
_HEX = "0123456789abcdef"


class ImageError(ValueError):
    """The image is malformed, for another board, damaged or not verified."""


def manifest(version, board, files):
    """Manifest bytes for files [(path, size, sha256 hex), ...] (mkimage, tests)."""
    head = json.dumps({"format": FORMAT, "version": version, "board": board, "files": len(files)})
    return (head + "\n" + "".join(f"{h} {n} {p}\n" for p, n, h in files)).encode()


def header(raw):
    """The image header for the manifest bytes `raw`."""
    return struct.pack(HEADER, MAGIC, FORMAT, 0, len(raw), crc32(raw))


def check_path(p):
    """A manifest path must stay inside the slot and not clash with our own files."""
    if not 0 < len(p) <= 96 or p in (MARKER, MANIFEST) or p.endswith(".tmp"):
        return False
    if p.strip(_ALLOWED):  # what strip() leaves is a character outside the set
        return False
    return all(s not in ("", ".", "..") for s in p.split("/"))


def parse_entry(line):
    """(path, size, sha256 hex) of a manifest file line; raises ImageError."""
    parts = line.rstrip("\n").split(" ", 2)
    if (len(parts) != 3 or len(parts[0]) != 64 or parts[0].strip(_HEX)
            or not parts[1].isdigit() or not check_path(parts[2])):
        raise ImageError("bad manifest line " + repr(line[:80]))
    return parts[2], int(parts[1]), parts[0]


def parse_head(line, board):
    """The manifest's first line as a dict, checked against this board."""
    try:
        m = json.loads(line)
    except Exception:  # noqa: BLE001 - whatever a port raises for bad JSON
        m = None
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise ImageError("unknown manifest format")
    v = m.get("version")
    if not isinstance(v, str) or not 0 < len(v) <= 50:
        raise ImageError("no version")
    if m.get("board") != board:
        raise ImageError(f"image is for board {m.get('board')!r}, this is {board!r}")
    n = m.get("files")
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ImageError("no files")
    return m


def _rmtree(path):
    if not is_dir(path):
        remove(path)
        return
    for name in os.listdir(path):
        _rmtree(path + "/" + name)
    os.rmdir(path)


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


class Installer:
    """Writes one streamed image into an inactive slot. Made by Slots.begin_install().

    feed(chunk) as the bytes arrive (raises ImageError at the first bad
    byte, so a download into it stops early); finish() -> None when the
    slot is complete, else the error text. `verify(sha256 digest of the
    whole image) -> bool` is the signature check (evse.pki), if any.
    """

    def __init__(self, slots, slot, verify=None):
        self.slot = slot
        self.dir = slots.dir(slot)
        self.error = None
        self.done = False  # finish() completed the slot
        self.head = None  # the manifest's JSON line, once read
        self._slots = slots
        self._verify = verify
        self._hdr = bytearray()
        self._mcrc = 0  # the manifest CRC the header announces
        self._crc = 0  # the manifest CRC so far
        self._mleft = 0  # manifest bytes still to come
        self._line = bytearray()
        self._lines = 0  # manifest lines seen
        self._img = sha256_hasher()
        self._mf = None  # the slot's manifest file: written, then read back
        self._left = 0  # bytes left of the current file
        self._f = None
        self._h = None
        self._path = ""
        self._lastdir = ""
        self._want = ""  # sha256 hex of the current file
        self._todo = -1  # files still to open; -1 until the manifest is complete

    def feed(self, data):
        if self.error:
            raise ImageError(self.error)
        if self.done:
            raise ImageError("image already complete")  # and the slot stays so
        try:
            mv = memoryview(data)
            self._img.update(mv)
            i = 0
            while i < len(mv):
                if len(self._hdr) < _HEADER_SIZE:
                    i = self._feed_header(mv, i)
                elif self._todo < 0:
                    i = self._feed_manifest(mv, i)
                else:
                    i = self._feed_file(mv, i)
        except (ImageError, OSError) as e:
            self._fail(str(e) if isinstance(e, ImageError) else f"write failed: {e}")
            raise ImageError(self.error) from None

    def _feed_header(self, mv, i):
        h = self._hdr
        k = min(_HEADER_SIZE - len(h), len(mv) - i)
        h.extend(mv[i:i + k])
        if len(h) == _HEADER_SIZE:
            magic, fmt, _flags, self._mleft, self._mcrc = struct.unpack(HEADER, h)
            if magic != MAGIC or fmt != FORMAT or not self._mleft:
                raise ImageError("not a firmware image")
            self._mf = open(self.dir + "/" + MANIFEST, "wb")
        return i + k

    def _feed_manifest(self, mv, i):
        k = min(self._mleft, len(mv) - i)
        piece = mv[i:i + k]
        self._crc = crc32(piece, self._crc)
        self._mf.write(piece)
        self._mleft -= k
        ln = self._line
        for b in piece:
            if b == 10:
                self._on_line(bytes(ln).decode())
                ln = self._line = bytearray()
            elif b > 126 or b < 32:  # ASCII text only: decode() cannot fail
                raise ImageError("manifest is not text")
            elif len(ln) >= _MAX_LINE:
                raise ImageError("manifest line too long")
            else:
                ln.append(b)
        if not self._mleft:
            if ln or self._crc != self._mcrc:
                raise ImageError("manifest CRC mismatch")
            if self._lines != self.head["files"] + 1:
                raise ImageError("manifest lists too few files")
            self._mf.close()
            self._mf = open(self.dir + "/" + MANIFEST, "rb")
            self._mf.readline()
            self._todo = self.head["files"]
            self._next_file()
        return i + k

    def _on_line(self, line):
        self._lines += 1
        if self._lines == 1:
            self.head = parse_head(line, self._slots.board)  # another board's image stops here
        elif self._lines > self.head["files"] + 1:
            raise ImageError("manifest lists too many files")
        else:
            parse_entry(line)

    def _feed_file(self, mv, i):
        if self._f is None:
            raise ImageError("data after the last file")
        k = min(self._left, len(mv) - i)
        piece = mv[i:i + k]
        self._f.write(piece)
        self._h.update(piece)
        self._left -= k
        if not self._left:
            self._next_file()
        return i + k

    def _next_file(self):
        """Close and check the current file; open the next (empty ones at once)."""
        while True:
            if self._f is not None:
                self._f.close()  # the littlefs commit
                self._f = None
                if hexlify(self._h.digest()) != self._want:
                    raise ImageError("hash mismatch: " + self._path)
            if not self._todo:
                self._mf.close()
                self._mf = None
                return
            self._todo -= 1
            path, self._left, self._want = parse_entry(self._mf.readline().decode())
            full = self.dir + "/" + path
            d = full[:full.rfind("/")]
            if d != self._lastdir:  # files come grouped by directory: one mkdir -p each
                ensure_dir(d)
                self._lastdir = d
            if _exists(full):
                raise ImageError("duplicate path: " + path)
            self._path = path
            self._f = open(full, "wb")
            self._h = sha256_hasher()
            if self._left:
                return

    def _fail(self, msg):
        self.error = msg
        for f in (self._f, self._mf):
            if f is not None:
                f.close()
        self._f = self._mf = None
        try:
            _rmtree(self.dir)  # free the flash; the slot has no marker anyway
        except OSError:
            pass
        self._slots.installing = None

    def finish(self):
        """Complete the slot; None, or the error text (the slot stays unusable)."""
        if self.error or self.done:
            return self.error
        if self._todo or self._f is not None or self._mf is not None:
            self._fail("image truncated")
            return self.error
        digest = self._img.digest()
        if self._verify is not None:
            try:
                ok = self._verify(digest)
            except Exception:  # noqa: BLE001 - a verifier bug is a failed verification
                ok = False
            if not ok:
                self._fail("signature verification failed")
                return self.error
        m = self.head
        # Last: the rename that makes the slot complete.
        Snapshot(self.dir + "/" + MARKER).save({"version": m["version"], "board": m["board"],
                                                "files": m["files"], "sha256": hexlify(digest)})
        self._slots.installing = None
        self.done = True
        return None

    def abort(self):
        """Give up (e.g. the download failed): the slot is cleared."""
        if not self.error and not self.done:
            self._fail("aborted")


_DEFAULT = {"active": None, "trial": None, "boots": 0, "version": None, "previous": None, "failure": None}


class Slots:
    """The A/B slots under `root` and the boot state.

    active: the confirmed slot (None: the factory firmware in /lib or
    frozen); trial: a slot activated for a test boot; boots: how many boots
    the trial got; version / previous: of the active image and of the one
    it replaced; failure: why the last trial was rolled back. `running` is
    what boot_choice() picked at this boot; a Slots made later in the same
    boot (the station's, after the boot loader's) reads it from the state:
    a counted trial that was not rolled back is the one running.
    """

    def __init__(self, root, board, trial_boots=1):
        self.root = root
        self.board = board
        self.trial_boots = trial_boots  # boots a trial gets to reach confirm()
        self.installing = None
        self._snap = Snapshot(root + "/fwstate.json")
        st = self._snap.load(None)
        self.state = dict(_DEFAULT)
        if isinstance(st, dict):
            self.state.update(st)
        t = self.state["trial"]
        self.running = t if t and self.state["boots"] else self.state["active"]

    def dir(self, slot):
        return f"{self.root}/slot_{slot}"

    def _save(self):
        ensure_dir(self.root)
        self._snap.save(self.state)

    def info(self, slot):
        """The marker {"version", "board", "files", "sha256"} of a complete slot, else None."""
        m = Snapshot(self.dir(slot) + "/" + MARKER).load(None)
        return m if isinstance(m, dict) and m.get("board") == self.board else None

    def target(self):
        """The slot an install goes to: never the active one or a pending trial."""
        return "b" if self.state["active"] == "a" else "a"

    def begin_install(self, verify=None):
        """An Installer into the inactive slot (cleared first). Raises
        ImageError while a trial waits for its boot or confirmation."""
        if self.state["trial"]:
            raise ImageError("a trial boot is pending")
        slot = self.target()
        d = self.dir(slot)
        # Marker first (its .tmp before it, which Snapshot.load would
        # recover): from here on the slot is incomplete whatever happens.
        remove(d + "/" + MARKER + ".tmp")
        remove(d + "/" + MARKER)
        _rmtree(d)
        ensure_dir(d)
        self.installing = slot
        return Installer(self, slot, verify)

    def verify_slot(self, slot, bufsize=1024):
        """Re-read every file of a complete slot against its manifest: None or the error."""
        info = self.info(slot)
        if info is None:
            return "slot incomplete"
        d = self.dir(slot)
        buf = bytearray(bufsize)
        mv = memoryview(buf)
        try:
            with open(d + "/" + MANIFEST, "rb") as mf:
                mf.readline()
                for _ in range(info["files"]):
                    path, size, want = parse_entry(mf.readline().decode())
                    h = sha256_hasher()
                    n = 0
                    try:
                        with open(d + "/" + path, "rb") as f:
                            while True:
                                k = f.readinto(buf)
                                if not k:
                                    break
                                h.update(mv[:k])
                                n += k
                    except OSError:
                        return "missing: " + path
                    if n != size or hexlify(h.digest()) != want:
                        return "damaged: " + path
        except (OSError, ValueError, KeyError, TypeError):  # ImageError is a ValueError
            return "manifest damaged"
        return None

    def activate_trial(self, slot):
        """Boot `slot` next time on trial; None, or why not."""
        if slot not in ("a", "b") or slot == self.state["active"]:
            return "not an inactive slot"
        if self.state["trial"] and self.state["trial"] != slot:
            return "another trial is pending"
        err = self.verify_slot(slot)
        if err:
            return err
        self.state.update(trial=slot, boots=0, failure=None)
        self._save()
        return None

    def boot(self):
        """boot_choice() and the version it runs: (slot or None, version or
        None for the factory image, failure text or None). The one boot
        loader step of main.py and the simulator."""
        slot, failure = self.boot_choice()
        info = self.info(slot) if slot else None
        return slot, info["version"] if info else None, failure

    def boot_choice(self):
        """Which slot to run at this boot: (slot or None for the factory
        firmware, failure text or None). Call once per boot, before the
        application is imported. A trial gets `trial_boots` boots; a boot
        that finds them used up without confirm() rolls back."""
        st = self.state
        t = st["trial"]
        failure = None
        if t:
            info = self.info(t)
            if info and st["boots"] < self.trial_boots:
                st["boots"] += 1
                self._save()  # counted before the trial runs: a crash in it counts
                self.running = t
                return t, None
            ver = info["version"] if info else "?"
            failure = f"rolled back: {ver} in slot {t} was not confirmed"
            st.update(trial=None, boots=0, failure=failure)
            self._save()
        a = st["active"]
        if a and self.info(a) is None:
            failure = f"active slot {a} is incomplete: factory firmware"
            a = None
        self.running = a
        return a, failure

    def confirm(self):
        """The trial image works (the CSMS accepted its BootNotification):
        make it the active one. True if there was a trial to confirm."""
        st = self.state
        t = st["trial"]
        info = self.info(t) if t and st["boots"] else None  # not booted yet: nothing to confirm
        if info is None:
            return False
        st.update(active=t, trial=None, boots=0, previous=st["version"], version=info["version"], failure=None)
        self._save()
        return True

    def status(self):
        """A snapshot of the boot state and what each slot holds."""
        out = dict(self.state)
        out["running"] = self.running
        out["installing"] = self.installing
        out["slots"] = {}
        for s in ("a", "b"):
            i = self.info(s)
            out["slots"][s] = i["version"] if i else None
        return out
