"""Write JSON in pieces to a `write(str)` sink instead of one big string.

json.dumps of a big outgoing message (StopTransaction with its meter
values, GetConfiguration of every key, a composite schedule) holds the
whole text at once; dump() hands the sink short pieces, so the frame can
go out as WebSocket fragments or through one preallocated buffer (Chunks).

The output is the platform's json.dumps(obj, separators=(",", ":"))
byte for byte, modulo dict order: strings and floats are escaped by the
platform's own json (CPython escapes non-ASCII, MicroPython does not).
Unlike json.dumps, NaN and infinities are refused: they are not JSON.
"""
import json

from evse.compat import const

_CALLERROR = const(4)


def dump(obj, write):
    """Write `obj` (dict with str keys, list, tuple, str, int, float, bool,
    None) as compact JSON through write(str)."""
    if isinstance(obj, str):
        write(json.dumps(obj))
    elif obj is None:
        write("null")
    elif obj is True:
        write("true")
    elif obj is False:
        write("false")
    elif isinstance(obj, int):
        write(str(obj))
    elif isinstance(obj, float):
        if obj - obj != 0.0:  # NaN or an infinity (inf - inf is NaN)
            raise ValueError("not JSON: " + str(obj))
        write(json.dumps(obj))
    elif isinstance(obj, dict):
        sep = "{"
        for k in obj:
            if not isinstance(k, str):
                raise TypeError("JSON keys must be str")
            write(sep)
            write(json.dumps(k))
            write(":")
            dump(obj[k], write)
            sep = ","
        write("}" if sep == "," else "{}")
    elif isinstance(obj, (list, tuple)):
        sep = "["
        for v in obj:
            write(sep)
            dump(v, write)
            sep = ","
        write("]" if sep == "," else "[]")
    else:
        raise TypeError("not JSON serialisable: " + str(type(obj)))


def size(obj):
    """Bytes of the UTF-8 JSON text of `obj`, without building it (for a
    WebSocket frame header written before the payload)."""
    n = [0]

    def count(s):
        n[0] += len(s.encode())

    dump(obj, count)
    return n[0]


class Chunks:
    """A write() sink that packs the pieces into one preallocated buffer
    and calls emit(memoryview) each time it is full, and on flush() with
    the rest. emit must use (or copy) the view before returning."""

    def __init__(self, emit, size=512, buf=None):
        self._buf = bytearray(size) if buf is None else buf  # buf: the caller's, kept
        self._mv = memoryview(self._buf)
        self._n = 0
        self._emit = emit
        self.total = 0  # bytes emitted so far

    def write(self, s):
        data = s.encode() if isinstance(s, str) else s  # MicroPython: no copy
        i, k, n = 0, len(data), self._n
        size = len(self._buf)
        if n + k < size:  # the usual short piece: no view, no slice
            self._buf[n:n + k] = data
            self._n = n + k
            return
        data = memoryview(data)
        while i < k:
            m = min(k - i, size - self._n)
            self._buf[self._n:self._n + m] = data[i:i + m]
            self._n += m
            i += m
            if self._n == size:
                self.flush()

    def flush(self):
        """Emit what is buffered (nothing if empty)."""
        if self._n:
            self._emit(self._mv[:self._n])
            self.total += self._n
            self._n = 0
