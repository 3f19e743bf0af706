"""RSA signature verification (RFC 8017): RSASSA-PKCS1-v1_5 (section 8.2.2)
and RSASSA-PSS (section 8.1.2, MGF1 with the message's hash).

PKCS#1 v1.5: the expected encoded message is rebuilt and compared byte for
byte (EMSA-PKCS1-v1_5, section 9.2), so no padding or ASN.1 parser is
involved. PSS: EMSA-PSS-VERIFY (section 9.1.2) with the salt length
recovered from the encoded message (the first non-zero octet of DB is the
0x01 before the salt), so a signature with any salt length the signer
chose (0, the hash length, the maximum) verifies, as OpenSSL's "auto".
"""
from evse.pki import hashes
from evse.pki.der import bit_length

# DER DigestInfo prefixes (RFC 8017 section 9.2, note 1), NULL parameters included.
_PREFIX = {
    "SHA256": b"\x30\x31\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01\x05\x00\x04\x20",
    "SHA384": b"\x30\x41\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x02\x05\x00\x04\x30",
    "SHA512": b"\x30\x51\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x03\x05\x00\x04\x40",
}


def _open(n, e, sig, length):
    """RSAVP1 of `sig` as `length` octets, or None (wrong size, s >= n, or
    a representative that does not fit)."""
    k = (bit_length(n) + 7) // 8
    sig = bytes(sig)
    if len(sig) != k:
        return None
    s = int.from_bytes(sig, "big")
    if s >= n:
        return None
    m = pow(s, e, n)
    if length < k and m >> (8 * length):
        return None  # PSS with emLen = k - 1: the top octet must be zero
    return m.to_bytes(length, "big")


def _pkcs1(em, digest, alg):
    prefix = _PREFIX.get(alg)
    k = len(em)
    if prefix is None or len(prefix) + len(digest) + 11 > k:
        return False
    t = prefix + bytes(digest)
    return em == b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t


def verify(n: int, e: int, digest: bytes, sig: bytes, alg: str = "SHA256", pss: bool = False) -> bool:
    """True when `sig` is the PKCS#1 v1.5 signature of `digest` (made with
    hash `alg`) under public key (n, e), or, with `pss`, a PKCS#1 v1.5 or a
    PSS one (one modular exponentiation for both); False otherwise."""
    k = (bit_length(n) + 7) // 8
    em = _open(n, e, sig, k)
    if em is None:
        return False
    if _pkcs1(em, digest, alg):
        return True
    if not pss:
        return False
    em_bits = bit_length(n) - 1
    if em_bits % 8 == 0:  # emLen = k - 1: the top octet of the k must be zero
        if em[0]:
            return False
        em = em[1:]
    return _pss(em, em_bits, digest, alg)


def verify_pss(n: int, e: int, digest: bytes, sig: bytes, alg: str = "SHA256") -> bool:
    """True when `sig` is the RSASSA-PSS signature of `digest` (hash and
    MGF1 hash `alg`, any salt length) under public key (n, e)."""
    em_bits = bit_length(n) - 1
    em = _open(n, e, sig, (em_bits + 7) // 8)
    return em is not None and _pss(em, em_bits, digest, alg)


def _mgf1(seed, length, alg):
    out = bytearray()
    c = 0
    while len(out) < length:
        out.extend(hashes.digest(alg, seed + c.to_bytes(4, "big")))
        c += 1
    return out[:length]


def _pss(em, em_bits, digest, alg):
    # EMSA-PSS-VERIFY, RFC 8017 section 9.1.2, steps 3-14 (sLen recovered).
    h_len = hashes.SIZES.get(alg)
    em_len = len(em)
    if h_len is None or len(digest) != h_len or em_len < h_len + 2 or em[-1] != 0xBC:
        return False
    db_len = em_len - h_len - 1
    h = em[db_len:em_len - 1]
    top = 0xFF >> (8 * em_len - em_bits)  # bits of the leftmost octet that count
    if em[0] & ~top & 0xFF:
        return False
    db = _mgf1(h, db_len, alg)
    for i in range(db_len):
        db[i] ^= em[i]
    db[0] &= top
    i = 0
    while i < db_len and db[i] == 0:
        i += 1
    if i == db_len or db[i] != 1:
        return False
    salt = bytes(db[i + 1:])
    return hashes.digest(alg, b"\x00" * 8 + bytes(digest) + salt) == h
