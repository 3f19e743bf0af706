"""Charging sessions (OCPP 1.6 sections 4.1, 4.8, 4.10, 5.11, 5.12, 3.x).

Hardware events (pilot state, card, fault) and remote commands drive the
connector facts; this module starts and stops transactions, drives the
pilot and the relay, and queues StartTransaction/StopTransaction in the
durable queue. Status is derived in connector.py. It owns the running
transaction's last reading, its snapshot and the MaxEnergyOnInvalidId check;
metervalues.py only takes readings and reports them here (note_reading).
"""
from evse import authorize, connector, timestamp
from evse.idtag import fold
from evse.compat import const
from evse.measurands import TxData, configured, sample
from evse.txqueue import TxQueue

_CAP_CHECK_MS = const(10000)  # MaxEnergyOnInvalidId: longest wait between checks


class Transaction:
    def __init__(self, local, id_tag, parent, meter_start, start, reservation=None, tx_id=None):
        self.local = local  # journal seq of its StartTransaction
        self.tx_id = tx_id  # CSMS transactionId once StartTransaction.conf came
        self.id_tag = id_tag
        self.parent = parent
        self.meter_start = meter_start
        self.start = start  # unix seconds
        self.reservation = reservation
        self.last_meter = meter_start
        self.last_time = start
        self.invalid = False  # not authorized by the CSMS (or never registered by it)
        self.data = None  # TxData for StopTransaction.transactionData
        self.end = None  # its Transaction.End value, once a stop began

    def record(self):
        return [self.local, self.tx_id, self.id_tag, self.parent, self.meter_start,
                self.start, self.last_meter, self.last_time, self.reservation]


def from_record(rec):
    local, tx_id, id_tag, parent, meter_start, start, last_meter, last_time, resv = rec
    tx = Transaction(local, id_tag, parent, meter_start, start, resv, tx_id)
    tx.last_meter, tx.last_time = last_meter, last_time
    return tx


def install(st):
    t = st.transactions = TxState(st)
    st.queues.append(t.queue)
    st.on_authorized = decided
    # C-03 (optional): energy an invalid idTag may still take; 0 = none.
    st.config.add_key("MaxEnergyOnInvalidId", "int", 0, lo=0, hi=1000000)
    st.on_result["StartTransaction"] = _start_answered
    st.on_invalid["StartTransaction"] = start_answer_incomplete
    st.on_result["StopTransaction"] = _stop_done
    st.on_result["MeterValues"] = _stop_answered
    for action in ("StartTransaction", "StopTransaction", "MeterValues"):
        st.on_fail[action] = _tx_failed
    st.on_hw["cp"] = _on_pilot
    st.on_hw["card"] = _on_card
    st.on_hw["fault"] = _on_fault
    st.on_hw["clear"] = _on_clear
    for c in st.connectors[1:]:
        st.on_timer["ct%d" % c.id] = _connection_timeout
        st.on_timer["cap%d" % c.id] = _cap_timer
    _recover(st)


class TxState:
    """st.transactions: the feature's state in one object: the durable
    message queue (txqueue.py), the running transactions' snapshot and the
    energy register."""

    def __init__(self, st):
        self.queue = TxQueue(st.storage.journal("txq", max_bytes=32768), log=st.log)
        self.queue.on_full = lambda full: st.exhausted("transaction queue", full)
        self.snapshot = st.storage.persist("tx")
        self.register = Register(st.storage.persist("register"), st.ncon, self.queue)


