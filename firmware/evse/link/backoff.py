"""The reconnect policy: how long to wait before the next connect."""
from evse.compat import random_bytes


def _rand_below(n):
    return int.from_bytes(random_bytes(4), "big") % n


class Backoff:
    """Reconnect delays: exponential growth with "equal jitter".

    Attempt k draws uniformly from [cap/2, cap], cap = min(max_ms,
    base_ms * 2**k): never more than max_ms, and never less than half the
    ceiling, so stations do not all reconnect at once after a CSMS outage.
    `rand(n)` returns an int in [0, n) (injectable for tests).
    """

    def __init__(self, base_ms=1000, max_ms=60000, rand=None):
        self.base_ms = base_ms
        self.max_ms = max_ms
        self._rand = rand or _rand_below
        self._cap = min(base_ms, max_ms)

    def next_ms(self) -> int:
        cap = self._cap
        self._cap = min(self.max_ms, cap * 2)
        half = cap // 2
        return half + self._rand(cap - half + 1)

    def reset(self) -> None:
        self._cap = min(self.base_ms, self.max_ms)
