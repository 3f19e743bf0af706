"""Certificate management (Security Whitepaper ed.3, certificates.py) on the
sans-IO rig: Install/Delete/GetInstalledCertificateIds, SignCertificate and
CertificateSigned, the SignChargePointCertificate trigger, renewal."""
from __future__ import annotations

import hashlib
from typing import Any

import pki_factory as pf
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from evse.compat import ticks_diff
from evse import certificates, security
from rig import Rig

VALID = (-400, 400)  # around both the rig's clock (2026-01-01) and pki_factory.NOW


def ca(tag: str) -> Any:
    k = pf.key("ec", tag)
    return k, pf.cert(k, k, "Root " + tag, "Root " + tag, ca=True, days=VALID, serial=7)


def hash_data(c: Any, alg: Any = hashes.SHA256(), name: str = "SHA256") -> dict[str, str]:
    h = hashlib.new(name.lower())
    h.update(c.issuer.public_bytes())
    pub = c.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    kh = hashlib.new(name.lower())
    kh.update(pub)
    return {"hashAlgorithm": name, "issuerNameHash": h.hexdigest(), "issuerKeyHash": kh.hexdigest(),
            "serialNumber": "%x" % c.serial_number}


@pytest.fixture
def rig(tmp_path: Any) -> Rig:
    r = Rig(str(tmp_path), seeds={"CpoName": "Test CPO"})
    r.connect()
    assert r.st.registration == "Accepted"
    return r


def answer(r: Rig, action: str, payload: dict[str, Any]) -> dict[str, Any]:
    m = r.call(action, payload)
    assert m[0] == 3, m
    return m[2]


def install(r: Rig, pem: str, kind: str = certificates.CS_ROOT) -> str:
    return answer(r, "InstallCertificate", {"certificateType": kind, "certificate": pem})["status"]


def test_install_list_delete(rig: Rig) -> None:
    _, root = ca("A")
    assert answer(rig, "GetInstalledCertificateIds", {"certificateType": certificates.CS_ROOT}) == \
        {"status": "NotFound"}
    assert install(rig, pf.pem(root)) == "Accepted"
    got = answer(rig, "GetInstalledCertificateIds", {"certificateType": certificates.CS_ROOT})
    assert got == {"status": "Accepted", "certificateHashData": [hash_data(root)]}
    assert rig.st.link.ca == pf.pem(root)  # the next TLS connection trusts it
    assert answer(rig, "GetInstalledCertificateIds", {"certificateType": certificates.MF_ROOT})["status"] == \
        "NotFound"
    # Delete by a SHA-384 hash of the same certificate, serial with leading zeros.
    h = hash_data(root, name="SHA384")
    h["serialNumber"] = "00" + h["serialNumber"].upper()
    assert answer(rig, "DeleteCertificate", {"certificateHashData": h}) == {"status": "Accepted"}
    assert answer(rig, "DeleteCertificate", {"certificateHashData": h}) == {"status": "NotFound"}
    assert rig.st.link.ca is None
    kinds = [p["type"] for p in rig.sent("SecurityEventNotification")]
    assert kinds.count("ReconfigurationOfSecurityParameters") == 2


BAD = ["", "not a certificate", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
       "-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----", "-----BEGIN CERTIFICATE-----\nMIIB\n"]


@pytest.mark.parametrize("text", BAD)
def test_malformed_is_rejected_never_a_crash(rig: Rig, text: str) -> None:
    assert install(rig, text) == "Rejected"
    assert not [t for lvl, t in rig.logs if lvl == "error"]


def test_leaf_expired_and_two_certificates_rejected(rig: Rig) -> None:
    k, root = ca("B")
    leaf = pf.cert(pf.key("ec", "leafB"), k, "leaf", "Root B", days=VALID)
    old = pf.cert(k, k, "Root B", "Root B", ca=True, days=(-900, -500))
    assert install(rig, pf.pem(leaf)) == "Rejected"  # not a CA
    assert install(rig, pf.pem(old)) == "Rejected"  # expired
    assert install(rig, pf.pem(root) + pf.pem(root)) == "Rejected"  # one certificate per call
    forged = pf.cert(k, pf.key("ec", "forger"), "Root B", "Root B", ca=True, days=VALID)
    assert install(rig, pf.pem(forged)) == "Rejected"  # self-signature does not verify


def test_store_max_length_counts_every_root_of_both_types(rig: Rig) -> None:
    # Whitepaper 7.4 / M05.FR.03: the total of installed Root/CA certificates,
    # factory ones included (issue 19, item 18).
    assert rig.st.config.get("CertificateStoreMaxLength") == 3
    certificates.provision(rig.st, certificates.MF_ROOT, pf.pem(ca("C0")[1]))  # factory: one place
    c = pf.pem(ca("C")[1])
    assert install(rig, c, certificates.MF_ROOT) == "Accepted"
    assert install(rig, c, certificates.MF_ROOT) == "Accepted"  # the same again: nothing added
    rig.st.config.seed("AdditionalRootCertificateCheck", "false")
    assert install(rig, pf.pem(ca("D")[1])) == "Accepted"  # 3 of 3, across the types
    assert install(rig, pf.pem(ca("D2")[1])) == "Rejected"
    assert install(rig, pf.pem(ca("D3")[1]), certificates.MF_ROOT) == "Rejected"
    assert len(rig.st.certs.all_parsed()) == 3
    # The factory tool is not the CSMS: it still installs (and fills the store).
    certificates.provision(rig.st, certificates.CS_ROOT, pf.pem(ca("F")[1]))
    assert len(rig.st.certs.all_parsed()) == 4


