"""The real clock handed to the core: ticks plus a settable wall clock.

The CSMS sets the time (BootNotification/Heartbeat currentTime); we keep an
offset instead of touching the RTC, so it works the same on every port.
"""
from evse.compat import ticks_ms, unix_time


class SystemClock:
    def __init__(self):
        self.offset = 0

    def ms(self):
        return ticks_ms()

    def unix(self):
        return unix_time() + self.offset

    def set_unix(self, t):
        self.offset = int(t) - unix_time()
