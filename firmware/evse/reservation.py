"""Reservations: ReserveNow, CancelReservation (OCPP 1.6 3.13, 5.1, 5.13)."""
# Including whole-station reservations on connector 0 (R-1,
# `ReserveConnectorZeroSupported`).
#
# A reservation is kept as the dict the CSMS sent (reservationId,
# connectorId, idTag, parentIdTag, expiryDate): it is persisted as is and
# shown by the simulator's `status` through `Connector.reservation`. There
# are at most as many as connectors: each needs a free connector when made.
#
# The seam `st.reservation_for(st, c, id_tag, parent)` tells the transaction
# feature whether connector `c` may be used: None (no reservation applies),
# a reservationId (the tag or its group holds it: the StartTransaction
# carries it and the start consumes it) or False (reserved for someone else).
#
# All derived facts live in `_update`: expiry and termination (5.13: a
# reservation ends when its expiryDate is reached or when its connector or
# the Charge Point becomes Faulted or Unavailable), `Connector.reservation`
# (which connector.derive() shows as Reserved) and the expiry timer. It runs
# after every status change (`st.on_status`), since every fact that makes a
# connector free or busy changes its status.
#
# Whole-station reservations: while the free connectors (idle, operative,
# not reserved themselves) are no more than the unclaimed station-wide
# reservations, each free connector is kept for them and shows Reserved;
# with more free connectors than that, others may still charge (5.13:
# "one connector remains available for the reserved idTag").
#
# Choices where the spec is silent:
# - idTags match case-insensitively (CiString20); the incoming idTag or its
#   parentIdTag may match the reservation's idTag or parentIdTag (5.13).
# - An expiryDate not in the future, or a connectorId that does not exist,
#   is Rejected.
# - ReserveNow that replaces an existing reservationId (5.13) but cannot be
#   placed leaves the old reservation as it was.
# - A reservation claimed by an authorized driver who has yet to plug in
#   (Connector.auth carries its id) no longer holds back a free connector.
from evse import connector, timestamp
from evse.idtag import fold
from evse.compat import const

PROFILE = "Reservation"  # reported in SupportedFeatureProfiles
NEEDS = ("connector", "transaction")
_KEYS = """
ReserveConnectorZeroSupported br true 0 1
"""  # 9.3, config.py's table format

_CHECK_MAX_S = const(60)  # re-check expiry at least this often: the CSMS may set the clock


class Reservations:
    """This feature's state on the station (`st.resv`)."""

    def __init__(self, store):
        self.items = []  # reservation dicts as the CSMS sent them
        self.store = store
        self.busy = False  # _update is running (it triggers status changes)


def install(st):
    st.config.add_keys(_KEYS)
    st.resv = Reservations(st.storage.persist("reservations"))
    st.handlers["ReserveNow"] = _reserve_now
    st.handlers["CancelReservation"] = _cancel
    st.reservation_for = reservation_for
    st.on_tx.append(_tx_changed)
    st.on_status.append(_status_changed)
    st.on_timer["rsv"] = lambda st, now: _update(st)
    _load(st)
    _update(st)


# ---- facts -------------------------------------------------------------------
def _expiry(r):
    return timestamp.parse(r["expiryDate"]) or 0


def _idle(st, c):
    return c.fault is None and connector.operative(st, c) and c.tx is None \
        and c.auth is None and not c.plugged


def _free(st, c, rs):
    """Idle and not reserved itself (by a reservation of `rs`)."""
    if not _idle(st, c):
        return False
    for r in rs:
        if r["connectorId"] == c.id:
            return False
    return True


def _claimed(st, r):
    rid = r["reservationId"]
    for c in st.connectors[1:]:
        if c.auth is not None and c.auth[2] == rid:
            return True
    return False


def _station_wide(st, rs):
    """Station-wide reservations that still need a free connector."""
    return [r for r in rs if r["connectorId"] == 0 and not _claimed(st, r)]


def _match(r, id_tag, parent):
    mine = (fold(r["idTag"]), fold(r.get("parentIdTag")))
    for t in (fold(id_tag), fold(parent)):
        if t is not None and t in mine:
            return True
    return False


def _find(st, rid):
    for r in st.resv.items:
        if r["reservationId"] == rid:
            return r
    return None


# ---- the seam ------------------------------------------------------------------
def reservation_for(st, c, id_tag, parent):
    """None, a reservationId, or False (see the comments at the top)."""
    rs = st.resv.items
    if not rs:
        return None
    for r in rs:
        if r["connectorId"] == c.id:
            return r["reservationId"] if _match(r, id_tag, parent) else False
    for r in rs:
        if r["connectorId"] == 0 and _match(r, id_tag, parent):
            return r["reservationId"]
    need = len(_station_wide(st, rs))
    if not need:
        return None
    spare = [x for x in st.connectors[1:] if x is not c and _free(st, x, rs)]
    return None if len(spare) >= need else False


# ---- CSMS operations -----------------------------------------------------------
def _reserve_now(st, p):
    cid = p["connectorId"]
    rid = p["reservationId"]
    if cid < 0 or cid > st.ncon or (cid == 0 and not st.config.get("ReserveConnectorZeroSupported")):
        return {"status": "Rejected"}
    exp = timestamp.parse(p["expiryDate"])
    if exp is None or exp <= st.clock.unix():
        return {"status": "Rejected"}
    old = _find(st, rid)
    others = [r for r in st.resv.items if r is not old]
    status = _placeable(st, cid, others)
    if status == "Accepted":
        r = {"reservationId": rid, "connectorId": cid, "idTag": p["idTag"], "expiryDate": p["expiryDate"]}
        if p.get("parentIdTag"):
            r["parentIdTag"] = p["parentIdTag"]
        st.resv.items = others + [r]
        st.log("info", "reservation %d on connector %d for %s" % (rid, cid, p["idTag"]))
        _save(st)
        _update(st)
    return {"status": status}


