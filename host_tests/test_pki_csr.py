"""Keys, CSRs and signatures made by evse.pki, checked by `cryptography` and
CPython ssl; firmware signature checks (streamed hashing, RSA and ECDSA)."""
import hashlib
import ssl

import pki_factory as F
import pytest
from cryptography import x509 as cx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from pki_host_backend import Host

from evse.pki import backend, chain, csr, ecdsa, hashes as ph, p256, pem, verify, x509


class Rng:
    """Deterministic random_bytes for keygen tests."""

    def __init__(self):
        self.n = 0

    def __call__(self, k):
        self.n += 1
        return hashlib.sha256(b"seed%d" % self.n).digest()[:k]


def test_keygen_csr_accepted_by_cryptography():
    d, pub = ecdsa.keygen(Rng())
    assert p256.on_curve(*pub) and p256.mul(d) == pub
    der = csr.make_csr(d, pub, "CP001", "Acme EVSE")
    req = cx.load_der_x509_csr(der)
    assert req.is_signature_valid
    assert req.subject.rfc4514_string() == "CN=CP001,O=Acme EVSE"
    nums = req.public_key().public_numbers()
    assert (nums.x, nums.y) == pub and isinstance(req.public_key().curve, ec.SECP256R1)
    assert req.signature_hash_algorithm.name == "sha256"
    text = csr.csr_pem(d, pub, "CP001")
    req2 = cx.load_pem_x509_csr(text.encode())
    assert req2.is_signature_valid and req2.subject.rfc4514_string() == "CN=CP001"
    assert pem.decode(text, "CERTIFICATE REQUEST") == req2.public_bytes(serialization.Encoding.DER)


def test_csr_with_host_backend_and_keygen_default_rng():
    d, pub = backend.Pure().ec_keygen()
    assert 0 < d < p256.N and p256.on_curve(*pub)
    hd, hpub = Host().ec_keygen()
    req = cx.load_der_x509_csr(csr.make_csr(hd, hpub, "CP9", backend=Host()))
    assert req.is_signature_valid


def test_our_signatures_verify_with_cryptography_and_theirs_with_ours():
    k = ec.generate_private_key(ec.SECP256R1())
    d = k.private_numbers().private_value
    nums = k.public_key().public_numbers()
    pub = (nums.x, nums.y)
    for i in range(8):
        msg = b"firmware block %d" % i
        digest = hashlib.sha256(msg).digest()
        sig = ecdsa.sign(d, digest)
        k.public_key().verify(sig, msg, ec.ECDSA(hashes.SHA256()))
        assert Host().ec_verify(pub, digest, sig)
        theirs = k.sign(msg, ec.ECDSA(hashes.SHA256()))
        assert ecdsa.verify(pub, digest, theirs)
        assert not ecdsa.verify(pub, hashlib.sha256(msg + b"x").digest(), theirs)
    big = hashlib.sha512(b"x").digest()  # a longer digest is truncated to 256 bits
    k.public_key().verify(ecdsa.sign(d, big), big, ec.ECDSA(Prehashed(hashes.SHA512())))


def test_private_key_pem_loads_in_cryptography_and_ssl(tmp_path):
    d, pub = ecdsa.keygen(Rng())
    text = csr.key_pem(d, pub)
    assert text.startswith("-----BEGIN EC PRIVATE KEY-----\n")
    k = serialization.load_pem_private_key(text.encode(), None)
    assert k.private_numbers().private_value == d
    assert csr.load_key(text) == (d, pub)
    # PKCS#8 written by cryptography loads too.
    p8 = k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                         serialization.NoEncryption()).decode()
    assert csr.load_key(p8) == (d, pub)
    ca = F.key("ec", "root")
    cert = F.cert(k, ca, "CP001", "Root ec")
    (tmp_path / "cert.pem").write_text(F.pem(cert))
    (tmp_path / "key.pem").write_text(text)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_cert_chain(str(tmp_path / "cert.pem"), str(tmp_path / "key.pem"))
    other = F.cert(F.key("ec", "unrelated"), ca, "X", "Root ec")
    (tmp_path / "other.pem").write_text(F.pem(other))
    with pytest.raises(ssl.SSLError):
        ctx.load_cert_chain(str(tmp_path / "other.pem"), str(tmp_path / "key.pem"))


@pytest.mark.parametrize("bad", ["", "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n",
                                 "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n"])
def test_bad_private_keys(bad):
    with pytest.raises(ValueError):
        csr.load_key(bad)


