"""Local Auth List Management profile (OCPP 1.6 sections 3.5.2, 5.10, 5.15)."""
# The list itself (versions, limits, atomic persisted updates) is LocalList
# below. Installing this module sets `st.authlist`, which
# authorize.py consults before the cache, and answers SendLocalList and
# GetLocalListVersion.
#
# `LocalAuthListEnabled` false: the list is kept but not used; SendLocalList
# answers NotSupported and GetLocalListVersion -1 (LocalList.get_version explains why).
# Sizes come from the read-only keys LocalAuthListMaxLength and
# SendLocalListMaxLength (100 on the reference station, ORS-12/13).

import json

from evse.idtag import STATUSES, fold, info_dict, parse_info, rel, unix

PROFILE = "LocalAuthListManagement"  # reported in SupportedFeatureProfiles

# This profile's keys (9.2), in config.py's table format.
_KEYS = """
LocalAuthListEnabled b true 0 1
LocalAuthListMaxLength ir 100 0 -
SendLocalListMaxLength ir 100 0 -
"""


def install(st):
    cfg = st.config
    cfg.add_keys(_KEYS)
    st.authlist = LocalList(max_length=cfg.get("LocalAuthListMaxLength"),
                            max_send=cfg.get("SendLocalListMaxLength"),
                            persist=st.storage.persist("locallist"))
    st.handlers["SendLocalList"] = _send_local_list
    st.stream_handlers["SendLocalList"] = _send_stream
    st.handlers["GetLocalListVersion"] = _get_version


def _send_local_list(st, p):
    status = st.authlist.send_local_list(p, st.config.get("LocalAuthListEnabled"))
    if status == "Accepted":
        st.log("info", "local list version %d, %d entries" % (st.authlist.version, len(st.authlist)))
    return {"status": status}


def _send_stream(st, r):
    # A big SendLocalList read in place (rpc.STREAM_MIN): the small fields
    # first (keys come in any order), the whole frame checked, then the list
    # entry by entry straight into the compact table: no object tree.
    from evse.wire import schema
    from evse.wire.rpc import CallError

    head = {}
    at = None
    for key in r.keys():
        if key == "localAuthorizationList" and r.kind() == "array":
            at = r.pos  # skipped (and checked) now, walked below
        else:
            head[key] = r.value(max_size=64)
    r.frame_end()
    err = schema.check_call("SendLocalList", head)
    if err is not None:
        raise CallError(err[0], err[1])

    def entries():
        if at is None:
            return
        r.pos = at
        for _ in r.items():
            e = r.value(max_depth=2, max_size=256)
            err = schema.check_item("L", "localAuthorizationList[]", e)
            if err is not None:
                raise CallError(err[0], err[1])
            yield e

    enabled = st.config.get("LocalAuthListEnabled")
    status = st.authlist.update(head["listVersion"], head["updateType"], entries(), enabled)
    if status == "Accepted":
        st.log("info", "local list version %d, %d entries" % (st.authlist.version, len(st.authlist)))
    return {"status": status}


def _get_version(st, p):
    return {"listVersion": st.authlist.get_version(st.config.get("LocalAuthListEnabled"))}


# ---- the list -------------------------------------------------------------
# Local Authorization List (OCPP 1.6 sections 3.5.2, 5.10, 5.15).
#
# Pure data: time is the `now` argument (unix seconds), storage is an
# injected `persist` object with load() -> obj or None and save(obj) (an
# atomic snapshot). Every accepted SendLocalList is saved before it takes
# effect; the list never changes otherwise, so it has no dirty flag.
#
# Decisions where the spec leaves room:
# - idTags are case insensitive (IdToken is a CiString20Type): "abc", "ABC" are
#   one entry, and both in one request count as a duplicate.
# - Duplicate idTags in one request -> Failed (section 5.15: "All idTags in
#   the localAuthorizationList MUST be unique").
# - A Full update entry without idTagInfo -> Failed (AuthorizationData type:
#   idTagInfo is required when updateType is Full).
# - GetLocalListVersion reports -1 when the list is disabled and 0 when it is
#   empty (section 5.10), else the stored listVersion. A Differential update
#   is a VersionMismatch when its listVersion <= that reported version
#   (UpdateStatus type); a Full update replaces regardless.
# - listVersion -1 and 0 have those special meanings, so a Full update with
#   a negative listVersion, or 0 with entries, is Failed; Full 0 with no
#   entries (clear the list) is Accepted.
# - A snapshot that is malformed in any part loads as an empty list with
#   version 0, so the Central System sees 0 and resends a Full list.



def _pack(code, exp, parent):
    # The common entry (a status, no expiry, no parent) is stored as the bare
    # status index: a small int takes no heap, a tuple 32 bytes.
    if exp is None and parent is None:
        return code
    return (code, exp, parent)


def _unpack(e):
    return (e, None, None) if type(e) is int else e


