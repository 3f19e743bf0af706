"""Issue 19, part B (the link): each deviation reproduced over the wire
against the real CSMS peer (tools/csms.py, `ocpp` package) on loopback, over
real WebSockets and TLS, with a test PKI made here. The case ids are the
item numbers of issue 19 (not OCTT ids)."""
from __future__ import annotations

import json
import ssl
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from ocpp.v16 import call

from live import CsmsThread, SimProcess, StationThread, wait_for
from test_conformance_harness import case
from test_security_live import PW, Pki, accepted, events, make_cert, profile_of, seed

CS_ROOT = "CentralSystemRootCertificate"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: Any) -> Pki:
    return Pki(tmp_path_factory.mktemp("i19pki"))


def rotated(pki: Pki, tag: str) -> tuple[Any, str]:
    """A new CSMS root signed by the old one (AdditionalRootCertificateCheck)
    and the name of a server certificate (file stem) issued by it."""
    key = ec.generate_private_key(ec.SECP256R1())
    root = make_cert(key.public_key(), pki.ca_key, "New Root " + tag, "Test CSMS Root", ca=True)
    srv = make_cert(pki.srv_key.public_key(), key, "csms", "New Root " + tag, host="127.0.0.1")
    pki.write("new-" + tag + ".pem", Pki.pem(srv))
    return root, "new-" + tag


def drop(c: CsmsThread, cp: str) -> None:
    """The CSMS closes the station's WebSocket (the station reconnects)."""
    ws = c.csms.stations[cp]._connection.ws
    c.run(ws.close())


def installed(c: CsmsThread, cp: str) -> list[str]:
    r = c.call(cp, call.GetInstalledCertificateIds(certificate_type=CS_ROOT))
    return [h["serial_number"] for h in (r.certificate_hash_data or [])]


# ---- 2: a new trust anchor applies to the next connection ----------------------
@case("ISSUE19_02", "InstallCertificate(CentralSystemRootCertificate) keeps the connection; "
      "a reconnect waits for the CALLs in flight", "Security")
@pytest.mark.parametrize("profile", [1, 2])
def test_issue19_02_root_install_keeps_the_link(pki: Pki, tmp_path: Path, profile: int) -> None:
    cp = "I02P%d" % profile
    c = CsmsThread(ssl=pki.server() if profile == 2 else None, passwords={cp: PW})
    seed(str(tmp_path), cp, pki.pem(pki.ca) if profile == 2 else None)
    s = StationThread(c.url, cp, str(tmp_path), seeds={"SecurityProfile": str(profile)}, password=PW)
    try:
        accepted(s)
        first = c.csms.stations[cp]
        new, _ = rotated(pki, "i02%d" % profile)
        root = Pki.pem(new) if profile == 2 else Pki.pem(pki.ca)
        assert c.call(cp, call.InstallCertificate(certificate_type=CS_ROOT, certificate=root)).status == "Accepted"
        # The CSMS's next request is answered on the same connection.
        assert len(installed(c, cp)) == (2 if profile == 2 else 1)
        r = c.call(cp, call.ExtendedTriggerMessage(requested_message="Heartbeat"))
        assert r.status == "Accepted"
        c.wait_call("Heartbeat", cp_id=cp)
        time.sleep(0.3)
        assert c.csms.stations.get(cp) is first and len(c.csms.peers[cp]) == 1
        # A new AuthorizationKey does reconnect, but only once the security
        # event it raised has its answer: it is sent once, on the old link.
        c.csms.passwords[cp] = "the next key, 20 B"
        hexkey = "the next key, 20 B".encode().hex()
        assert c.call(cp, call.ChangeConfiguration(key="AuthorizationKey", value=hexkey)).status == "Accepted"
        wait_for(lambda: c.csms.stations.get(cp) not in (None, first), 10, "reconnect with the new key")
        accepted(s)
        time.sleep(0.5)
        sent = [p for p in c.calls("SecurityEventNotification", cp)
                if "AuthorizationKey" in p.get("techInfo", "")]
        assert len(sent) == 1, sent
        # ... and answered there: nothing of the security event queue waits to be retried.
        assert s.do(lambda: s.station.seclog.retry_at) is None
        assert s.reboots == []
    finally:
        s.stop()
        c.stop()


