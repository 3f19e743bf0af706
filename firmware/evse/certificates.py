# Security Whitepaper ed.3 certificate management: the certificate store and
# the renewal of the client certificate before it expires. The CSMS's
# operations on it (InstallCertificate, DeleteCertificate,
# GetInstalledCertificateIds, SignCertificate / CertificateSigned,
# ExtendedTriggerMessage SignChargePointCertificate) live in certrequests.py,
# loaded on the first such request.
#
# Store: the "certs" snapshot {"roots": [[type, pem, origin]], "pending": key
# PEM or None, "org": the O of the pending request's CSR, "future": [chain,
# key, notBefore] of a signed certificate not valid yet (certrequests.py),
# "client_end": [CRC, notAfter] of the link's client certificate};
# origin "factory" (provision()), "csms" (InstallCertificate) or "fallback".
# Nothing of it stays in RAM between operations (the ESP32 heap): each call
# loads the snapshot, uses it and drops it.
#
# The CentralSystemRootCertificates are mirrored into st.link.ca (the PEMs
# joined; the fallback root of a rotation into st.link.ca_fallback), which
# the runtime gives the TLS context: the next connection trusts the new set
# (a new trust anchor does not drop the running connection, issue 19). The
# fallback goes once a connection verified with the new roots alone
# (M05.FR.12, security.py).
#
# CertificateStoreMaxLength (whitepaper 7.4, M05.FR.03) bounds the total of
# Root/CA certificates in the store, both types together, whatever put them
# there: a factory root occupies a place like one the CSMS installed (what
# GetInstalledCertificateIds reports never exceeds the key). The factory tool
# (sim.py --ca, main.py) is not refused (it is not the CSMS) but its roots
# count against what the CSMS may add. The default, 3, is the store's room: a
# factory CSMS root, a factory manufacturer root and one more (the reference's
# 1 would leave no room at all next to the factory roots). A rotation
# (AdditionalRootCertificateCheck, certrequests.py) replaces a root: never refused
# for room; the replaced one stays as the uncounted "fallback" until the next
# rotation.
#
# Without the security feature (no st.link) the store still answers; the
# client certificate needs the link.
#
# The ChargePointCertificate (and its key) lives in the link (security.py),
# used for profile 3. Its key pair is made in certrequests.py (EC P-256); the key
# is kept in the "pending" slot until CertificateSigned brings the matching
# certificate. Private keys are never logged, traced or shown.
from evse import security

CS_ROOT = "CentralSystemRootCertificate"
MF_ROOT = "ManufacturerRootCertificate"
TYPES = (CS_ROOT, MF_ROOT)
_DAY_MS = 86400000
_HOUR_MS = 3600000
_RENEW_S = 30 * 86400  # ask for a new client certificate this long before expiry


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
            full = sum(1 for r in roots if r[2] != "fallback") >= _max(self.st)
            if full and origin != "factory":  # the factory tool is not the CSMS: always installs
                return "Rejected"  # M05.FR.03: more certificates than allowed
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

    def drop_fallback(self):
        """Forget the fallback CSMS root (the new one has verified the CSMS)."""
        d = self._load()
        d["roots"] = [r for r in d["roots"] if not (r[0] == CS_ROOT and r[2] == "fallback")]
        self._save(d)
        sync_ca(self.st, True)

    def remove(self, kind, pem):
        d = self._load()
        d["roots"] = [r for r in d["roots"] if not (r[0] == kind and r[1] == pem)]
        self._save(d)
        if kind == CS_ROOT:
            sync_ca(self.st, True)

    def all_parsed(self):
        """x509.Certificate of every stored root of both types (issuers)."""
        return self.parsed(CS_ROOT) + self.parsed(MF_ROOT)

    def pending_key(self):
        return self._load().get("pending")

    def pending_org(self):
        return self._load().get("org")

    def set_pending(self, key_pem, org=None):
        d = self._load()
        d["pending"] = key_pem
        d["org"] = org
        self._save(d)

    def future(self):
        """[chain PEM, key PEM, notBefore] of a certificate waiting for its
        notBefore, or None."""
        f = self._load().get("future")
        return f if isinstance(f, list) and len(f) == 3 else None

    def set_future(self, f):
        d = self._load()
        d["future"] = f
        self._save(d)


