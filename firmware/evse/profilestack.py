"""OCPP 1.6 Smart Charging engine (sections 3.13, 5.5, 5.7, 5.16), sans-IO.

Time is passed in (`now`, unix seconds); nothing here reads a clock. The
station core answers SetChargingProfile / ClearChargingProfile /
GetCompositeSchedule with set_profile() / clear() / composite() and drives
the pilot from limit_da(), re-evaluating at the returned next change.

Interpretations where the spec leaves room:
- Stacking (3.13.2): per purpose, the highest stackLevel profile that has a
  period at the instant wins; if it has none there (before its start, after
  its duration, outside validFrom..validTo) the next lower one is used.
- The Tx chain of a connector is: its TxProfiles, then its own
  TxDefaultProfiles, then those of connector 0 (a connector-specific
  TxDefaultProfile takes precedence over connector 0 whatever the stack
  levels). A TxProfile without a period at the instant falls back to the
  TxDefaultProfiles. Connector 0 itself sees only connector-0 TxDefaults.
- Effective limit = min(ChargePointMax chain, Tx chain, hardware maximum).
  Limits are compared per phase: A as is, W / (voltage * phases). Phases
  of a period = min(numberPhases or 3 (7.10 default), station phases); the
  effective phase count is the smallest among the limits that apply.
- Relative profiles start at the transaction start (tx_start). Without one
  they start at the composite schedule start; limit_da() without tx_start
  evaluates them as if starting at that very instant (their first period).
- Absolute without startSchedule: starts at tx_start for a TxProfile set
  during a transaction, otherwise at install time (fixed when installed).
- Recurring: no limit before startSchedule; afterwards the schedule restarts
  every day/week from startSchedule; duration (capped at the recurrence
  period) counts from each restart. duration 0 means "never applies".
"""
from evse import timestamp
from evse.compat import const
from evse.chargingprofile import (
    CP_MAX,
    PURPOSES,
    RELATIVE,
    TX,
    TX_DEFAULT,
    from_record,
    parse,
    to_record,
    write_record,
)

_SCALE = const(6)      # lcm(1, 2, 3): W * 6 / phases stays an integer
_LOOKAHEAD = const(16)  # boundaries limit_da() skips when nothing changes


