"""Security Whitepaper ed.3: the link parameters and their configuration keys."""
# The core owns how it connects (whitepaper 2, security profiles): the CSMS
# URL, the charge point id, the security profile, the Basic-auth password
# (AuthorizationKey), the CSMS trust anchor and the station's client
# certificate and key. They live in one persisted object, `st.link`, that the
# runtime reads before every connect; a change by the CSMS of the key, the
# profile or the client certificate bumps `link.version` and the runtime
# reconnects with the new parameters (no reboot; see Reconnects below).
#
# Factory provisioning (simulator flags, the device's /config.json) seeds the
# link with provision(); it never overwrites a value the CSMS set later
# unless the caller forces that field (e.g. the simulator's --ca).
#
# Keys (whitepaper 3.1): SecurityProfile may only be raised (a value lower
# than or equal to the current one is Rejected, A05.FR.01), and only to a
# profile whose material is installed and valid now (2: a CSMS root; 3: a
# root and a ChargePointCertificate, A05.FR.04); AuthorizationKey is
# write-only (never reported) and is kept in the link, not in the
# configuration snapshot.
#
# AuthorizationKey is the hexadecimal representation of the Basic-auth
# password (up to 40 hex digits, 16-20 bytes decoded, TC_073); the link keeps
# it as hex text (`authkey`) and the runtime sends the decoded bytes. Factory
# provisioning takes the plain password (any length, sim.py --password,
# config.json "password") and stores it hex-encoded, or the hex key itself
# (sim.py --authorization-key, config.json "authorization_key").
#
# Reconnects: only a new AuthorizationKey, a raised SecurityProfile and a new
# client certificate bump `link.version` (the runtime then reconnects once no
# CALL is in flight either way); new trust anchors (the CSMS root) apply to
# the next connection (issue 19).
#
# Trial (whitepaper 2.1): a raised SecurityProfile or a new client
# certificate is tried on the next connections; after _TRIAL_FAILS attempts
# in a row refused by a CSMS that answered (TLS refused or not verified, HTTP
# 401), the previous values come back (recorded as a security event); an
# attempt that never reached a TLS peer (connection refused, timeout, a plain
# ws server still on the port) does not count (TC_083: the CSMS restarts its
# server with the new profile). The first successful connect keeps the new
# values. The trial is persisted, so a power cut in between does not keep an
# untested profile.
#
# Root rotation: after AdditionalRootCertificateCheck replaced the CSMS root,
# the old one stays as the fallback (`ca_fallback`). A connect tries the new
# roots alone first; only after that attempt failed verification does the
# next one also trust the fallback. A connection verified with the new roots
# alone removes the fallback (M05.FR.12).
#
# Connect failures are classified into the whitepaper's security events
# (untrusted or expired CSMS certificate, wrong host name, TLS version,
# credentials refused), recorded in the security log (seclog.py) and
# notified once the CSMS accepted the boot; repeats of one kind while
# failing are recorded once.
from evse import seclog

_TRIAL_FAILS = 3

_KEYS = """
AdditionalRootCertificateCheck br true 0 1
AuthorizationKey sw - 32 40
CertificateSignedMaxChainSize ir 10000 0 -
CertificateStoreMaxLength ir 3 0 -
CpoName s - 0 500
SecurityProfile i 0 0 3
"""  # config.py's table format; ORS-17; CertificateStoreMaxLength: certificates.py

# Fields of the link and of its snapshot.
FIELDS = ("url", "cp_id", "profile", "authkey", "ca", "ca_fallback", "cert", "key")