def _entry_ok(r):
    return isinstance(r, list) and len(r) == 3 and r[0] in TYPES and isinstance(r[1], str)


def _max(st):
    try:
        return st.config.get("CertificateStoreMaxLength")
    except KeyError:
        return 3


def sync_ca(st, by_csms):
    """Mirror the CSMS roots into st.link.ca and ca_fallback (for the next
    connection: no reconnect)."""
    link = st.link
    if link is None:
        return
    rows = [r for r in st.certs._load()["roots"] if r[0] == CS_ROOT]
    ca = "".join(r[1] for r in rows if r[2] != "fallback") or None
    old = "".join(r[1] for r in rows if r[2] == "fallback") or None
    if link.ca == ca and link.ca_fallback == old:
        return
    if by_csms:
        security.changed_by_csms(st, {"ca": ca, "ca_fallback": old}, reconnect=False)
    else:
        link.ca, link.ca_fallback = ca, old
        link.save()


def provision(st, kind, pem, replace=True):
    """Factory provisioning of a root certificate (simulator --ca, the
    device's /config.json): with `replace` it takes the place of the one
    provisioned before; what the CSMS installed stays (and does not count
    against CertificateStoreMaxLength here). ValueError when `pem` holds no
    parsable certificate."""
    from evse.pki import x509
    if kind not in TYPES:
        raise ValueError("unknown certificate type " + str(kind))
    if not x509.load_all(pem):
        raise ValueError("no certificate in the PEM text")
    st.certs.add(kind, pem, "factory", replace)


def install(st):
    st.certs = Store(st)
    h = st.handlers
    h["InstallCertificate"] = lambda st, p: _requests().install_certificate(st, p)
    h["DeleteCertificate"] = lambda st, p: _requests().delete_certificate(st, p)
    h["GetInstalledCertificateIds"] = lambda st, p: _requests().get_installed(st, p)
    h["CertificateSigned"] = lambda st, p: _requests().certificate_signed(st, p)
    st.triggers["SignChargePointCertificate"] = lambda st, cid: _requests().trigger_sign(st, cid)
    st.on_result["SignCertificate"] = lambda st, p, ctx: _requests().sign_result(st, p, ctx)
    st.on_timer["certs.renew"] = renew_check
    st.on_timer["certs.future"] = future_check
    st.on_accepted.append(_accepted)
    # A certificate waiting for its notBefore is looked for at the first
    # tick (every feature installed), not at the CSMS's acceptance: the old
    # certificate may be what keeps the station from connecting.
    st.timers.start("certs.future", st.now, 0)


def _requests():
    """The feature's request half, certrequests.py, imported with the first request
    (the same idiom in certificates, diagnostics and fwupdate)."""
    from evse import certrequests
    return certrequests


def _accepted(st):
    st.timers.start("certs.renew", st.now, 60000)  # soon after boot, then daily


# ---- a signed certificate valid from a later notBefore (A02.FR.08) ----
def arm_future(st):
    # At most an hour per wait: the wall clock may be set meanwhile, and a
    # tick deadline days ahead would not survive the MCU's tick wrap.
    f = st.certs.future()
    if f is not None:
        left = f[2] - st.clock.unix()
        st.timers.start("certs.future", st.now, min(max(left, 0) * 1000, _HOUR_MS))


def future_check(st, now):
    """The waiting certificate's notBefore came: it becomes the client
    certificate (as CertificateSigned would have made it)."""
    f = st.certs.future()
    if f is None or st.link is None:
        return
    if st.clock.unix() < f[2]:
        return arm_future(st)
    try:
        security.use_client_cert(st, f[0], f[1])
        st.certs.set_future(None)
    except OSError as e:
        st.log("error", "client certificate switch: " + repr(e))
        st.timers.start("certs.future", now, _HOUR_MS)


# ---- renewal ----
def renew_check(st, now):
    """Daily: a client certificate near its end asks for a new one."""
    st.timers.start("certs.renew", now, _DAY_MS)
    sync_ca(st, False)  # a store saved before link.ca_fallback existed gets it split out
    end = _client_end(st)
    if end is not None and end - st.clock.unix() < _RENEW_S:
        _requests().request_certificate(st)


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