class ProfileStack:
    """Installed charging profiles and the limits they impose."""

    def __init__(self, *, max_stack_level=3, max_periods=86400, max_profiles=3,
                 allowed_units=("A", "W"), connectors=1, voltage=230, phases=1,
                 hw_max_da=320):
        self.max_stack_level = max_stack_level
        self.max_periods = max_periods
        self.max_profiles = max_profiles
        self.allowed_units = allowed_units
        self.connectors = connectors
        self.voltage = voltage
        self.phases = phases
        self.hw_max_da = hw_max_da
        self._table = []  # Profile objects, at most max_profiles

    @property
    def count(self):
        return len(self._table)

    # --- SetChargingProfile / ClearChargingProfile (5.16, 5.5) ---

    def set_profile(self, connector_id, profile, now, tx_id=None, tx_start=None):
        """Install a csChargingProfiles dict; "Accepted" or "Rejected".

        tx_id / tx_start describe the transaction running on connector_id
        (None if none). On rejection the installed table is unchanged.
        """
        if type(connector_id) is not int or not 0 <= connector_id <= self.connectors:
            return "Rejected"
        purpose = profile.get("chargingProfilePurpose") if isinstance(profile, dict) else None
        # Cheap checks first: no point converting 86400 periods to reject them.
        if purpose == "ChargePointMaxProfile" and connector_id != 0:
            return "Rejected"
        if purpose == "TxProfile":
            # 5.16: a TxProfile needs a transaction on that very connector.
            if connector_id == 0 or tx_id is None:
                return "Rejected"
            want = profile.get("transactionId")
            if want is not None and want != tx_id:
                return "Rejected"
        p = parse(self, connector_id, profile, now, tx_start)
        if p is None:
            return "Rejected"
        if p.purpose == TX:
            p.tx_id = tx_id
        # 5.16: same id, or same stackLevel + purpose (+ connector), replaces.
        keep = [q for q in self._table if q.id != p.id and not (
            q.stack == p.stack and q.purpose == p.purpose and q.connector == p.connector)]
        if len(keep) >= self.max_profiles:
            return "Rejected"
        keep.append(p)
        self._table = keep
        return "Accepted"

    def clear(self, id=None, connector_id=None, purpose=None, stack_level=None):
        """ClearChargingProfile: by id (other criteria then ignored), else
        every profile matching all given criteria. "Accepted" if any went."""
        t = self._table
        if id is not None:
            keep = [q for q in t if q.id != id]
        else:
            code = None
            if purpose is not None:
                code = PURPOSES.index(purpose) if purpose in PURPOSES else -1
            keep = [q for q in t if not (
                (connector_id is None or q.connector == connector_id)
                and (code is None or q.purpose == code)
                and (stack_level is None or q.stack == stack_level))]
        if len(keep) == len(t):
            return "Unknown"
        self._table = keep
        return "Accepted"

    def end_transaction(self, connector_id):
        """Transaction over: its TxProfiles go (3.13.3)."""
        self._table = [q for q in self._table
                       if not (q.purpose == TX and q.connector == connector_id)]

    # --- limits ---

    def limit_da(self, connector_id, now, tx_start=None):
        """(effective limit in deci-amps per phase, unix time of the next
        possible change or None). The change time is never later than the
        first real change; boundaries that change nothing are skipped."""
        if not 0 <= connector_id <= self.connectors:
            raise ValueError("no connector " + str(connector_id))
        cp, tx = self._chains(connector_id)
        key, ph, nxt = self._eval(cp, tx, now, tx_start)
        n = 0
        while nxt is not None and n < _LOOKAHEAD:
            k2, ph2, n2 = self._eval(cp, tx, nxt, tx_start)
            if k2 != key or ph2 != ph:
                break
            nxt = n2
            n += 1
        return key // (_SCALE * self.voltage), nxt

    def composite(self, connector_id, duration, unit, now, tx_start=None, max_periods=None):
        """GetCompositeSchedule.conf payload (5.7) for [now, now + duration).

        max_periods (optional) bounds the payload (each period costs ~70 bytes
        of heap on a 32-bit port): the schedule then ends, with its duration
        shortened, where the first period that did not fit would start.
        """
        if type(connector_id) is not int or not 0 <= connector_id <= self.connectors:
            return {"status": "Rejected"}
        if unit is None:
            unit = "A"
        if unit not in self.allowed_units or type(duration) is not int or duration < 0:
            return {"status": "Rejected"}
        cp, tx = self._chains(connector_id)
        anchor = now if tx_start is None else tx_start
        out = []
        last_key = last_ph = -1
        end = now + duration
        t = now
        while True:
            key, ph, nxt = self._eval(cp, tx, t, anchor)
            if key != last_key or ph != last_ph:
                last_key, last_ph = key, ph
                lim = self._out(key, ph, unit)
                # Merge neighbours equal once rounded to 0.1 of the unit asked for.
                if not out or out[-1]["limit"] != lim or out[-1]["numberPhases"] != ph:
                    if max_periods is not None and len(out) >= max_periods:
                        duration = t - now
                        break
                    out.append({"startPeriod": t - now, "limit": lim, "numberPhases": ph})
            if nxt is None or nxt >= end:
                break
            t = nxt
        start = timestamp.format_utc(now)
        return {"status": "Accepted", "connectorId": connector_id, "scheduleStart": start,
                "chargingSchedule": {"duration": duration, "startSchedule": start,
                                     "chargingRateUnit": unit,
                                     "chargingSchedulePeriod": out}}

    def _out(self, key, ph, unit):
        if unit == "W":
            return key * ph // _SCALE / 10
        return key // (_SCALE * self.voltage) / 10

    def _pick(self, purpose, connector):
        ps = [q for q in self._table if q.purpose == purpose and q.connector == connector]
        ps.sort(key=_stack_of, reverse=True)
        return ps

    def _chains(self, connector_id):
        """(ChargePointMax chain, Tx chain), each in priority order."""
        tx = self._pick(TX_DEFAULT, 0)
        if connector_id:
            tx = self._pick(TX, connector_id) + self._pick(TX_DEFAULT, connector_id) + tx
        return self._pick(CP_MAX, 0), tx

    def _eval(self, cp, tx, t, anchor):
        """(per-phase key, phases, next boundary) at t. key = per-phase
        deci-watts * _SCALE, so A and W limits compare exactly."""
        key = self.hw_max_da * self.voltage * _SCALE
        ph = self.phases
        nxt = None
        for chain in (cp, tx):
            for p in chain:
                i, n = _span(p, t, anchor)
                if n is not None and (nxt is None or n < nxt):
                    nxt = n
                if i >= 0:
                    f = p.phases[i] if p.phases is not None else 0
                    f = f or 3
                    f = min(f, self.phases)
                    v = p.limits[i]
                    k = v * _SCALE // f if p.unit else v * self.voltage * _SCALE
                    key = min(key, k)
                    ph = min(ph, f)
                    break
        return key, ph, nxt

    # --- persistence ---

    def dump(self):
        """Installed profiles as a list of compact JSON strings."""
        return [to_record(p) for p in self._table]

    def write_json(self, write):
        """dump() as JSON through write(str or bytes), a profile at a time in pieces
        (chargingprofile.write_record): load() takes what it wrote."""
        write("[")
        for i, p in enumerate(self._table):
            if i:
                write(",")
            write_record(p, write)
        write("]")

    def load(self, data):
        """Replace the table by dump() or write_json() output; bad entries are skipped."""
        table = []
        try:
            for rec in data:
                p = from_record(rec)
                if p is not None and self._fits(p, table):
                    table.append(p)
        except Exception:  # noqa: BLE001, S110 - not iterable etc.: keep what was read
            pass
        self._table = table

    def _fits(self, p, table):
        if len(table) >= self.max_profiles or not 0 <= p.connector <= self.connectors:
            return False
        if p.stack > self.max_stack_level or len(p.starts) > self.max_periods:
            return False
        if "AW"[p.unit] not in self.allowed_units:
            return False
        if (p.purpose == CP_MAX and p.connector) or (p.purpose == TX and not p.connector):
            return False
        for q in table:
            if q.id == p.id or (q.stack == p.stack and q.purpose == p.purpose
                                and q.connector == p.connector):
                return False
        return True


