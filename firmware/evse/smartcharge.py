"""Smart Charging feature: wires the profile engine (profilestack.py) into the
station (OCPP 1.6 sections 3.13, 5.5, 5.7, 5.16).

Profiles persist in a snapshot. The effective limit feeds the pilot
through `st.limit_da`; a station timer fires exactly at the next instant
the limit may change (period, validity or recurrence boundary), and every
profile change re-applies the limit at once. No polling.
"""
from evse import profilestack, transaction
from evse.chargingprofile import parse

PROFILE = "SmartCharging"
NEEDS = ("transaction",)
# This profile's keys (9.4; ORS-14, 15, 19), in config.py's table format.
_KEYS = """
ChargeProfileMaxStackLevel ir 3 0 -
ChargingScheduleAllowedChargingRateUnit cr Current,Power - 0
ChargingScheduleMaxPeriods ir 86400 0 -
MaxChargingProfilesInstalled ir 3 0 -
"""
_UNITS = {"Current": "A", "Power": "W"}


class SmartState:
    """This feature's state on the station (`st.smart`)."""

    def __init__(self, engine, store):
        self.engine = engine  # profilestack.ProfileStack: installed profiles
        self.store = store
        self.pending = {}  # cid -> TxProfile from RemoteStartTransaction


def install(st):
    cfg = st.config
    cfg.add_keys(_KEYS)
    units = tuple(_UNITS[u] for u in cfg.get_list("ChargingScheduleAllowedChargingRateUnit") if u in _UNITS)
    b = st.board
    sc = profilestack.ProfileStack(
        max_stack_level=cfg.get("ChargeProfileMaxStackLevel"), max_periods=cfg.get("ChargingScheduleMaxPeriods"),
        max_profiles=cfg.get("MaxChargingProfilesInstalled"), allowed_units=units, connectors=st.ncon,
        voltage=b.voltage, phases=b.phases, hw_max_da=b.max_current_da)
    st.smart = SmartState(sc, st.storage.persist("profiles"))
    sc.load(st.smart.store.load() or [])
    st.handlers["SetChargingProfile"] = _set
    st.stream_handlers["SetChargingProfile"] = _set_stream
    st.handlers["ClearChargingProfile"] = _clear
    st.handlers["GetCompositeSchedule"] = _composite
    st.limit_da = _limit
    st.remote_profile = _remote_profile
    st.on_tx.append(_tx_changed)
    st.on_timer["sc"] = _boundary
    _arm(st)


def _tx_of(st, cid):
    tx = st.connectors[cid].tx if cid else None
    if tx is None:
        return None, None
    # Until StartTransaction.conf the CSMS id is unknown: a local stand-in.
    return (tx.tx_id if tx.tx_id is not None else -tx.local), tx.start


def _save(st):
    store, engine = st.smart.store, st.smart.engine
    pieces = getattr(store, "save_pieces", None)
    if pieces is not None:  # 3 profiles of 192 periods are 6 KB of JSON: never one str
        pieces(engine.write_json)
    else:
        store.save(engine.dump())


def _reapply(st):
    for c in st.connectors[1:]:
        transaction.apply(st, c)
    _arm(st)


def _arm(st):
    """Time the next instant any connector's limit may change."""
    now = st.clock.unix()
    first = None
    for c in st.connectors[1:]:
        nxt = st.smart.engine.limit_da(c.id, now, _tx_of(st, c.id)[1])[1]
        if nxt is not None and (first is None or nxt < first):
            first = nxt
    if first is None:
        st.timers.cancel("sc")
    else:
        st.timers.start("sc", st.now, 1000 * max(0, first - now))


def _set(st, p):
    cid = p["connectorId"]
    if cid > st.ncon:
        return {"status": "Rejected"}
    tx_id, tx_start = _tx_of(st, cid)
    status = st.smart.engine.set_profile(cid, p["csChargingProfiles"], st.clock.unix(), tx_id, tx_start)
    if status == "Accepted":
        _save(st)
        _reapply(st)
    return {"status": status}


