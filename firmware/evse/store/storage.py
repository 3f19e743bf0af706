"""The storage adapter the core is given: named snapshots and journals
under one directory (the station's flash). See snapshot.py and journal.py
for the formats.

A read-only file system (CircuitPython with USB storage on) never raises
out of here: the values stay in RAM, journals fall back to a bounded RAM
journal, and `error` says why, so the station can run on and report it.
Any other failed save (e.g. flash full) raises to its owner, which keeps
its previous state."""
from evse.store.files import ensure_dir
from evse.store.journal import Journal, MemJournal
from evse.store.snapshot import Snapshot


_EROFS = 30
_ENOSPC = 28


def _errno(e):
    code = getattr(e, "errno", None)
    if code is None and e.args:
        code = e.args[0]  # MicroPython: OSError(errno)
    return code


def _read_only(e):
    return _errno(e) == _EROFS


class _Persist:
    """load() -> object or None; save(obj). A missing or corrupt snapshot
    loads as None (the owner falls back to defaults) and is remembered in
    `error` so the station can log a security event."""

    def __init__(self, path, owner):
        self.snap = Snapshot(path)
        self.owner = owner

    @property
    def error(self):
        return self.snap.error

    def load(self):
        try:
            return self.snap.load(None)
        except OSError as e:
            self.owner.failed(e)
            return None

    def save(self, obj):
        self._save(self.snap.save, obj)

    def save_pieces(self, dump):
        """save() with the JSON written in pieces: dump(write) (snapshot.py)."""
        self._save(self.snap.save_pieces, dump)

    def _save(self, fn, arg):
        if self.owner.error:
            return  # read-only: RAM is the only copy, reported once
        try:
            fn(arg)
        except OSError as e:
            if not _read_only(e):
                self.owner.room(_errno(e) != _ENOSPC)
                raise  # e.g. flash full: the owner keeps its old state (atomic updates)
            self.owner.failed(e)
            return
        self.owner.room(True)


class FileStorage:
    def __init__(self, root):
        self.root = root.rstrip("/")
        self.error = None  # why writes are refused, once they are
        self.opened = []  # every persist handed out, to report corrupt ones
        self.full = False  # the last save found the flash full
        self.on_full = None  # fn(full): set by the station
        try:
            ensure_dir(self.root)
        except OSError as e:
            self.failed(e)

    def room(self, ok):
        # A save found the flash full (ok False) or worked: on_full(full)
        # hears of the change only (the station's MemoryExhaustion streak).
        if self.full == (not ok):
            return
        self.full = not ok
        if self.on_full is not None:
            self.on_full(self.full)

    def failed(self, e):
        if self.error is None:
            self.error = "storage refuses writes: " + repr(e)

    def persist(self, name):
        p = _Persist(self.root + "/" + name + ".json", self)
        self.opened.append((name, p))
        return p

    def journal(self, name, **kw):
        if self.error is None:
            d = self.root + "/" + name
            try:
                ensure_dir(d)
                j = Journal(d, **kw)
                j.open(False)  # a file system that fails here fails for the owner too
                return j
            except OSError as e:
                self.failed(e)
        return MemJournal(kw.get("max_bytes", 32768))


class MemSnapshot:
    """A snapshot held as its JSON text (a copy, like flash: the owner may
    change the object after saving it)."""

    error = None  # RAM is never corrupt

    def __init__(self):
        self.text = None

    def load(self):
        if self.text is None:
            return None
        import json
        return json.loads(self.text)

    def save(self, obj):
        import json
        self.text = json.dumps(obj)

    def save_pieces(self, dump):
        parts = []
        dump(parts.append)
        self.text = "".join(parts)


class MemStorage:
    """The FileStorage interface with its snapshots and journals in RAM: a
    flash that survives a reboot of the core (the same MemStorage handed to
    the next Station) but not the process. For simulated fleets, where
    thousands of data folders would measure the disk. `root` is only for
    features that keep files of their own (the diagnostics log, firmware
    slots): where no folder can be made, those stay in RAM as after a
    refused write."""

    error = None

    def __init__(self, root):
        self.root = root
        self.opened = []
        self._snaps = {}
        self._journals = {}

    def persist(self, name):
        p = self._snaps.get(name)
        if p is None:
            p = self._snaps[name] = MemSnapshot()
            self.opened.append((name, p))
        return p

    def journal(self, name, **kw):
        j = self._journals.get(name)
        if j is None:
            j = self._journals[name] = MemJournal(kw.get("max_bytes", 32768))
        return j
