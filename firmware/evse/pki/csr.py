"""PKCS#10 certificate requests (RFC 2986) and SEC 1 EC private keys (RFC 5915)
for a P-256 station key."""
from evse.pki import backend as _backend
from evse.pki import der as D
from evse.pki import p256
from evse.pki.x509 import EC_KEY, OID_CN, OID_O, P256

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

ECDSA_SHA256 = "1.2.840.10045.4.3.2"


def spki(pub):
    """SubjectPublicKeyInfo DER of a P-256 point."""
    return D.seq(D.seq(D.oid(EC_KEY), D.oid(P256)), D.bits(p256.encode_point(pub)))


def name(cn, org=None):
    """Name DER with O (if given) then CN, each in its own RDN, as UTF8String."""
    rdns = []
    if org:
        rdns.append(D.set_of(D.seq(D.oid(OID_O), D.utf8(org))))
    rdns.append(D.set_of(D.seq(D.oid(OID_CN), D.utf8(cn))))
    return D.seq(*rdns)


def make_csr(d: "Any", pub: "tuple[int, int]", cn: str, org: "str | None" = None,
             backend: "Any" = None) -> bytes:
    """DER CertificationRequest for key (d, pub), subject CN (and O), signed
    ecdsa-with-SHA256. With a secure-element backend, d is its key handle."""
    from evse.compat import sha256
    info = D.seq(D.integer(0), name(cn, org), spki(pub), D.explicit(0, b""))
    sig = _backend.get(backend).ec_sign(d, sha256(info))
    return D.seq(info, D.seq(D.oid(ECDSA_SHA256)), D.bits(sig))


def csr_pem(d: "Any", pub: "tuple[int, int]", cn: str, org: "str | None" = None,
            backend: "Any" = None) -> str:
    """The CSR as PEM text, the form OCPP SignCertificate.req carries."""
    from evse.pki import pem
    return pem.encode(make_csr(d, pub, cn, org, backend), "CERTIFICATE REQUEST")


def key_der(d, pub):
    """SEC 1 ECPrivateKey DER (version 1, key, curve, public key)."""
    return D.seq(D.integer(1), D.octets(d.to_bytes(32, "big")),
                 D.explicit(0, D.oid(P256)), D.explicit(1, D.bits(p256.encode_point(pub))))


def key_pem(d: int, pub: "tuple[int, int]") -> str:
    """"EC PRIVATE KEY" PEM, loadable by CPython ssl and MicroPython's mbedTLS."""
    from evse.pki import pem
    return pem.encode(key_der(d, pub), "EC PRIVATE KEY")


def load_key(text: "Any") -> "tuple[int, tuple[int, int]]":
    """(d, pub) from "EC PRIVATE KEY" (SEC 1) or "PRIVATE KEY" (PKCS#8) PEM;
    ValueError when malformed or not P-256."""
    from evse.pki import pem
    blocks = pem.decode_all(text)
    for label, der in blocks:
        if label == "EC PRIVATE KEY":
            return _sec1(der)
        if label == "PRIVATE KEY":
            return _pkcs8(der)
    raise ValueError("csr: no EC private key")


def _pkcs8(der):
    outer = D.Der(der)
    s = outer.enter()
    outer.finish()
    if s.integer() != 0:
        raise ValueError("csr: PKCS#8 version")
    a = s.enter()
    if a.oid() != EC_KEY or a.oid() != P256:
        raise ValueError("csr: not a P-256 key")
    inner = s.content(D.OCTET_STRING)
    return _sec1(inner)


def _sec1(der):
    outer = D.Der(der)
    s = outer.enter()
    outer.finish()
    if s.integer() != 1:
        raise ValueError("csr: EC key version")
    raw = s.content(D.OCTET_STRING)
    d = int.from_bytes(bytes(raw), "big")
    if len(raw) != 32 or not 0 < d < p256.N:
        raise ValueError("csr: bad private key")
    pub = None
    if s.peek() == 0xA0:
        c = s.enter(0xA0)
        if c.oid() != P256:
            raise ValueError("csr: not a P-256 key")
        c.finish()
    if s.peek() == 0xA1:
        c = s.enter(0xA1)
        unused, pt = c.bits()
        c.finish()
        if unused:
            raise ValueError("csr: bad public key")
        pub = p256.decode_point(pt)
    s.finish()
    return d, pub if pub is not None else p256.mul(d)
