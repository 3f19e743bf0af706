"""security.py on the sans-IO rig: SecurityProfile trial and fallback
(whitepaper 2.1, also across a power cut), connect failures classified into
security events (CPython ssl and MicroPython mbedTLS errors), factory seeding
of the profile."""
from __future__ import annotations

import ssl
from typing import Any

import pytest

import pki_factory as F
from evse import seclog, security
from evse.link.wsconn import WsError
from rig import Rig

# Valid at the rig's clock (2026-01-01): a CSMS root and a client certificate.
_RK, _CK = F.key("ec", "linkroot"), F.key("ec", "linkcp")
PEM = F.pem(F.cert(_RK, _RK, "Link Root", "Link Root", ca=True, days=(-400, 3650), serial=7))
CP_CERT = F.pem(F.cert(_CK, _RK, "CP1", "Link Root", days=(-400, 365), serial=8))
CP_OLD = F.pem(F.cert(_CK, _RK, "CP1", "Link Root", days=(-900, -600), serial=9))  # expired


def ready(tmp_path: Any) -> Rig:
    r = Rig(str(tmp_path))
    security.provision(r.st, url="wss://csms.example/ocpp", cp_id="CP1", password="0123456789abcdef", ca=PEM)
    r.connect()
    return r


def fail(r: Rig, error: Exception, n: int = 1) -> None:
    for _ in range(n):
        r.st.disconnected(r.clock.ms())
        r.st.connect_failed(r.clock.ms(), error)


def test_raise_then_fall_back_after_three_failures(tmp_path: Any) -> None:
    r = ready(tmp_path)
    v = r.st.link.version
    assert r.st.config.change("SecurityProfile", "2") == "Accepted"
    assert r.st.link.profile == 2 and r.st.link.version == v + 1
    fail(r, ConnectionRefusedError(), 5)  # no CSMS there: not a refusal, not counted
    fail(r, CERT_ERR, 2)
    assert r.st.link.profile == 2  # two refusals: still trying
    fail(r, CERT_ERR)
    link = r.st.link
    assert link.profile == 0 and link.trial is None and link.version == v + 2  # reconnect with the old one
    assert r.st.config.get("SecurityProfile") == 0
    assert any("fell back to SecurityProfile 0" in t for t in seclog.lines(r.st))


def test_a_successful_connect_keeps_the_new_profile(tmp_path: Any) -> None:
    r = ready(tmp_path)
    r.st.config.change("SecurityProfile", "1")
    fail(r, ConnectionRefusedError(), 2)
    r.connect()
    fail(r, ConnectionRefusedError(), 5)
    assert r.st.link.profile == 1 and r.st.link.trial is None


def test_trial_survives_a_power_cut(tmp_path: Any) -> None:
    r = ready(tmp_path)
    r.st.config.change("SecurityProfile", "2")
    r.reboot()
    assert r.st.link.trial == {"profile": 0} and r.st.link.profile == 2
    fail(r, WsError("HTTP 401", 401), 3)
    assert r.st.link.profile == 0


CERT_ERR = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: "
                                           "certificate has expired (_ssl.c:1000)")


@pytest.mark.parametrize("error,kind", [
    (CERT_ERR, "InvalidCentralSystemCertificate"),
    (ssl.SSLError(1, "[SSL: TLSV1_ALERT_PROTOCOL_VERSION] tlsv1 alert protocol version"), "InvalidTLSVersion"),
    (ssl.SSLError(1, "[SSL: NO_SHARED_CIPHER] no shared cipher"), "InvalidTLSCipherSuite"),
    (ssl.SSLError(1, "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] alert"), "FailedToAuthenticateAtCentralSystem"),
    (WsError("HTTP 401", 401), "FailedToAuthenticateAtCentralSystem"),
    (OSError(-0x2700, "MBEDTLS_ERR_X509_CERT_VERIFY_FAILED"), "InvalidCentralSystemCertificate"),
    (OSError(-0x6E80), "InvalidTLSVersion"),
    (ConnectionRefusedError(111, "refused"), None),
    (WsError("handshake timeout"), None),
])
def test_classify(error: Exception, kind: str | None) -> None:
    got, info = security.classify(error)
    assert got == kind and len(info) <= 255


