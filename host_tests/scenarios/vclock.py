"""A virtual clock for the sans-IO core: time moves only when told to."""
from evse.compat import ticks_add


class VirtualClock:
    def __init__(self, unix=1767225600, ms=0):  # 2026-01-01T00:00:00Z
        self._ms = ms
        self._unix_ms = unix * 1000

    def ms(self):
        return self._ms

    def unix(self):
        return self._unix_ms // 1000

    def set_unix(self, t):
        self._unix_ms = int(t) * 1000

    def advance(self, ms):
        self._ms = ticks_add(self._ms, ms)
        self._unix_ms += ms