def test_issue19_02_a_call_right_behind_the_key_change_is_answered(tmp_path: Path) -> None:
    # The CSMS sends its next CALL without waiting for the answer to the key
    # change: the station answers both before it reconnects.
    c = CsmsThread(passwords={"I02Q": PW})
    s = StationThread(c.url, "I02Q", str(tmp_path), password=PW)
    try:
        accepted(s)
        first = c.csms.stations["I02Q"]
        c.csms.passwords["I02Q"] = "pipelined-key-0123"
        key = b"pipelined-key-0123".hex()
        tap = first._connection

        async def both() -> None:
            await tap.send(json.dumps([2, "k1", "ChangeConfiguration", {"key": "AuthorizationKey", "value": key}]))
            await tap.send(json.dumps([2, "g1", "GetConfiguration", {"key": ["HeartbeatInterval"]}]))
        c.run(both())
        wait_for(lambda: c.csms.stations.get("I02Q") not in (None, first), 10, "reconnect with the new key")
        answered = [e["msg"][1] for e in c.csms.log if e["dir"] == "in" and e["cp"] == "I02Q"
                    and isinstance(e["msg"], list) and e["msg"][0] == 3]
        assert "k1" in answered and "g1" in answered, answered
    finally:
        s.stop()
        c.stop()


# ---- 3: AuthorizationKey is hex ------------------------------------------------
@case("ISSUE19_03", "AuthorizationKey: hex of 16-20 bytes, the Basic header carries the bytes; "
      "sim --password / --authorization-key", "Security")
def test_issue19_03_authorization_key_is_hex(tmp_path: Path) -> None:
    c = CsmsThread(heartbeat=60, passwords={"I03": PW})
    s = StationThread(c.url, "I03", str(tmp_path), password=PW)
    try:
        accepted(s)
        first = c.csms.stations["I03"]
        change = lambda v: c.call("I03", call.ChangeConfiguration(key="AuthorizationKey", value=v)).status  # noqa: E731
        assert change("ab" * 15) == "Rejected"  # 15 bytes
        assert change("ab" * 21) == "Rejected"  # 21 bytes
        assert change("abc" * 11) == "Rejected"  # an odd number of digits
        assert change("zz" * 16) == "Rejected"  # not hex
        assert change("OCA_OCTT_admin_test_plain_text_x") == "Rejected"
        assert c.csms.stations["I03"] is first  # nothing changed: no reconnect
        secret = "twenty-bytes-secret!"  # 20 bytes: the longest key
        c.csms.passwords["I03"] = secret
        assert change(secret.encode().hex().upper()) == "Accepted"
        wait_for(lambda: c.csms.stations.get("I03") not in (None, first), 10, "reconnect with the decoded key")
        accepted(s)
    finally:
        s.stop()
    # Factory provisioning: --password is the plain password, --authorization-key the hex key.
    c.csms.passwords.update({"I03A": "plain factory pw", "I03B": "OCA_OCTT_admin_test"})
    for cp, flag, value in (("I03A", "--password", "plain factory pw"),
                            ("I03B", "--authorization-key", "4F43415F4F4354545F61646D696E5F74657374")):
        sim = SimProcess(c.url, cp, str(tmp_path / cp), flag, value)
        try:
            c.wait_call("BootNotification", cp_id=cp, timeout=15)
        finally:
            sim.quit()
    c.stop()


# ---- 4: the profile decides the scheme -----------------------------------------
def restart(c: CsmsThread, port: int, ctx: ssl.SSLContext | None) -> None:
    """The CSMS restarts its server on the same port (TC_083 steps 15, 17)."""
    c.run(c.csms.stop())
    c.run(c.csms.start(port=port, ssl=ctx))


@case("ISSUE19_04", "SecurityProfile 1 -> 2 on a ws:// URL connects with TLS to the same host, port and path; "
      "falls back only after refusals", "Security")
