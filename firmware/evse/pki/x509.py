"""X.509 certificate parsing (RFC 5280 section 4; v3, and v1/v2 without extensions), only what a station needs.

`Certificate(der)` keeps the DER and memoryview slices into it (no copies of
the to-be-signed part). Malformed input raises ValueError. Names compare by
their DER bytes (what a CA writes is what a child carries as issuer).
"""
from evse.pki import der as D
from evse.timestamp import days_from_civil

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# OIDs we act on.
OID_CN = "2.5.4.3"
OID_O = "2.5.4.10"
EC_KEY = "1.2.840.10045.2.1"
P256 = "1.2.840.10045.3.1.7"
RSA_KEY = "1.2.840.113549.1.1.1"
# signature algorithm -> (key type, hash name)
SIG_ALGS = {
    "1.2.840.113549.1.1.11": ("rsa", "SHA256"),
    "1.2.840.113549.1.1.12": ("rsa", "SHA384"),
    "1.2.840.113549.1.1.13": ("rsa", "SHA512"),
    "1.2.840.10045.4.3.2": ("ec", "SHA256"),
    "1.2.840.10045.4.3.3": ("ec", "SHA384"),
    "1.2.840.10045.4.3.4": ("ec", "SHA512"),
}
_BASIC = "2.5.29.19"
_KEY_USAGE = "2.5.29.15"
_EKU = "2.5.29.37"
# Extensions we either process or may safely ignore when marked critical
# (SAN: names are matched by the TLS layer; key identifiers are informational).
_KNOWN = (_BASIC, _KEY_USAGE, _EKU, "2.5.29.17", "2.5.29.14", "2.5.29.35")

MAX_RSA_BITS = 4096

# Key usage bit numbers (RFC 5280 4.2.1.3).
KU_DIGITAL_SIGNATURE = 0
KU_KEY_CERT_SIGN = 5

_STRING_TAGS = (D.UTF8, D.PRINTABLE, D.IA5, 0x14, 0x1A)  # + T61, Visible


class Certificate:
    """A parsed certificate. Attributes:
    der, tbs (memoryview), version, serial (int), sig_alg (oid), sig_hash
    ("SHA256"/"SHA384"/"SHA512" or None when unsupported), signature (bytes),
    issuer / subject (DER memoryviews), issuer_attrs / subject_attrs
    ([(oid, str)]), not_before / not_after (unix s), key_type ("ec", "rsa"
    or None when unsupported), key ((x, y) on P-256 or (n, e)), key_bits
    (memoryview of the subjectPublicKey BIT STRING value), ca (bool),
    path_len (int or None), key_usage (bit mask or None when absent),
    eku (list of oids or None), unknown_critical (bool), v1_root (bool: an
    X.509 v1 self-issued certificate, a CA only as a trust anchor)."""

    def __init__(self, der: "Any") -> None:
        self.der = der = bytes(der)
        outer = D.Der(der)
        top = outer.enter()
        outer.finish()
        start = top.pos
        _, s, e = top.read(D.SEQUENCE)
        self.tbs = memoryview(der)[start:e]
        alg = top.raw(D.SEQUENCE)
        unused, sig = top.bits()
        top.finish()
        if unused:
            raise ValueError("x509: signature bits")
        self.signature = bytes(sig)
        self.sig_alg = _alg_oid(alg)
        kind = SIG_ALGS.get(self.sig_alg)
        self.sig_hash = kind[1] if kind else None
        self._tbs(D.Der(der, s, e), alg)

    def _tbs(self, t, alg):
        self.version = 1
        if t.peek() == 0xA0:
            v = t.enter(0xA0)
            self.version = v.integer() + 1
            v.finish()
            if self.version not in (2, 3):
                raise ValueError("x509: version")
        self.serial = t.integer()
        if bytes(t.raw(D.SEQUENCE)) != bytes(alg):
            raise ValueError("x509: signature algorithm mismatch")
        self.issuer = t.raw(D.SEQUENCE)
        self.issuer_attrs = parse_name(self.issuer)
        v = t.enter()
        self.not_before = read_time(v)
        self.not_after = read_time(v)
        v.finish()
        self.subject = t.raw(D.SEQUENCE)
        self.subject_attrs = parse_name(self.subject)
        self._spki(t.enter())
        self.ca = False
        self.path_len = None
        self.key_usage = None
        self.eku = None
        self.unknown_critical = False
        for n in (0x81, 0x82):  # issuerUniqueID / subjectUniqueID: skipped
            if t.peek() == n or t.peek() == n + 0x20:
                t.read()
        if t.peek() == 0xA3:
            if self.version != 3:
                raise ValueError("x509: extensions in v1/v2")
            x = t.enter(0xA3)
            self._extensions(x.enter())
            x.finish()
        t.finish()
        # An X.509 v1 certificate has no basicConstraints to say it is a CA;
        # a self-issued one may still be a trust anchor, made one out of band
        # (RFC 5280 6.1.4 (k)): its installation as a root. Only roots use it.
        self.v1_root = self.version == 1 and self.self_issued()

    def _spki(self, s):
        a = s.enter()
        kind = a.oid()
        self.key_type = None
        self.key = None
        unused, self.key_bits = s.bits()
        s.finish()
        if unused:
            raise ValueError("x509: key bits")
        if kind == EC_KEY:
            if a.peek() == D.OID and a.oid() == P256:
                from evse.pki import p256
                self.key = p256.decode_point(self.key_bits)
                self.key_type = "ec"
        elif kind == RSA_KEY:
            if a.peek() == D.NULL:
                a.null()
            self.key = n, e = rsa_key(self.key_bits)
            # Bounds keep one verification affordable on an MCU.
            if D.bit_length(n) <= MAX_RSA_BITS and e < 1 << 32:
                self.key_type = "rsa"

    def _extensions(self, exts):
        seen = []
        while not exts.at_end():
            e = exts.enter()
            oid = e.oid()
            crit = e.boolean() if e.peek() == D.BOOLEAN else False
            val = e.content(D.OCTET_STRING)
            e.finish()
            if oid in seen:
                raise ValueError("x509: duplicate extension")
            seen.append(oid)
            v = D.Der(val)
            if oid == _BASIC:
                b = v.enter()
                self.ca = b.boolean() if b.peek() == D.BOOLEAN else False
                if b.peek() == D.INTEGER:
                    self.path_len = b.uint()
                b.finish()
            elif oid == _KEY_USAGE:
                unused, raw = v.bits()
                self.key_usage = _bit_mask(raw, unused)
            elif oid == _EKU:
                k = v.enter()
                self.eku = []
                while not k.at_end():
                    self.eku.append(k.oid())
            else:
                if crit and oid not in _KNOWN:
                    self.unknown_critical = True
                continue  # content not needed
            v.finish()

    @property
    def cn(self):
        return name_get(self.subject_attrs, OID_CN)

    @property
    def org(self):
        return name_get(self.subject_attrs, OID_O)

    def self_issued(self):
        return bytes(self.issuer) == bytes(self.subject)

    def has_usage(self, bit):
        """Key usage allows `bit` (an absent extension allows everything)."""
        return self.key_usage is None or bool(self.key_usage >> bit & 1)

    def key_size(self):
        if self.key_type == "rsa":
            return D.bit_length(self.key[0])
        return 256 if self.key_type == "ec" else 0


