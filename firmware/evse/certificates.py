# Security Whitepaper ed.3 certificate management: the certificate store.
# InstallCertificate, DeleteCertificate, GetInstalledCertificateIds,
# SignCertificate / CertificateSigned, ExtendedTriggerMessage
# SignChargePointCertificate and renewal before the client certificate expires.
#
# Store: the "certs" snapshot {"roots": [[type, pem, origin]], "pending": key
# PEM or None}; origin "factory" (provision()) or "csms" (InstallCertificate).
# Nothing of it stays in RAM between operations (the ESP32 heap): each call
# loads the snapshot, uses it and drops it.
#
# The CentralSystemRootCertificates are mirrored into st.link.ca (the PEMs
# joined), which the runtime gives the TLS context; a change bumps the link
# version, so the next connection trusts the new set.
#
# CertificateStoreMaxLength (ORS-18: 1) bounds the certificates of each type:
# one CSMS root and one manufacturer root (a total of 1 would make profile 2
# and signed firmware exclusive). With one CSMS root, the root in use cannot
# be deleted, so it is rotated the whitepaper's way: AdditionalRootCertificateCheck
# (true here) lets a new root signed by the installed one replace it.
#
# Without the security feature (no st.link) the store still answers; the
# client certificate needs the link.
#
# The ChargePointCertificate (and its key) lives in the link (security.py),
# used for profile 3. Its key pair is made here (EC P-256, evse.pki); the key
# is kept in the "pending" slot until CertificateSigned brings the matching
# certificate. Private keys are never logged, traced or shown.
#
# (Comments, not a docstring: compiled from source on the device, a
# docstring stays in RAM.)
from evse import security

CS_ROOT = "CentralSystemRootCertificate"
MF_ROOT = "ManufacturerRootCertificate"
TYPES = (CS_ROOT, MF_ROOT)
_DAY_MS = 86400000
_RENEW_S = 30 * 86400  # ask for a new client certificate this long before expiry
_ALGS = ("SHA256", "SHA384", "SHA512")


class Store:
    """The installed root certificates (see the comment above)."""

    def __init__(self, st):
        self.st = st
        self.persist = st.storage.persist("certs")
        self._adopted = False

    def _load(self):
        d = self.persist.load()
        if not isinstance(d, dict):
            d = {}
        roots = d.get("roots")
        d["roots"] = [r for r in roots if _entry_ok(r)] if isinstance(roots, list) else []
        if not self._adopted:
            self._adopt(d)
        return d

    def _adopt(self, d):
        # A CSMS root provisioned into the link before the store existed
        # (older firmware, security.provision(ca=...)) joins the store.
        self._adopted = True
        link = self.st.link
        if link is not None and link.ca and not any(r[0] == CS_ROOT for r in d["roots"]):
            d["roots"].append([CS_ROOT, link.ca, "factory"])
            self._save(d)

    def _save(self, d):
        self.persist.save(d)

    def roots(self, kind):
        """PEM texts of the installed certificates of `kind` (a type name)."""
        return [r[1] for r in self._load()["roots"] if r[0] == kind]

    def parsed(self, kind):
        """x509.Certificate of each installed `kind` that still parses."""
        from evse.pki import x509
        out = []
        for p in self.roots(kind):
            try:
                out.extend(x509.load_all(p))
            except ValueError:
                pass
        return out

    def add(self, kind, pem, origin="csms", replace=False):
        """Store one certificate; returns "Accepted" or "Rejected" (full)."""
        d = self._load()
        old = d["roots"]
        roots = [r for r in old if not (replace and r[0] == kind and r[2] == origin and r[1] != pem)]
        if not any(r[0] == kind and r[1] == pem for r in roots):
            if sum(1 for r in roots if r[0] == kind and r[2] != "fallback") >= _max(self.st):
                return "Rejected"  # whitepaper: more certificates than allowed
            roots.append([kind, pem, origin])
        if roots != old:  # the same factory root at every boot: no flash write
            d["roots"] = roots
            self._save(d)
        if kind == CS_ROOT:
            sync_ca(self.st, origin != "factory")
        return "Accepted"

    def rotate(self, pem):
        """A new CSMS root replaces the installed ones; the newest of those
        stays as the (uncounted) fallback."""
        d = self._load()
        olds = [r for r in d["roots"] if r[0] == CS_ROOT and r[2] != "fallback"]
        d["roots"] = [r for r in d["roots"] if r[0] != CS_ROOT] + [[CS_ROOT, pem, "csms"]]
        if olds:
            d["roots"].append([CS_ROOT, olds[-1][1], "fallback"])
        self._save(d)
        sync_ca(self.st, True)

    def remove(self, kind, pem):
        d = self._load()
        d["roots"] = [r for r in d["roots"] if not (r[0] == kind and r[1] == pem)]
        self._save(d)
        if kind == CS_ROOT:
            sync_ca(self.st, True)

    def pending_key(self):
        return self._load().get("pending")

    def set_pending(self, key_pem):
        d = self._load()
        d["pending"] = key_pem
        self._save(d)


