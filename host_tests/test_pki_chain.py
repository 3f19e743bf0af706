"""evse.pki.x509 and evse.pki.chain against certificates made by `cryptography`."""
import datetime as dt

import pki_factory as F
import pytest
from cryptography import x509 as cx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from pki_host_backend import Host

from evse.pki import chain, x509
from evse.pki.x509 import KU_DIGITAL_SIGNATURE, KU_KEY_CERT_SIGN

KINDS = ("ec", "rsa")


def ours(*certs):
    return [x509.Certificate(F.der(c)) for c in certs]


@pytest.mark.parametrize("kind", KINDS)
def test_fields_match_cryptography(kind):
    for c in F.chain3(kind):
        p = x509.Certificate(F.der(c))
        assert p.version == 3 and p.serial == c.serial_number
        assert p.not_before == int(c.not_valid_before_utc.timestamp())
        assert p.not_after == int(c.not_valid_after_utc.timestamp())
        assert bytes(p.tbs) == c.tbs_certificate_bytes and p.signature == c.signature
        assert p.sig_alg == c.signature_algorithm_oid.dotted_string and p.sig_hash == "SHA256"
        assert bytes(p.subject) == c.subject.public_bytes() and bytes(p.issuer) == c.issuer.public_bytes()
        assert p.cn == c.subject.get_attributes_for_oid(cx.NameOID.COMMON_NAME)[0].value
        assert p.org == "Test" and p.subject_attrs[0] == (x509.OID_O, "Test")
        bc = c.extensions.get_extension_for_class(cx.BasicConstraints).value
        assert (p.ca, p.path_len) == (bc.ca, bc.path_length)
        assert p.has_usage(KU_KEY_CERT_SIGN) == bc.ca and p.has_usage(KU_DIGITAL_SIGNATURE) == (not bc.ca)
        nums = c.public_key().public_numbers()
        if kind == "ec":
            assert p.key_type == "ec" and p.key == (nums.x, nums.y) and p.key_size() == 256
        else:
            assert p.key_type == "rsa" and p.key == (nums.n, nums.e) and p.key_size() == 2048
        assert not p.unknown_critical and p.self_issued() == (c.subject == c.issuer)


@pytest.mark.parametrize("kind", KINDS)
def test_good_chains(kind):
    leaf, inter, root = ours(*F.chain3(kind))
    assert chain.validate([leaf, inter], [root], F.NOW_S) is None
    assert chain.validate([leaf, inter, root], [root], F.NOW_S) is None
    assert chain.validate([root], [root], F.NOW_S) is None
    assert chain.validate([inter], [root], F.NOW_S) is None
    assert chain.validate([leaf, inter], [root], F.NOW_S, backend=Host()) is None


def test_mixed_rsa_root_ec_leaf_and_sha384():
    rk, lk = F.key("rsa", "root"), F.key("ec", "mix")
    root = F.cert(rk, rk, "rc", "rc", ca=True, hash_alg=hashes.SHA384())
    leaf = F.cert(lk, rk, "lc", "rc", hash_alg=hashes.SHA512())
    r, lf = ours(root, leaf)
    assert (r.sig_hash, lf.sig_hash) == ("SHA384", "SHA512")
    assert chain.validate([lf], [r], F.NOW_S) is None
    ek = F.key("ec", "root")
    eroot = F.cert(ek, ek, "E", "E", ca=True, hash_alg=hashes.SHA384())
    eleaf = F.cert(lk, ek, "lc", "E", hash_alg=hashes.SHA384())
    er, el = ours(eroot, eleaf)
    assert chain.validate([el], [er], F.NOW_S) is None


def test_unsupported_key_is_a_reason_not_an_error():
    k = F.key("ec384")
    root = x509.Certificate(F.der(F.cert(k, k, "P384", "P384", ca=True, hash_alg=hashes.SHA384())))
    assert root.key_type is None and root.sig_hash == "SHA384"
    assert chain.validate([root], [root], F.NOW_S) == chain.UNSUPPORTED


