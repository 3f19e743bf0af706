"""RFC 3339 timestamps <-> unix seconds, in integer arithmetic.

No datetime/time module: MicroPython has none of datetime, and ESP32 counts
its epoch from 2000. Civil dates use the days-from-civil algorithm
(proleptic Gregorian calendar, eras of 400 years = 146097 days).
"""

_DIGITS = "0123456789"


def days_from_civil(y, m, d):
    """Days since 1970-01-01 of the date y-m-d."""
    if m <= 2:
        y -= 1
    era = y // 400
    yoe = y - era * 400  # 0..399
    doy = (153 * (m + 9 if m <= 2 else m - 3) + 2) // 5 + d - 1  # March-based
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


def civil_from_days(z):
    """(year, month, day) of day number `z` (0 = 1970-01-01)."""
    z += 719468
    era = z // 146097
    doe = z - era * 146097  # 0..146096
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (1 if m <= 2 else 0), m, d


def format_utc(t):
    """Unix seconds -> "YYYY-MM-DDTHH:MM:SSZ" (OCPP dateTime, UTC)."""
    t = int(t)
    y, m, d = civil_from_days(t // 86400)
    s = t % 86400
    hh, mi, ss = s // 3600, s // 60 % 60, s % 60
    return f"{y:04d}-{m:02d}-{d:02d}T{hh:02d}:{mi:02d}:{ss:02d}Z"


def _num(text, i, n):
    """Integer of the n ASCII digits at text[i:i+n], or -1."""
    v = 0
    for c in text[i:i + n]:
        k = _DIGITS.find(c)
        if k < 0:
            return -1
        v = v * 10 + k
    return v if len(text) >= i + n else -1


def _month_days(y, m):
    if m == 2:
        return 29 if (y % 4 == 0 and y % 100 != 0) or y % 400 == 0 else 28
    return 30 if m in (4, 6, 9, 11) else 31


def parse(text):
    """RFC 3339 date-time -> unix seconds (fraction dropped), None if malformed.

    Accepts 'T'/'t'/' ' as separator, 'Z'/'z' or +hh:mm/-hh:mm. A missing
    offset is read as UTC (lenient: some CSMSs omit it). Second 60 (leap
    second) is accepted and rolls into the next minute.
    """
    if not isinstance(text, str) or len(text) < 19:
        return None
    if text[4] != "-" or text[7] != "-" or text[10] not in "Tt " \
            or text[13] != ":" or text[16] != ":":
        return None
    y, mo, d = _num(text, 0, 4), _num(text, 5, 2), _num(text, 8, 2)
    hh, mi, ss = _num(text, 11, 2), _num(text, 14, 2), _num(text, 17, 2)
    if y < 1 or not 1 <= mo <= 12 or not 1 <= d <= _month_days(y, mo) \
            or not 0 <= hh <= 23 or not 0 <= mi <= 59 or not 0 <= ss <= 60:
        return None
    i = 19
    n = len(text)
    if i < n and text[i] == ".":
        i += 1
        j = i
        while i < n and _DIGITS.find(text[i]) >= 0:
            i += 1
        if i == j:
            return None
    off = 0
    if i < n:
        c = text[i]
        if c in "Zz" and i + 1 == n:
            pass
        elif c in "+-" and i + 6 == n and text[i + 3] == ":":
            oh, om = _num(text, i + 1, 2), _num(text, i + 4, 2)
            if not 0 <= oh <= 23 or not 0 <= om <= 59:
                return None
            off = oh * 3600 + om * 60
            if c == "-":
                off = -off
        else:
            return None
    return days_from_civil(y, mo, d) * 86400 + hh * 3600 + mi * 60 + ss - off
