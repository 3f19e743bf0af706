"""evse.timestamp against CPython's datetime (the reference for RFC 3339)."""
import calendar
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from evse import timestamp
from hypothesis import given, settings
from hypothesis import strategies as st

MIN_T = -62135596800  # 0001-01-01T00:00:00Z
MAX_T = 253402300799  # 9999-12-31T23:59:59Z


@settings(max_examples=1000, deadline=None, derandomize=True)
@given(st.integers(MIN_T, MAX_T))
def test_format_utc_matches_datetime(t):
    d = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=t)
    ref = f"{d.year:04d}-{d.month:02d}-{d.day:02d}T{d.hour:02d}:{d.minute:02d}:{d.second:02d}Z"
    assert timestamp.format_utc(t) == ref
    assert timestamp.parse(timestamp.format_utc(t)) == t


@settings(max_examples=1000, deadline=None, derandomize=True)
@given(st.integers(date(1, 1, 1).toordinal(), date(9999, 12, 31).toordinal()))
def test_civil_day_numbers_match_date_ordinals(ordinal):
    d = date.fromordinal(ordinal)
    z = ordinal - date(1970, 1, 1).toordinal()
    assert timestamp.days_from_civil(d.year, d.month, d.day) == z
    assert timestamp.civil_from_days(z) == (d.year, d.month, d.day)


@st.composite
def rfc3339(draw):
    """(text, expected unix seconds) built from an aware datetime."""
    off_min = draw(st.integers(-23 * 60 - 59, 23 * 60 + 59))
    tz = timezone(timedelta(minutes=off_min))
    dt = draw(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)))
    dt = dt.replace(tzinfo=tz)
    sep = draw(st.sampled_from("Tt "))
    frac = draw(st.text("0123456789", min_size=1, max_size=9)) if draw(st.booleans()) else ""
    text = f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}{sep}"
    text += f"{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}" + ("." + frac if frac else "")
    if off_min == 0 and draw(st.booleans()):
        text += draw(st.sampled_from("Zz"))
    else:
        sign = "-" if off_min < 0 else "+"
        text += f"{sign}{abs(off_min) // 60:02d}:{abs(off_min) % 60:02d}"
    utc = dt.replace(microsecond=0).astimezone(UTC)
    return text, calendar.timegm(utc.timetuple())


@settings(max_examples=1000, deadline=None, derandomize=True)
@given(rfc3339())
def test_parse_matches_datetime(case):
    text, expected = case
    assert timestamp.parse(text) == expected


@settings(max_examples=1000, deadline=None, derandomize=True)
@given(st.text(max_size=40))
def test_parse_never_raises(text):
    r = timestamp.parse(text)
    assert r is None or isinstance(r, int)


@st.composite
def mutated(draw):
    """A valid timestamp with one character replaced, inserted or deleted."""
    text = draw(rfc3339())[0]
    i = draw(st.integers(0, len(text) - 1))
    c = draw(st.sampled_from("0123456789-:TZ+.tz "))
    op = draw(st.integers(0, 2))
    return text[:i] + (c if op < 2 else "") + text[i + (op != 1):]


@settings(max_examples=1000, deadline=None, derandomize=True)
@given(mutated())
def test_parse_accepts_only_what_datetime_accepts(text):
    """Anything we accept is a real date-time that datetime reads the same."""
    r = timestamp.parse(text)
    if r is None:
        return
    norm = text[:10] + "T" + text[11:]
    if norm[-1] in "Zz":
        norm = norm[:-1] + "+00:00"
    elif len(norm) == 19 or norm[-6] not in "+-":
        norm += "+00:00"  # no offset: UTC
    head, _, tail = norm.partition(".")
    if tail:  # fromisoformat takes at most 6 fraction digits
        k = 0
        while tail[k].isdigit():
            k += 1
        norm = head + "." + (tail[:k] + "000000")[:6] + tail[k:]
    if norm[17:19] == "60":
        return  # leap second: datetime refuses it, we roll over
    dt = datetime.fromisoformat(norm)
    assert r == (dt - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(seconds=1)


@pytest.mark.parametrize("text", [
    "", "2026-11-25", "2026-11-25T13:00", "2026-11-25T13:00:00+0100",
    "2026-13-25T13:00:00Z", "2026-02-29T13:00:00Z", "2026-11-31T13:00:00Z",
    "2026-11-25T24:00:00Z", "2026-11-25T13:60:00Z", "2026-11-25T13:00:61Z",
    "2026-11-25T13:00:00.Z", "2026-11-25T13:00:00ZZ", "2026-11-25T13:00:00+24:00",
    "2026-11-25T13:00:00+01:60", "2026-11-25X13:00:00Z", "2026/11/25T13:00:00Z",
    "2026-11-25T13:00:00 Z", "2026-1-25T13:00:00Z", "２０２６-11-25T13:00:00Z",
    "2026-11-25T13:00:00+01:00x", None, 1795611600,
])
def test_malformed_is_none(text):
    assert timestamp.parse(text) is None


def test_known_values():
    assert timestamp.parse("2026-11-25T13:00:00Z") == 1795611600
    assert timestamp.format_utc(1795611600) == "2026-11-25T13:00:00Z"
    assert timestamp.parse("2026-11-25T14:00:00.999+01:00") == 1795611600
    assert timestamp.parse("2026-11-25t13:00:00z") == 1795611600
    assert timestamp.parse("2026-11-25T13:00:00") == 1795611600  # lenient: UTC
    assert timestamp.parse("2024-02-29T00:00:00Z") == 1709164800
    assert timestamp.parse("2016-12-31T23:59:60Z") == 1483228800  # leap second rolls over
    assert timestamp.format_utc(0) == "1970-01-01T00:00:00Z"
    assert timestamp.format_utc(-1) == "1969-12-31T23:59:59Z"
