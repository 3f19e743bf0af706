"""The one module that knows which Python it runs on.

CPython, MicroPython and CircuitPython differences live here and nowhere
else: tick arithmetic, the wall-clock epoch, random bytes, CRC32, hex.
"""
import sys
import time

try:
    from micropython import const
except ImportError:  # CPython: const() is just the value.
    def const(x):  # type: ignore[no-redef]
        return x

MICROPYTHON = sys.implementation.name in ("micropython", "circuitpython")
# CircuitPython: asyncio is Adafruit's library and sockets come from
# socketpool, so streams go through evse.link.cpsocket (evse.link.transport picks).
CIRCUITPYTHON = sys.implementation.name == "circuitpython"

# MicroPython's ticks wrap at 2**30 ms (~12.4 days). CPython emulates the
# same wrap so host tests exercise the wrap-around paths too.
TICKS_PERIOD = const(1 << 30)
_TICKS_MAX = const((1 << 30) - 1)
_TICKS_HALF = const(1 << 29)


def ticks_add(t, delta):
    """Tick value `delta` ms after `t` (wrapping)."""
    return (t + delta) & _TICKS_MAX


def ticks_diff(a, b):
    """Signed ms from b to a; correct across one wrap."""
    d = (a - b) & _TICKS_MAX
    return d - TICKS_PERIOD if d >= _TICKS_HALF else d


def _extend(raw, period):
    """A 2**30-wrapping tick function over `raw()`, a ms counter that wraps
    at `period` (a power of two below 2**30). It adds up the steps between
    calls, so it must be called at least once per `period` (the runtime
    calls it every few seconds; CircuitPython's period is 6.2 days)."""
    mask = period - 1
    st = [raw(), 0]  # raw value at the last call, our tick then
    st[1] = st[0] & _TICKS_MAX

    def ticks():
        r = raw()
        st[1] = (st[1] + ((r - st[0]) & mask)) & _TICKS_MAX
        st[0] = r
        return st[1]

    return ticks


def make_ticks(tm, sup=None):
    """The best ms tick source of a platform: MicroPython's time.ticks_ms;
    CircuitPython's supervisor.ticks_ms (wraps at 2**29, extended to 2**30;
    a small int, so no allocation per call); time.monotonic_ns (exact, a
    big int on boards); float time.monotonic() last (on CircuitPython a
    float loses whole ms after about 1.2 hours of uptime)."""
    if hasattr(tm, "ticks_ms"):
        return tm.ticks_ms
    if sup is not None and hasattr(sup, "ticks_ms"):
        return _extend(sup.ticks_ms, 1 << 29)
    if hasattr(tm, "monotonic_ns"):
        return lambda: (tm.monotonic_ns() // 1000000) & _TICKS_MAX
    return lambda: int(tm.monotonic() * 1000) & _TICKS_MAX


def _supervisor():
    try:
        import supervisor  # CircuitPython only

        return supervisor
    except ImportError:
        return None


ticks_ms = make_ticks(time, _supervisor() if CIRCUITPYTHON else None)


def sleep_ms(ms):
    """Block for `ms` milliseconds (CircuitPython has no time.sleep_ms)."""
    f = getattr(time, "sleep_ms", None)
    if f is not None:
        f(ms)
    else:
        time.sleep(ms / 1000)


# Seconds between the platform epoch and 1970-01-01 (ESP32 counts from 2000).
try:
    EPOCH_OFFSET = 946684800 if time.gmtime(0)[0] == 2000 else 0
except Exception:  # pragma: no cover - ports without gmtime
    EPOCH_OFFSET = 0


def unix_time():
    """Wall clock, whole seconds since 1970-01-01 UTC, on every port."""
    return int(time.time()) + EPOCH_OFFSET


try:
    from os import urandom as _urandom
except ImportError:  # the WebAssembly VM has no os.urandom
    _urandom = None  # type: ignore[assignment]


def random_bytes(n):
    if _urandom is not None:
        return _urandom(n)
    import random
    return bytes(random.getrandbits(8) for _ in range(n))


try:
    from binascii import crc32 as _crc32
except ImportError:
    _crc32 = None  # type: ignore[assignment]


def crc32(data, crc=0):
    """CRC-32 (IEEE, as zlib) of `data`, continuing from `crc`."""
    if _crc32 is not None:
        return _crc32(data, crc) & 0xFFFFFFFF
    crc ^= 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0xEDB88320 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


def hexlify(data):
    """Lower-case hex string of `data` (MicroPython has no bytes.hex on all ports)."""
    from binascii import hexlify as _hx
    return _hx(data).decode()


def sha256_hasher(data=b""):
    """An incremental SHA-256 object (update(), digest()); CircuitPython's
    hashlib has only new(name, data)."""
    import hashlib
    f = getattr(hashlib, "sha256", None)
    if f is not None:
        return f(data)
    return hashlib.new("sha256", data)


def sha256(data):
    """SHA-256 digest of `data`, on every port."""
    return sha256_hasher(data).digest()
