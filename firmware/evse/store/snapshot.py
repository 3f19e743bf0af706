"""Atomic JSON snapshots: `crc32hex\\n` then the JSON, written as name.tmp
and renamed over the old file. Every file still carries a CRC32, because FAT
and host file systems can keep torn writes."""
import json

from evse.compat import crc32
from evse.store.files import remove, rename


def _head(body):
    return f"{crc32(body):08x}\n".encode()


class Snapshot:
    """One JSON document replaced atomically: `crc32hex\\n` then the JSON."""

    def __init__(self, path):
        self.path = path
        self.error = None  # None | "missing" | "corrupt" after load()
        self._on_flash = None  # (crc32, length) of the body known to be on flash

    def _read(self, path):
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except OSError:
            return "missing", None
        # CRC first: a torn or flipped file never reaches the JSON parser.
        if raw[:9] != _head(raw[9:]):
            return "corrupt", None
        try:
            obj = json.loads(raw[9:].decode())
            if path == self.path:
                self._on_flash = (crc32(raw[9:]), len(raw) - 9)
            return None, obj
        except Exception:  # noqa: BLE001 - bad content must never crash the boot
            return "corrupt", None

    def load(self, default):
        """The saved object, or `default` with self.error set; never raises on bad content."""
        tmp = self.path + ".tmp"
        err, obj = self._read(self.path)
        if err:
            # A save cut after the temp file was closed (or FAT's
            # remove-then-rename): that file is complete if its CRC says so.
            terr, tobj = self._read(tmp)
            if terr is None:
                rename(tmp, self.path)
                err, obj = None, tobj
                self._on_flash = None
        remove(tmp)
        self.error = err
        return default if err else obj

    def save_pieces(self, dump):
        """save() for a big document without its JSON text in RAM:
        dump(write) writes the JSON through write(str or bytes), a piece at a time.
        One pass: the CRC line is written last, over a placeholder."""
        crc = 0
        tmp = self.path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(b"00000000\n")

            def write(s):
                nonlocal crc
                b = s.encode() if isinstance(s, str) else s  # bytes or a memoryview as they are
                crc = crc32(b, crc)
                f.write(b)
            dump(write)
            f.seek(0)
            f.write(b"%08x" % crc)
        rename(tmp, self.path)
        self.error = None
        self._on_flash = None

    def save(self, obj):
        """Write path.tmp, close it (commits on littlefs), rename over path;
        nothing when the file already holds this very document (flash
        wear: owners save after every change, many change nothing)."""
        body = json.dumps(obj).encode()
        crc = crc32(body)
        if self._on_flash == (crc, len(body)) and self.error is None:
            return
        tmp = self.path + ".tmp"
        self._on_flash = None  # until the new file is in place
        with open(tmp, "wb") as f:
            f.write(b"%08x\n" % crc)
            f.write(body)
        rename(tmp, self.path)
        self.error = None
        self._on_flash = (crc, len(body))