def _alg_oid(raw):
    a = D.Der(raw).enter()
    oid = a.oid()
    if not a.at_end():
        a.null()  # RSA algorithms carry NULL parameters
    a.finish()
    return oid


def _bit_mask(raw, unused):
    m = 0
    for i in range(len(raw) * 8 - unused):
        if raw[i >> 3] & (0x80 >> (i & 7)):
            m |= 1 << i
    return m


def rsa_key(bits):
    """(n, e) from an RSAPublicKey (RFC 8017 A.1.1)."""
    k = D.Der(bits)
    s = k.enter()
    k.finish()
    n = s.uint()
    e = s.uint()
    s.finish()
    if n < 3 or e < 3 or not (n & 1):
        raise ValueError("x509: bad RSA key")
    return n, e


def parse_name(raw):
    """[(oid, str)] of a Name, in order."""
    out = []
    n = D.Der(raw).enter()
    while not n.at_end():
        rdn = n.enter(D.SET)
        while not rdn.at_end():
            a = rdn.enter()
            oid = a.oid()
            tag, s, e = a.read()
            a.finish()
            out.append((oid, _string(tag, a.buf, s, e)))
    return out


def _string(tag, buf, s, e):
    b = bytes(buf[s:e])
    if tag == 0x1E:  # BMPString: UCS-2 big-endian
        if len(b) & 1:
            raise ValueError("x509: bad BMPString")
        return "".join(chr(b[i] << 8 | b[i + 1]) for i in range(0, len(b), 2))
    try:
        return b.decode()
    except Exception:
        if tag in _STRING_TAGS:
            raise ValueError("x509: bad string") from None
        return ""


def name_get(attrs, oid):
    for k, v in attrs:
        if k == oid:
            return v
    return None


def read_time(d):
    """UTCTime / GeneralizedTime ('Z' form, as RFC 5280 4.1.2.5 requires) -> unix s."""
    tag, s, e = d.read()
    t = bytes(d.buf[s:e])
    if tag == D.UTC_TIME and len(t) == 13:
        y = _digits(t, 0, 2)
        y += 1900 if y >= 50 else 2000
        t = t[2:]
    elif tag == D.GEN_TIME and len(t) == 15:
        y = _digits(t, 0, 4)
        t = t[4:]
    else:
        raise ValueError("x509: bad time")
    if t[10] != 0x5A:  # 'Z'
        raise ValueError("x509: time not UTC")
    mo, dd = _digits(t, 0, 2), _digits(t, 2, 4)
    hh, mi, ss = _digits(t, 4, 6), _digits(t, 6, 8), _digits(t, 8, 10)
    if not (1 <= mo <= 12 and 1 <= dd <= _mdays(y, mo) and hh < 24 and mi < 60 and ss < 60):
        raise ValueError("x509: bad time")
    return days_from_civil(y, mo, dd) * 86400 + hh * 3600 + mi * 60 + ss


def _digits(b, i, j):
    v = 0
    for c in b[i:j]:
        if not 0x30 <= c <= 0x39:
            raise ValueError("x509: bad time")
        v = v * 10 + c - 0x30
    return v


def _mdays(y, m):
    if m == 2:
        return 29 if (y % 4 == 0 and y % 100 != 0) or y % 400 == 0 else 28
    return 30 if m in (4, 6, 9, 11) else 31


def load_all(data: "Any") -> "list[Certificate]":
    """Certificates from PEM text (every CERTIFICATE block) or one DER blob."""
    if isinstance(data, str) or b"-----BEGIN " in bytes(data):
        from evse.pki import pem
        return [Certificate(b) for _, b in pem.decode_all(data, "CERTIFICATE")]
    return [Certificate(data)]
