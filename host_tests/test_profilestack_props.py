"""Property tests: evse.profilestack against a deliberately naive reference.

The reference model below keeps profiles as plain tuples and evaluates one
second at a time by brute force (linear scans, recurrences found by
stepping). It shares no code with the engine. Schedules are kept short so
that every boundary falls inside a window we can scan second by second.
"""
from hypothesis import given, settings
from hypothesis import strategies as st

from evse.profilestack import ProfileStack, _find
from evse.timestamp import format_utc

BASE = 1795611600  # 2026-11-25T13:00:00Z
DAY, WEEK = 86400, 604800
V = 230
HW_DA = 320
PURPOSES = ("ChargePointMaxProfile", "TxDefaultProfile", "TxProfile")
A_LIMITS = (0, 5.9, 6, 10, 16, 16.1, 32, 40)
W_LIMITS = (0, 1000, 2300, 3680.5, 7360, 11040, 20000)
SETTINGS = {"deadline": None, "derandomize": True}


# --- reference model ---

class Ref:
    """Naive model: list of dicts; rules of 5.16 applied literally."""

    def __init__(self, phases, max_profiles=3, max_stack=3):
        self.phases, self.max_profiles, self.max_stack = phases, max_profiles, max_stack
        self.profiles = []

    def set(self, conn, d, now, tx_id, tx_start):
        purpose = d["chargingProfilePurpose"]
        if d["stackLevel"] > self.max_stack or conn > 2:
            return "Rejected"
        if purpose == "ChargePointMaxProfile" and conn != 0:
            return "Rejected"
        if purpose == "TxProfile" and (conn == 0 or tx_id is None):
            return "Rejected"
        sched = d["chargingSchedule"]
        start = sched.get("startSchedule")
        if d["chargingProfileKind"] == "Absolute" and start is None:
            start = tx_start if purpose == "TxProfile" and tx_start is not None else now
        p = {"id": d["chargingProfileId"], "conn": conn, "purpose": purpose,
             "stack": d["stackLevel"], "kind": d["chargingProfileKind"],
             "recur": {"Daily": DAY, "Weekly": WEEK}.get(d.get("recurrencyKind")),
             "start": start, "duration": sched.get("duration"),
             "vfrom": d.get("validFrom"), "vto": d.get("validTo"),
             "unit": sched["chargingRateUnit"],
             "periods": [(q["startPeriod"], round(q["limit"] * 10), q.get("numberPhases"))
                         for q in sched["chargingSchedulePeriod"]]}
        rest = [q for q in self.profiles if q["id"] != p["id"] and not (
            q["stack"] == p["stack"] and q["purpose"] == purpose and q["conn"] == conn)]
        if len(rest) >= self.max_profiles:
            return "Rejected"
        self.profiles = rest + [p]
        return "Accepted"

    def period_at(self, p, t, anchor):
        """(limit tenths, phases) of p at second t, or None."""
        if p["vfrom"] is not None and t < p["vfrom"]:
            return None
        if p["vto"] is not None and t >= p["vto"]:
            return None
        dur = p["duration"]
        if p["kind"] == "Relative":
            base = t if anchor is None else anchor
        elif p["kind"] == "Absolute":
            base = p["start"]
        else:
            base = p["start"]
            if t < base:
                return None
            while base + p["recur"] <= t:  # step through the recurrences
                base += p["recur"]
            dur = p["recur"] if dur is None else min(dur, p["recur"])
        off = t - base
        if off < 0 or (dur is not None and off >= dur):
            return None
        found = None
        for s, lim, ph in p["periods"]:
            if s <= off:
                found = (lim, ph)
        return found

    def at(self, conn, t, anchor):
        """(per-phase key, phases) exactly as documented in evse/profilestack.py."""
        def chain(purpose, c):
            return sorted([p for p in self.profiles if p["purpose"] == purpose
                           and p["conn"] == c], key=lambda p: -p["stack"])
        tx = chain("TxDefaultProfile", 0)
        if conn:
            tx = chain("TxProfile", conn) + chain("TxDefaultProfile", conn) + tx
        key, phases = HW_DA * V * 6, self.phases
        for ch in (chain("ChargePointMaxProfile", 0), tx):
            for p in ch:
                hit = self.period_at(p, t, anchor)
                if hit is not None:
                    lim, ph = hit
                    ph = min(ph or 3, self.phases)
                    k = lim * 6 // ph if p["unit"] == "W" else lim * V * 6
                    key, phases = min(key, k), min(phases, ph)
                    break
        return key, phases

    def da(self, conn, t, anchor):
        return self.at(conn, t, anchor)[0] // (6 * V)