def test_the_root_of_the_running_tls_link_is_not_deleted(rig: Rig) -> None:
    _, root = ca("E")
    assert install(rig, pf.pem(root)) == "Accepted"
    rig.st.link.authkey = "0123456789abcdef" * 2
    assert rig.st.config.change("SecurityProfile", "2") == "Accepted"
    rig.st.link.peer = []  # a TLS link whose chain the platform does not tell (the runtime sets it)
    assert answer(rig, "DeleteCertificate", {"certificateHashData": hash_data(root)}) == {"status": "Failed"}
    assert rig.st.certs.roots(certificates.CS_ROOT) == [pf.pem(root)]


def test_factory_provisioning_replaces_its_own_root_only(rig: Rig) -> None:
    a, b, c = (pf.pem(ca(t)[1]) for t in "FGH")
    certificates.provision(rig.st, certificates.MF_ROOT, a)
    certificates.provision(rig.st, certificates.MF_ROOT, b)  # replaces a
    assert rig.st.certs.roots(certificates.MF_ROOT) == [b]
    certificates.provision(rig.st, certificates.CS_ROOT, c)
    assert rig.st.link.ca == c and "ca" not in rig.st.link.by_csms
    with pytest.raises(ValueError):
        certificates.provision(rig.st, certificates.CS_ROOT, "garbage")
    # The CSMS's own manufacturer root is counted apart from the factory's ...
    d = pf.pem(ca("I")[1])
    assert install(rig, d, certificates.MF_ROOT) == "Accepted"
    assert rig.st.certs.roots(certificates.MF_ROOT) == [b, d]
    # ... and the factory tool installs even when the CSMS filled its share.
    certificates.provision(rig.st, certificates.MF_ROOT, a)
    assert rig.st.certs.roots(certificates.MF_ROOT) == [d, a]


def sign_request(r: Rig) -> x509.CertificateSigningRequest:
    r.cs.st.unqueue("SignCertificate")
    assert answer(r, "ExtendedTriggerMessage", {"requestedMessage": "SignChargePointCertificate"}) == \
        {"status": "Accepted"}
    csr = x509.load_pem_x509_csr(r.sent("SignCertificate")[-1]["csr"].encode())
    assert csr.is_signature_valid
    return csr


def issue(csr: x509.CertificateSigningRequest, key: Any, issuer: str, cn: str | None = None,
          days: tuple[int, int] = VALID) -> str:
    cn = cn or csr.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    b = (x509.CertificateBuilder().subject_name(pf.name(str(cn), "Test CPO")).issuer_name(pf.name(issuer, "Test"))
         .public_key(csr.public_key()).serial_number(0x5151)
         .not_valid_before(pf.NOW + pf.dt.timedelta(days=days[0]))
         .not_valid_after(pf.NOW + pf.dt.timedelta(days=days[1])))
    return b.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


def test_sign_certificate_cycle(rig: Rig) -> None:
    k, root = ca("S")
    assert install(rig, pf.pem(root)) == "Accepted"
    csr = sign_request(rig)
    names = {a.oid: a.value for a in csr.subject}
    assert names == {x509.NameOID.COMMON_NAME: "SIM-0001", x509.NameOID.ORGANIZATION_NAME: "Test CPO"}
    assert isinstance(csr.public_key(), ec.EllipticCurvePublicKey) and csr.public_key().curve.name == "secp256r1"
    other_k, _ = ca("other")
    version = rig.st.link.version
    cases = [issue(csr, other_k, "Root other"),  # another CA
             issue(csr, k, "Root S", cn="SOMEONE-ELSE"),  # not our serial number
             issue(csr, k, "Root S", days=(-900, -500)),  # expired
             "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",  # malformed
             ""]  # nothing
    for chain in cases:
        assert answer(rig, "CertificateSigned", {"certificateChain": chain}) == {"status": "Rejected"}
    events = [p for p in rig.sent("SecurityEventNotification") if p["type"] == "InvalidChargePointCertificate"]
    assert [e["techInfo"][:6] for e in events] == ["chain:", "CN is ", "chain:", "malfor", "no cer"]
    assert rig.st.link.cert is None and rig.st.link.version == version
    good = issue(csr, k, "Root S")
    assert answer(rig, "CertificateSigned", {"certificateChain": good + pf.pem(root)}) == {"status": "Accepted"}
    link = rig.st.link
    assert link.cert.startswith(good) and link.version == version + 1  # the runtime reconnects
    pub = serialization.load_pem_private_key(link.key.encode(), None).public_key()
    assert pub.public_numbers() == csr.public_key().public_numbers()
    # A second delivery has no request behind it.
    assert answer(rig, "CertificateSigned", {"certificateChain": good}) == {"status": "Rejected"}


