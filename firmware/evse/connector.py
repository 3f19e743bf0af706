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
        self.reported = None  # last (status, error) queued to the CSMS
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
            st.connectors[i].operative = op is not False
    for c in st.connectors:
        c.status = derive(st, c)
        st.on_timer["msd%d" % c.id] = _settled
    # C-05 (optional): a status must hold this long before it is reported.
    st.config.add_key("MinimumStatusDuration", "int", 0, lo=0, hi=3600)
    st.on_accepted.append(report_all)
    st.add_link_hook(_link)


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
    if c.auth is not None or c.plugged:
        return "Preparing"
    if c.reservation is not None:
        return "Reserved"
    return "Available"


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
        if not st.timers.active("msd%d" % c.id) and c.reported != (c.status, c.error) \
                and st.registration == "Accepted":
            report(st, c.id)


def refresh_all(st):
    for c in st.connectors:
        refresh(st, c.id)


def save_availability(st):
    st.avail_store.save([c.operative for c in st.connectors])


def report(st, cid):
    c = st.connectors[cid]
    p = {"connectorId": cid, "status": c.status, "errorCode": c.error,
         "timestamp": timestamp.format_utc(st.clock.unix())}
    if c.info:
        p["info"] = c.info[:50]
    if c.vendor_error:
        p["vendorErrorCode"] = c.vendor_error[:50]
    c.reported = (c.status, c.error)
    st.send("StatusNotification", p)


def report_all(st):
    for c in st.connectors:
        report(st, c.id)


def _link(st, now, up):
    # Re-sync after a reconnect: what changed while the link was down.
    if up and st.registration == "Accepted":
        for c in st.connectors:
            if c.reported != (c.status, c.error):
                report(st, c.id)