def test_issue19_04_profile_raise_switches_to_tls(pki: Pki, tmp_path: Path) -> None:
    c = CsmsThread(passwords={"I04": PW})
    port = c.port
    seed(str(tmp_path), "I04", pki.pem(pki.ca))
    s = StationThread(c.url, "I04", str(tmp_path), seeds={"SecurityProfile": "1"}, password=PW)
    try:
        accepted(s)
        assert c.url.startswith("ws://")
        assert c.call("I04", call.ChangeConfiguration(key="SecurityProfile", value="2")).status == "Accepted"
        # TC_083 step 15: the CSMS restarts with profile 1 (plain ws) and waits.
        restart(c, port, None)
        n = len(c.csms.peers["I04"])
        time.sleep(2.5)  # several attempts at the fast test backoff (0.1-0.5 s)
        assert len(c.csms.peers["I04"]) == n, "reconnected without TLS"
        assert s.do(lambda: s.station.link.profile) == 2  # a plain peer is no refusal: no fallback
        # Step 17: the server comes back with TLS on the same port.
        restart(c, port, pki.server())
        wait_for(lambda: "I04" in c.csms.stations, 15, "reconnect with TLS")
        accepted(s)
        tr = c.csms.stations["I04"]._connection.ws.transport
        assert tr.get_extra_info("ssl_object") is not None  # the link is TLS
        assert profile_of(c, "I04") == "2" and s.do(lambda: s.station.link.trial) is None
        got = c.wait_call("SecurityEventNotification", cp_id="I04",
                          where=lambda p: "SecurityProfile 2 connected" in p.get("techInfo", ""))
        assert got
    finally:
        s.stop()
        c.stop()


def test_issue19_04_fallback_after_a_csms_that_refuses(pki: Pki, tmp_path: Path) -> None:
    # The same raise against a TLS server whose certificate the station does
    # not trust: after the refused attempts it falls back to profile 1.
    c = CsmsThread(passwords={"I04F": PW})
    port = c.port
    seed(str(tmp_path), "I04F", pki.pem(pki.ca))
    s = StationThread(c.url, "I04F", str(tmp_path), seeds={"SecurityProfile": "1"}, password=PW)
    try:
        accepted(s)
        assert c.call("I04F", call.ChangeConfiguration(key="SecurityProfile", value="2")).status == "Accepted"
        restart(c, port, pki.server("othersigned"))
        wait_for(lambda: s.do(lambda: s.station.link.profile) == 1, 15, "fallback to profile 1")
        fails = [t for _, t in s.logs if "connect failed" in t and "CERTIFICATE_VERIFY_FAILED" in t]
        assert len(fails) >= 3
        restart(c, port, None)
        wait_for(lambda: "I04F" in c.csms.stations, 15, "reconnect with profile 1")
        accepted(s)
        assert profile_of(c, "I04F") == "1"
        assert c.wait_call("SecurityEventNotification", cp_id="I04F",
                           where=lambda p: "fell back to SecurityProfile 1" in p.get("techInfo", ""))
    finally:
        s.stop()
        c.stop()


# ---- 5, 7: root rotation --------------------------------------------------------
@case("ISSUE19_05", "Root rotation: with the old root removed the new (not self-signed) root still verifies "
      "the CSMS (partial chain)", "Security")
