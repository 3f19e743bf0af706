# The CSMS's certificate operations (certificates.py keeps the store): loaded
# on the first such request, so an idle station does not hold their code.
# InstallCertificate, DeleteCertificate, GetInstalledCertificateIds,
# ExtendedTriggerMessage SignChargePointCertificate -> SignCertificate (an EC
# P-256 key and a CSR, CN = serial number, O = CpoName), CertificateSigned
# (chain validated against the CSMS roots, the station's clock and our CN).
from evse import security

# The type names (also in certificates.py, which imports this module lazily).
CS_ROOT = "CentralSystemRootCertificate"
MF_ROOT = "ManufacturerRootCertificate"
TYPES = (CS_ROOT, MF_ROOT)
_ALGS = ("SHA256", "SHA384", "SHA512")


# ---- InstallCertificate / DeleteCertificate / GetInstalledCertificateIds ----
def _one_cert(text):
    """The single certificate in PEM `text`, or None (malformed, none, many)."""
    from evse.pki import x509
    try:
        certs = x509.load_all(text)
    except ValueError:
        return None
    return certs[0] if len(certs) == 1 else None


def install_certificate(st, p):
    kind, text = p["certificateType"], p["certificate"]
    cert = _one_cert(text)
    now = st.clock.unix()
    if cert is None or not cert.ca or cert.key_type is None or not cert.not_before <= now <= cert.not_after:
        return {"status": "Rejected"}  # malformed, not a CA, expired or not yet valid
    from evse.pki import verify
    if cert.self_issued() and not verify.signed_by(cert, cert):
        return {"status": "Rejected"}  # a root whose self-signature does not hold
    from evse.pki import pem as P
    pem = P.encode(cert.der, "CERTIFICATE")
    try:
        if kind == CS_ROOT and st.config.get("AdditionalRootCertificateCheck") and st.certs.roots(CS_ROOT):
            status = _rotate(st, cert, pem)
        else:
            status = st.certs.add(kind, pem, "csms")
    except OSError:
        return {"status": "Failed"}
    if status == "Accepted":
        st.security_event("ReconfigurationOfSecurityParameters", "installed a " + kind)
    return {"status": status}


def _rotate(st, cert, pem):
    # AdditionalRootCertificateCheck (whitepaper 3.1): the new CSMS root must
    # be signed by the installed one and replaces it; the old one stays as
    # the fallback until the next rotation (it may still be what the CSMS's
    # certificate chains to while the CPO switches over).
    from evse.pki import verify
    olds = st.certs.parsed(CS_ROOT)
    if not any(verify.signed_by(cert, o) for o in olds):
        return "Rejected"
    st.certs.rotate(pem)
    return "Accepted"


def _hash_of(cert, alg):
    # A root is its own issuer; for another CA we have no issuer key, so
    # its own key stands in (what other stations do for roots only).
    from evse.pki import chain
    return chain.hash_data(cert, cert, alg)


def _same_hash(a, b):
    return (a["issuerNameHash"].lower() == b["issuerNameHash"].lower()
            and a["issuerKeyHash"].lower() == b["issuerKeyHash"].lower()
            and a["serialNumber"].lower().lstrip("0") == b["serialNumber"].lower().lstrip("0"))


def _find(st, want):
    """(type, pem) of the installed root whose hash data is `want`, or None."""
    from evse.pki import x509
    alg = want["hashAlgorithm"]
    for kind in TYPES:
        for text in st.certs.roots(kind):
            try:
                cert = x509.load_all(text)[0]
            except (ValueError, IndexError):
                continue
            if _same_hash(_hash_of(cert, alg), want):
                return kind, text
    return None


def _client_hash_matches(st, want):
    from evse.pki import chain, x509
    if st.link is None:
        return False
    try:
        certs = x509.load_all(st.link.cert or "")
    except ValueError:
        return False
    if not certs:
        return False
    issuer = certs[1] if len(certs) > 1 else certs[0]
    return _same_hash(chain.hash_data(certs[0], issuer, want["hashAlgorithm"]), want)


def delete_certificate(st, p):
    want = p["certificateHashData"]
    if want["hashAlgorithm"] not in _ALGS:
        return {"status": "Failed"}
    found = _find(st, want)
    if found is None:
        # The client certificate is not deleted this way (whitepaper 3.2.2).
        return {"status": "Failed" if _client_hash_matches(st, want) else "NotFound"}
    kind, text = found
    in_use = st.link is not None and st.link.profile >= 2
    if kind == CS_ROOT and in_use and len(st.certs.roots(CS_ROOT)) == 1:
        return {"status": "Failed"}  # the trust anchor of the running TLS link
    try:
        st.certs.remove(kind, text)
    except OSError:
        return {"status": "Failed"}
    st.security_event("ReconfigurationOfSecurityParameters", "deleted a " + kind)
    return {"status": "Accepted"}


def get_installed(st, p):
    ids = [_hash_of(c, "SHA256") for c in st.certs.parsed(p["certificateType"])]
    if not ids:
        return {"status": "NotFound"}
    return {"status": "Accepted", "certificateHashData": ids}


# ---- SignCertificate / CertificateSigned ----
def _serial(st):
    return getattr(st.board, "serial", None) or (st.link.cp_id if st.link else None) or "station"


def request_certificate(st):
    """New EC P-256 key pair and CSR (CN = serial number, O = CpoName);
    queues SignCertificate. The key waits in the store for its certificate."""
    from evse.pki import csr, ecdsa
    d, pub = ecdsa.keygen()
    org = st.config.get("CpoName") or None
    text = csr.csr_pem(d, pub, _serial(st), org)
    st.certs.set_pending(csr.key_pem(d, pub))
    st.unqueue("SignCertificate")
    st.send("SignCertificate", {"csr": text})


def trigger_sign(st, cid):
    request_certificate(st)


def sign_result(st, payload, ctx):
    if payload.get("status") != "Accepted":
        st.log("warn", "SignCertificate rejected by the CSMS")


def certificate_signed(st, p):
    text = p["certificateChain"]
    if st.link is None:
        return {"status": "Rejected"}  # no link to use it for
    why = _check_chain(st, text)
    if why is not None:
        st.security_event("InvalidChargePointCertificate", why)
        return {"status": "Rejected"}
    key = st.certs.pending_key()
    try:
        security.use_client_cert(st, text, key)
        st.certs.set_pending(None)
    except OSError:
        return {"status": "Rejected"}
    return {"status": "Accepted"}


def _check_chain(st, text):
    """None when `text` is a chain for our pending key, valid now against
    the CSMS roots with CN = our serial; else why not."""
    from evse.pki import chain, csr, x509
    if len(text) > st.config.get("CertificateSignedMaxChainSize"):
        return "chain longer than CertificateSignedMaxChainSize"
    key = st.certs.pending_key()
    if not key:
        return "no certificate was requested"
    try:
        certs = x509.load_all(text)
        pub = csr.load_key(key)[1]
    except ValueError as e:
        return "malformed: " + str(e)
    if not certs:
        return "no certificate"
    if certs[0].key_type != "ec" or tuple(certs[0].key) != tuple(pub):
        return "not the key of our request"
    if certs[0].cn != _serial(st):
        return "CN is not the serial number"
    why = chain.validate(certs, st.certs.parsed(CS_ROOT), st.clock.unix())
    return None if why is None else "chain: " + why