# ---- the energy register (deviation 10 rule, docs/CONFORMANCE.md) ----------
class Register:
    """No energy value the station reports is lower than one it reported
    before (docs/CONFORMANCE.md, rule 10). `floor[cid]` is the highest value
    reported: a value going into a journalled message is carried by its
    record (txqueue.py, and FLOOR records once answered), any other is
    saved here before it is sent. At boot a meter
    that restarted lower (a volatile counter, or one restored from a save
    older than the last report) gets an offset (persisted) so that it
    continues from there. Energy drawn between the meter's last save and a
    cut may be lost, never counted twice or backwards."""

    def __init__(self, store, ncon, txq=None):
        self.store = store
        n = ncon + 1
        data = store.load()
        ok = isinstance(data, dict)
        f, o = (data.get("f"), data.get("o")) if ok else (None, None)
        ints = ok and all(isinstance(x, list) and len(x) == n and all(type(v) is int for v in x) for x in (f, o))
        self.floor = f if ints else [0] * n
        self.offset = o if ints else [0] * n
        if txq is not None:  # the floors the journal carries
            for i in range(1, n):
                self.floor[i] = max(self.floor[i], txq.floor(i)[0])
        self.booted = False  # offsets checked against the meter (first read)

    def _save(self):
        self.store.save({"f": self.floor, "o": self.offset})

    def _boot(self, st):
        self.booted = True
        moved = False
        for i in range(1, len(self.floor)):
            try:
                lack = self.floor[i] - st.board.meter(i)[0]
            except Exception:  # noqa: BLE001 - unreadable now: keep the offset
                continue
            if lack > self.offset[i]:
                self.offset[i] = lack
                moved = True
        if moved:
            self._save()

    def read(self, st, cid):
        if not self.booted:
            self._boot(st)
        r = st.board.meter(cid)
        wh = max(r[0] + self.offset[cid], self.floor[cid])
        return (wh,) + tuple(r[1:])

    def reported(self, cid, wh):
        """`wh` is about to be put in a message: raise the persisted floor."""
        if wh > self.floor[cid]:
            self.floor[cid] = wh
            self._save()

    def carried(self, cid, wh):
        """`wh` is about to be journalled (its record carries it): raise the floor."""
        if wh > self.floor[cid]:
            self.floor[cid] = wh


def reading(st, cid):
    """The meter of connector `cid` as reported: (Wh, W, dA, dV, SoC)."""
    return st.transactions.register.read(st, cid)


def reported(st, cid, wh):
    st.transactions.register.reported(cid, wh)


def carried(st, cid, wh):
    st.transactions.register.carried(cid, wh)


# ---- power loss ---------------------------------------------------------
def save(st):
    st.transactions.snapshot.save([c.tx.record() if c.tx else None for c in st.connectors[1:]])


def _recover(st):
    """AQ-7.2: a transaction cut by power loss is stopped after the reboot,
    with the last persisted meter value; its StopTransaction is queued and
    sent once the link is back."""
    data = st.transactions.snapshot.load()
    stopped = set()
    if isinstance(data, list):
        for i, rec in enumerate(data[:st.ncon]):  # entry i: connector i + 1
            try:
                if rec is None:
                    continue
                tx = from_record(rec)
                stopped.add(tx.local)
                # A cut between journalling the StopTransaction and saving the
                # snapshot: it is already queued, do not stop it twice.
                if not st.transactions.queue.has_stop(tx.local):
                    _queue_stop(st, tx, "PowerLoss", _last_meter(st, i + 1, tx), _last_time(st, i + 1, tx),
                                cid=i + 1)
            except Exception:
                st.log("error", "tx snapshot entry unusable: %r" % (rec,))
    # A StartTransaction journalled just before the cut, before the snapshot.
    for local, payload in st.transactions.queue.open_starts():
        if local not in stopped:
            tx = Transaction(local, payload.get("idTag"), None, payload.get("meterStart", 0),
                             timestamp.parse(payload.get("timestamp", "")) or st.clock.unix())
            cid = payload.get("connectorId", 1)
            _queue_stop(st, tx, "PowerLoss", _last_meter(st, cid, tx), _last_time(st, cid, tx), cid=cid)
    save(st)


def _last_meter(st, cid, tx):
    """The energy register at the cut: the snapshot's value, the floor the
    journal carries (the last reading reported) or the meter's own
    (non-volatile) register, whichever is further on."""
    try:
        wh = max(tx.last_meter, reading(st, cid)[0])
    except Exception:  # no such connector / meter unreadable at boot
        wh = max(tx.last_meter, st.transactions.queue.floor(cid)[0])
    carried(st, cid, wh)  # the PowerLoss StopTransaction's record carries it
    return wh


def _last_time(st, cid, tx):
    """The time of the last reading on flash for a transaction cut by power
    loss: its start, or a later energy record of its connector."""
    return max(tx.last_time, st.transactions.queue.floor(cid)[1])


