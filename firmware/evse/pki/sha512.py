"""SHA-384 and SHA-512 (FIPS 180-4 sections 6.4, 6.5) in plain Python.

Fallback for ports whose hashlib has only sha256; used for certificate hash
data and SHA-384/512 certificate signatures: short inputs, so speed matters
little. Streaming: update() keeps at most one 128-byte block buffered.
"""

_M = 0xFFFFFFFFFFFFFFFF
_K = None  # round constants, built on first use (80 x 64-bit)


def _k():
    # The constants are the first 64 bits of the fractional parts of the cube
    # roots of the first 80 primes; computing them avoids an 80-line table.
    global _K
    if _K is None:
        primes = []
        c = 2
        while len(primes) < 80:
            if all(c % p for p in primes if p * p <= c):
                primes.append(c)
            c += 1
        _K = [_icbrt(p << 192) & _M for p in primes]
    return _K


def _icbrt(v):
    # Integer cube root (floor) by Newton's method.
    x = 1 << 70  # above every root we need (primes < 410): Newton descends
    while True:
        y = (2 * x + v // (x * x)) // 3
        if y >= x:
            return x
        x = y


def _isqrt_frac(p):
    # First 64 bits of the fractional part of sqrt(p) (initial hash values).
    v = p << 128
    x = 1 << 70
    while True:
        y = (x + v // x) // 2
        if y >= x:
            return x & _M
        x = y


def _r(x, n):
    return ((x >> n) | (x << (64 - n))) & _M


def _block(h, blk):
    w = [int.from_bytes(blk[i:i + 8], "big") for i in range(0, 128, 8)]
    for t in range(16, 80):
        a, b = w[t - 15], w[t - 2]
        s0 = _r(a, 1) ^ _r(a, 8) ^ (a >> 7)
        s1 = _r(b, 19) ^ _r(b, 61) ^ (b >> 6)
        w.append((w[t - 16] + s0 + w[t - 7] + s1) & _M)
    k = _k()
    a, b, c, d, e, f, g, hh = h
    for t in range(80):
        t1 = (hh + (_r(e, 14) ^ _r(e, 18) ^ _r(e, 41)) + ((e & f) ^ ((e ^ _M) & g)) + k[t] + w[t]) & _M
        t2 = ((_r(a, 28) ^ _r(a, 34) ^ _r(a, 39)) + ((a & b) ^ (a & c) ^ (b & c))) & _M
        hh, g, f, e, d, c, b, a = g, f, e, (d + t1) & _M, c, b, a, (t1 + t2) & _M
    return [(x + y) & _M for x, y in zip(h, (a, b, c, d, e, f, g, hh))]


class SHA512:
    digest_size = 64
    _PRIMES = (2, 3, 5, 7, 11, 13, 17, 19)

    def __init__(self, data=b""):
        self._h = self._init()
        self._buf = b""
        self._n = 0
        if data:
            self.update(data)

    def _init(self):
        return [_isqrt_frac(p) for p in self._PRIMES]

    def update(self, data):
        data = self._buf + bytes(data)
        self._n += len(data) - len(self._buf)
        end = len(data) - len(data) % 128
        for i in range(0, end, 128):
            self._h = _block(self._h, data[i:i + 128])
        self._buf = data[end:]

    def digest(self):
        n = self._n
        tail = self._buf + b"\x80"
        tail += bytes((112 - len(tail)) % 128) + (n * 8).to_bytes(16, "big")
        h = self._h
        for i in range(0, len(tail), 128):
            h = _block(h, tail[i:i + 128])
        return b"".join(x.to_bytes(8, "big") for x in h)[:self.digest_size]


class SHA384(SHA512):
    digest_size = 48
    _PRIMES = (23, 29, 31, 37, 41, 43, 47, 53)  # the 9th..16th primes (FIPS 180-4 5.3.4)