def _chunks(data, n=1000):
    h = ph.new("SHA256")
    for i in range(0, len(data), n):
        h.update(data[i:i + n])
    return h


@pytest.mark.parametrize("kind", ["ec", "rsa"])
def test_firmware_signature(kind):
    k = F.key(kind, "fw")
    c = x509.Certificate(F.der(F.cert(k, F.key(kind, "root"), "FW signer", "Root")))
    image = bytes(range(256)) * 40
    if kind == "ec":
        sig = k.sign(image, ec.ECDSA(hashes.SHA256()))
    else:
        sig = k.sign(image, padding.PKCS1v15(), hashes.SHA256())
    assert verify.verify_signature(c, _chunks(image), sig)
    assert verify.verify_signature(c, image, sig)
    assert verify.verify_signature(c, _chunks(image), sig, backend=Host())
    assert not verify.verify_signature(c, image[:-1] + b"\x00", sig)
    assert not verify.verify_signature(c, image, sig[:-1] + bytes([sig[-1] ^ 1]))


def test_small_rsa_keys_refused_for_firmware():
    k = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    c = x509.Certificate(F.der(F.cert(k, k, "weak", "weak", ca=True)))
    sig = k.sign(b"fw", padding.PKCS1v15(), hashes.SHA256())
    assert c.key_size() == 1024 and not verify.verify_signature(c, b"fw", sig)
    assert backend.Pure().rsa_verify(c.key, hashlib.sha256(b"fw").digest(), sig)


def test_host_and_pure_backends_agree_on_rsa():
    k = F.key("rsa", "root")
    nums = k.public_key().public_numbers()
    for alg, h in (("SHA256", hashes.SHA256()), ("SHA384", hashes.SHA384()), ("SHA512", hashes.SHA512())):
        sig = k.sign(b"m", padding.PKCS1v15(), h)
        digest = ph.digest(alg, b"m")
        for b in (backend.Pure(), Host()):
            assert b.rsa_verify((nums.n, nums.e), digest, sig, alg)
            assert not b.rsa_verify((nums.n, nums.e), digest, sig, "SHA256" if alg != "SHA256" else "SHA384")


def test_pure_sha384_sha512_match_hashlib():
    from evse.pki import sha512
    for n in (0, 1, 111, 112, 127, 128, 129, 1000):
        data = bytes((i * 7) & 255 for i in range(n))
        assert sha512.SHA512(data).digest() == hashlib.sha512(data).digest()
        h = sha512.SHA384()
        for i in range(0, n, 50):
            h.update(data[i:i + 50])
        assert h.digest() == hashlib.sha384(data).digest()


def test_csr_subject_utf8():
    d, pub = ecdsa.keygen(Rng())
    req = cx.load_der_x509_csr(csr.make_csr(d, pub, "Borne-é", "Ökö"))
    assert req.subject.get_attributes_for_oid(cx.NameOID.COMMON_NAME)[0].value == "Borne-é"


@pytest.mark.parametrize("kind", ["ec", "rsa"])
def test_firmware_check_end_to_end(kind):
    mk, sk = F.key(kind, "maker"), F.key(kind, "signer")
    maker = F.cert(mk, mk, "Maker Root", "Maker Root", ca=True)
    signer = F.cert(sk, mk, "Maker FW", "Maker Root")
    roots = [x509.Certificate(F.der(maker))]
    image = b"\x5a" * 5000
    if kind == "ec":
        sig = sk.sign(image, ec.ECDSA(hashes.SHA256()))
    else:
        sig = sk.sign(image, padding.PKCS1v15(), hashes.SHA256())
    assert chain.firmware(F.pem(signer), roots, F.NOW_S, _chunks(image), sig) is None
    assert chain.firmware(F.der(signer), roots, F.NOW_S, image, sig, backend=Host()) is None
    assert chain.firmware(F.pem(signer), roots, F.NOW_S, image + b"!", sig) == "bad signature"
    assert chain.firmware(F.pem(signer), roots, F.NOW_S + 10**8, image, sig) == "expired"
    stranger = F.cert(sk, sk, "Maker FW", "Maker FW", ca=True)
    assert chain.firmware(F.pem(stranger), roots, F.NOW_S, image, sig) == "untrusted root"
    assert chain.firmware("no PEM block", roots, F.NOW_S, image, sig) == "empty chain"
    with pytest.raises(ValueError):
        chain.firmware(b"\x30\x03garbage", roots, F.NOW_S, image, sig)