def _stack_of(p):
    return p.stack


def _find(p, off):
    """Index of the period of p covering offset `off` (>= 0); the cursor in
    p.hint makes sequential sweeps O(1) per step."""
    st = p.starts
    n = len(st)
    h = p.hint
    if h < n and st[h] <= off:
        if h + 1 == n or off < st[h + 1]:
            return h
        if h + 2 == n or off < st[h + 2]:
            p.hint = h + 1
            return h + 1
    lo, hi = 0, n
    while hi - lo > 1:
        mid = (lo + hi) >> 1
        if st[mid] <= off:
            lo = mid
        else:
            hi = mid
    p.hint = lo
    return lo


def _span(p, t, anchor):
    """(period index or -1, next instant > t where that may change or None).
    anchor: start of Relative profiles; None = the instant t itself."""
    vt = p.valid_to
    if vt is not None and t >= vt:
        return -1, None
    if p.valid_from is not None and t < p.valid_from:
        return -1, p.valid_from
    end = p.duration
    if p.kind == RELATIVE:
        if anchor is None:
            return (-1, None) if end == 0 else (0, vt)
        base = anchor
    else:
        base = p.start
    if t < base:
        return -1, base
    rec = p.recur
    if rec:
        base += (t - base) // rec * rec
        if end is None or end > rec:
            end = rec
    if end is not None and t - base >= end:
        return -1, (base + rec if rec else None)
    i = _find(p, t - base)
    st = p.starts
    nxt = st[i + 1] if i + 1 < len(st) else None
    if end is not None and (nxt is None or nxt > end):
        nxt = end
    if nxt is not None:
        nxt += base
        if vt is not None and nxt > vt:
            nxt = vt
    elif vt is not None:
        nxt = vt
    return i, nxt
