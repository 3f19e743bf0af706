"""An in-memory stand-in for FileStorage.persist(name), for pure modules."""
import json


class MemPersist:
    """load()/save() like a snapshot; the JSON round trip proves the data is
    JSON-able. fail=True makes save() raise like a full or broken flash."""

    def __init__(self, obj=None, fail=False):
        self.text = None if obj is None else json.dumps(obj)
        self.fail = fail
        self.saves = 0

    def load(self):
        return None if self.text is None else json.loads(self.text)

    def save(self, obj):
        if self.fail:
            raise OSError(28, "no space")
        self.text = json.dumps(obj)
        self.saves += 1
