"""ECDSA over P-256 (FIPS 186-5 section 6; SEC 1 section 4.1).

verify() takes the message digest (any hash; its leftmost 256 bits are used)
and a DER signature; sign() uses RFC 6979 deterministic nonces with
HMAC-SHA-256, so a weak RNG never leaks the key; keygen() draws from
compat.random_bytes.
"""

from evse.compat import sha256
from evse.pki import der as D
from evse.pki import p256

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def _z(digest):
    # SEC 1 4.1.3 step 5: the leftmost bit-length-of-n bits of the hash.
    e = int.from_bytes(bytes(digest), "big")
    excess = len(digest) * 8 - 256
    return e >> excess if excess > 0 else e


def decode_sig(sig):
    """(r, s) of a DER Ecdsa-Sig-Value; ValueError unless it is strict DER."""
    d = D.Der(bytes(sig))
    s = d.enter()
    d.finish()
    r = s.integer()
    v = s.integer()
    s.finish()
    return r, v


def encode_sig(r, s):
    return D.seq(D.integer(r), D.integer(s))


def verify_rs(pub, digest, r, s):
    """True when (r, s) signs `digest` for the affine public key `pub`."""
    n = p256.N
    if not (0 < r < n and 0 < s < n):
        return False
    w = pow(s, n - 2, n)  # n is prime: Fermat inverse
    e = _z(digest)
    pt = p256.mul_add(e * w % n, r * w % n, pub)
    return pt is not None and pt[0] % n == r


def verify(pub: "tuple[int, int]", digest: bytes, sig: bytes) -> bool:
    """True when the DER signature `sig` signs `digest`; False for any bad
    or malformed signature (it is attacker data, not a usage error)."""
    try:
        r, s = decode_sig(sig)
    except ValueError:
        return False
    return verify_rs(pub, digest, r, s)


def _hmac(key, msg):
    key = key + bytes(64 - len(key))
    inner = sha256(bytes(b ^ 0x36 for b in key) + msg)
    return sha256(bytes(b ^ 0x5C for b in key) + inner)


def nonce(d, digest):
    """RFC 6979 section 3.2 k for key d and message hash `digest` (HMAC-SHA-256)."""
    n = p256.N
    x = d.to_bytes(32, "big")
    h = (_z(digest) % n).to_bytes(32, "big")  # bits2octets
    v = b"\x01" * 32
    k = b"\x00" * 32
    k = _hmac(k, v + b"\x00" + x + h)
    v = _hmac(k, v)
    k = _hmac(k, v + b"\x01" + x + h)
    v = _hmac(k, v)
    while True:
        v = _hmac(k, v)
        c = int.from_bytes(v, "big")
        if 0 < c < n:
            return c
        k = _hmac(k, v + b"\x00")
        v = _hmac(k, v)


def sign(d: int, digest: bytes) -> bytes:
    """DER signature of `digest` with private scalar d."""
    n = p256.N
    e = _z(digest)
    k = nonce(d, digest)
    while True:
        pt = p256.mul(k)
        r = pt[0] % n
        s = pow(k, n - 2, n) * (e + r * d) % n
        if r and s:
            return encode_sig(r, s)
        k = (k + 1) % n or 1  # astronomically unlikely; never reuse k


def keygen(random_bytes: "Any" = None) -> "tuple[int, tuple[int, int]]":
    """(d, (x, y)): a new key pair by rejection sampling (FIPS 186-5 A.2.2)."""
    if random_bytes is None:
        from evse.compat import random_bytes
    while True:
        d = int.from_bytes(random_bytes(32), "big")
        if 0 < d < p256.N:
            return d, p256.mul(d)
