"""Named one-shot deadlines on the tick clock.

The set of names is fixed by the code (heartbeat, boot retry, sampling...),
so the table is bounded. The runtime sleeps until `next_ms()`; nothing polls.
"""
from evse.compat import ticks_add, ticks_diff


class Timers:
    def __init__(self):
        self._due = {}

    def start(self, name, now, delay_ms):
        self._due[name] = ticks_add(now, max(0, int(delay_ms)))

    def cancel(self, name):
        self._due.pop(name, None)

    def active(self, name):
        return name in self._due

    def pop_due(self, now):
        """Names whose deadline has come, earliest first (ties by name, so the
        order does not depend on dict order, which differs on MicroPython)."""
        due = [(-ticks_diff(now, t), n) for n, t in self._due.items() if ticks_diff(now, t) >= 0]
        due.sort()
        for _, n in due:
            del self._due[n]
        return [n for _, n in due]

    def next_ms(self, now):
        """Milliseconds until the earliest deadline (0 if overdue), or None."""
        best = None
        for t in self._due.values():
            d = ticks_diff(t, now)
            if best is None or d < best:
                best = d
        return None if best is None else max(0, best)