class Link:
    """Connection parameters (persisted as the "link" snapshot)."""

    def __init__(self, store):
        self.store = store
        self.url = None
        self.cp_id = None
        self.profile = 0  # security profile 0..3
        self.authkey = None  # AuthorizationKey as hex text (profiles 1, 2)
        self.ca = None  # PEM of the CentralSystemRootCertificates in use
        self.ca_fallback = None  # PEM of the root a rotation replaced, or None
        self.fallback_now = False  # RAM: the next connect also trusts ca_fallback
        self.new_only = False  # RAM: the last connect trusted the new roots alone
        self.cert = None  # PEM of the ChargePointCertificate (profile 3)
        self.key = None  # PEM of its private key: never logged or traced
        self.by_csms = []  # fields the CSMS has set: provisioning keeps off them
        self.version = 0  # bumped on every change: the runtime reconnects
        self.trial = None  # {field: previous value} while new values are tried
        self.fails = 0  # failed connects in a row
        self.failing = None  # security event of the current failure streak
        self.peer = None  # DERs of the live TLS link's chain (runtime), None without TLS

    def load(self):
        d = self.store.load()
        if not isinstance(d, dict):
            return
        if isinstance(d.get("password"), str) and "authkey" not in d:
            d["authkey"] = hex_key(d["password"])  # a link saved before the key was hex
        for f in FIELDS:
            v = d.get(f)
            if f == "profile":
                if type(v) is int and 0 <= v <= 3:
                    self.profile = v
            elif v is None or isinstance(v, str):
                setattr(self, f, v)
        if isinstance(d.get("by_csms"), list):
            self.by_csms = [("authkey" if f == "password" else f) for f in d["by_csms"]]
            self.by_csms = [f for f in self.by_csms if f in FIELDS]
        t = d.get("trial")
        if isinstance(t, dict):
            self.trial = {f: t[f] for f in t if f in FIELDS}

    def save(self):
        d = {f: getattr(self, f) for f in FIELDS}
        d["by_csms"] = self.by_csms
        d["trial"] = self.trial
        self.store.save(d)

    def __repr__(self):
        return "Link(%s, %s, profile %d)" % (self.url, self.cp_id, self.profile)


def install(st):
    st.link = link = Link(st.storage.persist("link"))
    link.load()
    st.seclog = seclog.SecLog(st.storage)
    st.queues.append(st.seclog)
    st.config.add_keys(_KEYS, checks={"AuthorizationKey": lambda v: _set_key(st, v),
                                      "SecurityProfile": lambda v: _set_profile(st, v)})
    _seed_profile(st)
    _mirror(st)
    st.on_connect_failed.append(_connect_failed)
    st.add_link_hook(_link_up)
    st.on_result["SecurityEventNotification"] = _notified
    st.on_fail["SecurityEventNotification"] = _notify_failed


def _seed_profile(st):
    # A board / --set override of SecurityProfile is factory seeding of the
    # link (the configuration only mirrors the link).
    ov = st.board.config_overrides() or {}
    for k in ov:
        if k.lower() == "securityprofile":
            try:
                v = int(ov[k])
            except ValueError:
                raise ValueError("SecurityProfile: refused value %r" % ov[k]) from None
            if not 0 <= v <= 3:
                raise ValueError("SecurityProfile: refused value %r" % ov[k])
            provision(st, profile=v)


def _mirror(st):
    # GetConfiguration shows the link's profile; the key itself is write-only.
    st.config.seed("SecurityProfile", str(st.link.profile))


def provision(st, force=(), **fields):
    """Factory seeding of the link: fields the CSMS has not set (or that are
    in `force`) take the given values; None leaves a field as it is.
    `password` is the plain Basic-auth password (stored hex-encoded as
    `authkey`), `authkey` the hex key itself. Returns True if anything
    changed."""
    link = st.link
    if fields.get("password") is not None and fields.get("authkey") is None:
        fields["authkey"] = hex_key(fields["password"])
    fields.pop("password", None)
    if fields.get("authkey") is not None:
        fields["authkey"] = _checked_hex(fields["authkey"], 1)
    if "password" in force:
        force = tuple(force) + ("authkey",)
    changed = False
    for f in fields:
        v = fields[f]
        if f not in FIELDS:
            raise ValueError("unknown link field " + f)
        if v is None or (f in link.by_csms and f not in force):
            continue
        if f == "profile" and (type(v) is not int or not 0 <= v <= 3):
            raise ValueError("security profile must be 0..3")
        if getattr(link, f) != v:
            setattr(link, f, v)
            changed = True
    if changed:
        link.version += 1
        link.save()
        _mirror(st)
    return changed


def hex_key(password):
    """The AuthorizationKey (hex text) of a plain password."""
    import binascii
    return binascii.hexlify(password.encode()).decode()


def _checked_hex(text, lo, hi=None):
    # Lower-case hex text of lo..hi bytes (hi None: any); ValueError if not.
    import binascii
    try:
        n = len(binascii.unhexlify(text))
    except (ValueError, TypeError):
        raise ValueError("AuthorizationKey: not hexadecimal") from None
    if n < lo or (hi is not None and n > hi):
        raise ValueError("AuthorizationKey: %d bytes" % n)
    return text.lower()


