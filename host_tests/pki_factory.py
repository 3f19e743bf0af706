"""Certificates made with `cryptography` for the evse.pki tests."""
from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc)
NOW_S = int(NOW.timestamp())
_KEYS: dict[str, object] = {}


def key(kind: str, tag: str = ""):
    """A cached private key ("ec" P-256, "rsa" 2048, "ec384"): RSA keygen is slow."""
    k = kind + tag
    if k not in _KEYS:
        if kind == "rsa":
            _KEYS[k] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        elif kind == "ec384":
            _KEYS[k] = ec.generate_private_key(ec.SECP384R1())
        else:
            _KEYS[k] = ec.generate_private_key(ec.SECP256R1())
    return _KEYS[k]


def name(cn: str, org: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org)] if org else []
    return x509.Name(attrs + [x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def cert(subject_key, issuer_key, cn: str, issuer_cn: str, ca: bool = False, path_len: int | None = None,
         days=(-30, 365), serial: int = 0x1234ABCD, cert_sign: bool | None = None, hash_alg=None,
         key_usage: bool = True, extra=()) -> x509.Certificate:
    """A certificate for `subject_key` signed by `issuer_key`."""
    pub = subject_key.public_key()
    b = (x509.CertificateBuilder().subject_name(name(cn, "Test")).issuer_name(name(issuer_cn, "Test"))
         .public_key(pub).serial_number(serial)
         .not_valid_before(NOW + dt.timedelta(days=days[0])).not_valid_after(NOW + dt.timedelta(days=days[1]))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=path_len if ca else None), critical=True))
    if key_usage:
        sign = ca if cert_sign is None else cert_sign
        b = b.add_extension(x509.KeyUsage(digital_signature=not ca, content_commitment=False,
                                          key_encipherment=False, data_encipherment=False, key_agreement=False,
                                          key_cert_sign=sign, crl_sign=sign, encipher_only=False,
                                          decipher_only=False), critical=True)
    b = b.add_extension(x509.SubjectKeyIdentifier.from_public_key(pub), critical=False)
    for ext, crit in extra:
        b = b.add_extension(ext, critical=crit)
    return b.sign(issuer_key, hash_alg or hashes.SHA256())


def der(c: x509.Certificate) -> bytes:
    return c.public_bytes(serialization.Encoding.DER)


def pem(c: x509.Certificate) -> str:
    return c.public_bytes(serialization.Encoding.PEM).decode()


def chain3(kind: str, tag: str = "") -> tuple[x509.Certificate, x509.Certificate, x509.Certificate]:
    """(leaf, intermediate, root), all keys of `kind`."""
    rk, ik, lk = key(kind, "root" + tag), key(kind, "int" + tag), key(kind, "leaf" + tag)
    root = cert(rk, rk, "Root " + kind + tag, "Root " + kind + tag, ca=True, days=(-100, 3650), serial=1)
    inter = cert(ik, rk, "Sub " + kind + tag, "Root " + kind + tag, ca=True, path_len=0, serial=0x0200)
    leaf = cert(lk, ik, "CP001", "Sub " + kind + tag, serial=0x00ABCDEF0123456789)
    return leaf, inter, root
