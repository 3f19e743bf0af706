"""Authorization Cache (OCPP 1.6 section 3.5.1).

Pure data: time is the `now` argument (unix seconds), storage is an
injected `persist` object with load() -> obj or None and save(obj).

Persistence is the caller's to debounce: update(), clear() and an entry
turning Expired set `dirty`; a cache hit only refreshes the LRU order in RAM
and never makes the cache dirty, so card swipes do not wear the flash. Call
save() when `dirty` (e.g. a few seconds after the last change).
"""
from evse.idtag import EXPIRED, STATUSES, expired, fold, info_dict, parse_info, rel, unix


class AuthCache:
    """Bounded map idTag -> idTagInfo with least-recently-used eviction.

    Entries are tuples (status_index, expiry, parent, last_use), last_use
    being a counter bumped by every get() hit and update().
    """

    def __init__(self, capacity=64, persist=None):
        self.capacity = capacity
        self.dirty = False
        self._persist = persist
        self._map = {}
        self._tick = 0
        if persist is not None:
            self.load(persist.load())

    def __len__(self):
        return len(self._map)

    def _next(self):
        self._tick += 1
        return self._tick

    def get(self, id_tag, now: int) -> "dict | None":
        """idTagInfo for a cached idTag, or None. Section 3.5.1: an entry
        whose validity has passed is changed to Expired in the cache."""
        key = fold(id_tag)
        e = self._map.get(key) if key is not None else None
        if e is None:
            return None
        code, exp, parent, _ = e
        if code != EXPIRED and expired(exp, now):
            code = EXPIRED
            self.dirty = True
        self._map[key] = (code, exp, parent, self._next())
        return info_dict(code, exp, parent, now)

    def update(self, id_tag, id_tag_info, now: int) -> None:
        """Store the idTagInfo of an Authorize/StartTransaction/
        StopTransaction.conf. Malformed input is ignored."""
        key = fold(id_tag)
        v = parse_info(id_tag_info)
        if key is None or v is None or self.capacity <= 0:
            return
        if v[0] != EXPIRED and expired(v[1], now):
            v = (EXPIRED, v[1], v[2])
        old = self._map.get(key)
        if old is None:
            if len(self._map) >= self.capacity:
                self._evict()
            self.dirty = True
        elif old[:3] != v:
            self.dirty = True
        self._map[key] = v + (self._next(),)

    def _evict(self):
        # O(n) scan on insert into a full cache: n is small and inserts are
        # rare (one per new card), cheaper than keeping an ordered structure.
        lru = None
        oldest = 0
        for k, e in self._map.items():
            if lru is None or e[3] < oldest:
                lru, oldest = k, e[3]
        if lru is not None:
            del self._map[lru]

    def clear(self) -> None:
        """ClearCache.req (section 5.4)."""
        if self._map:
            self._map = {}
            self.dirty = True

    def dump(self) -> dict:
        """JSON-able snapshot (LRU order kept as each entry's use counter)."""
        return {"v": 1, "e": [[k, STATUSES[e[0]], unix(e[1]), e[2], e[3]]
                              for k, e in self._map.items()]}

    def load(self, obj) -> bool:
        """Restore from dump(); malformed rows are skipped, nothing raises
        (the cache is only a hint). False if `obj` was not a snapshot."""
        self._map = {}
        self._tick = 0
        self.dirty = False
        rows = obj.get("e") if isinstance(obj, dict) and obj.get("v") == 1 else None
        if not isinstance(rows, list):
            return False
        good = [g for g in (_load_row(r) for r in rows) if g is not None]
        # Oldest first, renumbering the counters from 1; over capacity (a
        # smaller cache configured since) keeps the most recently used.
        good.sort(key=lambda g: g[0])
        if len(good) > self.capacity:
            good = good[len(good) - max(self.capacity, 0):]
        for _, key, code, exp, parent in good:
            self._map[key] = (code, exp, parent, self._next())
        return True

    def save(self) -> bool:
        """Write the snapshot through `persist`; False (still dirty) if that
        failed or there is no persist."""
        if self._persist is None:
            return False
        try:
            self._persist.save(self.dump())
        except Exception:  # noqa: BLE001 - flash failure: stay dirty, retry later
            return False
        self.dirty = False
        return True


def _load_row(r):
    """(tick, key, status_index, expiry, parent) of a dump() row, or None."""
    try:
        tag, status, exp, parent, tick = r
        key = fold(tag)
        v = parse_info({"status": status, "parentIdTag": parent})
        if key is None or v is None or type(tick) is not int:
            return None
        return tick, key, v[0], rel(exp), parent
    except (TypeError, ValueError):
        return None
