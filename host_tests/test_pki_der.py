"""evse.pki.der / pem and the parsers on malformed input: ValueError and
nothing else (hypothesis fuzzes the DER, X.509, PEM and key parsers)."""
import os

import pki_factory as F
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evse.pki import csr, der as D, ecdsa, pem, x509

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "300"))
CERT = F.der(F.chain3("ec")[0])
RSA_CERT = F.der(F.chain3("rsa")[0])
# `make fuzz` raises EXAMPLES: the time limit grows with it (an alarm inside
# an example makes hypothesis report a flaky data generation, not a bug).
FUZZ_TIMEOUT = pytest.mark.timeout(120 + EXAMPLES // 20)


@pytest.mark.parametrize("v", [0, 1, 127, 128, 255, 256, -1, -128, -129, 2**255, -(2**64), 65537])
def test_integer_round_trip(v):
    d = D.Der(D.integer(v))
    assert d.integer() == v and d.at_end()
    assert D.bit_length(abs(v)) == abs(v).bit_length()


@pytest.mark.parametrize("oid", ["1.2.840.10045.3.1.7", "2.5.4.3", "2.999.3", "1.3.6.1.4.1.311.21.20", "0.0"])
def test_oid_round_trip(oid):
    assert D.Der(D.oid(oid)).oid() == oid


@pytest.mark.parametrize("n", [0, 1, 127, 128, 255, 256, 70000])
def test_length_forms(n):
    d = D.Der(D.octets(bytes(n)))
    assert bytes(d.content(D.OCTET_STRING)) == bytes(n)


BAD = [
    b"", b"\x30", b"\x30\x01", b"\x30\x80\x00\x00",  # truncated, indefinite length
    b"\x30\x81\x05\x00\x00\x00\x00\x00",  # long form for a short length
    b"\x30\x82\x00\x05\x00\x00\x00\x00\x00",  # leading zero in the length
    b"\x30\x88\xff\xff\xff\xff\xff\xff\xff\xff", b"\x30\x84\x7f\xff\xff\xff",  # huge lengths
    b"\x1f\x01\x00",  # multi-byte tag
    b"\x02\x00", b"\x02\x02\x00\x01", b"\x02\x02\xff\x80",  # empty / non-minimal integers
    b"\x06\x00", b"\x06\x02\x2a\x80", b"\x06\x02\x80\x01",  # bad OIDs
    b"\x03\x00", b"\x03\x01\x08", b"\x03\x02\x01\x01", b"\x01\x01\x01",  # bit strings, boolean
]


@pytest.mark.parametrize("data", BAD)
def test_malformed_der_is_value_error(data):
    with pytest.raises(ValueError):
        _walk(data)
    with pytest.raises(ValueError):
        x509.Certificate(data)


def _walk(data, depth=0):
    """Decode everything the reader offers: each primitive with its accessor."""
    d = D.Der(data)
    if d.at_end():
        raise ValueError("empty")
    while not d.at_end():
        tag = d.peek()
        if tag & 0x20:
            _, s, e = d.read()
            if depth < 20 and e > s:
                _walk(bytes(data[s:e]), depth + 1)
        elif tag == D.INTEGER:
            d.integer()
        elif tag == D.OID:
            d.oid()
        elif tag == D.BIT_STRING:
            d.bits()
        elif tag == D.BOOLEAN:
            d.boolean()
        elif tag == D.NULL:
            d.null()
        else:
            d.read()


def _only_value_error(fn, data):
    try:
        fn(data)
    except ValueError:
        pass


@FUZZ_TIMEOUT
@settings(max_examples=EXAMPLES, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_der_reader(data):
    _only_value_error(_walk, data)
    _only_value_error(x509.Certificate, data)
    _only_value_error(ecdsa.decode_sig, data)


@FUZZ_TIMEOUT
@settings(max_examples=EXAMPLES, deadline=None)
@given(st.sampled_from([CERT, RSA_CERT]), st.integers(0, 2000), st.binary(min_size=1, max_size=4),
       st.sampled_from(["flip", "cut", "insert"]))
def test_fuzz_mutated_certificates(base, at, chunk, how):
    at %= len(base)
    if how == "flip":
        data = base[:at] + bytes([base[at] ^ chunk[0]]) + base[at + 1:]
    elif how == "cut":
        data = base[:at]
    else:
        data = base[:at] + chunk + base[at:]
    _only_value_error(x509.Certificate, data)


@FUZZ_TIMEOUT
@settings(max_examples=EXAMPLES, deadline=None)
@given(st.text(max_size=200), st.sampled_from(["CERTIFICATE", "EC PRIVATE KEY", "PRIVATE KEY"]))
def test_fuzz_pem(body, label):
    text = "-----BEGIN %s-----\n%s\n-----END %s-----\n" % (label, body, label)
    _only_value_error(lambda t: [x509.Certificate(b) for _, b in pem.decode_all(t)], text)
    _only_value_error(csr.load_key, text)
    _only_value_error(x509.load_all, text.encode("utf-8", "surrogatepass"))


@FUZZ_TIMEOUT
@settings(max_examples=EXAMPLES, deadline=None)
@given(st.binary(max_size=120))
def test_fuzz_private_key_der(data):
    _only_value_error(csr._sec1, data)
    _only_value_error(csr._pkcs8, data)


@pytest.mark.parametrize("text", ["", "hello", "-----BEGIN CERTIFICATE-----\nMII", "-----BEGIN X",
                                  "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----",
                                  "-----BEGIN CERTIFICATE-----\n\n-----END CERTIFICATE-----",
                                  "-----BEGIN CERTIFICATE-----\nMA=\n-----END CERTIFICATE-----",
                                  "-----BEGIN CERTIFICATE-----\nProc-Type: 4,ENCRYPTED\n-----END CERTIFICATE-----"])
def test_garbage_pem(text):
    with pytest.raises(ValueError):
        pem.decode(text, "CERTIFICATE")
    with pytest.raises(ValueError):
        x509.load_all(b"\xff\xfe" + text.encode())


def test_pem_round_trip():
    text = pem.encode(CERT, "CERTIFICATE")
    assert all(len(line) <= 64 for line in text.splitlines())
    assert pem.decode_all(text + text) == [("CERTIFICATE", CERT)] * 2
    assert pem.decode_all(text, "X509 CRL") == []


def test_trailing_data_after_certificate_refused():
    with pytest.raises(ValueError):
        x509.Certificate(CERT + b"\x00")