class _Periods:
    # chargingSchedulePeriod of a frame read in place (rpc.STREAM_MIN): its
    # length from a skipping pass, then one small dict per period, each
    # checked against the schema, straight into the profile's arrays.
    def __init__(self, r, check):
        self.r = r
        self.check = check  # fn(period) -> None, raises CallError
        self.at = r.pos
        n = 0
        for _ in r.items():
            n += 1  # skipped
        self.n = n

    def __len__(self):
        return self.n

    def __iter__(self):
        r = self.r
        r.pos = self.at
        for _ in r.items():
            per = r.value(max_depth=1, max_size=128)
            self.check(per)
            yield per


def _set_stream(st, r):
    # The small fields first (keys come in any order), the whole frame
    # checked, then the periods one at a time into the profile's arrays.
    from evse.wire import schema
    from evse.wire.rpc import CallError

    p = {}
    at = None
    for key in r.keys():
        if key == "csChargingProfiles" and r.kind() == "object":
            at = r.pos
        else:
            p[key] = r.value(max_size=64)
    r.frame_end()
    box = [{"startPeriod": 0, "limit": 0}]
    sched = None
    pat = None
    if at is not None:
        r.pos = at
        prof = p["csChargingProfiles"] = {}
        for key in r.keys():
            if key != "chargingSchedule" or r.kind() != "object":
                prof[key] = r.value(max_size=64)
                continue
            sched = prof[key] = {}
            for k2 in r.keys():
                if k2 == "chargingSchedulePeriod" and r.kind() == "array":
                    pat = r.pos  # skipped now, read below
                    sched[k2] = box
                else:
                    sched[k2] = r.value(max_size=64)

    # Everything but the periods, with a valid stand-in for them.
    err = schema.check_call("SetChargingProfile", p)
    if err is None and sched is None:
        err = ("FormationViolation", "no chargingSchedule")
    if err is not None:
        raise CallError(err[0], err[1])
    if p["connectorId"] < 0:
        raise CallError("PropertyConstraintViolation", "connectorId: negative")
    if pat is not None:
        r.pos = pat
        sched["chargingSchedulePeriod"] = _Periods(r, _check_period)
    return _set(st, p)


def _check_period(per):
    from evse.wire import schema
    from evse.wire.rpc import CallError

    err = schema.check_item("Q", "csChargingProfiles.chargingSchedule.chargingSchedulePeriod[]", per)
    if err is not None:
        raise CallError(err[0], err[1])


def _clear(st, p):
    status = st.smart.engine.clear(p.get("id"), p.get("connectorId"), p.get("chargingProfilePurpose"),
                            p.get("stackLevel"))
    if status == "Accepted":
        _save(st)
        _reapply(st)
    return {"status": status}


def _composite(st, p):
    cid = p["connectorId"]
    if cid > st.ncon:
        return {"status": "Rejected"}
    unit = p.get("chargingRateUnit")
    return st.smart.engine.composite(cid, p["duration"], _UNITS.get(unit, unit), st.clock.unix(), _tx_of(st, cid)[1])


def _limit(st, cid):
    """The effective limit in deci-amps now (pure: _arm times the next change)."""
    da = st.smart.engine.limit_da(cid, st.clock.unix(), _tx_of(st, cid)[1])[0]
    return min(da, st.board.max_current_da)


def _boundary(st, now):
    _reapply(st)


def _remote_profile(st, cid, prof):
    """RemoteStartTransaction's TxProfile: checked now, installed when the
    transaction it starts begins (5.11)."""
    if parse(st.smart.engine, cid, prof, st.clock.unix(), st.clock.unix()) is None:
        return False
    st.smart.pending[cid] = prof
    return True


def _tx_changed(st, c, started):
    if started:
        prof = st.smart.pending.pop(c.id, None)
        if prof is not None:
            tx_id, tx_start = _tx_of(st, c.id)
            if st.smart.engine.set_profile(c.id, prof, st.clock.unix(), tx_id, tx_start) != "Accepted":
                st.log("warn", "RemoteStart TxProfile not installed")
            _save(st)
    else:
        st.smart.pending.pop(c.id, None)
        st.smart.engine.end_transaction(c.id)  # 3.13.3: TxProfiles end with their transaction
        _save(st)
    _arm(st)