def key_bytes(link):
    """The Basic-auth password bytes of the link (None without a key)."""
    import binascii
    return binascii.unhexlify(link.authkey) if link.authkey else None


def changed_by_csms(st, fields, trial=False, reconnect=True):
    """The CSMS set link `fields` ({name: value}): saved, provisioning keeps
    off them from now on; with `reconnect` the runtime reconnects (else they
    apply to the next connection). With `trial` the old values come back if
    the new ones fail to connect (whitepaper 2.1)."""
    link = st.link
    if trial:
        old = link.trial or {}
        for f in fields:
            if f not in old:
                old[f] = getattr(link, f)
        link.trial = old
        link.fails = 0
    for f in fields:
        setattr(link, f, fields[f])
        if f not in link.by_csms:
            link.by_csms.append(f)
    if reconnect:
        link.version += 1
    link.save()


def use_client_cert(st, cert, key):
    """CertificateSigned: the new ChargePointCertificate chain and its key
    for the next connections (tried first when profile 3 uses them)."""
    changed_by_csms(st, {"cert": cert, "key": key}, trial=st.link.profile == 3)
    st.security_event("ReconfigurationOfSecurityParameters", "new ChargePointCertificate")


def _set_key(st, value):
    # ChangeConfiguration(AuthorizationKey): hex of 16..20 bytes (the table
    # bounds the text to 40 characters), stored in the link only; the
    # station reconnects with it (3.1.2).
    try:
        key = _checked_hex(value, 16, 20)
    except ValueError:
        return "Rejected"
    try:
        changed_by_csms(st, {"authkey": key})
    except OSError:
        return "Rejected"
    st.security_event("ReconfigurationOfSecurityParameters", "AuthorizationKey changed by the CSMS")
    return "Accepted"  # a status: Config keeps no copy of the key


def _set_profile(st, value):
    link = st.link
    if value <= link.profile:
        return "Rejected"  # A05.FR.01: never lowered, the current value is no raise
    if value >= 2 and not _valid_now(st, link.ca):
        return "Rejected"  # TLS needs a CSMS root installed and valid now
    if value == 3 and not (link.key and _valid_now(st, link.cert, leaf=True)):
        return "Rejected"  # A05.FR.04: a valid ChargePointCertificate
    if value in (1, 2) and not link.authkey:
        return "Rejected"
    try:
        changed_by_csms(st, {"profile": value}, trial=True)
    except OSError:
        return "Rejected"
    _mirror(st)
    st.log("security", "SecurityProfile %d: reconnecting" % value)
    return "Accepted"


def _valid_now(st, pem, leaf=False):
    # True if PEM text `pem` holds a certificate valid at the station's time
    # (leaf: the first one, the ChargePointCertificate; else any, the roots).
    if not pem:
        return False
    from evse.pki import x509
    try:
        certs = x509.load_all(pem)
    except ValueError:
        return False
    now = st.clock.unix()
    ok = [c.not_before <= now <= c.not_after for c in certs]
    return bool(ok) and (ok[0] if leaf else any(ok))


# ---- connection outcomes --------------------------------------------------
def _link_up(st, now, up):
    link = st.link
    if not up:
        link.fallback_now = False  # the next connect tries the new roots alone again
        return
    link.fails = 0
    link.failing = None
    if link.ca_fallback and link.new_only:
        _drop_fallback(st)
    if link.trial is not None:
        link.trial = None  # the new values connected: keep them
        link.save()
        st.security_event("ReconfigurationOfSecurityParameters",
                          "SecurityProfile %d connected" % link.profile)


def _drop_fallback(st):
    # M05.FR.12: the new root verified the CSMS: the replaced one goes.
    if st.certs is not None:
        st.certs.drop_fallback()
    else:
        st.link.ca_fallback = None
        st.link.save()
    st.security_event("ReconfigurationOfSecurityParameters", "removed the fallback CSMS root")


def trust(link):
    """PEM of the CSMS roots the next connect trusts: the new roots alone
    while a fallback root waits to be retired, unless that just failed."""
    link.new_only = bool(link.ca_fallback) and not link.fallback_now
    if link.ca_fallback and link.fallback_now:
        return (link.ca or "") + link.ca_fallback
    return link.ca


def _connect_failed(st, now, error):
    link = st.link
    kind, info = classify(error)
    if kind is not None and kind != link.failing:
        link.failing = kind
        st.security_event(kind, info)
    if link.new_only and kind == "InvalidCentralSystemCertificate":
        link.fallback_now = True  # probing the new roots alone: not a trial failure
        return
    if _refused(error, kind, info):
        link.fails += 1
    if link.trial is not None and link.fails >= _TRIAL_FAILS:
        _fall_back(st, info)


