"""Virtual EV and single-phase meter of the host simulator board.

The EV follows IEC 61851-1 from the vehicle side: it requests energy
(state C) only while it is plugged, not suspended, not full and the pilot
offers at least 6 A; then it draws min(offered, its own maximum).

Energy is integer arithmetic throughout: power in centiwatts (deci-volts
times deci-amps) times milliseconds, carried into whole Wh, so any split of
an interval into polls gives the same register to the last cW*ms.
"""
from evse.compat import const

_CWMS_PER_WH = const(360000000)  # 1 Wh = 3600 s * 1000 ms * 100 cW
_MIN_DA = const(60)  # IEC 61851-1: no charging below 6 A


class Energy:
    """Monotonic energy register: whole Wh plus a remainder in cW*ms."""

    def __init__(self, wh=0, rem=0):
        self.wh = wh
        self.rem = rem

    def add(self, cw, ms):
        r = self.rem + cw * ms
        self.wh += r // _CWMS_PER_WH
        self.rem = r % _CWMS_PER_WH

    def needed(self, wh):
        """cW*ms still to add before the register reaches `wh` (<= 0: reached)."""
        return (wh - self.wh) * _CWMS_PER_WH - self.rem


def valid_energy(wh, rem):
    """True if (wh, rem) is a register value restore may accept."""
    return (type(wh) is int and type(rem) is int and wh >= 0
            and 0 <= rem < _CWMS_PER_WH)


class Meter:
    """Single-phase meter: constant voltage, the EV's current, a Wh register."""

    def __init__(self, voltage_dv=2300, wh=0):
        self.voltage_dv = voltage_dv
        self.current_da = 0
        self.reg = Energy(wh)

    def power_cw(self):
        return self.voltage_dv * self.current_da

    def power_w(self):
        return self.voltage_dv * self.current_da // 100


class EV:
    """A battery EV behind a fixed cable; it stays the same car across plugs."""

    def __init__(self, max_da=320, battery_wh=40000, soc=20):
        if battery_wh <= 0 or max_da < 0 or not 0 <= soc <= 100:
            raise ValueError("bad EV parameters")
        self.max_da = max_da
        self.battery_wh = battery_wh
        self.soc0 = soc
        self.plugged = False
        self.suspended = False  # by the driver / the EV's own timer (ev-suspend)
        self.charged = Energy()  # into the battery since the model started
        self.plug_wh = 0  # charged.wh at plug-in, for the session total
        # Whole Wh after which soc() reads 100: soc0 + wh*100//bat >= 100.
        self._full_wh = -(-(100 - soc) * battery_wh // 100)

    def soc(self):
        s = self.soc0 + self.charged.wh * 100 // self.battery_wh
        return min(s, 100)

    def full(self):
        return self.charged.wh >= self._full_wh

    def session_wh(self):
        return self.charged.wh - self.plug_wh if self.plugged else 0

    def demand_da(self, offered_da):
        """Current the EV takes under `offered_da`; 0 means it stays in B."""
        if not self.plugged or self.suspended or self.full() or offered_da < _MIN_DA:
            return 0
        return min(offered_da, self.max_da)

    def ms_to_full(self, cw):
        """Whole ms of drawing `cw` centiwatts until the battery is full."""
        need = self.charged.needed(self._full_wh)
        return -(-need // cw) if need > 0 else 0