def test_private_key_never_logged_or_traced(tmp_path: Any) -> None:
    trace: list[Any] = []
    r = Rig(str(tmp_path))
    r.st.trace = trace.append
    r.connect()
    k, root = ca("T")
    install(r, pf.pem(root))
    csr = sign_request(r)
    answer(r, "CertificateSigned", {"certificateChain": issue(csr, k, "Root T")})
    key = r.st.link.key
    body = "".join(key.splitlines()[1:-1])
    blob = repr(trace) + repr(r.logs) + repr(r.transcript) + repr(r.st.link)
    assert body[:40] not in blob and body[-40:] not in blob
    assert "PRIVATE KEY" not in blob


def test_renewal_asks_for_a_new_certificate_near_expiry(rig: Rig) -> None:
    k, root = ca("R")
    install(rig, pf.pem(root))
    csr = sign_request(rig)
    # Expires 10 days after the station's clock: inside the 30-day window.
    t = rig.st.clock.unix()
    days = (t - pf.NOW_S) // 86400
    answer(rig, "CertificateSigned", {"certificateChain": issue(csr, k, "Root R", days=(days - 5, days + 10))})
    n = len(rig.sent("SignCertificate"))
    rig.run(61000)  # the first check comes a minute after the boot was accepted
    assert len(rig.sent("SignCertificate")) == n + 1
    assert 86300000 < ticks_diff(rig.st.timers._due["certs.renew"], rig.clock.ms()) <= 86400000  # then daily
    certificates.renew_check(rig.st, rig.clock.ms())  # the expiry from the store's cache now
    rig.st.tick(rig.clock.ms())
    rig.cs.pump()
    assert len(rig.sent("SignCertificate")) == n + 2


def test_renewal_check_does_not_parse_an_unchanged_certificate(rig: Rig, monkeypatch: Any) -> None:
    k, root = ca("R2")
    install(rig, pf.pem(root))
    csr = sign_request(rig)
    answer(rig, "CertificateSigned", {"certificateChain": issue(csr, k, "Root R2")})
    n = len(rig.sent("SignCertificate"))
    certificates.renew_check(rig.st, rig.clock.ms())  # parses once, caches notAfter
    from evse.pki import x509 as px

    def boom(*_: Any) -> None:
        raise AssertionError("parsed again")
    monkeypatch.setattr(px, "load_all", boom)
    certificates.renew_check(rig.st, rig.clock.ms())
    rig.st.tick(rig.clock.ms())
    rig.cs.pump()
    assert len(rig.sent("SignCertificate")) == n  # far from its end


def test_provisioned_link_root_joins_the_store(tmp_path: Any) -> None:
    r = Rig(str(tmp_path))
    pem = pf.pem(ca("J")[1])
    security.provision(r.st, ca=pem)  # as older firmware provisioned it
    r.reboot()
    assert r.st.certs.roots(certificates.CS_ROOT) == [pem]


def test_root_rotation_with_additional_root_certificate_check(rig: Rig) -> None:
    assert rig.st.config.get("AdditionalRootCertificateCheck") is True
    k, old = ca("old")
    new_key = pf.key("ec", "new")
    stranger = pf.pem(pf.cert(new_key, new_key, "Root new", "Root new", ca=True, days=VALID))
    cross = pf.pem(pf.cert(new_key, k, "Root new", "Root old", ca=True, days=VALID, serial=99))
    assert install(rig, pf.pem(old)) == "Accepted"
    assert install(rig, stranger) == "Rejected"  # not signed by the installed root
    v = rig.st.link.version
    assert install(rig, cross) == "Accepted"
    assert rig.st.certs.roots(certificates.CS_ROOT) == [cross, pf.pem(old)]  # the old one as fallback
    # For the next connection: no reconnect (issue 19); the old one is the fallback.
    assert (rig.st.link.ca, rig.st.link.ca_fallback, rig.st.link.version) == (cross, pf.pem(old), v)
    newer = pf.pem(pf.cert(pf.key("ec", "newer"), new_key, "Root newer", "Root new", ca=True, days=VALID))
    assert install(rig, newer) == "Accepted"
    assert rig.st.certs.roots(certificates.CS_ROOT) == [newer, cross]  # one fallback at most


def test_a_fallback_root_stored_by_older_firmware_is_split_out_of_the_link(rig: Rig) -> None:
    # Older firmware joined the fallback into link.ca; the daily check splits it out.
    k, old = ca("legacy")
    new_key = pf.key("ec", "legacy-new")
    cross = pf.pem(pf.cert(new_key, k, "Root legacy new", "Root legacy", ca=True, days=VALID, serial=98))
    rig.st.certs.persist.save({"roots": [[certificates.CS_ROOT, cross, "csms"],
                                         [certificates.CS_ROOT, pf.pem(old), "fallback"]]})
    rig.st.link.ca, rig.st.link.ca_fallback = cross + pf.pem(old), None
    certificates.renew_check(rig.st, rig.clock.ms())
    assert (rig.st.link.ca, rig.st.link.ca_fallback) == (cross, pf.pem(old))