def test_issue19_05_rotated_root_verifies_alone(pki: Pki, tmp_path: Path) -> None:
    new, srv = rotated(pki, "i05")
    ctx = pki.server()
    c = CsmsThread(ssl=ctx, passwords={"I05": PW})
    seed(str(tmp_path), "I05", pki.pem(pki.ca))
    s = StationThread(c.url, "I05", str(tmp_path), seeds={"SecurityProfile": "2"}, password=PW)
    try:
        accepted(s)
        assert c.call("I05", call.InstallCertificate(certificate_type=CS_ROOT,
                                                     certificate=Pki.pem(new))).status == "Accepted"
        old = [h for h in c.call("I05", call.GetInstalledCertificateIds(certificate_type=CS_ROOT))
               .certificate_hash_data if h["serial_number"] == "%x" % pki.ca.serial_number]
        # The old root still validates the live link: it stays for now (M04.FR.06, ISSUE19_06).
        assert c.call("I05", call.DeleteCertificate(certificate_hash_data=old[0])).status == "Failed"
        ctx.load_cert_chain(pki.d / (srv + ".pem"), pki.d / "srv.key")  # the CSMS moves to the new root
        for n in range(2):  # the first connect trusts the new root alone, so does the one after the delete
            first = c.csms.stations["I05"]
            drop(c, "I05")
            wait_for(lambda first=first: c.csms.stations.get("I05") not in (None, first), 15,
                     "reconnect trusting the new root")
            accepted(s)
            if n == 0:  # not in use any more: it may go (ISSUE19_07 may have retired it already)
                r = c.call("I05", call.DeleteCertificate(certificate_hash_data=old[0]))
                assert r.status in ("Accepted", "NotFound")
                assert installed(c, "I05") == ["%x" % new.serial_number]
        assert not [t for _, t in s.logs if "CERTIFICATE_VERIFY_FAILED" in t]
    finally:
        s.stop()
        c.stop()


@case("ISSUE19_07", "The fallback root is removed after a connection verified with the new root (M05.FR.12)",
      "Security")
def test_issue19_07_fallback_root_retired(pki: Pki, tmp_path: Path) -> None:
    new, srv = rotated(pki, "i07")
    ctx = pki.server()
    c = CsmsThread(ssl=ctx, passwords={"I07": PW})
    seed(str(tmp_path), "I07", pki.pem(pki.ca))
    s = StationThread(c.url, "I07", str(tmp_path), seeds={"SecurityProfile": "2"}, password=PW)
    try:
        accepted(s)
        assert c.call("I07", call.InstallCertificate(certificate_type=CS_ROOT,
                                                     certificate=Pki.pem(new))).status == "Accepted"
        both = sorted(["%x" % pki.ca.serial_number, "%x" % new.serial_number])
        # Still on the old server certificate: the fallback is what verifies it, and stays.
        first = c.csms.stations["I07"]
        drop(c, "I07")
        wait_for(lambda: c.csms.stations.get("I07") not in (None, first), 15, "reconnect via the fallback")
        accepted(s)
        assert sorted(installed(c, "I07")) == both
        # The CSMS moves to the new root: the next connection verifies with it alone.
        ctx.load_cert_chain(pki.d / (srv + ".pem"), pki.d / "srv.key")
        second = c.csms.stations["I07"]
        drop(c, "I07")
        wait_for(lambda: c.csms.stations.get("I07") not in (None, second), 15, "reconnect via the new root")
        accepted(s)
        wait_for(lambda: installed(c, "I07") == ["%x" % new.serial_number], 5, "fallback removed")
        # Recorded in the security log (its notification may wait behind a retry).
        assert [t for t in events(s) if " ReconfigurationOfSecurityParameters " in t and "fallback" in t]
    finally:
        s.stop()
        c.stop()


# ---- 8: profile 2/3 need valid material -----------------------------------------
@case("ISSUE19_08", "SecurityProfile 3 needs a valid ChargePointCertificate, 2/3 a valid CSMS root (A05.FR.04)",
      "Security")