class LocalList:
    """idTag -> (status_index, expiry, parent) or a bare status_index, at
    most `max_length` entries; `max_send` caps one SendLocalList.req
    (SendLocalListMaxLength).
    """

    def __init__(self, max_length=100, max_send=100, persist=None):
        self.max_length = max_length
        self.max_send = max_send
        self.version = 0  # listVersion of the last accepted update
        self._persist = persist
        self._map = {}
        if persist is not None:
            self.load(persist.load())

    def __len__(self):
        return len(self._map)

    def get(self, id_tag, now: int) -> "dict | None":
        """idTagInfo for a listed idTag, or None. Entries past their
        expiryDate are reported with status Expired."""
        key = fold(id_tag)
        e = self._map.get(key) if key is not None else None
        if e is None:
            return None
        code, exp, parent = _unpack(e)
        return info_dict(code, exp, parent, now)

    def get_version(self, enabled=True) -> int:
        """listVersion for GetLocalListVersion.conf (section 5.10)."""
        if not enabled:
            return -1
        return self.version if self._map else 0

    def send_local_list(self, payload, enabled=True) -> str:
        """Apply a SendLocalList.req; returns the SendLocalList.conf status."""
        try:
            ver = payload["listVersion"]
            kind = payload["updateType"]
            items = payload.get("localAuthorizationList") or []
        except (KeyError, TypeError, AttributeError):  # not a request object: Failed
            return "Failed" if enabled else "NotSupported"
        if not isinstance(items, list):
            return "Failed" if enabled else "NotSupported"
        return self.update(ver, kind, items, enabled)

    def update(self, ver, kind, items, enabled=True) -> str:
        """SendLocalList from its fields; `items` is any iterable of entries
        (a streamed list is read one entry at a time, counted against
        max_send as it goes). All or nothing: the new list is built aside,
        saved, then swapped in."""
        if not enabled:
            return "NotSupported"
        full = kind == "Full"
        if type(ver) is not int or not (full or kind == "Differential"):
            return "Failed"
        if not full and ver <= self.get_version():
            return "VersionMismatch"
        if full and ver < 0:
            return "Failed"
        new = self._apply({} if full else dict(self._map), items, full)
        return self._commit(ver, new, full)

    def _commit(self, ver, new, full):
        # Full 0 with entries: 0 means "no list" (section 5.10)
        if new is None or len(new) > self.max_length or (full and ver == 0 and new):
            return "Failed"
        if self._persist is not None:
            try:
                pieces = getattr(self._persist, "save_pieces", None)
                if pieces is not None:  # no rows list, no JSON text of the whole list in RAM
                    pieces(lambda write: _write_snapshot(ver, new, write))
                else:
                    self._persist.save(_snapshot(ver, new))
            except Exception:  # noqa: BLE001 - not stored: keep the old list (atomic update)
                return "Failed"
        self._map = new
        self.version = ver
        return "Accepted"

    def _apply(self, new, items, full):
        """Entries of one request applied to `new`; None if any is invalid."""
        seen = {}
        parents = {}  # one string object per distinct parentIdTag
        n = 0
        for it in items:
            n += 1
            if n > self.max_send or not self._put(new, seen, parents, it, full):
                return None
        return new

    def _put(self, new, seen, parents, it, full):
        """One entry into `new`; False if it is invalid."""
        if not isinstance(it, dict):
            return False
        key = fold(it.get("idTag"))
        if full:
            seen = new  # a Full list starts empty: a tag already in it is a duplicate
        if key is None or key in seen:
            return False
        if not full:
            seen[key] = 1
        info = it.get("idTagInfo")
        if info is None:
            if full:
                return False
            new.pop(key, None)  # Differential without idTagInfo: remove
            return True
        v = parse_info(info)
        if v is None:
            return False
        p = v[2]
        if p is not None:
            p = parents.setdefault(p, p)
        new[key] = _pack(v[0], v[1], p)
        return True

    def dump(self) -> dict:
        """JSON-able snapshot of the list and its version."""
        return _snapshot(self.version, self._map)

    def load(self, obj) -> bool:
        """Restore from dump(). All or nothing: garbage never raises, it
        leaves an empty list with version 0 and returns False."""
        self._map = {}
        self.version = 0
        try:
            ver = obj["version"]
            rows = obj["list"]
            if obj["v"] != 1 or type(ver) is not int or len(rows) > self.max_length:
                return False
            new = {}
            parents = {}  # type: dict[str, str]
            for tag, status, exp, parent in rows:
                key = fold(tag)
                v = parse_info({"status": status, "parentIdTag": parent})
                if key is None or v is None or key in new:
                    return False
                if parent is not None:
                    parent = parents.setdefault(parent, parent)
                new[key] = _pack(v[0], rel(exp), parent)
        except Exception:  # noqa: BLE001 - any corruption: start empty at version 0
            return False
        self._map = new
        self.version = ver
        return True


def _row(k, e):
    code, exp, parent = _unpack(e)
    return [k, STATUSES[code], unix(exp), parent]


def _snapshot(ver, m):
    return {"v": 1, "version": ver, "list": [_row(k, e) for k, e in m.items()]}


def _write_snapshot(ver, m, write):
    """_snapshot(ver, m) as JSON, one row at a time."""
    write('{"v":1,"version":%d,"list":[' % ver)
    sep = ""
    for k, e in m.items():
        write(sep + json.dumps(_row(k, e)))
        sep = ","
    write("]}")