@pytest.mark.parametrize("kind", KINDS)
def test_refusals(kind):
    leaf, inter, root = F.chain3(kind)
    lc, ic, rc = ours(leaf, inter, root)
    now = F.NOW_S
    assert chain.validate([lc, ic], [rc], now + 400 * 86400) == chain.EXPIRED
    assert chain.validate([lc, ic], [rc], now - 60 * 86400) == chain.NOT_YET_VALID
    assert chain.validate([lc], [rc], now) == chain.UNTRUSTED  # intermediate missing
    assert chain.validate([lc, ic], [], now) == chain.UNTRUSTED
    assert chain.validate([], [rc], now) == chain.EMPTY
    assert chain.validate([lc, rc], [rc], now) == chain.ISSUER_MISMATCH
    # Same names, other keys: the names match but the signature does not.
    _l2, i2, r2 = ours(*F.chain3(kind, "other"))
    other_root = x509.Certificate(F.der(F.cert(F.key(kind, "x"), F.key(kind, "x"), rc.cn, rc.cn, ca=True)))
    assert chain.validate([lc, ic], [other_root], now) == chain.BAD_SIGNATURE
    assert chain.validate([lc, ic], [r2], now) == chain.UNTRUSTED  # other name
    # A leaf signed by a non-CA certificate.
    lk = F.key(kind, "leaf")
    under_leaf = F.cert(F.key(kind, "y"), lk, "X", "CP001")
    assert chain.validate(ours(under_leaf) + [lc, ic], [rc], now) == chain.NOT_CA
    # A CA without keyCertSign.
    ik = F.key(kind, "int")
    weak = F.cert(ik, F.key(kind, "root"), ic.cn, rc.cn, ca=True, cert_sign=False)
    assert chain.validate([lc] + ours(weak), [rc], now) == chain.NO_CERT_SIGN
    # pathLen 0 on the intermediate, yet another CA under it.
    sub2 = F.cert(F.key(kind, "s2"), ik, "Sub2", ic.cn, ca=True)
    leaf2 = F.cert(F.key(kind, "l2"), F.key(kind, "s2"), "CP002", "Sub2")
    assert chain.validate(ours(leaf2, sub2) + [ic], [rc], now) == chain.PATH_LEN
    # A flipped signature bit.
    raw = bytearray(F.der(leaf))
    raw[-5] ^= 1
    assert chain.validate([x509.Certificate(raw), ic], [rc], now) == chain.BAD_SIGNATURE


def test_unknown_critical_extension_refused():
    k = F.key("ec", "root")
    ext = cx.UnrecognizedExtension(cx.ObjectIdentifier("1.3.6.1.4.1.99999.1"), b"\x05\x00")
    c = x509.Certificate(F.der(F.cert(k, k, "rc", "rc", ca=True, extra=[(ext, True)])))
    assert c.unknown_critical and chain.validate([c], [c], F.NOW_S) == chain.CRITICAL
    ok = x509.Certificate(F.der(F.cert(k, k, "rc", "rc", ca=True, extra=[(ext, False)])))
    assert chain.validate([ok], [ok], F.NOW_S) is None


def test_no_key_usage_extension_allows_signing_and_eku_parsed():
    k = F.key("ec", "root")
    eku = cx.ExtendedKeyUsage([cx.oid.ExtendedKeyUsageOID.CODE_SIGNING])
    root = F.cert(k, k, "rc", "rc", ca=True, key_usage=False)
    leaf = F.cert(F.key("ec", "fw"), k, "FW", "rc", extra=[(eku, False)])
    r, lf = ours(root, leaf)
    assert r.key_usage is None and chain.validate([lf], [r], F.NOW_S) is None
    assert lf.eku == ["1.3.6.1.5.5.7.3.3"]


