"""evse.link.tls: TLS client contexts. The CPython path for real over loopback
(trusted root, untrusted root, client certificate required by the server),
the MicroPython and CircuitPython paths against stand-in `ssl` modules
that record what the firmware asks of them."""
import datetime
import ipaddress
import socket
import ssl
import sys
import threading
import types

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from evse.link import tls


def _cert(key, cn, issuer_key=None, issuer_cn=None, ca=False, ip=None, client=False):
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder()
         .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
         .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_cn or cn)]))
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        b = b.add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                          data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                          crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
    if ip:
        b = b.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]), critical=False)
    if client:
        b = b.add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    return b.sign(issuer_key or key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def _key_pem(k):
    return k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                           serialization.NoEncryption())


def make_pki(d):
    """A CSMS root, a server certificate for 127.0.0.1, a client certificate
    and an unrelated root; PEM bytes, plus the server files in `d`."""
    ca_k, other_k, srv_k, cli_k = (ec.generate_private_key(ec.SECP256R1()) for _ in range(4))
    p = types.SimpleNamespace()
    p.ca = _cert(ca_k, "Test CSMS Root", ca=True)
    p.other = _cert(other_k, "Other Root", ca=True)
    p.cli = _cert(cli_k, "CP001", ca_k, "Test CSMS Root", client=True)
    p.cli_key = _key_pem(cli_k)
    (d / "srv.pem").write_bytes(_cert(srv_k, "127.0.0.1", ca_k, "Test CSMS Root", ip="127.0.0.1"))
    (d / "srv.key").write_bytes(_key_pem(srv_k))
    (d / "ca.pem").write_bytes(p.ca)
    p.dir = d
    return p


def server_context(pki, client_ca=False):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki.dir / "srv.pem", pki.dir / "srv.key")
    if client_ca:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cafile=str(pki.dir / "ca.pem"))
    return ctx


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("tlspki"))


