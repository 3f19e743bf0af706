"""Control pilot (IEC 61851-1 Annex A): 1 kHz PWM out, level sensing in.

Front end assumed (OpenEVSE-style): the PWM pin drives a +/-12 V op-amp
stage that feeds the pilot through 1 kOhm; pin high = +12 V, pin low = -12 V.
So, in permille of duty:
  1000  DC +12 V: no PWM, no charging allowed (states A/B; boards.pilotduty gives 0)
  100..960  PWM announcing 6..80 A (boards.pilotduty.duty_for_da)
  0     DC -12 V: state F, station unavailable
A divider with offset maps -12..+12 V onto the ADC; two raw readings, at
-12 V and at +12 V, calibrate it (linear, integer millivolts).

Sensing: a burst of ADC reads spread over one PWM period; the highest is
the high level (the EV state), the lowest the low level (the EV diode).
States (high level, +/-1 V, IEC 61851-1): A 12, B 9, C 6, D 3, E 0,
F -12 V; a level in none of the bands is "?". A state counts once it was
read on `debounce` bursts in a row.

Missing diode: while the PWM runs with an EV in B/C/D, the low level must
reach -12 V; a low level that goes negative but stays above -11 V means the
EV's diode is missing (or shorted). It latches until the EV leaves (state
A), because the station stops the PWM on the fault and could not see it
any more. The board reports it as EVCommunicationError (see boards/hal.py).
"""
from evse.compat import const
from boards.pilotduty import duty_for_da

_FREQ = const(1000)
_TOL_MV = const(1000)
_F_MV = const(-12000)
_FULL = const(1000)  # permille
# Nominal high levels, mV (IEC 61851-1 Table A.3 simplified to +/-1 V).
_LEVELS = (("A", 12000), ("B", 9000), ("C", 6000), ("D", 3000), ("E", 0), ("F", -12000))


def level_state(mv):
    """The CP state of a high level in mV; None if in no band."""
    for name, nominal in _LEVELS:
        if nominal - _TOL_MV <= mv <= nominal + _TOL_MV:
            return name
    return None


class Pilot:
    """One pilot line. `pwm`: duty_u16()/freq(), `adc`: read_u16()."""

    def __init__(self, pwm, adc, raw_n12=4000, raw_p12=60000, samples=24,
                 debounce=3, invert=False):
        if raw_p12 == raw_n12 or samples < 2 or debounce < 1:
            raise ValueError("bad pilot parameters")
        self.pwm = pwm
        self.adc = adc
        self.raw_n12 = raw_n12
        self.raw_p12 = raw_p12
        self.samples = samples
        self.debounce = debounce
        self.invert = invert  # an inverting driver stage: pin high = -12 V
        self.permille = _FULL
        self.state = None  # debounced: "A".."F", "?"; None until confirmed
        self.diode_fault = False
        self.high_mv = self.low_mv = 0  # last burst, for diagnostics
        self._cand = None
        self._n = 0
        self._bad_diode = 0
        pwm.freq(_FREQ)
        self._out(_FULL)

    # -- output --------------------------------------------------------
    def set_da(self, da):
        """Announce `da` deci-amps; below 6 A: DC +12 V (no charging)."""
        d = duty_for_da(da) if da > 0 else 0
        self._out(d if d else _FULL)

    def set_f(self):
        """State F (-12 V): the station is unavailable (IEC 61851-1 A.2)."""
        self._out(0)

    def pwm_running(self):
        return 0 < self.permille < _FULL

    def _out(self, permille):
        self.permille = permille
        d = _FULL - permille if self.invert else permille
        self.pwm.duty_u16(d * 65535 // _FULL)

    # -- sensing -------------------------------------------------------
    def reconfirm(self):
        """Forget the debounced state: it is confirmed again from new bursts
        (the diode latch stays)."""
        self.state = None
        self._cand = None
        self._n = 0

    def mv(self, raw):
        """ADC raw reading -> pilot millivolts (two-point calibration)."""
        return (raw - self.raw_n12) * 24000 // (self.raw_p12 - self.raw_n12) + _F_MV

    def measure(self):
        """One burst: (high mV, low mV)."""
        adc = self.adc
        hi = lo = adc.read_u16()
        for _ in range(self.samples - 1):
            r = adc.read_u16()
            if r > hi:
                hi = r
            elif r < lo:
                lo = r
        self.high_mv = self.mv(hi)
        self.low_mv = self.mv(lo)
        return self.high_mv, self.low_mv

    def sense(self):
        """Take one burst, update the debounced state; returns it."""
        hi, lo = self.measure()
        s = level_state(hi)
        running = self.pwm_running()
        if s == "F" and running:
            # No high sample in the burst (short high phase at low duty):
            # a miss, not a reading.
            return self.state
        s = s or "?"
        if s == self._cand:
            self._n += 1
        else:
            self._cand = s
            self._n = 1
        if self._n >= self.debounce:
            self.state = s
        if self.state == "A":
            self.diode_fault = False
            self._bad_diode = 0
        elif running and s in ("B", "C", "D") and lo < -_TOL_MV:
            # The burst caught the negative phase: it must reach -12 V.
            if lo > _F_MV + _TOL_MV:
                self._bad_diode += 1
                if self._bad_diode >= self.debounce:
                    self.diode_fault = True
            else:
                self._bad_diode = 0
        return self.state
