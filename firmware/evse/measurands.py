"""Meter readings as OCPP MeterValue objects (OCPP 1.6 sections 3.16, 7.x).

Readings come from the board as integers (Wh, W, deci-amps, deci-volts,
percent); they are formatted here and nowhere else. The StopTransaction
data buffer is bounded by StopTransactionMaxMeterValues.
"""
from evse import timestamp

# measurand -> (unit, reading index in board.meter() tuple, decimals)
_MEASURANDS = {
    "Energy.Active.Import.Register": ("Wh", 0, 0),
    "Power.Active.Import": ("W", 1, 0),
    "Current.Import": ("A", 2, 1),
    "Voltage": ("V", 3, 1),
    "SoC": ("Percent", 4, 0),
}


def _fmt(v, decimals):
    if decimals == 0:
        return str(v)
    s = "-" if v < 0 else ""
    v = abs(v)
    return s + str(v // 10) + "." + str(v % 10)


def sample(reading, measurands, context, unix):
    """One MeterValue for `measurands` from a board reading tuple."""
    values = []
    for m in measurands:
        spec = _MEASURANDS.get(m)
        if spec is None:
            continue
        v = reading[spec[1]]
        if v is None:  # e.g. no SoC from this EV
            continue
        sv = {"value": _fmt(v, spec[2]), "context": context, "measurand": m, "unit": spec[0]}
        sv["location"] = "EV" if m == "SoC" else "Outlet"
        values.append(sv)
    return {"timestamp": timestamp.format_utc(unix), "sampledValue": values}


def configured(config, key):
    """The measurands of configuration key `key` this meter can supply."""
    return [m for m in config.get_list(key) if m in _MEASURANDS]


def seconds_to_aligned(unix, interval):
    """Seconds until the next multiple of `interval` after midnight UTC."""
    if interval <= 0:
        return None
    return interval - (unix % 86400) % interval


class TxData:
    """MeterValues collected for StopTransaction.transactionData.

    Keeps the first value (Transaction.Begin) and the most recent ones, at
    most `limit` in all, so memory stays bounded however long the session.
    """

    def __init__(self, limit):
        self.limit = max(0, limit)
        self.items = []

    def add(self, mv):
        if not mv["sampledValue"] or self.limit == 0:
            return
        if len(self.items) >= self.limit:
            del self.items[1 if self.limit > 1 else 0]
        self.items.append(mv)