def _entry_ok(r):
    return isinstance(r, list) and len(r) == 3 and r[0] in TYPES and isinstance(r[1], str)


def _max(st):
    try:
        return st.config.get("CertificateStoreMaxLength")
    except KeyError:
        return 1


def sync_ca(st, by_csms):
    """Mirror the CSMS roots into st.link.ca (a change reconnects)."""
    link = st.link
    if link is None:
        return
    ca = "".join(st.certs.roots(CS_ROOT)) or None
    if link.ca == ca:
        return
    if by_csms:
        security.changed_by_csms(st, {"ca": ca})
    else:
        security.provision(st, force=("ca",), ca=ca)


def provision(st, kind, pem, replace=True):
    """Factory provisioning of a root certificate (simulator --ca, the
    device's /config.json): with `replace` it takes the place of the one
    provisioned before; what the CSMS installed stays. ValueError when `pem`
    holds no parsable certificate or the store is full."""
    from evse.pki import x509
    if kind not in TYPES:
        raise ValueError("unknown certificate type " + str(kind))
    if not x509.load_all(pem):
        raise ValueError("no certificate in the PEM text")
    if st.certs.add(kind, pem, "factory", replace) != "Accepted":
        raise ValueError("certificate store full (CertificateStoreMaxLength)")


def install(st):
    st.certs = Store(st)
    h = st.handlers
    h["InstallCertificate"] = install_certificate
    h["DeleteCertificate"] = delete_certificate
    h["GetInstalledCertificateIds"] = get_installed
    h["CertificateSigned"] = certificate_signed
    st.triggers["SignChargePointCertificate"] = trigger_sign
    st.on_result["SignCertificate"] = _sign_result
    st.on_timer["certs.renew"] = renew_check
    st.on_accepted.append(_accepted)


def _accepted(st):
    st.timers.start("certs.renew", st.now, 60000)  # soon after boot, then daily


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


def _sign_result(st, payload, ctx):
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


# ---- renewal ----
def renew_check(st, now):
    """Daily: a client certificate near its end asks for a new one."""
    st.timers.start("certs.renew", now, _DAY_MS)
    end = _client_end(st)
    if end is not None and end - st.clock.unix() < _RENEW_S:
        request_certificate(st)


def _client_end(st):
    # notAfter of the link's client certificate, cached in the store by the
    # certificate's CRC: the X.509 parser is imported only when it changed,
    # not at every boot.
    from evse.compat import crc32
    cert = st.link.cert if st.link is not None else None
    if not cert:
        return None
    key = crc32(cert.encode())
    d = st.certs._load()
    got = d.get("client_end")
    if isinstance(got, list) and len(got) == 2 and got[0] == key:
        return got[1]
    from evse.pki import x509
    try:
        certs = x509.load_all(cert)
    except ValueError:
        certs = []
    end = certs[0].not_after if certs else None
    d["client_end"] = [key, end]
    st.certs._save(d)
    return end
