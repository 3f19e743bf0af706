"""Control pilot PWM duty cycle <-> current, IEC 61851-1 Annex A.

Duty is in permille (tenths of a percent, 0..1000) so it maps directly onto
a PWM peripheral with 0.1 % resolution; current is in deci-amps (0.1 A).
Integer arithmetic only; every conversion rounds towards less current, so
the EV is never allowed more than the limit.
"""
from evse.compat import const

_MIN_DA = const(60)    # 6 A: below this no charging is allowed
_KNEE_DA = const(510)  # 51 A: switch from D = I / 0.6 to D = I / 2.5 + 64
_MAX_DA = const(800)   # 80 A: highest current the pilot can announce


def duty_for_da(da):
    """Duty (permille) announcing `da` deci-amps; 0 means "no charging allowed".

    6..51 A: D% = I / 0.6; 51..80 A: D% = I / 2.5 + 64; above 80 A clamped.
    Below 6 A returns 0: the station must stop offering energy (SuspendedEVSE).
    """
    if da < _MIN_DA:
        return 0
    da = min(da, _MAX_DA)
    if da <= _KNEE_DA:
        return da * 5 // 3          # permille = (da / 10) / 0.6 * 10
    # permille = ((da / 10) / 2.5 + 64) * 10. The two formulas do not meet:
    # 51..52.5 A would give < 85 %, which an EV reads with the lower formula,
    # so hold 85 % (51 A) there: duty stays monotonic, the EV stays below da.
    d = da * 2 // 5 + 640
    return max(850, d)


def da_for_duty(duty):
    """Deci-amps an EV may draw for pilot duty `duty` (permille); 0 = none.

    8..10 % -> 6 A; 10..85 % -> I = D * 0.6; 85..96 % -> I = (D - 64) * 2.5;
    96..97 % -> 80 A; anything else (incl. 5 % digital mode) -> no charging.
    """
    if 80 <= duty < 100:
        return _MIN_DA
    if 100 <= duty <= 850:
        return duty * 3 // 5
    if 850 < duty <= 960:
        return (duty - 640) * 5 // 2
    if 960 < duty <= 970:
        return _MAX_DA
    return 0
