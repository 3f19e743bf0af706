"""Meter values: sampled during transactions and clock-aligned
(OCPP 1.6 sections 3.16, 4.7; keys MeterValueSampleInterval,
ClockAlignedDataInterval, MeterValues*Data, StopTxn*Data).

Transaction meter values go through the durable queue; clock-aligned
values outside a transaction are ordinary (RAM) messages.
"""
from evse import meter
from evse.compat import const

_SAVE_EVERY_S = const(60)  # persist the running meter at most this often (flash wear)


def install(st):
    for c in st.connectors[1:]:
        st.on_timer["mv%d" % c.id] = _sampled
    st.on_timer["al"] = _aligned
    st.on_accepted.append(_schedule_aligned)
    st.config.on_change(lambda key, value: _config_changed(st, key))


def _measurands(st, key):
    return [m for m in st.config.get_list(key) if meter.supported(m)]


def _value(st, c, key, context, reading):
    return meter.sample(reading, _measurands(st, key), context, st.clock.unix())


def tx_started(st, c, reading):
    c.tx.data.add(_value(st, c, "StopTxnSampledData", "Transaction.Begin", reading))
    _schedule_sample(st, c)


def tx_ending(st, c, reading):
    c.tx.data.add(_value(st, c, "StopTxnSampledData", "Transaction.End", reading))
    st.timers.cancel("mv%d" % c.id)


def _schedule_sample(st, c):
    iv = st.config.get("MeterValueSampleInterval")
    if iv > 0 and c.tx is not None:
        st.timers.start("mv%d" % c.id, st.now, 1000 * iv)
    else:
        st.timers.cancel("mv%d" % c.id)


def send_tx_values(st, c, mv):
    """Queue a transaction MeterValues (durable, carries the transactionId)."""
    tx = c.tx
    p = {"connectorId": c.id, "meterValue": [mv]}
    if tx.tx_id is not None:
        p["transactionId"] = tx.tx_id
    st.txq.meter(tx.local, p)


def _note_reading(st, c, reading):
    tx = c.tx
    now = st.clock.unix()
    tx.last_meter = reading[0]
    if now - tx.last_time >= _SAVE_EVERY_S or tx.last_time == tx.start:
        tx.last_time = now
        from evse import transaction
        transaction.save(st)


def _sampled(st, now):
    for c in st.connectors[1:]:
        if c.tx is not None and not st.timers.active("mv%d" % c.id):
            reading = st.board.meter(c.id)
            mv = _value(st, c, "MeterValuesSampledData", "Sample.Periodic", reading)
            if mv["sampledValue"]:
                send_tx_values(st, c, mv)
            c.tx.data.add(_value(st, c, "StopTxnSampledData", "Sample.Periodic", reading))
            _note_reading(st, c, reading)
            _schedule_sample(st, c)
            from evse import transaction
            transaction.energy_check(st, c)


def _schedule_aligned(st):
    wait = meter.seconds_to_aligned(st.clock.unix(), st.config.get("ClockAlignedDataInterval"))
    if wait is None:
        st.timers.cancel("al")
    else:
        st.timers.start("al", st.now, 1000 * wait)


def _aligned(st, now):
    for c in st.connectors[1:]:
        reading = st.board.meter(c.id)
        mv = _value(st, c, "MeterValuesAlignedData", "Sample.Clock", reading)
        if c.tx is not None:
            if mv["sampledValue"]:
                send_tx_values(st, c, mv)
            c.tx.data.add(_value(st, c, "StopTxnAlignedData", "Sample.Clock", reading))
            _note_reading(st, c, reading)
        elif mv["sampledValue"] and st.registration == "Accepted":
            st.send("MeterValues", {"connectorId": c.id, "meterValue": [mv]})
    _schedule_aligned(st)


def triggered(st, cid):
    """MeterValues for TriggerMessage (context Trigger)."""
    for c in st.connectors[1:]:
        if cid is None or c.id == cid:
            mv = _value(st, c, "MeterValuesSampledData", "Trigger", st.board.meter(c.id))
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
