"""The energy register the meter drivers share: whole Wh from integer
counts, exactly (no float: single precision on the MCUs)."""


def _gcd(a, b):
    while b:
        a, b = b, a % b
    return a


class EnergyCounter:
    """Wh = counts * num / den, kept as whole Wh plus the remainder in
    count * num units, so no fraction of a Wh is ever lost or rounded."""

    def __init__(self, num, den):
        if num <= 0 or den <= 0:
            raise ValueError("bad energy calibration")
        g = _gcd(num, den)
        self._num = num // g
        self._den = den // g
        self.wh = 0
        self._rem = 0

    def restore(self, wh):
        """Continue from a persisted value (boot): the remainder starts at 0."""
        self.wh = wh
        self._rem = 0

    def add(self, counts):
        r = self._rem + counts * self._num
        self.wh += r // self._den
        self._rem = r % self._den
