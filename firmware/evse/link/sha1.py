"""SHA-1 (FIPS 180-4 section 6.1) in plain Python.

Fallback for ports whose `hashlib` lacks sha1 (the WebAssembly VM has only
sha256). RFC 6455 needs it once per connection to check
Sec-WebSocket-Accept, so speed does not matter; memory stays at one 80-word
schedule.
"""

_M32 = 0xFFFFFFFF


def _rotl(x, n):
    return ((x << n) | (x >> (32 - n))) & _M32


def _block(h, blk):
    w = [int.from_bytes(blk[i:i + 4], "big") for i in range(0, 64, 4)]
    for t in range(16, 80):
        w.append(_rotl(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1))
    a, b, c, d, e = h
    for t in range(80):
        if t < 20:
            f = (b & c) | (~b & d)
            k = 0x5A827999
        elif t < 40:
            f = b ^ c ^ d
            k = 0x6ED9EBA1
        elif t < 60:
            f = (b & c) | (b & d) | (c & d)
            k = 0x8F1BBCDC
        else:
            f = b ^ c ^ d
            k = 0xCA62C1D6
        tmp = (_rotl(a, 5) + f + e + k + w[t]) & _M32
        e = d
        d = c
        c = _rotl(b, 30)
        b = a
        a = tmp
    return [(x + y) & _M32 for x, y in zip(h, (a, b, c, d, e))]


def sha1(data: bytes) -> bytes:
    """20-byte SHA-1 digest of `data`."""
    n = len(data)
    # Padding (FIPS 180-4 5.1.1): 0x80, zeros, then the bit length in 64 bits.
    tail = bytes(data[n - n % 64:]) + b"\x80"
    tail += bytes((56 - len(tail)) % 64) + (n * 8).to_bytes(8, "big")
    h = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0]
    for i in range(0, n - n % 64, 64):
        h = _block(h, data[i:i + 64])
    for i in range(0, len(tail), 64):
        h = _block(h, tail[i:i + 64])
    return b"".join(x.to_bytes(4, "big") for x in h)
