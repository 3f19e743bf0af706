"""The storage adapter the core is given: named snapshots and journals
under one directory (the station's flash). See snapshot.py and journal.py for the formats."""
from evse.files import ensure_dir
from evse.journal import Journal
from evse.snapshot import Snapshot


class _Persist:
    """load() -> object or None; save(obj). A missing or corrupt snapshot
    loads as None (the owner falls back to defaults) and is remembered in
    `error` so the station can log a security event."""

    def __init__(self, path):
        self.snap = Snapshot(path)

    @property
    def error(self):
        return self.snap.error

    def load(self):
        return self.snap.load(None)

    def save(self, obj):
        self.snap.save(obj)


class FileStorage:
    def __init__(self, root):
        self.root = root.rstrip("/")
        ensure_dir(self.root)
        self.opened = []  # every persist handed out, to report corrupt ones

    def persist(self, name):
        p = _Persist(self.root + "/" + name + ".json")
        self.opened.append((name, p))
        return p

    def journal(self, name, **kw):
        d = self.root + "/" + name
        ensure_dir(d)
        return Journal(d, **kw)
