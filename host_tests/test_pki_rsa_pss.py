"""RSASSA-PSS verification (evse.pki.rsa, RFC 8017 8.1.2 / 9.1.2) against the
NIST CAVS vectors shipped in `cryptography-vectors` (SigVerPSS_186-3: salt
length 10, valid and corrupted signatures; SigGenPSS_186-3 and _186-2: salt
lengths 0 and 20) and against signatures `cryptography` makes with every
usual salt length; PKCS#1 v1.5 and the certificate path stay PKCS#1 only."""
import hashlib
import os

import cryptography_vectors
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric import rsa as crsa

from evse.pki import backend, rsa

RSA_DIR = os.path.join(os.path.dirname(cryptography_vectors.__file__), "asymmetric", "RSA", "FIPS_186-2")
ALGS = {"SHA256": hashlib.sha256, "SHA384": hashlib.sha384, "SHA512": hashlib.sha512}


def rsp(name):
    """(n, e, alg, msg, sig, valid) of every record of a CAVS .rsp file whose
    hash evse.pki has; n and e from the [mod] header or the record."""
    n = e = alg = msg = None
    with open(os.path.join(RSA_DIR, name)) as f:
        lines = [ln.strip() for ln in f] + [""]
    rec = {}
    for ln in lines:
        if " = " in ln:
            k, v = ln.split(" = ", 1)
            if k == "n":
                n = int(v, 16)
            elif k == "e":
                e = int(v, 16)
            elif k == "SHAAlg":
                alg = v
            else:
                rec[k] = v
        elif not ln and "S" in rec:
            msg, sig = bytes.fromhex(rec["Msg"]), bytes.fromhex(rec["S"])
            if alg in ALGS:
                yield n, e, alg, msg, sig, rec.get("Result", "P").startswith("P")
            rec = {}


@pytest.mark.parametrize("name, count, valid", [("SigVerPSS_186-3.rsp", 270, 45),
                                                ("SigGenPSS_186-3.rsp", 150, 150),
                                                ("SigGenPSS_186-2.rsp", 150, 150)])
def test_nist_pss_vectors(name, count, valid):
    n_all = n_ok = 0
    for n, e, alg, msg, sig, want in rsp(name):
        digest = ALGS[alg](msg).digest()
        assert rsa.verify_pss(n, e, digest, sig, alg) == want, (name, alg, n_all)
        # The combined check (one exponentiation) agrees; PKCS#1 alone refuses PSS.
        assert rsa.verify(n, e, digest, sig, alg, pss=True) == want
        assert rsa.verify(n, e, digest, sig, alg) is False
        n_all += 1
        n_ok += want
    assert (n_all, n_ok) == (count, valid)


@pytest.fixture(scope="module")
def keys():
    return {bits: crsa.generate_private_key(public_exponent=65537, key_size=bits) for bits in (2048, 2049, 3072)}


SALTS = [0, 20, 32, padding.PSS.DIGEST_LENGTH, padding.PSS.MAX_LENGTH]


