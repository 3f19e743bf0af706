"""RSASSA-PKCS1-v1_5 signature verification (RFC 8017 section 8.2.2).

The expected encoded message is rebuilt and compared byte for byte
(EMSA-PKCS1-v1_5, section 9.2), so no padding or ASN.1 parser is involved.
"""
from evse.pki.der import bit_length

# DER DigestInfo prefixes (RFC 8017 section 9.2, note 1), NULL parameters included.
_PREFIX = {
    "SHA256": b"\x30\x31\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01\x05\x00\x04\x20",
    "SHA384": b"\x30\x41\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x02\x05\x00\x04\x30",
    "SHA512": b"\x30\x51\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x03\x05\x00\x04\x40",
}


def verify(n: int, e: int, digest: bytes, sig: bytes, alg: str = "SHA256") -> bool:
    """True when `sig` is the PKCS#1 v1.5 signature of `digest` (made with
    hash `alg`) under public key (n, e); False otherwise."""
    prefix = _PREFIX.get(alg)
    k = (bit_length(n) + 7) // 8
    sig = bytes(sig)
    if prefix is None or len(sig) != k or len(prefix) + len(digest) + 11 > k:
        return False
    s = int.from_bytes(sig, "big")
    if s >= n:
        return False
    em = pow(s, e, n).to_bytes(k, "big")
    t = prefix + bytes(digest)
    want = b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t
    return em == want
