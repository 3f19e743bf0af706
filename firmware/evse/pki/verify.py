"""Signature checks by certificate key: firmware files and certificates."""
from evse.pki import backend as _backend
from evse.pki import hashes

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from evse.pki.x509 import Certificate

MIN_RSA_BITS = 2048


def verify_signature(cert: "Certificate", digest_or_data: "Any", signature: bytes, alg: str = "SHA256",
                     backend: "Any" = None) -> bool:
    """True when `signature` over the data is valid for `cert`'s key.

    `digest_or_data` is either a hash object already fed with the data (so a
    big firmware file is hashed in chunks: `h = hashes.new("SHA256");
    h.update(chunk)...`) or the data bytes themselves. RSA keys must have at
    least 2048 bits, EC keys must be P-256; other keys give False."""
    if hasattr(digest_or_data, "digest"):
        digest = digest_or_data.digest()
    else:
        digest = hashes.digest(alg, digest_or_data)
    return check(cert, digest, signature, alg, backend)


def check(cert: "Certificate", digest: bytes, signature: bytes, alg: str = "SHA256",
          backend: "Any" = None, pss: bool = False) -> bool:
    """True when `signature` signs `digest` (hash `alg`) under `cert`'s key.
    An RSA signature is PKCS#1 v1.5; with `pss` RSASSA-PSS too (MGF1 with
    `alg`, the salt length the signer chose): a firmware signature, which
    names no scheme (L01.FR.04 allows RSA-PSS)."""
    b = _backend.get(backend)
    if cert.key_type == "ec":
        return b.ec_verify(cert.key, digest, signature)
    if cert.key_type == "rsa" and cert.key_size() >= MIN_RSA_BITS:
        if pss:
            return b.rsa_verify(cert.key, digest, signature, alg, True)
        return b.rsa_verify(cert.key, digest, signature, alg)
    return False


def signed_by(cert: "Certificate", issuer: "Certificate", backend: "Any" = None) -> bool:
    """True when `issuer`'s key made `cert`'s signature."""
    if cert.sig_hash is None:
        return False
    from evse.pki import x509
    if x509.SIG_ALGS[cert.sig_alg][0] != issuer.key_type:
        return False
    digest = hashes.digest(cert.sig_hash, cert.tbs)
    return check(issuer, digest, cert.signature, cert.sig_hash, backend)