# ---- starting and stopping ---------------------------------------------
def start(st, c, id_tag, parent, reservation=None):
    if c.fault is not None or not connector.operative(st, c) or c.tx is not None:
        # 4.9, 5.2: never a start on a Faulted or Unavailable connector.
        st.log("warn", "connector %d cannot start now; %s refused" % (c.id, id_tag))
        return
    reading = _reading(st, c.id)
    now = st.clock.unix()
    p = {"connectorId": c.id, "idTag": id_tag, "meterStart": reading[0],
         "timestamp": timestamp.format_utc(now)}
    if reservation is not None:
        p["reservationId"] = reservation
    local = st.transactions.queue.start(p, now)
    if c.status in ("Finishing", "Reserved"):
        # 4.9: Finishing -> Preparing (F2), Reserved -> Preparing (G2), then
        # Charging: neither goes straight to Charging. Queued after the
        # START, so the StartTransaction does not wait a round trip for it.
        c.finishing, c.auth = False, (id_tag, parent, reservation)
        connector.refresh(st, c.id)
    tx = Transaction(local, id_tag, parent, reading[0], now, reservation)
    tx.data = TxData(st.config.get("StopTransactionMaxMeterValues"))
    c.tx, c.auth, c.finishing = tx, None, False
    st.timers.cancel("ct%d" % c.id)
    tx.data.add(_tx_value(st, "Transaction.Begin", reading))
    for fn in st.on_tx:
        fn(st, c, True)
    # No snapshot here: until StartTransaction.conf the journalled START is
    # what recovers it (_recover, open_starts); the answer saves the id.
    apply(st, c)


def stop(st, c, reason, id_tag=None):
    tx = c.tx
    if tx is None:
        return
    # Safe first: the relay opens and the PWM stops before any bookkeeping
    # that may run out of memory. Nothing below changes the transaction
    # until the StopTransaction is journalled, so a failed stop can be run
    # again (a board event is, Station.poll_hw).
    st.board.set_relay(c.id, False)
    st.board.set_pilot(c.id, 0)
    reading = _reading(st, c.id)
    if tx.end is None:
        tx.end = _tx_value(st, "Transaction.End", reading)
        tx.data.add(tx.end)
    _queue_stop(st, tx, reason, reading[0], st.clock.unix(), id_tag, c.id)
    tx.last_meter = reading[0]
    c.tx = None
    c.finishing = c.plugged
    # tx.json still shows it running: the journalled STOP says it ended
    # (_recover: has_stop); it is cleared when the STOP is answered, off the
    # path of the StopTransaction (_stop_answered).
    for fn in st.on_tx:
        fn(st, c, False)
    apply(st, c)


def _tx_value(st, context, reading):
    return sample(reading, configured(st.config, "StopTxnSampledData"), context, st.clock.unix())


def note_reading(st, c, reading):
    """A reading taken during the transaction (metervalues.py): remember it
    and enforce MaxEnergyOnInvalidId. Nothing is saved: the MeterValues
    record that reports it carries it on flash (txqueue.py)."""
    tx = c.tx
    tx.last_meter = max(tx.last_meter, reading[0])
    tx.last_time = st.clock.unix()
    energy_check(st, c)


def _queue_stop(st, tx, reason, meter_stop, when, id_tag=None, cid=None):
    p = {"meterStop": meter_stop, "timestamp": timestamp.format_utc(when), "reason": reason}
    if id_tag:
        p["idTag"] = id_tag
    if tx.tx_id is not None:
        p["transactionId"] = tx.tx_id
    if tx.data is not None and tx.data.items:
        p["transactionData"] = tx.data.items
    st.transactions.queue.stop(tx.local, p, cid, when)


def _reading(st, cid):
    r = reading(st, cid)
    carried(st, cid, r[0])  # it goes into a journalled Start/StopTransaction
    return r


def apply(st, c):
    """Drive pilot and relay from the connector facts, then re-derive status."""
    if c.auth is not None and (c.fault is not None or not connector.operative(st, c)):
        # 4.9, 5.2: a connector that becomes Faulted or Unavailable drops its
        # pending authorization and its ConnectionTimeOut timer.
        st.log("info", "connector %d: authorization of %s dropped" % (c.id, c.auth[0]))
        c.auth = None
        st.timers.cancel("ct%d" % c.id)
    offer = 0
    tx = c.tx
    if tx is not None and c.fault is None and c.plugged and _energy_allowed(st, c, tx):
        limit = st.board.max_current_da if st.limit_da is None else st.limit_da(st, c.id)
        offer = limit if limit >= 60 else 0  # IEC 61851: no PWM below 6 A
    c.offered_da = offer
    st.board.set_relay(c.id, offer > 0)
    st.board.set_pilot(c.id, offer)
    st.poll_hw()
    connector.refresh(st, c.id)
    _arm_cap(st, c)


