"""Certificate path validation (a profile of RFC 5280 section 6) and OCPP
certificate hash data.

validate() returns None when the chain is good, otherwise a short reason
string; it raises nothing for a bad chain (ValueError only comes from parsing).
"""
from evse.pki import hashes
from evse.pki import verify as _verify
from evse.pki.x509 import KU_KEY_CERT_SIGN

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from evse.pki.x509 import Certificate

EMPTY = "empty chain"
EXPIRED = "expired"
NOT_YET_VALID = "not yet valid"
UNSUPPORTED = "unsupported algorithm"
CRITICAL = "unknown critical extension"
ISSUER_MISMATCH = "issuer mismatch"
NOT_CA = "issuer not a CA"
NO_CERT_SIGN = "issuer lacks keyCertSign"
PATH_LEN = "path length exceeded"
BAD_SIGNATURE = "bad signature"
UNTRUSTED = "untrusted root"


def _usable(cert, now):
    if now < cert.not_before:
        return NOT_YET_VALID
    if now > cert.not_after:
        return EXPIRED
    if cert.unknown_critical:
        return CRITICAL
    if cert.key_type is None:
        return UNSUPPORTED
    return None


def _issued(cert, issuer, below, backend, anchor=False):
    """Why `issuer` did not issue `cert` (None if it did); `below` is the
    number of non-self-issued intermediates between issuer and the leaf.
    A trusted root (`anchor`) may be an X.509 v1 self-signed root."""
    if bytes(cert.issuer) != bytes(issuer.subject):
        return ISSUER_MISMATCH
    if not (issuer.ca or anchor and issuer.v1_root):
        return NOT_CA
    if not issuer.has_usage(KU_KEY_CERT_SIGN):
        return NO_CERT_SIGN
    if issuer.path_len is not None and below > issuer.path_len:
        return PATH_LEN
    if cert.sig_hash is None:
        return UNSUPPORTED
    if not _verify.signed_by(cert, issuer, backend):
        return BAD_SIGNATURE
    return None


def validate(chain: "list[Certificate]", roots: "list[Certificate]", now: int,
             backend: "Any" = None) -> "str | None":
    """Check `chain` (leaf first, each cert issued by the next; the root may
    be included or left out) against trusted `roots` at unix time `now`."""
    if not chain:
        return EMPTY
    below = 0
    for i, cert in enumerate(chain):
        why = _usable(cert, now)
        if why:
            return why
        if i > 0 and not cert.self_issued():
            below += 1  # an intermediate between the next issuer and the leaf
        if i + 1 < len(chain):
            why = _issued(cert, chain[i + 1], below, backend)
            if why:
                return why
    top = chain[-1]
    for root in roots:
        if root.der == top.der:
            return None
    why = UNTRUSTED
    for root in roots:
        if bytes(root.subject) != bytes(top.issuer):
            continue
        why = _usable(root, now) or _issued(top, root, below, backend, True)
        if why is None:
            return None
    return why


def hash_data(cert: "Certificate", issuer: "Certificate", alg: str = "SHA256") -> "dict[str, str]":
    """OCPP CertificateHashDataType of `cert`, whose issuer is `issuer` (the
    cert itself for a self-signed root)."""
    from evse.compat import hexlify
    return {
        "hashAlgorithm": alg,
        "issuerNameHash": hexlify(hashes.digest(alg, cert.issuer)),
        "issuerKeyHash": hexlify(hashes.digest(alg, issuer.key_bits)),
        "serialNumber": "%x" % cert.serial,
    }


def firmware(signing_cert: "Any", roots: "list[Certificate]", now: int, digest_or_data: "Any", signature: bytes,
             backend: "Any" = None) -> "str | None":
    """SignedUpdateFirmware check: the signing certificate (PEM/DER; leaf
    first when it carries intermediates) chains to one of `roots` (the
    ManufacturerRootCertificates) at unix time `now`, and its key made
    `signature` over the file. None when good, else a chain reason or
    "bad signature" ("empty chain" for text without a certificate);
    ValueError for an unparsable certificate."""
    from evse.pki import x509
    certs = x509.load_all(signing_cert)
    why = validate(certs, roots, now, backend)
    if why is None and not _verify.verify_signature(certs[0], digest_or_data, signature, backend=backend):
        why = BAD_SIGNATURE
    return why