def test_issue19_08_profile_needs_valid_material(pki: Pki, tmp_path: Path) -> None:
    k = ec.generate_private_key(ec.SECP256R1())
    expired_root = make_cert(k.public_key(), k, "Expired Root", "Expired Root", ca=True, days=(-60, -1))
    c = CsmsThread(passwords={"I08": PW})
    seed(str(tmp_path), "I08", Pki.pem(expired_root))
    s = StationThread(c.url, "I08", str(tmp_path), seeds={"SecurityProfile": "1"}, password=PW)
    try:
        accepted(s)
        change = lambda v: c.call("I08", call.ChangeConfiguration(key="SecurityProfile", value=v)).status  # noqa: E731
        assert change("2") == "Rejected"  # the only CSMS root has expired
        assert change("3") == "Rejected"
    finally:
        s.stop()
        c.stop()
    cert, key, _ = pki.client("I08B")
    old = make_cert(ec.generate_private_key(ec.SECP256R1()).public_key(), pki.ca_key, "I08B", "Test CSMS Root",
                    days=(-60, -1))
    c = CsmsThread(ssl=pki.server(clients=pki.ca, optional=True), passwords={"I08B": PW})
    seed(str(tmp_path / "b"), "I08B", pki.pem(pki.ca), cert=Pki.pem(old), key=key)
    s = StationThread(c.url, "I08B", str(tmp_path / "b"), seeds={"SecurityProfile": "2"}, password=PW)
    try:
        accepted(s)
        change = lambda v: c.call("I08B", call.ChangeConfiguration(key="SecurityProfile", value=v)).status  # noqa: E731
        assert change("3") == "Rejected"  # the ChargePointCertificate has expired
        s.do(lambda: setattr(s.station.link, "cert", cert))  # a valid one (as CertificateSigned would bring)
        assert change("3") == "Accepted"
    finally:
        s.stop()
        c.stop()


# ---- 11: cipher suites -----------------------------------------------------------
def _suite_server(pki: Pki, kind: str) -> ssl.SSLContext:
    """A TLS 1.2 CSMS that offers only the reference's RSA pair, or only the
    whitepaper's ECDHE-ECDSA pair."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    if kind == "rsa":
        k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pki.write("rsa.key", Pki.key_pem(k))
        pki.write("rsa.pem", Pki.pem(make_cert(k.public_key(), pki.ca_key, "csms", "Test CSMS Root",
                                               host="127.0.0.1")))
        ctx.load_cert_chain(pki.d / "rsa.pem", pki.d / "rsa.key")
        ctx.set_ciphers("AES128-GCM-SHA256:AES256-GCM-SHA384")
    else:
        ctx.load_cert_chain(pki.d / "good.pem", pki.d / "srv.key")
        ctx.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384")
    return ctx


@case("ISSUE19_11", "TLS 1.2 with the reference's RSA pair (C-12) and the whitepaper's ECDHE-ECDSA pair",
      "Security")
@pytest.mark.parametrize("kind", ["rsa", "ecdsa"])
def test_issue19_11_cipher_suites(pki: Pki, tmp_path: Path, kind: str) -> None:
    cp = "I11" + kind
    c = CsmsThread(ssl=_suite_server(pki, kind), passwords={cp: PW})
    seed(str(tmp_path), cp, pki.pem(pki.ca))
    s = StationThread(c.url, cp, str(tmp_path), seeds={"SecurityProfile": "2"}, password=PW)
    try:
        accepted(s)
        obj = c.csms.stations[cp]._connection.ws.transport.get_extra_info("ssl_object")
        name, version, _ = obj.cipher()
        assert version == "TLSv1.2"
        assert name in (("AES128-GCM-SHA256", "AES256-GCM-SHA384") if kind == "rsa" else
                        ("ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384"))
    finally:
        s.stop()
        c.stop()


# ---- 16: the current value is no raise --------------------------------------------
@case("ISSUE19_16", "SecurityProfile set to its current value is Rejected (A05.FR.01)", "Security")
def test_issue19_16_same_profile_rejected(tmp_path: Path) -> None:
    c = CsmsThread(passwords={"I16": PW})
    s = StationThread(c.url, "I16", str(tmp_path), seeds={"SecurityProfile": "1"}, password=PW)
    try:
        accepted(s)
        first = c.csms.stations["I16"]
        change = lambda v: c.call("I16", call.ChangeConfiguration(key="SecurityProfile", value=v)).status  # noqa: E731
        assert change("1") == "Rejected"
        assert change("0") == "Rejected"
        time.sleep(0.2)
        assert c.csms.stations["I16"] is first and profile_of(c, "I16") == "1"
    finally:
        s.stop()
        c.stop()