def stop_all(st, reason):
    for c in st.connectors[1:]:
        if c.tx is not None:
            stop(st, c, reason)


def energy_check(st, c):
    """Called as energy flows: an invalid tag's MaxEnergyOnInvalidId runs out."""
    if c.tx is not None and c.tx.invalid and c.offered_da > 0 and not _energy_allowed(st, c, c.tx):
        apply(st, c)


def _energy_allowed(st, c, tx):
    if not tx.invalid:
        return True
    # C-03: with MaxEnergyOnInvalidId an invalid tag may still take that much.
    cap = st.config.get("MaxEnergyOnInvalidId")
    return cap > 0 and reading(st, c.id)[0] - tx.meter_start < cap


def _arm_cap(st, c):
    """While an invalid tag draws energy under MaxEnergyOnInvalidId, read
    the meter when the cap should be reached at the present power (at most
    _CAP_CHECK_MS apart): the cap holds whatever the sampling intervals."""
    name = "cap%d" % c.id
    tx = c.tx
    if tx is None or not tx.invalid or c.offered_da <= 0:
        st.timers.cancel(name)
        return
    r = reading(st, c.id)
    left = st.config.get("MaxEnergyOnInvalidId") - (r[0] - tx.meter_start)
    ms = _CAP_CHECK_MS
    if r[1] and r[1] > 0:
        ms = min(ms, max(100, left * 3600000 // r[1]))
    st.timers.start(name, st.now, ms)


def _cap_timer(st, now):
    for c in st.connectors[1:]:
        if c.tx is not None and not st.timers.active("cap%d" % c.id):
            energy_check(st, c)
            _arm_cap(st, c)


# ---- authorization outcome ----------------------------------------------
def decided(st, cid, id_tag, info, purpose):
    c = st.connectors[cid]
    ok = info.get("status") == "Accepted"
    if purpose == "stop":
        tx = c.tx
        # 4.1.1 / 5.x: another card stops it only when Accepted with the same parentIdTag.
        if ok and tx is not None and info.get("parentIdTag") and tx.parent \
                and fold(info["parentIdTag"]) == fold(tx.parent):
            stop(st, c, "Local", id_tag)
        return
    if not ok:
        st.log("info", "idTag %s not authorized: %s" % (id_tag, info.get("status")))
        if c.auth is not None and c.auth[0] == id_tag:
            c.auth = None
        connector.refresh(st, cid)
        return
    if c.tx is not None or c.fault is not None or not connector.operative(st, c):
        return
    if c.auth is not None and fold(c.auth[0]) != fold(id_tag):
        # A second card decided after the first: the first authorization
        # holds (it is cancelled by presenting that card again).
        st.log("info", "connector %d already authorized for %s; %s ignored" % (cid, c.auth[0], id_tag))
        return
    resv = st.reservation_for(st, c, id_tag, info.get("parentIdTag"))
    if resv is False:
        st.log("info", "connector %d is reserved for another idTag; %s refused" % (cid, id_tag))
        return
    if c.plugged:
        start(st, c, id_tag, info.get("parentIdTag"), resv)
    else:
        c.auth = (id_tag, info.get("parentIdTag"), resv)
        st.timers.start("ct%d" % cid, st.now, 1000 * st.config.get("ConnectionTimeOut"))
        connector.refresh(st, cid)


def can_start(st, c):
    """Connector `c` is free for a new transaction."""
    return c.tx is None and c.fault is None and c.auth is None and connector.operative(st, c)


def _connection_timeout(st, now):
    for c in st.connectors[1:]:
        if c.auth is not None and not st.timers.active("ct%d" % c.id):
            st.log("info", "connector %d: no cable within ConnectionTimeOut" % c.id)
            c.auth = None
            connector.refresh(st, c.id)


# ---- hardware events ------------------------------------------------------
def _on_pilot(st, ev):
    c = st.connectors[ev[1]]
    was = c.plugged
    c.cp = ev[2]
    if c.plugged and not was:
        if c.auth is not None and c.tx is None:
            tag, parent, resv = c.auth
            start(st, c, tag, parent, resv)
            return
    elif was and not c.plugged and c.tx is not None:
        if st.config.get("StopTransactionOnEVSideDisconnect"):
            stop(st, c, "EVDisconnected")
            return
        # C-06.1: the transaction stays; energy stops until the EV is back.
    apply(st, c)


def _on_card(st, ev):
    cid, tag = ev[1], ev[2]
    c = st.connectors[cid]
    tx = c.tx
    if tx is not None:
        if authorize.same_group(st, tx.id_tag, tx.parent, tag):
            stop(st, c, "Local", tag)
        elif tx.parent:
            authorize.authorize(st, cid, tag, "stop")  # may share the parent group
        return
    if c.auth is not None and c.auth[0].upper() == tag.upper():
        c.auth = None  # presented again: cancel
        st.timers.cancel("ct%d" % cid)
        connector.refresh(st, cid)
        return
    if c.fault is None and connector.operative(st, c):
        authorize.authorize(st, cid, tag, "start")


def _on_fault(st, ev):
    # ("fault", cid, errorCode[, info[, vendorErrorCode]])
    c = st.connectors[ev[1]]
    c.fault = (ev[2], ev[3] if len(ev) > 3 else None)
    c.vendor_error = ev[4] if len(ev) > 4 else None
    apply(st, c)


def _on_clear(st, ev):
    c = st.connectors[ev[1]]
    c.fault = c.vendor_error = None
    apply(st, c)


# ---- transaction messages answered ----------------------------------------
def _start_answered(st, payload, ctx):
    seq = ctx[0]
    if st.transactions.queue.head_seq() != seq:
        return  # stale answer (e.g. the record was dropped meanwhile)
    info = payload["idTagInfo"]
    for c in st.connectors[1:]:
        tx = c.tx
        if tx is not None and tx.local == seq:
            # Persist the id before the journal forgets the StartTransaction:
            # a power cut in between must not leave the id nowhere on flash.
            tx.tx_id = payload["transactionId"]
            if info.get("parentIdTag"):
                tx.parent = info["parentIdTag"]
            save(st)
            st.transactions.queue.answered(seq, payload)
            authorize.remember(st, tx.id_tag, info)
            if info["status"] != "Accepted":
                _invalid_at_start(st, c)
            return
    st.transactions.queue.answered(seq, payload)
    authorize.remember(st, ctx[1], info)  # its transaction is already over


def _stop_done(st, payload, ctx):
    save(st)  # before the journal forgets the STOP: the snapshot must not show it running
    _stop_answered(st, payload, ctx)


def _stop_answered(st, payload, ctx):
    if ctx is None:
        return  # a clock-aligned MeterValues outside a transaction
    st.transactions.queue.answered(ctx[0], payload)
    authorize.remember(st, ctx[1], payload.get("idTagInfo"))


def _invalid_at_start(st, c):
    # StopTransactionOnInvalidId: stop (DeAuthorized) or keep the
    # transaction without energy (SuspendedEVSE).
    if st.config.get("StopTransactionOnInvalidId"):
        stop(st, c, "DeAuthorized")
    else:
        c.tx.invalid = True
        apply(st, c)


def _tx_failed(st, ctx, reason):
    if ctx is None or reason == "link lost":
        return  # not queued durably / stays at the head, sent again after reconnect
    save(st)  # a STOP may be discarded now (nothing written when nothing changed)
    if st.transactions.queue.failed(ctx[0], st.now, st.config.get("TransactionMessageAttempts"),
                     1000 * st.config.get("TransactionMessageRetryInterval")):
        # Rule 12: the CSMS was reachable but never registered the
        # transaction (its StartTransaction is discarded, its record is in
        # the log): no more energy than an invalid idTag may take.
        c = _running(st, ctx[0])
        if c is not None and not c.tx.invalid:
            st.log("warn", "connector %d: StartTransaction not registered by the CSMS" % c.id)
            _invalid_at_start(st, c)


def _running(st, local):
    for c in st.connectors[1:]:
        if c.tx is not None and c.tx.local == local:
            return c
    return None


def start_answer_incomplete(st, payload, ctx):
    """A StartTransaction.conf that is invalid only because transactionId is
    missing (rule 12): act on a readable idTagInfo.status now; the record
    stays queued and is retried for its transactionId."""
    info = payload.get("idTagInfo") if isinstance(payload, dict) else None
    status = info.get("status") if isinstance(info, dict) else None
    c = _running(st, ctx[0])
    if c is not None and status is not None and status != "Accepted" and not c.tx.invalid:
        _invalid_at_start(st, c)
    _tx_failed(st, ctx, "no transactionId")