# --- generators ---

@st.composite
def profile(draw, pid):
    purpose = draw(st.sampled_from(PURPOSES))
    conn = 0 if purpose == "ChargePointMaxProfile" else draw(st.sampled_from((0, 1, 1, 2)))
    kind = draw(st.sampled_from(("Absolute", "Relative", "Recurring")))
    unit = draw(st.sampled_from("AW"))
    n = draw(st.integers(1, 4))
    starts = [0]
    for _ in range(n - 1):
        starts.append(starts[-1] + draw(st.integers(1, 200)))
    limits = A_LIMITS if unit == "A" else W_LIMITS
    sched = {"chargingRateUnit": unit, "chargingSchedulePeriod": []}
    for s in starts:
        per = {"startPeriod": s, "limit": draw(st.sampled_from(limits))}
        ph = draw(st.sampled_from((None, None, 1, 2, 3)))
        if ph is not None:
            per["numberPhases"] = ph
        sched["chargingSchedulePeriod"].append(per)
    d = {"chargingProfileId": pid, "stackLevel": draw(st.integers(0, 3)),
         "chargingProfilePurpose": purpose, "chargingProfileKind": kind,
         "chargingSchedule": sched}
    if kind == "Recurring":
        d["recurrencyKind"] = draw(st.sampled_from(("Daily", "Weekly")))
        period = DAY if d["recurrencyKind"] == "Daily" else WEEK
        # Boundaries near BASE: a restart inside the scanned window, or the first start.
        sched["startSchedule"] = BASE - draw(st.integers(0, 3)) * period + draw(
            st.integers(-300, 900))
    elif kind == "Absolute" and draw(st.booleans()):
        sched["startSchedule"] = BASE + draw(st.integers(-300, 600))
    if draw(st.booleans()):
        sched["duration"] = draw(st.integers(0, 900))
    if draw(st.booleans()):
        d["validFrom"] = BASE + draw(st.integers(-300, 900))
    if draw(st.booleans()):
        d["validTo"] = BASE + draw(st.integers(-100, 1200))
    return conn, d


def wire(d):
    """The OCPP form of a generated profile (times as RFC 3339 text)."""
    out = dict(d)
    out["chargingSchedule"] = dict(d["chargingSchedule"])
    for k in ("validFrom", "validTo"):
        if k in out:
            out[k] = format_utc(out[k])
    if "startSchedule" in out["chargingSchedule"]:
        out["chargingSchedule"]["startSchedule"] = format_utc(
            out["chargingSchedule"]["startSchedule"])
    return out


@st.composite
def scenario(draw):
    phases = draw(st.sampled_from((1, 1, 3)))
    tx_start = draw(st.one_of(st.none(), st.integers(BASE - 600, BASE + 300)))
    now = BASE + draw(st.integers(-100, 300))
    ids = draw(st.lists(st.integers(1, 8), min_size=1, max_size=6))
    profiles = [draw(profile(pid)) for pid in ids]
    return phases, tx_start, now, profiles


def build(phases, tx_start, now, profiles):
    sc = ProfileStack(connectors=2, phases=phases)
    ref = Ref(phases)
    tx_id = None if tx_start is None else 17
    for conn, d in profiles:
        got = sc.set_profile(conn, wire(d), now, tx_id=tx_id if conn == 1 else None,
                             tx_start=tx_start if conn == 1 else None)
        want = ref.set(conn, d, now, tx_id if conn == 1 else None,
                       tx_start if conn == 1 else None)
        assert got == want, (conn, d)
    assert sc.count == len(ref.profiles)
    return sc, ref


# --- properties ---

HORIZON = 1500


@settings(max_examples=1200, **SETTINGS)
@given(scenario(), st.sampled_from((0, 1)), st.lists(st.integers(-200, 1300), min_size=1,
                                                     max_size=6))