# Attempts that say nothing of the new values: no one there yet (refused,
# unreachable, timed out, no name, a reset while opening), or a TLS hello
# answered by a peer that does not speak TLS (a plain ws server still on the
# port; mbedTLS: invalid record, -0x7200 = -29184).
_ABSENT = ("timeout", "WRONG_VERSION", "wrong version number", "record layer failure",
           "packet length too long", "http request", "-29184")


def _refused(error, kind, info):
    """True if a CSMS took the connection and refused it: a TLS handshake
    refused or not verified, the link cut during the WebSocket handshake
    (how TLS 1.3 reports a refused client certificate), an HTTP refusal;
    or no context can be built here."""
    from evse.link.wsconn import WsError
    if isinstance(error, ValueError):
        return True
    for sub in _ABSENT:
        if sub in info:
            return False
    return kind is not None or isinstance(error, WsError)


def _fall_back(st, why):
    link = st.link
    old = link.trial
    link.trial = None
    link.fails = 0
    for f in old:
        setattr(link, f, old[f])
    link.version += 1
    link.save()
    _mirror(st)
    what = ("SecurityProfile %d" % link.profile) if "profile" in old else "the previous client certificate"
    st.security_event("ReconfigurationOfSecurityParameters",
                      "fell back to " + what + ": " + (why or "connect failed"))


# Substrings of TLS errors (CPython ssl, MicroPython mbedTLS) -> event.
_TLS = (
    ("CERTIFICATE_VERIFY_FAILED", "InvalidCentralSystemCertificate"),
    ("CERT_VERIFY_FAILED", "InvalidCentralSystemCertificate"),
    ("X509", "InvalidCentralSystemCertificate"),
    ("Hostname mismatch", "InvalidCentralSystemCertificate"),
    ("IP address mismatch", "InvalidCentralSystemCertificate"),
    ("PROTOCOL_VERSION", "InvalidTLSVersion"),
    ("WRONG_VERSION", "InvalidTLSVersion"),
    ("wrong version number", "InvalidTLSVersion"),
    ("UNSUPPORTED_PROTOCOL", "InvalidTLSVersion"),
    ("NO_PROTOCOLS_AVAILABLE", "InvalidTLSVersion"),
    ("NO_SHARED_CIPHER", "InvalidTLSCipherSuite"),
    ("NO_CIPHER", "InvalidTLSCipherSuite"),
    ("CERTIFICATE_REQUIRED", "FailedToAuthenticateAtCentralSystem"),
    ("BAD_CERTIFICATE", "FailedToAuthenticateAtCentralSystem"),
    ("UNKNOWN_CA", "FailedToAuthenticateAtCentralSystem"),
    ("CERTIFICATE_EXPIRED", "FailedToAuthenticateAtCentralSystem"),
)
# MicroPython raises OSError(code, name) with mbedTLS's negative code. (A
# received fatal alert, -0x7780, says nothing of its cause: not classified.)
_MBEDTLS = ((-0x2700, "InvalidCentralSystemCertificate"),  # X509_CERT_VERIFY_FAILED
            (-0x6E80, "InvalidTLSVersion"))  # SSL_BAD_(HS_)PROTOCOL_VERSION


def classify(error):
    """(security event type or None, techInfo) for a failed connect."""
    info = _describe(error)
    if getattr(error, "status", 0) == 401:
        return "FailedToAuthenticateAtCentralSystem", info
    code = error.args[0] if getattr(error, "args", None) else None
    for c, kind in _MBEDTLS:
        if code == c:
            return kind, info
    for sub, kind in _TLS:
        if sub in info:
            return kind, info
    return None, info


def _describe(error):
    # CPython's SSLCertVerificationError says why in verify_message.
    text = getattr(error, "verify_message", None)
    base = repr(error)
    return (base + ": " + text if text else base)[:255]


def _notified(st, payload, ctx):
    st.seclog.done(ctx)


def _notify_failed(st, ctx, reason):
    gone = st.seclog.failed(st.now, ctx, reason)
    if gone is not None:  # seclog.py: not sent again; the security log keeps it
        st.log("warn", "SecurityEventNotification %s (%s): kept in the security log only" % (gone, reason))
