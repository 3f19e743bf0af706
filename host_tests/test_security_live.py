"""Security profiles 1-3 end to end, against the real CSMS peer over
WebSockets and TLS on loopback, with a test PKI made here (Security
Whitepaper ed.3: 2 profiles, 3.1 keys, 4 security events)."""
from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import threading
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from ocpp.v16 import call

from evse import certificates, seclog, security
from evse.clock import SystemClock
from evse.station import Station
from evse.store.storage import FileStorage
from boards.sim.board import SimBoard
from live import CsmsThread, StationThread, wait_for
from test_conformance_harness import case

PW = "0123456789abcdef"
NOW = dt.datetime.now(dt.timezone.utc)
PEM = serialization.Encoding.PEM


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_cert(pub: Any, key: Any, cn: str, issuer: str, ca: bool = False, days: tuple[int, int] = (-1, 30),
              host: str | None = None, serial: int | None = None) -> x509.Certificate:
    b = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(issuer)).public_key(pub)
         .serial_number(serial or x509.random_serial_number())
         .not_valid_before(NOW + dt.timedelta(days=days[0])).not_valid_after(NOW + dt.timedelta(days=days[1]))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if host:
        san = x509.IPAddress(ipaddress.ip_address(host)) if host[0].isdigit() else x509.DNSName(host)
        b = b.add_extension(x509.SubjectAlternativeName([san]), critical=False)
    return b.sign(key, hashes.SHA256())


