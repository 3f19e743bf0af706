"""idTags and idTagInfo (OCPP 1.6 IdToken, IdTagInfo), shared by the
authorization cache, the local list, authorization and reservations: case
folding, parsing and formatting of idTagInfo with compact expiry."""
from evse import timestamp

# AuthorizationStatus values, stored as their index.
STATUSES = ("Accepted", "Blocked", "Expired", "Invalid", "ConcurrentTx")
EXPIRED = 2
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
        code = EXPIRED
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
