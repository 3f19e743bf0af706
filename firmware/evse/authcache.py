"""Authorization Cache (OCPP 1.6 section 3.5.1), and the idTagInfo helpers
the Local Authorization List (authlist.py) shares.

Pure data: time is the `now` argument (unix seconds), storage is an
injected `persist` object with load() -> obj or None and save(obj).

Persistence is the caller's to debounce: update(), clear() and an entry
turning Expired set `dirty`; a cache hit only refreshes the LRU order in RAM
and never makes the cache dirty, so card swipes do not wear the flash. Call
save() when `dirty` (e.g. a few seconds after the last change).
"""
from evse import timestamp

# AuthorizationStatus values, stored as their index.
STATUSES = ("Accepted", "Blocked", "Expired", "Invalid", "ConcurrentTx")
_EXPIRED = 2
_ID_MAX = 20  # IdToken and parentIdTag are CiString20Type

# Expiry is kept as seconds since 2020-01-01 so that dates from 1986 to 2054
# are MicroPython small ints (31 bits) rather than heap-allocated longs.
_BASE = 1577836800


def fold(id_tag):
    """Dictionary key for an idTag, or None if it is not a CiString20.

    IdToken is a CiString20Type, a case-insensitive string. Folding through bytes keeps it
    ASCII-only on both CPython and MicroPython, so keys match across ports.
    """
    if not isinstance(id_tag, str) or len(id_tag) > _ID_MAX:
        return None
    return id_tag.encode().upper().decode()


def parse_info(info):
    """idTagInfo dict -> (status_index, expiry or None, parent or None).

    Expiry is relative to _BASE. Returns None when the dict is malformed (a
    peer's violation: the caller ignores or refuses it, never crashes).
    """
    if not isinstance(info, dict):
        return None
    try:
        code = STATUSES.index(info.get("status"))
    except ValueError:
        return None
    exp = info.get("expiryDate")
    if exp is not None:
        exp = timestamp.parse(exp) if isinstance(exp, str) else None
        if exp is None:
            return None
        exp -= _BASE
    parent = info.get("parentIdTag")
    if parent is not None and (not isinstance(parent, str) or len(parent) > _ID_MAX):
        return None
    return code, exp, parent


def expired(exp, now):
    """True once `now` is past the expiry: expiryDate is the moment after
    which the idTag must be considered invalid (IdTagInfo type)."""
    return exp is not None and now - _BASE > exp


def info_dict(code, exp, parent, now):
    """idTagInfo as sent on the wire; an entry past its expiry is reported
    with status Expired whatever its stored status."""
    if expired(exp, now):
        code = _EXPIRED
    d = {"status": STATUSES[code]}
    if exp is not None:
        d["expiryDate"] = timestamp.format_utc(exp + _BASE)
    if parent is not None:
        d["parentIdTag"] = parent
    return d


def unix(exp):
    """Stored expiry -> unix seconds (or None), for snapshots."""
    return None if exp is None else exp + _BASE


def rel(unix_s):
    """Unix seconds from a snapshot -> stored expiry; raises on garbage."""
    if unix_s is None:
        return None
    if type(unix_s) is not int:
        raise ValueError
    return unix_s - _BASE


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
        if code != _EXPIRED and expired(exp, now):
            code = _EXPIRED
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
        if v[0] != _EXPIRED and expired(v[1], now):
            v = (_EXPIRED, v[1], v[2])
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
