"""Meter values: sampled during transactions and clock-aligned
(OCPP 1.6 sections 3.16, 4.7; keys MeterValueSampleInterval,
ClockAlignedDataInterval, MeterValues*Data, StopTxn*Data).

Transaction meter values go through the durable queue; clock-aligned
values outside a transaction are ordinary (RAM) messages. Readings taken
during a transaction are handed to transaction.note_reading, which owns
them; this module only takes and reports them.
"""
from evse import measurands, transaction


def install(st):
    for c in st.connectors[1:]:
        st.on_timer["mv%d" % c.id] = _sampled
    st.on_timer["al"] = _aligned
    st.on_accepted.append(_schedule_aligned)
    st.on_tx.append(_tx_changed)
    st.config.on_change(lambda key, value: _config_changed(st, key))
    # An empty list would silence sampled MeterValues: refused (deviation 7).
    st.config.add_keys("", checks={"MeterValuesSampledData": _not_empty})


def _not_empty(value):
    return None if value else "Rejected"


def _read(st, c):
    """A reading that goes into a message: the reported energy register
    (never lower than one reported before, transaction.py)."""
    r = transaction.reading(st, c.id)
    transaction.reported(st, c.id, r[0])
    return r


def _value(st, c, key, context, reading):
    return measurands.sample(reading, measurands.configured(st.config, key), context, st.clock.unix())


def _tx_changed(st, c, started):
    _schedule_sample(st, c)  # c.tx is None once it ended: the timer stops


def _schedule_sample(st, c):
    iv = st.config.get("MeterValueSampleInterval")
    if iv > 0 and c.tx is not None:
        st.timers.start("mv%d" % c.id, st.now, 1000 * iv)
    else:
        st.timers.cancel("mv%d" % c.id)


def send_tx_values(st, c, mv, reading):
    """Queue a transaction MeterValues (durable, carries the transactionId);
    its record carries the energy of `reading` (the floor, transaction.py)."""
    tx = c.tx
    p = {"connectorId": c.id, "meterValue": [mv]}
    if tx.tx_id is not None:
        p["transactionId"] = tx.tx_id
    transaction.carried(st, c.id, reading[0])
    st.transactions.queue.meter(tx.local, p, reading[0], st.clock.unix())


def _tx_read(st, c, mv_key, context):
    """A reading for a transaction MeterValues: journalled with the energy
    it reports when it has values, else only the floor is saved."""
    r = transaction.reading(st, c.id)
    mv = _value(st, c, mv_key, context, r)
    if mv["sampledValue"]:
        send_tx_values(st, c, mv, r)
    else:
        transaction.reported(st, c.id, r[0])
    return r


def _sampled(st, now):
    for c in st.connectors[1:]:
        if c.tx is not None and not st.timers.active("mv%d" % c.id):
            reading = _tx_read(st, c, "MeterValuesSampledData", "Sample.Periodic")
            c.tx.data.add(_value(st, c, "StopTxnSampledData", "Sample.Periodic", reading))
            _schedule_sample(st, c)
            transaction.note_reading(st, c, reading)


def _schedule_aligned(st):
    wait = measurands.seconds_to_aligned(st.clock.unix(), st.config.get("ClockAlignedDataInterval"))
    if wait is None:
        st.timers.cancel("al")
    else:
        st.timers.start("al", st.now, 1000 * wait)


def _aligned(st, now):
    for c in st.connectors[1:]:
        if c.tx is not None:
            reading = _tx_read(st, c, "MeterValuesAlignedData", "Sample.Clock")
            c.tx.data.add(_value(st, c, "StopTxnAlignedData", "Sample.Clock", reading))
            transaction.note_reading(st, c, reading)
            continue
        mv = _value(st, c, "MeterValuesAlignedData", "Sample.Clock", _read(st, c))
        if mv["sampledValue"] and st.registration == "Accepted":
            st.send("MeterValues", {"connectorId": c.id, "meterValue": [mv]})
    _schedule_aligned(st)


def triggered(st, cid):
    """MeterValues for TriggerMessage (context Trigger)."""
    for c in st.connectors[1:]:
        if cid is None or c.id == cid:
            mv = _value(st, c, "MeterValuesSampledData", "Trigger", _read(st, c))
            p = {"connectorId": c.id, "meterValue": [mv]}
            if c.tx is not None and c.tx.tx_id is not None:
                p["transactionId"] = c.tx.tx_id
            st.send("MeterValues", p)


def _config_changed(st, key):
    if key == "MeterValueSampleInterval":
        for c in st.connectors[1:]:
            _schedule_sample(st, c)
    elif key == "ClockAlignedDataInterval" and st.registration == "Accepted":
        _schedule_aligned(st)