def test_limit_and_next_change_match_reference(sc_args, conn, offsets):
    phases, tx_start, now, profiles = sc_args
    sc, ref = build(phases, tx_start, now, profiles)
    for off in offsets:
        t = now + off
        da, nxt = sc.limit_da(conn, t, tx_start)
        want = ref.da(conn, t, tx_start)
        assert da == want, (t - BASE, nxt)
        assert nxt is None or nxt > t
        # Nothing changes before nxt (within the scanned horizon).
        end = t + HORIZON if nxt is None else min(nxt, t + HORIZON)
        for s in range(t + 1, end):
            assert ref.da(conn, s, tx_start) == want, ("changed at", s - t, "nxt", nxt)


@settings(max_examples=800, **SETTINGS)
@given(scenario(), st.sampled_from((0, 1)), st.integers(0, 700), st.sampled_from("AW"))
def test_composite_reproduces_reference_every_second(sc_args, conn, duration, unit):
    phases, tx_start, now, profiles = sc_args
    sc, ref = build(phases, tx_start, now, profiles)
    res = sc.composite(conn, duration, unit, now, tx_start)
    assert res["status"] == "Accepted"
    per = res["chargingSchedule"]["chargingSchedulePeriod"]
    assert per[0]["startPeriod"] == 0
    for a, b in zip(per, per[1:]):
        assert a["startPeriod"] < b["startPeriod"] < max(duration, 1)
        assert (a["limit"], a["numberPhases"]) != (b["limit"], b["numberPhases"])  # merged
    anchor = now if tx_start is None else tx_start
    j = 0
    for s in range(max(duration, 1)):
        while j + 1 < len(per) and per[j + 1]["startPeriod"] <= s:
            j += 1
        key, ph = ref.at(conn, now + s, anchor)
        want = key // (6 * V) if unit == "A" else key * ph // 6
        assert (per[j]["limit"], per[j]["numberPhases"]) == (want / 10, ph), s
    # The first period is what limit_da() says now (same anchor when in a transaction).
    if tx_start is not None and unit == "A":
        assert per[0]["limit"] == sc.limit_da(conn, now, tx_start)[0] / 10


@settings(max_examples=600, **SETTINGS)
@given(scenario(), st.lists(st.tuples(st.sampled_from(("id", "crit", "end")),
                                      st.integers(1, 8), st.sampled_from((None, 0, 1, 2)),
                                      st.sampled_from((None,) + PURPOSES),
                                      st.sampled_from((None, 0, 1, 2, 3))), max_size=4))
def test_clear_end_transaction_and_persistence_match_model(sc_args, ops):
    phases, tx_start, now, profiles = sc_args
    sc, ref = build(phases, tx_start, now, profiles)
    for op, pid, conn, purpose, stack in ops:
        before = len(ref.profiles)
        if op == "id":
            got = sc.clear(id=pid, connector_id=conn, purpose=purpose, stack_level=stack)
            ref.profiles = [p for p in ref.profiles if p["id"] != pid]
        elif op == "crit":
            got = sc.clear(connector_id=conn, purpose=purpose, stack_level=stack)
            ref.profiles = [p for p in ref.profiles if not (
                (conn is None or p["conn"] == conn) and (purpose is None or p["purpose"] == purpose)
                and (stack is None or p["stack"] == stack))]
        else:
            got = None
            sc.end_transaction(1)
            ref.profiles = [p for p in ref.profiles
                            if not (p["purpose"] == "TxProfile" and p["conn"] == 1)]
        if got is not None:
            assert got == ("Accepted" if len(ref.profiles) < before else "Unknown")
        assert sc.count == len(ref.profiles)
    again = ProfileStack(connectors=2, phases=phases)
    again.load(sc.dump())
    assert again.count == sc.count
    for t in range(now - 100, now + 1300, 37):
        for conn in (0, 1):
            assert again.limit_da(conn, t, tx_start)[0] == ref.da(conn, t, tx_start)


class _Arr:
    def __init__(self, starts):
        self.starts, self.hint = starts, 0


@settings(max_examples=500, **SETTINGS)
@given(st.lists(st.integers(1, 5), min_size=0, max_size=12),
       st.lists(st.integers(0, 70), min_size=1, max_size=30))
def test_find_with_cursor_matches_linear_scan(gaps, offs):
    """The cursor cache must give the same period as a scan, in any query order."""
    starts = [0]
    for g in gaps:
        starts.append(starts[-1] + g)
    p = _Arr(starts)
    for off in offs:
        assert _find(p, off) == max(i for i, s in enumerate(starts) if s <= off)
