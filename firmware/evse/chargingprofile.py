"""OCPP 1.6 charging profiles: validation, compact storage, persistence.

A csChargingProfiles dict (section 7.8) is converted once into a Profile
whose schedule lives in two array('i') (startPeriod in s, limit in tenths
of the unit: deci-amps or deci-watts) plus an optional bytearray of
numberPhases (0 = not given). Nothing of the JSON tree is kept, so the
caller can drop it right after set_profile(). profilestack.py does the stacking.
"""
from array import array

from evse import timestamp
from evse.compat import const

CP_MAX = const(0)
TX_DEFAULT = const(1)
TX = const(2)
PURPOSES = ("ChargePointMaxProfile", "TxDefaultProfile", "TxProfile")

ABSOLUTE = const(0)
RELATIVE = const(1)
RECURRING = const(2)
KINDS = ("Absolute", "Relative", "Recurring")

DAY = const(86400)
WEEK = const(604800)
UNITS = ("A", "W")

_NUMBER = (int, float)  # a literal tuple in the loop would be allocated per period
_LIMIT_MAX = const(2000000000)  # tenths; keeps limit * 10 inside array('i')
_REC_VERSION = const(1)


class Profile:
    """One installed profile. Times are unix seconds or None (absent)."""

    def __init__(self, pid, connector, purpose, stack, kind, recur, unit, start,
                 valid_from, valid_to, duration, tx_id, starts, limits, phases):
        self.id = pid
        self.connector = connector
        self.purpose = purpose      # CP_MAX / TX_DEFAULT / TX
        self.stack = stack
        self.kind = kind            # ABSOLUTE / RELATIVE / RECURRING
        self.recur = recur          # 0, DAY or WEEK (seconds)
        self.unit = unit            # 0 = A, 1 = W
        self.start = start          # Absolute/Recurring anchor; None for Relative
        self.valid_from = valid_from
        self.valid_to = valid_to
        self.duration = duration
        self.tx_id = tx_id
        self.starts = starts        # array('i'), starts[0] == 0, increasing
        self.limits = limits        # array('i'), tenths of A or W
        self.phases = phases        # bytearray (0 = unspecified) or None
        self.hint = 0               # cursor cache for sequential lookups


def _int(v, lo, hi):
    """v if it is an int in lo..hi (bool excluded), else raise ValueError."""
    if type(v) is not int or v < lo or v > hi:
        raise ValueError
    return v


def _time(v):
    if v is None:
        return None
    t = timestamp.parse(v)
    if t is None:
        raise ValueError
    return t


def _tenths(v):
    """JSON number -> int tenths, rounded; negative raises ValueError."""
    if type(v) is bool or not isinstance(v, _NUMBER) or v < 0:
        raise ValueError
    if v >= _LIMIT_MAX // 10:
        return _LIMIT_MAX
    return round(v * 10)  # one float temporary: v is a multiple of 0.1 (7.10)


def parse(sc, connector_id, d, now, tx_start=None):
    """Profile from a schema-valid csChargingProfiles dict, or None if it
    breaks a rule of section 5.16 / 7.8 or our configured limits (`sc` is
    the ProfileStack holding them). TxProfile transaction rules are
    checked by the caller. Absolute without startSchedule starts at the
    transaction start (TxProfile with a running transaction) or `now`.
    """
    try:
        return _parse(sc, connector_id, d, now, tx_start)
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError):
        return None


def _parse(sc, connector_id, d, now, tx_start):
    purpose = PURPOSES.index(d["chargingProfilePurpose"])
    kind = KINDS.index(d["chargingProfileKind"])
    stack = _int(d["stackLevel"], 0, sc.max_stack_level)
    sched = d["chargingSchedule"]
    unit_name = sched["chargingRateUnit"]
    if unit_name not in sc.allowed_units:
        raise ValueError
    duration = sched.get("duration")
    if duration is not None:
        _int(duration, 0, 0x7FFFFFFF)
    start = _time(sched.get("startSchedule"))
    recur = 0
    if kind == RECURRING:
        # 7.8: recurrencyKind and startSchedule anchor the recurrence.
        recur = (DAY, WEEK)[("Daily", "Weekly").index(d["recurrencyKind"])]
        if start is None:
            raise ValueError
    elif kind == RELATIVE:
        start = None  # relative to the transaction start, never to a date
    elif start is None:
        start = tx_start if purpose == TX and tx_start is not None else now
    tx_id = d.get("transactionId")
    if tx_id is not None:
        _int(tx_id, -0x80000000, 0x7FFFFFFF)
    starts, limits, phases = _periods(sched["chargingSchedulePeriod"], sc.max_periods)
    return Profile(_int(d["chargingProfileId"], -0x80000000, 0x7FFFFFFF), connector_id,
                   purpose, stack, kind, recur, UNITS.index(unit_name), start,
                   _time(d.get("validFrom")), _time(d.get("validTo")), duration,
                   tx_id, starts, limits, phases)


