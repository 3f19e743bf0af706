"""evse.pki in the MicroPython VM: the same script gives the same results as
on CPython (chain parsing and validation, RSA-2048 and ECDSA verification,
the firmware check, key generation, CSR, key PEM, a sample of the Wycheproof
vectors)."""
import gzip
import hashlib
import json
import os

import pki_factory as F
from cryptography import x509 as cx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from vmcheck import run_both

HERE = os.path.join(os.path.dirname(__file__), "vectors")


def _sample(name, step):
    with gzip.open(os.path.join(HERE, name)) as f:
        data = json.load(f)
    out = []
    for g in data["groups"]:
        for t in g["tests"]:
            if t[0] % step == 1 or t[3] != "invalid" and t[0] % 5 == 0:
                out.append([g.get("pub") or [g["n"], g["e"]], t[1], t[2], t[3] == "valid"])
    return out


SCRIPT = """
import json, hashlib, binascii
from evse.pki import x509, chain, ecdsa, rsa, p256, csr, verify, hashes

def h(b):
    return binascii.hexlify(b).decode()

def unhex(s):
    return binascii.unhexlify(s)

out = []
for text in (EC_PEM, RSA_PEM):
    cs = x509.load_all(text)
    out.append([[c.cn, c.org, '%x' % c.serial, c.not_before, c.not_after, c.ca, c.path_len, c.key_usage,
                 c.key_type, c.key_size(), c.sig_hash] for c in cs])
    out.append([chain.validate(cs[:2], [cs[2]], NOW), chain.validate(cs, [cs[2]], NOW + 10 ** 8),
                chain.validate(cs[:1], [cs[2]], NOW), chain.validate([cs[0], cs[2]], [cs[2]], NOW)])
    for alg in ('SHA256', 'SHA384'):
        d = chain.hash_data(cs[0], cs[1], alg)
        out.append(sorted(d.items()))
fw = x509.load_all(EC_PEM)[0], x509.load_all(RSA_PEM)[0]
for c, sig in zip(fw, (EC_SIG, RSA_SIG)):
    hh = hashes.new('SHA256')
    for i in range(0, len(IMAGE), 512):
        hh.update(IMAGE[i:i + 512])
    out.append([verify.verify_signature(c, hh, unhex(sig)),
                verify.verify_signature(c, IMAGE + b'x', unhex(sig))])
for text, sig in ((EC_PEM, EC_SIG), (RSA_PEM, RSA_SIG)):
    root = x509.load_all(text)[2]
    out.append([chain.firmware(text, [root], NOW, IMAGE, unhex(sig)),
                chain.firmware(text, [root], NOW, IMAGE[1:], unhex(sig))])
n = [0]
def rng(k):
    n[0] += 1
    return hashlib.sha256(('seed' + str(n[0])).encode()).digest()[:k]
d, pub = ecdsa.keygen(rng)
req = csr.make_csr(d, pub, 'CP001', 'Acme')
key = csr.key_pem(d, pub)
out.append([h(req), key, csr.load_key(key) == (d, pub)])
res = []
for pub, msg, sig, want in ECDSA_VECTORS:
    q = p256.decode_point(unhex(pub))
    res.append(ecdsa.verify(q, hashlib.sha256(unhex(msg)).digest(), unhex(sig)) == want)
for (n_, e), msg, sig, want in RSA_VECTORS:
    ok = rsa.verify(int(n_, 16), int(e, 16), hashlib.sha256(unhex(msg)).digest(), unhex(sig))
    res.append(ok == want)
out.append([len(res), all(res)])
for item in out:
    print(json.dumps(item))
"""


def test_vm_matches_cpython(tmp_path, capsys):
    ec_chain, rsa_chain = F.chain3("ec"), F.chain3("rsa")
    image = bytes(range(256)) * 20
    ec_sig = F.key("ec", "leaf").sign(image, ec.ECDSA(hashes.SHA256()))
    rsa_sig = F.key("rsa", "leaf").sign(image, padding.PKCS1v15(), hashes.SHA256())
    ecv, rsav = _sample("wycheproof_ecdsa_p256_sha256.json.gz", 16), _sample("wycheproof_rsa2048_sha256.json.gz", 16)
    head = "\n".join([
        "EC_PEM = %r" % "".join(F.pem(c) for c in ec_chain),
        "RSA_PEM = %r" % "".join(F.pem(c) for c in rsa_chain),
        "NOW = %d" % F.NOW_S, "IMAGE = %r" % image,
        "EC_SIG = %r" % ec_sig.hex(), "RSA_SIG = %r" % rsa_sig.hex(),
        "ECDSA_VECTORS = %r" % ecv, "RSA_VECTORS = %r" % rsav])
    vm, cp = run_both(head + SCRIPT, tmp_path, capsys)
    vm_out, cp_out = [json.loads(x) for x in vm], [json.loads(x) for x in cp]
    assert vm_out == cp_out
    assert vm_out[1] == [None, "expired", "untrusted root", "issuer mismatch"]
    assert vm_out[5] == vm_out[1]
    assert vm_out[8] == vm_out[9] == [True, False]
    assert vm_out[10] == vm_out[11] == [None, "bad signature"]
    req = cx.load_der_x509_csr(bytes.fromhex(vm_out[12][0]))
    assert req.is_signature_valid and req.subject.rfc4514_string() == "CN=CP001,O=Acme"
    assert vm_out[12][2] is True
    assert vm_out[13] == [len(ecv) + len(rsav), True] and len(ecv) > 40 and len(rsav) > 15
    ocsp_like = hashlib.sha256(ec_chain[0].issuer.public_bytes()).hexdigest()
    assert dict(vm_out[2])["issuerNameHash"] == ocsp_like
