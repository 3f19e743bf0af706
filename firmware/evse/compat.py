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


if hasattr(time, "ticks_ms"):
    ticks_ms = time.ticks_ms  # type: ignore[attr-defined]
else:
    def ticks_ms():
        return int(time.monotonic() * 1000) & _TICKS_MAX

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


def sha256(data):
    import hashlib
    return hashlib.sha256(data).digest()