def _periods(periods, max_periods):
    n = len(periods)
    if n == 0 or n > max_periods:
        raise ValueError
    # Preallocated (array(range) sizes itself once; append would regrow it).
    starts = array("i", range(n))
    limits = array("i", range(n))
    phases = None
    prev = -1
    i = 0
    # Iterated, never indexed: a streamed frame yields one period at a time
    # (smartcharge.py), checked as it is read.
    for per in periods:
        if i == n:
            raise ValueError
        s = _int(per["startPeriod"], 0, 0x7FFFFFFF)
        if (i == 0 and s != 0) or s <= prev:  # 7.10: first 0, then increasing
            raise ValueError
        prev = s
        starts[i] = s
        limits[i] = _tenths(per["limit"])
        np = per.get("numberPhases")
        if np is not None:
            if phases is None:
                phases = bytearray(n)
            phases[i] = _int(np, 1, 3)
        i += 1
    if i != n:
        raise ValueError
    return starts, limits, phases


def to_record(p):
    """Profile -> compact JSON text (numbers only) for a snapshot."""
    import json
    return json.dumps(_fields(p))


def write_record(p, write):
    """The fields of to_record() as a JSON array (from_record takes the
    decoded list as well), written through write(str or bytes) a piece at a time:
    neither the periods as a list nor the profile's text exist at once."""
    import json

    write(json.dumps(_fields(p, False))[:-1])  # the scalars, "]" left off
    for arr in (p.starts, p.limits, p.phases):
        if arr is None:
            write(", null")
            continue
        write(", [")
        for i in range(0, len(arr), 64):  # one short text per 64 periods: little garbage
            if i:
                write(", ")
            text = json.dumps(list(arr[i:i + 64])).encode()  # MicroPython: no copy
            write(memoryview(text)[1:-1])  # the numbers without their brackets
        write("]")
    write("]")


def _fields(p, periods=True):
    if not periods:
        return [_REC_VERSION, p.id, p.connector, p.purpose, p.stack, p.kind, p.recur, p.unit,
                p.start, p.valid_from, p.valid_to, p.duration, p.tx_id]
    return [_REC_VERSION, p.id, p.connector, p.purpose, p.stack, p.kind, p.recur, p.unit,
            p.start, p.valid_from, p.valid_to, p.duration, p.tx_id,
            list(p.starts), list(p.limits), None if p.phases is None else list(p.phases)]


def from_record(rec):
    """Profile from to_record() output (str, bytes or the decoded list), or
    None if it is not a well-formed record. Never raises."""
    try:
        if isinstance(rec, (str, bytes)):
            import json
            rec = json.loads(rec)
        return _from_fields(rec)
    except Exception:  # noqa: BLE001 - garbage in a snapshot must not stop the boot
        return None


def _opt_int(v):
    if v is not None:
        _int(v, -0x80000000, 0x7FFFFFFF)
    return v


def _from_fields(r):
    if type(r) is not list or len(r) != 16 or r[0] != _REC_VERSION:
        return None
    purpose, kind, recur = _int(r[3], 0, 2), _int(r[5], 0, 2), r[6]
    if recur not in ((DAY, WEEK) if kind == RECURRING else (0,)):
        return None
    start = _opt_int(r[8])
    if (start is None) != (kind == RELATIVE):
        return None
    src_s, src_l, src_p = r[13], r[14], r[15]
    n = len(src_s)
    if n == 0 or len(src_l) != n or (src_p is not None and len(src_p) != n):
        return None
    starts, limits = array("i", src_s), array("i", src_l)
    if starts[0] != 0:
        return None
    for i in range(n):
        if (i and starts[i] <= starts[i - 1]) or limits[i] < 0:
            return None
    phases = None
    if src_p is not None:
        phases = bytearray(src_p)
        for v in phases:
            if v > 3:
                return None
    duration = _opt_int(r[11])
    if duration is not None and duration < 0:
        return None
    return Profile(_int(r[1], -0x80000000, 0x7FFFFFFF), _int(r[2], 0, 255), purpose, _int(r[4], 0, 255), kind,
                   recur, _int(r[7], 0, 1), start, _opt_int(r[9]), _opt_int(r[10]), duration,
                   _opt_int(r[12]), starts, limits, phases)