def test_generalized_time_and_epoch_edges():
    k = F.key("ec", "root")
    c = (cx.CertificateBuilder().subject_name(F.name("T")).issuer_name(F.name("T")).public_key(k.public_key())
         .serial_number(1).not_valid_before(dt.datetime(1950, 1, 1, tzinfo=dt.timezone.utc))
         .not_valid_after(dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.timezone.utc)).sign(k, hashes.SHA256()))
    p = x509.Certificate(F.der(c))
    assert p.version == 3 and p.not_before == -631152000 and p.not_after == 253402300799
    leap = dt.datetime(2052, 2, 29, 12, 0, 1, tzinfo=dt.timezone.utc)
    c2 = (cx.CertificateBuilder().subject_name(F.name("T")).issuer_name(F.name("T")).public_key(k.public_key())
          .serial_number(1).not_valid_before(leap).not_valid_after(leap).sign(k, hashes.SHA256()))
    assert x509.Certificate(F.der(c2)).not_after == int(leap.timestamp())


@pytest.mark.parametrize("alg", ["SHA256", "SHA384", "SHA512"])
@pytest.mark.parametrize("kind", KINDS)
def test_hash_data_matches_cryptography(kind, alg):
    leaf, inter, root = F.chain3(kind)
    lc, ic, rc = ours(leaf, inter, root)
    halg = {"SHA256": hashes.SHA256(), "SHA384": hashes.SHA384(), "SHA512": hashes.SHA512()}[alg]
    for c, issuer, mine in ((leaf, inter, chain.hash_data(lc, ic, alg)), (root, root, chain.hash_data(rc, rc, alg))):
        req = ocsp.OCSPRequestBuilder().add_certificate(c, issuer, halg).build()
        assert mine == {"hashAlgorithm": alg, "issuerNameHash": req.issuer_name_hash.hex(),
                        "issuerKeyHash": req.issuer_key_hash.hex(), "serialNumber": "%x" % c.serial_number}
    assert chain.hash_data(lc, ic)["serialNumber"] == "abcdef0123456789"
    assert chain.hash_data(ic, rc)["serialNumber"] == "200"  # no leading zeros


def test_load_all_pem_and_der():
    leaf, inter, root = F.chain3("ec")
    text = "junk before\n" + "".join(F.pem(c) for c in (leaf, inter, root))
    got = x509.load_all(text)
    assert [c.cn for c in got] == ["CP001", "Sub ec", "Root ec"]
    assert x509.load_all(text.encode())[0].serial == leaf.serial_number
    assert x509.load_all(F.der(root))[0].cn == "Root ec"


def test_ecdsa_cert_signed_by_host_key_verifies_with_pure():
    k = ec.generate_private_key(ec.SECP256R1())
    c = x509.Certificate(F.der(F.cert(k, k, "S", "S", ca=True)))
    assert chain.validate([c], [c], F.NOW_S) is None


def test_path_length_on_a_root_outside_the_chain():
    rk, ik = F.key("ec", "plroot"), F.key("ec", "plint")
    for plen, want in ((0, chain.PATH_LEN), (1, None)):
        root = F.cert(rk, rk, "PL", "PL", ca=True, path_len=plen)
        inter = F.cert(ik, rk, "PLI", "PL", ca=True)
        leaf = F.cert(F.key("ec", "plleaf"), ik, "CP", "PLI")
        lc, ic, rc = ours(leaf, inter, root)
        assert chain.validate([lc, ic], [rc], F.NOW_S) == want


def test_oversized_rsa_key_is_unsupported():
    from cryptography.hazmat.primitives.asymmetric import rsa
    ek = F.key("ec", "root")
    for n, e in (((1 << 4607) + 0x2F, 65537), (F.key("rsa").public_key().public_numbers().n, (1 << 32) + 1)):
        big = rsa.RSAPublicNumbers(e, n).public_key()  # only its public half is used
        c = (cx.CertificateBuilder().subject_name(F.name("Big")).issuer_name(F.name("Big")).public_key(big)
             .serial_number(1).not_valid_before(F.NOW - dt.timedelta(days=1))
             .not_valid_after(F.NOW + dt.timedelta(days=1)).sign(ek, hashes.SHA256()))
        p = x509.Certificate(F.der(c))
        assert p.key_type is None and p.key == (n, e)
        assert chain.validate([p], [p], F.NOW_S) == chain.UNSUPPORTED
