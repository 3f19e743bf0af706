"""Connector status (OCPP 1.6 sections 4.9, 7.7) derived from connector state.

Rather than a transition table, the status is a pure function of a few
facts (fault, availability, transaction, pilot state, pending
authorization, reservation). Every event updates the facts and calls
`refresh`, which reports a StatusNotification when the derived status
changes. All status logic lives in `derive`.
"""
from evse import timestamp


class Connector:
    def __init__(self, cid):
        self.id = cid
        self.status = "Available"
        self.error = "NoError"
        self.info = None
        self.vendor_error = None
        self.reported = None  # last (status, error) the CSMS answered
        self.fault = None  # (errorCode, info) while a hardware fault is active
        self.operative = True  # availability (persisted)
        self.scheduled = None  # availability to apply when the transaction ends
        self.cp = "A"  # control pilot state
        self.tx = None  # Transaction while one runs
        self.auth = None  # (idTag, parent, reservationId) authorized, waiting for the plug
        self.finishing = False  # a transaction ended; the EV is still plugged
        self.reservation = None  # set by the reservation feature
        self.offered_da = 0  # current offered on the pilot

    @property
    def plugged(self):
        return self.cp in ("B", "C", "D")


def install(st):
    avail = st.storage.persist("availability")
    st.avail_store = avail
    data = avail.load()
    if isinstance(data, list):
        for i, op in enumerate(data[:st.ncon + 1]):
            c = st.connectors[i]
            if isinstance(op, list):  # [operative, scheduled change or None]
                # Any shape read back from flash boots: a short list is no
                # scheduled change (an IndexError here stopped every boot).
                sched = op[1] if len(op) > 1 else None
                op = op[0] if op else True
                c.scheduled = sched if sched in ("Operative", "Inoperative") else None
            c.operative = op is not False
            if c.scheduled is not None:
                # 5.2: the change waited for a transaction a power cut ended
                # (transaction.py stops it at boot, AQ-7.2): it applies now.
                c.operative, c.scheduled = c.scheduled == "Operative", None
    for c in st.connectors:
        c.status = derive(st, c)
        st.on_timer["msd%d" % c.id] = _settled
    # C-05 (optional): a status must hold this long before it is reported.
    st.config.add_key("MinimumStatusDuration", "int", 0, lo=0, hi=3600)
    st.on_accepted.append(report_all)
    st.add_link_hook(_link)
    st.on_result["StatusNotification"] = _answered


def operative(st, c):
    return c.operative and st.connectors[0].operative


def derive(st, c):
    """The OCPP status of connector `c` from its facts."""
    if c.id == 0:
        if c.fault:
            return "Faulted"
        return "Available" if c.operative else "Unavailable"
    if c.fault:
        return "Faulted"
    tx = c.tx
    if tx is not None:
        if not c.plugged or c.cp not in ("C", "D") and c.offered_da > 0:
            return "SuspendedEV"
        if c.offered_da <= 0:
            return "SuspendedEVSE"
        return "Charging"
    if not operative(st, c):
        return "Unavailable"
    if c.finishing and c.plugged:
        return "Finishing"
    if c.auth is not None:
        return "Preparing"
    if c.reservation is not None:
        # 4.9: Reserved -> Preparing only when the reservation's identity is
        # presented (G2, c.auth above); plugging in alone keeps it Reserved.
        return "Reserved"
    return "Preparing" if c.plugged else "Available"


def refresh(st, cid):
    """Re-derive a connector's status; report it if it changed."""
    c = st.connectors[cid]
    if not c.plugged:
        c.finishing = False
    status = derive(st, c)
    error = c.fault[0] if c.fault else "NoError"
    info = c.fault[1] if c.fault else None
    if (status, error) != (c.status, c.error):
        c.status, c.error, c.info = status, error, info
        if st.registration == "Accepted":
            hold = st.config.get("MinimumStatusDuration")
            if hold > 0:
                st.timers.start("msd%d" % cid, st.now, 1000 * hold)
            else:
                report(st, cid)
        for fn in st.on_status:
            fn(st, c)


def _settled(st, now):
    for c in st.connectors:
        if not st.timers.active("msd%d" % c.id) and st.registration == "Accepted":
            _resync(st, c)


def _resync(st, c):
    """Report c's present status unless the CSMS has it or it is on its way."""
    if c.reported != (c.status, c.error) and not _on_its_way(st, c.id):
        report(st, c.id)


def _on_its_way(st, cid):
    p = st.rpc.pending
    if p is not None and p[1] == "StatusNotification" and p[2]["connectorId"] == cid:
        return True
    return st.queued("StatusNotification", lambda q, ctx: q["connectorId"] == cid) is not None


def refresh_all(st):
    for c in st.connectors:
        refresh(st, c.id)


def save_availability(st):
    # A scheduled change is persisted too: a power cut during the
    # transaction must not lose it (5.2).
    st.avail_store.save([[c.operative, c.scheduled] if c.scheduled else c.operative
                         for c in st.connectors])


def report(st, cid):
    c = st.connectors[cid]
    p = {"connectorId": cid, "status": c.status, "errorCode": c.error,
         "timestamp": timestamp.format_utc(st.clock.unix())}
    if c.info:
        p["info"] = c.info[:50]
    if c.vendor_error:
        p["vendorErrorCode"] = c.vendor_error[:50]
    if not st.online:
        # 4.9: offline, only the latest status of a connector waits for the
        # link; a queued earlier one goes unless it reports an error.
        st.unqueue("StatusNotification", lambda q, ctx: q["connectorId"] == cid and q["errorCode"] == "NoError")
    # It counts as reported once the CSMS answers it (_answered): a status
    # lost in flight is sent again at the next resync.
    st.send("StatusNotification", p, ctx=(cid, c.status, c.error))


def _answered(st, payload, ctx):
    if ctx is not None:
        st.connectors[ctx[0]].reported = ctx[1:]




def report_all(st):
    for c in st.connectors:
        report(st, c.id)


def _link(st, now, up):
    # Re-sync after a reconnect: the present status where the CSMS does not
    # have it (4.9), not the history.
    if up and st.registration == "Accepted":
        for c in st.connectors:
            _resync(st, c)
