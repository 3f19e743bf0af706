"""An in-memory stand-in for FileStorage.persist(name), for pure modules:
the RAM snapshot of MemStorage (evse/store/storage.py), plus a failing flash."""
import json

from evse.store.storage import MemSnapshot


class MemPersist(MemSnapshot):
    """load()/save() like a snapshot; the JSON round trip proves the data is
    JSON-able. fail=True makes save() raise like a full or broken flash."""

    def __init__(self, obj=None, fail=False):
        super().__init__()
        self.text = None if obj is None else json.dumps(obj)
        self.fail = fail
        self.saves = 0

    def save(self, obj):
        self._check()
        super().save(obj)

    def save_pieces(self, dump):
        self._check()
        super().save_pieces(dump)
        json.loads(self.text)  # the pieces make one JSON document

    def _check(self):
        if self.fail:
            raise OSError(28, "no space")
        self.saves += 1