@pytest.mark.parametrize("bits", [2048, 2049, 3072])  # 2049: emLen = k - 1 (RFC 8017 9.1.2 step 3)
@pytest.mark.parametrize("salt", SALTS)
@pytest.mark.parametrize("alg", ["SHA256", "SHA384"])
def test_cryptography_pss_signatures(keys, bits, salt, alg):
    key = keys[bits]
    nums = key.public_key().public_numbers()
    h = {"SHA256": hashes.SHA256(), "SHA384": hashes.SHA384()}[alg]
    for i in range(3):
        msg = b"firmware image %d" % i
        sig = key.sign(msg, padding.PSS(mgf=padding.MGF1(h), salt_length=salt), h)
        digest = ALGS[alg](msg).digest()
        assert rsa.verify_pss(nums.n, nums.e, digest, sig, alg)
        assert backend.Pure().rsa_verify((nums.n, nums.e), digest, sig, alg, True)
        assert not backend.Pure().rsa_verify((nums.n, nums.e), digest, sig, alg)  # PKCS#1 only
        assert not rsa.verify_pss(nums.n, nums.e, ALGS[alg](msg + b"!").digest(), sig, alg)
        bad = bytearray(sig)
        bad[len(bad) // 2] ^= 1
        assert not rsa.verify_pss(nums.n, nums.e, digest, bytes(bad), alg)
        other = "SHA384" if alg == "SHA256" else "SHA256"
        assert not rsa.verify_pss(nums.n, nums.e, ALGS[other](msg).digest(), sig, other)


def test_pkcs1_still_verifies_with_pss_allowed(keys):
    key = keys[2048]
    nums = key.public_key().public_numbers()
    sig = key.sign(b"fw", padding.PKCS1v15(), hashes.SHA256())
    digest = hashlib.sha256(b"fw").digest()
    assert rsa.verify(nums.n, nums.e, digest, sig, pss=True) and rsa.verify(nums.n, nums.e, digest, sig)
    assert not rsa.verify_pss(nums.n, nums.e, digest, sig)


def test_malformed_encodings_are_refused(keys):
    # Built by hand with the private key: each breaks one step of EMSA-PSS-VERIFY.
    key = keys[2048]
    pn = key.private_numbers()
    n, e, d = pn.public_numbers.n, pn.public_numbers.e, pn.d
    digest = hashlib.sha256(b"x").digest()
    em_len, h_len = 256, 32

    def sign(em):
        return pow(int.from_bytes(em, "big"), d, n).to_bytes(256, "big")

    def encode(salt=b"s" * 32, trailer=0xBC, one=1, top_bit=False, h_override=None):
        h = hashlib.sha256(b"\0" * 8 + digest + salt).digest() if h_override is None else h_override
        db = bytearray(em_len - h_len - 1)
        db[len(db) - len(salt) - 1] = one
        db[len(db) - len(salt):] = salt
        mask = rsa._mgf1(h, len(db), "SHA256")
        masked = bytearray(a ^ b for a, b in zip(db, mask))
        masked[0] &= 0x7F
        if top_bit:
            masked[0] |= 0x80
        return bytes(masked) + h + bytes([trailer])

    assert rsa.verify_pss(n, e, digest, sign(encode()))
    assert not rsa.verify_pss(n, e, digest, sign(encode(trailer=0xBD)))
    assert not rsa.verify_pss(n, e, digest, sign(encode(one=2)))
    assert not rsa.verify_pss(n, e, digest, sign(encode(top_bit=True)))
    assert not rsa.verify_pss(n, e, digest, sign(encode(h_override=b"\x11" * 32)))
    assert not rsa.verify_pss(n, e, digest, b"\x00" * 255)  # wrong length
    assert not rsa.verify_pss(n, e, digest, n.to_bytes(256, "big"))  # s >= n
    assert not rsa.verify_pss(n, e, digest[:31], sign(encode()))  # not a SHA-256 digest


def test_firmware_check_accepts_pss_certificates_stay_pkcs1():
    # verify.check: a firmware signature (pss=True) may be PSS; a
    # certificate's (signed_by) is what its algorithm names, PKCS#1 here.
    from fwkit import Pki
    from evse.pki import verify, x509
    p = Pki("rsa")
    cert = x509.load_all(p.signer_pem)[0]
    data = b"image bytes"
    sig = p.key.sign(data, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256())
    digest = hashlib.sha256(data).digest()
    assert verify.check(cert, digest, sig, pss=True)
    assert not verify.check(cert, digest, sig)
    from pki_host_backend import Host
    assert verify.check(cert, digest, sig, backend=Host(), pss=True)
    assert not verify.check(cert, digest, sig, backend=Host())


VM_SCRIPT = """
import hashlib, binascii
from evse.pki import rsa
res = []
for n, e, msg, sig, want in VECTORS:
    d = hashlib.sha256(binascii.unhexlify(msg)).digest()
    s = binascii.unhexlify(sig)
    res.append([rsa.verify_pss(int(n, 16), int(e, 16), d, s) == want,
                rsa.verify(int(n, 16), int(e, 16), d, s, 'SHA256', True) == want])
print(len(res), all(r[0] and r[1] for r in res))
"""


def test_pss_in_the_micropython_vm(tmp_path, capsys, keys):
    # MicroPython's big ints and bytes: NIST SHA-256 cases (valid and
    # corrupted) and cryptography signatures with salt 0, 32 and the maximum.
    from vmcheck import run_both
    vectors = [("%x" % n, "%x" % e, msg.hex(), sig.hex(), ok)
               for n, e, alg, msg, sig, ok in rsp("SigVerPSS_186-3.rsp") if alg == "SHA256" and n.bit_length() == 2048]
    nums = keys[2048].public_key().public_numbers()
    for salt in (0, 32, padding.PSS.MAX_LENGTH):
        msg = b"image %r" % salt
        sig = keys[2048].sign(msg, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=salt), hashes.SHA256())
        vectors.append(("%x" % nums.n, "%x" % nums.e, msg.hex(), sig.hex(), True))
    vm, cp = run_both("VECTORS = %r\n" % vectors + VM_SCRIPT, tmp_path, capsys)
    assert vm == cp == ["%d True" % len(vectors)] and len(vectors) == 21