def test_one_record_per_failure_streak_and_notified_after_the_boot(tmp_path: Any) -> None:
    r = Rig(str(tmp_path))
    fail(r, CERT_ERR, 4)
    fail(r, WsError("HTTP 401", 401), 2)
    kinds = [line.split(" ")[1] for line in seclog.lines(r.st)]
    assert kinds == ["InvalidCentralSystemCertificate", "FailedToAuthenticateAtCentralSystem"]
    assert "certificate has expired" in list(seclog.lines(r.st))[0]
    r.connect()
    sent = [p["type"] for p in r.sent("SecurityEventNotification")]
    assert sent == kinds
    fail(r, CERT_ERR)  # a new streak after a good connection is recorded again
    assert len(list(seclog.lines(r.st))) == 3


def test_profile_seed_goes_into_the_link_but_never_over_the_csms(tmp_path: Any) -> None:
    r = Rig(str(tmp_path), seeds={"SecurityProfile": "1"})
    assert r.st.link.profile == 1 and r.st.config.get("SecurityProfile") == 1
    security.provision(r.st, password="0123456789abcdef", ca=PEM)
    r.connect()
    assert r.st.config.change("SecurityProfile", "2") == "Accepted"
    r.connect()  # the trial succeeded
    r2 = Rig(str(tmp_path), seeds={"SecurityProfile": "1"})  # the factory seed again at start
    assert r2.st.link.profile == 2
    with pytest.raises(ValueError):
        Rig(str(tmp_path / "x"), seeds={"SecurityProfile": "4"})


def test_a_new_client_certificate_that_fails_falls_back(tmp_path: Any) -> None:
    r = ready(tmp_path)
    security.provision(r.st, cert=CP_CERT, key="OLD KEY")
    assert r.st.config.change("SecurityProfile", "3") == "Accepted"
    r.connect()  # profile 3 works with the factory certificate
    security.use_client_cert(r.st, "NEW CERT", "NEW KEY")
    assert r.st.link.trial == {"cert": CP_CERT, "key": "OLD KEY"}
    fail(r, ssl.SSLError(1, "[SSL: SSLV3_ALERT_BAD_CERTIFICATE] alert"), 3)
    link = r.st.link
    assert (link.cert, link.key, link.profile) == (CP_CERT, "OLD KEY", 3)
    assert any("fell back to the previous client certificate" in t for t in seclog.lines(r.st))
    assert not [t for t in seclog.lines(r.st) if "KEY" in t]


def test_authorization_key_change_is_a_security_event_without_the_key(tmp_path: Any) -> None:
    r = ready(tmp_path)
    assert r.st.config.change("AuthorizationKey", "fedcba9876543210" * 2) == "Accepted"
    r.st.tick(r.clock.ms())
    r.cs.pump()
    sent = r.sent("SecurityEventNotification")
    assert sent[-1]["type"] == "ReconfigurationOfSecurityParameters" and "AuthorizationKey" in sent[-1]["techInfo"]
    assert "fedcba" not in repr(sent) + repr(list(seclog.lines(r.st))) + repr(r.logs)


def test_a_link_saved_with_a_plain_password_becomes_its_hex_key(tmp_path: Any) -> None:
    from evse.store.storage import FileStorage
    FileStorage(str(tmp_path)).persist("link").save({"url": "ws://x/ocpp", "cp_id": "CP1", "profile": 1,
                                                     "password": "old plain pw", "by_csms": ["password"]})
    r = Rig(str(tmp_path))
    assert r.st.link.authkey == b"old plain pw".hex() and r.st.link.by_csms == ["authkey"]
    assert security.key_bytes(r.st.link) == b"old plain pw"


def test_profile_raise_needs_more_than_the_current_value_and_valid_material(tmp_path: Any) -> None:
    r = ready(tmp_path)
    assert r.st.config.change("SecurityProfile", "0") == "Rejected"  # A05.FR.01: the current value
    security.provision(r.st, cert=CP_OLD, key="K")
    assert r.st.config.change("SecurityProfile", "3") == "Rejected"  # A05.FR.04: expired
    security.provision(r.st, cert=CP_CERT)
    assert r.st.config.change("SecurityProfile", "3") == "Accepted"