def _placeable(st, cid, rs):
    """ReserveNow.conf status for a new reservation next to `rs` (5.13)."""
    c0 = st.connectors[0]
    if c0.fault:
        return "Faulted"
    if not c0.operative:
        return "Unavailable"
    need = len(_station_wide(st, rs))
    cons = st.connectors[1:]
    if cid:
        c = st.connectors[cid]
        if c.fault:
            return "Faulted"
        if c.tx is None and not connector.operative(st, c):
            return "Unavailable"
        if not _free(st, c, rs):
            return "Occupied"
        spare = [x for x in cons if x is not c and _free(st, x, rs)]
        return "Accepted" if len(spare) >= need else "Occupied"
    if len([x for x in cons if _free(st, x, rs)]) > need:
        return "Accepted"
    if all(x.fault for x in cons):
        return "Faulted"
    if all(x.fault or (x.tx is None and not connector.operative(st, x)) for x in cons):
        return "Unavailable"
    return "Occupied"


def _cancel(st, p):
    r = _find(st, p["reservationId"])
    if r is None:
        return {"status": "Rejected"}
    st.resv.items = [x for x in st.resv.items if x is not r]
    st.log("info", "reservation %d cancelled" % r["reservationId"])
    _save(st)
    _update(st)
    return {"status": "Accepted"}


# ---- hooks -------------------------------------------------------------------------
def _tx_changed(st, c, started):
    # 5.13: a transaction of the reserved idTag ends its reservation. The
    # connector's status changes next (transaction.apply), which runs _update.
    rid = c.tx.reservation if started and c.tx is not None else None
    r = _find(st, rid) if rid is not None else None
    if r is not None:
        st.resv.items = [x for x in st.resv.items if x is not r]
        st.log("info", "reservation %d used by transaction" % rid)
        _save(st)


def _status_changed(st, c):
    _update(st)


def _update(st):
    """Terminate what has ended, recompute Connector.reservation and the
    expiry timer, report the statuses that changed."""
    if st.resv.busy:
        return  # a status change caused by our own refresh below
    st.resv.busy = True
    try:
        _recompute(st)
    finally:
        st.resv.busy = False


def _recompute(st):
    if not st.resv.items:
        for c in st.connectors[1:]:
            if c.reservation is not None or (c.auth is not None and c.auth[2] is not None):
                break
        else:
            st.timers.cancel("rsv")
            return  # nothing reserved, nothing to undo: leave the connectors alone
    now = st.clock.unix()
    c0 = st.connectors[0]
    down = c0.fault is not None or not c0.operative
    keep = []
    for r in st.resv.items:
        c = st.connectors[r["connectorId"]]
        if _expiry(r) <= now:
            why = "expired"
        elif down or (c.id and (c.fault is not None or not connector.operative(st, c))):
            why = "ended: " + ("Faulted" if (c.fault or c0.fault) else "Unavailable")
        else:
            keep.append(r)
            continue
        st.log("info", "reservation %d %s" % (r["reservationId"], why))
    if len(keep) != len(st.resv.items):
        st.resv.items = keep
        _save(st)
    ids = [r["reservationId"] for r in keep]
    for c in st.connectors[1:]:
        c.reservation = None
        if c.auth is not None and c.auth[2] is not None and c.auth[2] not in ids:
            c.auth = (c.auth[0], c.auth[1], None)  # its reservation is gone
    for r in keep:
        if r["connectorId"]:
            st.connectors[r["connectorId"]].reservation = r
    wide = _station_wide(st, keep)
    if wide:
        free = [c for c in st.connectors[1:] if _free(st, c, keep)]
        if len(free) <= len(wide):
            for c in free:
                c.reservation = wide[0]  # held back for the station-wide reservation
    if keep:
        first = min(_expiry(r) for r in keep)
        st.timers.start("rsv", st.now, 1000 * min(first - now, _CHECK_MAX_S))
    else:
        st.timers.cancel("rsv")
    for c in st.connectors[1:]:
        connector.refresh(st, c.id)


# ---- persistence ----------------------------------------------------------------
def _save(st):
    try:
        st.resv.store.save(st.resv.items)
    except Exception as e:  # noqa: BLE001 - RAM stays right; lost at a reboot at worst
        st.log("error", "reservations not saved: " + repr(e))


def _load(st):
    """Stored reservations; anything malformed is dropped, never raised."""
    data = st.resv.store.load()
    out = []
    if not isinstance(data, list):
        return
    for r in data:
        if len(out) > st.ncon:
            break
        try:
            rid, cid, tag = r["reservationId"], r["connectorId"], r["idTag"]
            parent = r.get("parentIdTag")
            ok = type(rid) is int and type(cid) is int and 0 <= cid <= st.ncon \
                and fold(tag) is not None and (parent is None or fold(parent) is not None) \
                and timestamp.parse(r["expiryDate"]) is not None
        except Exception:  # noqa: BLE001 - not a reservation
            ok = False
        if ok and all(x["reservationId"] != rid and (cid == 0 or x["connectorId"] != cid) for x in out):
            out.append(r)
    st.resv.items = out