def _handshake(pki, client_ctx, client_ca=False):
    """One TLS handshake over loopback; (client error or None, peer cert CN seen by the server)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    seen = {}

    def serve():
        conn, _ = srv.accept()
        try:
            with server_context(pki, client_ca).wrap_socket(conn, server_side=True) as s:
                peer = s.getpeercert()
                seen["cn"] = peer and dict(x[0] for x in peer["subject"])["commonName"]
                s.sendall(b"ok")
        except (ssl.SSLError, OSError) as e:
            seen["error"] = e
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    err = None
    try:
        with socket.create_connection(srv.getsockname(), timeout=5) as raw, \
                client_ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            assert s.recv(2) == b"ok"
    except (ssl.SSLError, OSError) as e:
        err = e
    t.join(5)
    srv.close()
    return err, seen.get("cn")


def test_refuses_without_a_trust_anchor():
    for bad in (None, b"", ""):
        with pytest.raises(ValueError):
            tls.client_context(bad)


def test_refuses_a_cert_without_its_key(pki):
    with pytest.raises(ValueError):
        tls.client_context(pki.ca, cert=pki.cli)
    with pytest.raises(ValueError):
        tls.client_context(pki.ca, key=pki.cli_key)


def test_cpython_context_verifies_the_server(pki):
    ctx = tls.client_context(pki.ca)
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert _handshake(pki, ctx) == (None, None)


def test_cpython_context_refuses_an_untrusted_server(pki):
    err, _ = _handshake(pki, tls.client_context(pki.other))
    assert isinstance(err, ssl.SSLCertVerificationError)


def test_cpython_context_presents_the_client_certificate(pki):
    err, cn = _handshake(pki, tls.client_context(pki.ca, cert=pki.cli, key=pki.cli_key), client_ca=True)
    assert err is None and cn == "CP001"
    err, cn = _handshake(pki, tls.client_context(pki.ca), client_ca=True)
    assert isinstance(err, ssl.SSLError) and cn is None  # without one the server refuses the link


class _Ctx:
    def __init__(self, log, *a):
        self.log = log
        log.append(("new",) + a)

    def load_verify_locations(self, cadata=None):
        self.log.append(("ca", cadata))

    def load_cert_chain(self, cert, key):
        self.log.append(("chain", cert, key))

    def __setattr__(self, k, v):
        if k != "log":
            self.log.append(("set", k, v))
        object.__setattr__(self, k, v)


def _fake_ssl(monkeypatch, impl):
    log = []
    mod = types.SimpleNamespace(PROTOCOL_TLS_CLIENT=16, CERT_REQUIRED=2,
                                SSLContext=lambda proto: _Ctx(log, proto),
                                create_default_context=lambda: _Ctx(log))
    monkeypatch.setitem(sys.modules, "ssl", mod)
    monkeypatch.setattr(tls, "_IMPL", impl)
    return log


def test_micropython_path_sets_cert_required_and_passes_bytes(monkeypatch, pki):
    log = _fake_ssl(monkeypatch, "micropython")
    tls.client_context(pki.ca, cert=pki.cli, key=pki.cli_key)
    assert log == [("new", 16), ("set", "verify_mode", 2), ("ca", pki.ca), ("chain", pki.cli, pki.cli_key)]
    with pytest.raises(ValueError):
        tls.system_context()  # no root store on MicroPython


def test_circuitpython_path_uses_the_default_context_and_files(monkeypatch, pki, tmp_path):
    log = _fake_ssl(monkeypatch, "circuitpython")
    d = str(tmp_path / "tls")
    tls.client_context(pki.ca, cert=pki.cli, key=pki.cli_key, certdir=d)
    assert log == [("new",), ("ca", pki.ca.decode()), ("chain", d + "/client.pem", d + "/client.key")]
    assert (tmp_path / "tls" / "client.pem").read_bytes() == pki.cli
    before = (tmp_path / "tls" / "client.key").stat().st_mtime_ns
    log.clear()
    tls.client_context(pki.ca, cert=pki.cli, key=pki.cli_key, certdir=d)  # unchanged: not rewritten
    assert (tmp_path / "tls" / "client.key").stat().st_mtime_ns == before
    log.clear()
    tls.client_context(pki.ca, cert="/certs/a.pem", key="/certs/a.key", certdir=d)
    assert log[-1] == ("chain", "/certs/a.pem", "/certs/a.key")  # paths already on the device


def test_pem_text_is_content_not_a_path(pki):
    """security.py hands over PEM as str: that is the certificate itself."""
    err, cn = _handshake(pki, tls.client_context(pki.ca.decode(), cert=pki.cli.decode(), key=pki.cli_key.decode()),
                         client_ca=True)
    assert err is None and cn == "CP001"


def test_micropython_tls_module_gets_the_cipher_suites_it_has(monkeypatch, pki):
    # MicroPython 1.23+: tls.SSLContext; set_ciphers refuses a name the build
    # lacks, so only the suites get_ciphers() lists are asked for (issue 19 item 11).
    log = []

    class Ctx(_Ctx):
        def get_ciphers(self):
            return ["TLS-RSA-WITH-AES-128-GCM-SHA256", "TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256", "TLS-PSK-X"]

        def set_ciphers(self, names):
            self.log.append(("ciphers", names))

    mod = types.SimpleNamespace(PROTOCOL_TLS_CLIENT=16, CERT_REQUIRED=2, SSLContext=lambda proto: Ctx(log, proto))
    monkeypatch.setitem(sys.modules, "tls", mod)
    monkeypatch.setattr(tls, "_IMPL", "micropython")
    tls.client_context(pki.ca)
    assert log == [("new", 16), ("set", "verify_mode", 2), ("ca", pki.ca),
                   ("ciphers", ["TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256", "TLS-RSA-WITH-AES-128-GCM-SHA256"])]


def test_cpython_context_takes_a_rotated_root_alone_and_tls12_at_least(pki):
    ctx = tls.client_context(pki.ca)
    assert ctx.verify_flags & ssl.VERIFY_X509_PARTIAL_CHAIN
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    names = {c["name"] for c in ctx.get_ciphers()}
    assert {"AES128-GCM-SHA256", "AES256-GCM-SHA384", "ECDHE-ECDSA-AES128-GCM-SHA256",
            "ECDHE-ECDSA-AES256-GCM-SHA384"} <= names


def _dated(key, cn, issuer_key, issuer_cn, ca, days, ip=None):
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder()
         .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
         .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_cn)]))
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now + datetime.timedelta(days=days[0]))
         .not_valid_after(now + datetime.timedelta(days=days[1]))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ip:
        b = b.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]), critical=False)
    return b.sign(issuer_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


@pytest.mark.parametrize("old_days", [None, (-400, -1)], ids=["old-removed", "old-expired"])
def test_a_rotated_root_verifies_once_the_old_one_is_gone_or_expired(tmp_path, old_days):
    # Issue 19 item 5: the new root is a CA signed by the old one; with the
    # old one removed or expired the server's chain must still verify.
    old_k, new_k, srv_k = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    old = _dated(old_k, "Old Root", old_k, "Old Root", True, old_days or (-400, 400))
    new = _dated(new_k, "New Root", old_k, "Old Root", True, (-10, 400))
    (tmp_path / "srv.pem").write_bytes(_dated(srv_k, "csms", new_k, "New Root", False, (-1, 30), ip="127.0.0.1"))
    (tmp_path / "srv.key").write_bytes(_key_pem(srv_k))
    p = types.SimpleNamespace(dir=tmp_path)
    trust = new if old_days is None else new + old
    err, _ = _handshake(p, tls.client_context(trust))
    assert err is None, err
