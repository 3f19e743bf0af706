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
    if cert is None or not (cert.ca or cert.v1_root) or cert.key_type is None \
            or not cert.not_before <= now <= cert.not_after:
        return {"status": "Rejected"}  # malformed, not a CA (or v1 root), expired or not yet valid
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


def _issuer(cert, pool):
    """The certificate of `pool` that issued `cert` (itself for a root);
    None when its issuer is not stored."""
    if cert.self_issued():
        return cert
    named = [c for c in pool if bytes(c.subject) == bytes(cert.issuer)]
    if len(named) < 2:
        return named[0] if named else None  # the name says it: no signature check (slow on the MCU)
    from evse.pki import verify
    for c in named:
        if verify.signed_by(cert, c):
            return c
    return None


def _hash_of(cert, alg, pool):
    # Whitepaper 6.1: issuerKeyHash is the hash of the issuer's key. A root
    # is its own issuer; a CA's issuer is looked up among the stored roots of
    # both types (`pool`). A CA whose issuer is not (or no longer) stored has
    # no issuer key here: its own key stands in, so that what
    # GetInstalledCertificateIds reported still finds it for DeleteCertificate.
    from evse.pki import chain
    return chain.hash_data(cert, _issuer(cert, pool) or cert, alg)


def _same_hash(a, b):
    return (a["issuerNameHash"].lower() == b["issuerNameHash"].lower()
            and a["issuerKeyHash"].lower() == b["issuerKeyHash"].lower()
            and a["serialNumber"].lower().lstrip("0") == b["serialNumber"].lower().lstrip("0"))


def _find(st, want):
    """(type, pem) of the installed root whose hash data is `want`, or None."""
    from evse.pki import x509
    alg = want["hashAlgorithm"]
    pool = st.certs.all_parsed()
    for kind in TYPES:
        for text in st.certs.roots(kind):
            try:
                cert = x509.load_all(text)[0]
            except (ValueError, IndexError):
                continue
            if _same_hash(_hash_of(cert, alg, pool), want):
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
    issuer = certs[1] if len(certs) > 1 else _issuer(certs[0], st.certs.parsed(CS_ROOT)) or certs[0]
    return _same_hash(chain.hash_data(certs[0], issuer, want["hashAlgorithm"]), want)


def _in_use(st, text):
    """True when the CSMS root `text` may be what validates the live TLS
    connection (M04.FR.06): it is in the chain the CSMS presented (the
    verified chain where the platform gives it) or issued its top
    certificate. When the platform cannot tell (no peer certificates) or no
    stored root matches, every CSMS root counts as in use."""
    link = st.link
    peer = getattr(link, "peer", None) if link is not None else None
    if not st.online or peer is None:
        return False  # no live TLS connection
    from evse.pki import x509
    try:
        mine = x509.load_all(text)[0]
        sent = [x509.Certificate(d) for d in peer]
    except (ValueError, IndexError):
        return True
    if not sent:
        return True
    users = [r for r in st.certs.parsed(CS_ROOT) if _anchors(r, sent)]
    return not users or any(r.der == mine.der for r in users)


def _anchors(root, sent):
    if any(c.der == root.der for c in sent):
        return True
    top = sent[-1]
    from evse.pki import verify
    return bytes(top.issuer) == bytes(root.subject) and verify.signed_by(top, root)


def delete_certificate(st, p):
    want = p["certificateHashData"]
    if want["hashAlgorithm"] not in _ALGS:
        return {"status": "Failed"}
    found = _find(st, want)
    if found is None:
        # The client certificate is not deleted this way (whitepaper 3.2.2).
        return {"status": "Failed" if _client_hash_matches(st, want) else "NotFound"}
    kind, text = found
    if kind == CS_ROOT and _in_use(st, text):
        return {"status": "Failed"}  # M04.FR.06: the trust anchor of the live TLS link
    try:
        st.certs.remove(kind, text)
    except OSError:
        return {"status": "Failed"}
    st.security_event("ReconfigurationOfSecurityParameters", "deleted a " + kind)
    return {"status": "Accepted"}


def get_installed(st, p):
    pool = st.certs.all_parsed()
    ids = [_hash_of(c, "SHA256", pool) for c in st.certs.parsed(p["certificateType"])]
    if not ids:
        return {"status": "NotFound"}
    return {"status": "Accepted", "certificateHashData": ids}


# ---- SignCertificate / CertificateSigned ----
def _serial(st):
    return getattr(st.board, "serial", None) or (st.link.cp_id if st.link else None) or "station"


def request_certificate(st):
    """New EC P-256 key pair and CSR (CN = serial number, O = CpoName);
    queues SignCertificate. The key waits in the store for its certificate,
    with the O it asked for."""
    from evse.pki import csr, ecdsa
    d, pub = ecdsa.keygen()
    org = st.config.get("CpoName") or None
    text = csr.csr_pem(d, pub, _serial(st), org)
    st.certs.set_pending(csr.key_pem(d, pub), org)
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
    why, start = _check_chain(st, text)
    if why is not None:
        st.security_event("InvalidChargePointCertificate", why)
        return {"status": "Rejected"}
    key = st.certs.pending_key()
    try:
        if start > st.clock.unix():
            # A02.FR.08: valid from a later notBefore: kept (with its key) and
            # taken into use then (certificates.future_check).
            st.certs.set_future([text, key, start])
            st.certs.set_pending(None)
            st.timers.start("certs.future", st.now, 0)  # certificates.future_check arms the wait
            st.log("security", "ChargePointCertificate valid from %d: switching then" % start)
        else:
            security.use_client_cert(st, text, key)
            st.certs.set_pending(None)
            if st.certs.future() is not None:
                st.certs.set_future(None)  # a newer certificate replaces the one waiting
    except OSError:
        return {"status": "Rejected"}
    return {"status": "Accepted"}


def _check_chain(st, text):
    """(None, notBefore of the leaf) when `text` is a chain for our pending
    key with CN = our serial and O = the CpoName of our request, valid
    against the CSMS roots now or, when its notBefore is later, from then
    on; else (why not, None)."""
    from evse.pki import chain, csr, x509
    if len(text) > st.config.get("CertificateSignedMaxChainSize"):
        return "chain longer than CertificateSignedMaxChainSize", None
    key = st.certs.pending_key()
    if not key:
        return "no certificate was requested", None
    try:
        certs = x509.load_all(text)
        pub = csr.load_key(key)[1]
    except ValueError as e:
        return "malformed: " + str(e), None
    if not certs:
        return "no certificate", None
    leaf = certs[0]
    if leaf.key_type != "ec" or tuple(leaf.key) != tuple(pub):
        return "not the key of our request", None
    if leaf.cn != _serial(st):
        return "CN is not the serial number", None
    want = st.certs.pending_org()
    if leaf.org is None or (want and leaf.org != want):
        return "O %s is not the CpoName of our request" % (leaf.org and repr(leaf.org[:60])), None  # A02.FR.06
    at = max(st.clock.unix(), leaf.not_before)
    why = chain.validate(certs, st.certs.parsed(CS_ROOT), at)
    return (None, leaf.not_before) if why is None else ("chain: " + why, None)