class Pki:
    """A CSMS root with server certificates (good, expired, wrong host), a
    second CA, and client certificates for the stations."""

    def __init__(self, d: Path) -> None:
        self.d = d
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        self.ca = make_cert(self.ca_key.public_key(), self.ca_key, "Test CSMS Root", "Test CSMS Root", ca=True)
        self.other_key = ec.generate_private_key(ec.SECP256R1())
        self.other = make_cert(self.other_key.public_key(), self.other_key, "Other Root", "Other Root", ca=True)
        self.srv_key = ec.generate_private_key(ec.SECP256R1())
        pub = self.srv_key.public_key()
        self.write("srv.key", self.key_pem(self.srv_key))
        self.write("good.pem", self.pem(make_cert(pub, self.ca_key, "csms", "Test CSMS Root", host="127.0.0.1")))
        self.write("expired.pem", self.pem(make_cert(pub, self.ca_key, "csms", "Test CSMS Root",
                                                     days=(-60, -30), host="127.0.0.1")))
        self.write("wronghost.pem", self.pem(make_cert(pub, self.ca_key, "csms", "Test CSMS Root",
                                                       host="csms.example")))
        self.write("othersigned.pem", self.pem(make_cert(pub, self.other_key, "csms", "Other Root",
                                                         host="127.0.0.1")))

    def write(self, name: str, text: str) -> None:
        (self.d / name).write_text(text)

    @staticmethod
    def pem(c: x509.Certificate) -> str:
        return c.public_bytes(PEM).decode()

    @staticmethod
    def key_pem(k: Any) -> str:
        return k.private_bytes(PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()

    def server(self, which: str = "good", clients: x509.Certificate | None = None,
               optional: bool = False) -> ssl.SSLContext:
        """The CSMS's TLS context; `clients`: the CA client certificates must chain to."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.d / (which + ".pem"), self.d / "srv.key")
        if clients is not None:
            ctx.verify_mode = ssl.CERT_OPTIONAL if optional else ssl.CERT_REQUIRED
            ctx.load_verify_locations(cadata=self.pem(clients))
        return ctx

    def client(self, cn: str, issuer_key: Any = None, issuer: str = "Test CSMS Root") -> tuple[str, str, int]:
        """(cert PEM, key PEM (SEC 1 "EC PRIVATE KEY"), serial) for a station."""
        k = ec.generate_private_key(ec.SECP256R1())
        c = make_cert(k.public_key(), issuer_key or self.ca_key, cn, issuer)
        key = k.private_bytes(PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                              serialization.NoEncryption()).decode()
        return self.pem(c), key, c.serial_number


@pytest.fixture(scope="module")
def pki(tmp_path_factory: Any) -> Pki:
    return Pki(tmp_path_factory.mktemp("secpki"))


def seed(data: str, cp: str, ca: str | None = None, **link: Any) -> None:
    """Factory provisioning before the first start (what sim.py's flags do)."""
    st = Station(board=SimBoard(serial=cp), clock=SystemClock(), storage=FileStorage(data))
    if ca:
        certificates.provision(st, certificates.CS_ROOT, ca)
    if link:
        security.provision(st, **link)


def events(s: StationThread) -> list[str]:
    return s.do(lambda: list(seclog.lines(s.station)))


def accepted(s: StationThread, what: str = "boot accepted", timeout: float = 10) -> None:
    wait_for(lambda: s.do(lambda: s.station.registration == "Accepted" and s.station.online), timeout, what)


def profile_of(c: CsmsThread, cp: str) -> str:
    r = c.call(cp, call.GetConfiguration(key=["SecurityProfile"]))
    return r.configuration_key[0]["value"]


@case("TC_085_CS, TC_086_CS, TC_087_CS",
      "Basic Authentication; TLS server-side certificate; TLS client-side certificate", "Security")
@pytest.mark.parametrize("profile", [1, 2, 3])
def test_profiles_connect(pki: Pki, tmp_path: Path, profile: int) -> None:
    cp = "SP%d" % profile
    cert = pki.client(cp) if profile == 3 else None
    c = CsmsThread(ssl=pki.server(clients=pki.ca if profile == 3 else None) if profile > 1 else None,
                   passwords={cp: PW} if profile < 3 else None)
    seed(str(tmp_path), cp, pki.pem(pki.ca) if profile > 1 else None,
         cert=cert and cert[0], key=cert and cert[1])
    s = StationThread(c.url, cp, str(tmp_path), seeds={"SecurityProfile": str(profile)},
                      password=PW if profile < 3 else None)
    try:
        accepted(s)
        assert c.url.startswith("wss://" if profile > 1 else "ws://")
        assert profile_of(c, cp) == str(profile)
        peer = c.csms.peers[cp][-1]
        if profile == 3:  # the CSMS saw our client certificate, and no password
            assert cert and int(peer["serialNumber"], 16) == cert[2]
            assert not [e for e in c.csms.log if "Authorization" in str(e)]
        else:
            assert peer is None
        assert not [t for lvl, t in s.logs if lvl == "error"], s.logs
    finally:
        s.stop()
        c.stop()


@case("TC_078_CS", "Invalid CentralSystemCertificate Security Event", "Security")
@pytest.mark.parametrize("server", ["othersigned", "expired", "wronghost"])
def test_refused_handshakes_are_security_events(pki: Pki, tmp_path: Path, server: str) -> None:
    ctx = pki.server(server)
    c = CsmsThread(ssl=ctx, passwords={"BAD": PW})
    seed(str(tmp_path), "BAD", pki.pem(pki.ca))
    s = StationThread(c.url, "BAD", str(tmp_path), seeds={"SecurityProfile": "2"}, password=PW)
    try:
        wait_for(lambda: sum("connect failed" in t for _, t in s.logs) >= 3, 10, "retries")
        assert c.calls("BootNotification") == [] and s.do(lambda: s.runtime is not None)
        lines = events(s)
        # One record for the streak of identical failures, with the reason.
        assert len(lines) == 1 and " InvalidCentralSystemCertificate " in lines[0], lines
        why = {"othersigned": "unable to get local issuer", "expired": "expired", "wronghost": "mismatch"}[server]
        assert why in lines[0]
        # Notified once a trusted connection exists (the CSMS fixed its certificate).
        ctx.load_cert_chain(pki.d / "good.pem", pki.d / "srv.key")
        got = c.wait_call("SecurityEventNotification", timeout=15)
        assert got[0]["type"] == "InvalidCentralSystemCertificate" and why in got[0]["techInfo"]
    finally:
        s.stop()
        c.stop()


def _old_tls_server() -> tuple[socket.socket, threading.Thread]:
    """A peer that speaks only an old TLS: it answers every ClientHello with
    a fatal protocol_version alert (RFC 8446 6.2), as OpenSSL 1.0 would."""
    srv = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            with conn:
                conn.recv(4096)
                conn.sendall(bytes([0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x46]))
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return srv, t


def test_tls_version_refused(pki: Pki, tmp_path: Path) -> None:
    srv, _ = _old_tls_server()
    url = "wss://127.0.0.1:%d/ocpp" % srv.getsockname()[1]
    seed(str(tmp_path), "OLD", pki.pem(pki.ca))
    s = StationThread(url, "OLD", str(tmp_path), seeds={"SecurityProfile": "2"}, password=PW)
    try:
        wait_for(lambda: sum("connect failed" in t for _, t in s.logs) >= 2, 10, "retries")
        lines = events(s)
        assert len(lines) == 1 and " InvalidTLSVersion " in lines[0], lines
    finally:
        s.stop()
        srv.close()


@case("TC_083_CS, TC_084_CS", "Upgrade Charge Point Security Profile - Accepted; - Rejected (fallback)", "Security")
def test_profile_raise_reconnects_and_falls_back(pki: Pki, tmp_path: Path) -> None:
    cert, key, _ = pki.client("UP", pki.other_key, "Other Root")  # a certificate this CSMS does not trust
    # Profile 3 clients must chain to the CSMS root; profile 2 clients show none.
    c = CsmsThread(ssl=pki.server(clients=pki.ca, optional=True), passwords={"UP": PW})
    seed(str(tmp_path), "UP", pki.pem(pki.ca), cert=cert, key=key)
    s = StationThread(c.url, "UP", str(tmp_path), seeds={"SecurityProfile": "1"}, password=PW)
    try:
        accepted(s)
        first = c.csms.stations["UP"]
        assert c.call("UP", call.ChangeConfiguration(key="SecurityProfile", value="2")).status == "Accepted"
        wait_for(lambda: c.csms.stations.get("UP") not in (None, first), 10, "reconnect with profile 2")
        accepted(s)
        assert profile_of(c, "UP") == "2" and s.do(lambda: s.station.link.trial) is None
        second = c.csms.stations["UP"]
        assert c.call("UP", call.ChangeConfiguration(key="SecurityProfile", value="3")).status == "Accepted"
        # Profile 3 fails (client certificate refused): back to 2, recorded and notified.
        wait_for(lambda: c.csms.stations.get("UP") not in (None, second), 10, "fallback reconnect")
        accepted(s)
        assert profile_of(c, "UP") == "2"
        got = c.wait_call("SecurityEventNotification", where=lambda p: "fell back" in p.get("techInfo", ""))
        assert got[0]["techInfo"].startswith("fell back to SecurityProfile 2")
        assert any(" fell back to SecurityProfile 2" in t for t in events(s))
    finally:
        s.stop()
        c.stop()


@case("TC_074_CS, TC_077_CS", "Update Charge Point Certificate by request of Central System; "
      "Invalid ChargePointCertificate Security Event", "Security")
def test_sign_certificate_cycle_and_a_foreign_chain(pki: Pki, tmp_path: Path) -> None:
    cert, key, serial = pki.client("SC")
    c = CsmsThread(ssl=pki.server(clients=pki.ca))
    seed(str(tmp_path), "SC", pki.pem(pki.ca), cert=cert, key=key)
    # CpoName "Test": the O that make_cert writes (a certificate must carry the O of the CSR).
    s = StationThread(c.url, "SC", str(tmp_path), seeds={"SecurityProfile": "3", "CpoName": "Test"})
    try:
        accepted(s)
        assert int(c.csms.peers["SC"][-1]["serialNumber"], 16) == serial
        r = c.call("SC", call.ExtendedTriggerMessage(requested_message="SignChargePointCertificate"))
        assert r.status == "Accepted"
        csr = x509.load_pem_x509_csr(c.wait_call("SignCertificate")[0]["csr"].encode())
        assert csr.is_signature_valid
        assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "SC"
        assert csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Test"

        def signed(issuer_key: Any, issuer: str) -> tuple[str, int]:
            n = make_cert(csr.public_key(), issuer_key, "SC", issuer)
            return Pki.pem(n), n.serial_number

        foreign, _ = signed(pki.other_key, "Other Root")
        assert c.call("SC", call.CertificateSigned(certificate_chain=foreign)).status == "Rejected"
        got = c.wait_call("SecurityEventNotification", where=lambda p: p["type"] == "InvalidChargePointCertificate")
        assert "untrusted" in got[0]["techInfo"]
        first = c.csms.stations["SC"]
        new, new_serial = signed(pki.ca_key, "Test CSMS Root")
        assert c.call("SC", call.CertificateSigned(certificate_chain=new)).status == "Accepted"
        # The next connection presents the new certificate (no reboot).
        wait_for(lambda: c.csms.stations.get("SC") not in (None, first), 10, "reconnect")
        accepted(s)
        assert int(c.csms.peers["SC"][-1]["serialNumber"], 16) == new_serial
        assert s.reboots == [] and s.do(lambda: s.station.link.trial) is None
        assert not [t for lvl, t in s.logs if lvl == "error"], s.logs
    finally:
        s.stop()
        c.stop()


@case("TC_075_CS, TC_076_CS", "Install a certificate on the Charge Point; Delete a specific certificate", "Security")
def test_install_list_delete_over_the_wire(pki: Pki, tmp_path: Path) -> None:
    c = CsmsThread(ssl=pki.server(), passwords={"IL": PW})
    seed(str(tmp_path), "IL", pki.pem(pki.ca))
    s = StationThread(c.url, "IL", str(tmp_path), seeds={"SecurityProfile": "2"}, password=PW)
    try:
        accepted(s)
        cs_root = "CentralSystemRootCertificate"
        mf_root = "ManufacturerRootCertificate"
        ids = c.call("IL", call.GetInstalledCertificateIds(certificate_type=cs_root))
        assert ids.status == "Accepted" and len(ids.certificate_hash_data) == 1
        in_use = ids.certificate_hash_data[0]
        assert in_use["serial_number"] == "%x" % pki.ca.serial_number
        # The trust anchor of this very link is not deleted.
        assert c.call("IL", call.DeleteCertificate(certificate_hash_data=in_use)).status == "Failed"
        r = c.call("IL", call.InstallCertificate(certificate_type=mf_root, certificate=Pki.pem(pki.other)))
        assert r.status == "Accepted"
        assert c.call("IL", call.InstallCertificate(certificate_type=mf_root, certificate="garbage")).status == \
            "Rejected"
        mf = c.call("IL", call.GetInstalledCertificateIds(certificate_type=mf_root)).certificate_hash_data
        assert c.call("IL", call.DeleteCertificate(certificate_hash_data=mf[0])).status == "Accepted"
        assert c.call("IL", call.GetInstalledCertificateIds(certificate_type=mf_root)).status == "NotFound"
        assert c.call("IL", call.DeleteCertificate(certificate_hash_data=mf[0])).status == "NotFound"
    finally:
        s.stop()
        c.stop()


def test_csms_root_rotation_reconnects_with_the_new_trust(pki: Pki, tmp_path: Path) -> None:
    # AdditionalRootCertificateCheck: the new root is signed by the old one.
    new_key = ec.generate_private_key(ec.SECP256R1())
    cross = make_cert(new_key.public_key(), pki.ca_key, "New CSMS Root", "Test CSMS Root", ca=True)
    srv = make_cert(pki.srv_key.public_key(), new_key, "csms", "New CSMS Root", host="127.0.0.1")
    pki.write("rotated.pem", Pki.pem(srv))
    ctx = pki.server()
    c = CsmsThread(ssl=ctx, passwords={"ROT": PW})
    seed(str(tmp_path), "ROT", pki.pem(pki.ca))
    s = StationThread(c.url, "ROT", str(tmp_path), seeds={"SecurityProfile": "2"}, password=PW)
    try:
        accepted(s)
        first = c.csms.stations["ROT"]
        r = c.call("ROT", call.InstallCertificate(certificate_type="CentralSystemRootCertificate",
                                                  certificate=Pki.pem(cross)))
        assert r.status == "Accepted"
        # The trust set changed for the next connection: this one stays (issue 19) ...
        assert c.call("ROT", call.GetInstalledCertificateIds(certificate_type="CentralSystemRootCertificate"))
        assert c.csms.stations.get("ROT") is first
        # ... and the next one trusts a CSMS certificate from the new root.
        ctx.load_cert_chain(pki.d / "rotated.pem", pki.d / "srv.key")
        c.csms.passwords["ROT"] = "rotated-key-0123"  # a key change makes the station reconnect
        c.call("ROT", call.ChangeConfiguration(key="AuthorizationKey", value=b"rotated-key-0123".hex()))
        wait_for(lambda: c.csms.stations.get("ROT") not in (None, first), 10, "reconnect to the rotated CSMS")
        accepted(s)
        assert s.reboots == []
    finally:
        s.stop()
        c.stop()
