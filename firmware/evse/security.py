"""Security Whitepaper ed.3: the link parameters and their configuration keys."""
# The core owns how it connects (whitepaper 2, security profiles): the CSMS
# URL, the charge point id, the security profile, the Basic-auth password
# (AuthorizationKey), the CSMS trust anchor and the station's client
# certificate and key. They live in one persisted object, `st.link`, that the
# runtime reads before every connect; a change by the CSMS bumps
# `link.version` and the runtime reconnects with the new parameters (no
# reboot).
#
# Factory provisioning (simulator flags, the device's /config.json) seeds the
# link with provision(); it never overwrites a value the CSMS set later
# unless the caller forces that field (e.g. the simulator's --ca).
#
# Keys (whitepaper 3.1): SecurityProfile may only be raised, and only to a
# profile whose material is installed (2: a CSMS root; 3: a root and a client
# certificate); AuthorizationKey is write-only (never reported) and is kept in
# the link, not in the configuration snapshot.
#
# (Comments, not a docstring: compiled from source on the device, a
# docstring stays in RAM.)

_KEYS = """
AdditionalRootCertificateCheck br false 0 1
AuthorizationKey sw - 16 40
CertificateSignedMaxChainSize ir 10000 0 -
CertificateStoreMaxLength ir 1 0 -
CpoName s - 0 500
SecurityProfile i 0 0 3
"""  # config.py's table format; ORS-17, ORS-18

# Fields of the link and of its snapshot.
FIELDS = ("url", "cp_id", "profile", "password", "ca", "cert", "key")


class Link:
    """Connection parameters (persisted as the "link" snapshot)."""

    def __init__(self, store):
        self.store = store
        self.url = None
        self.cp_id = None
        self.profile = 0  # security profile 0..3
        self.password = None  # AuthorizationKey (profiles 1, 2)
        self.ca = None  # PEM of the CentralSystemRootCertificate
        self.cert = None  # PEM of the ChargePointCertificate (profile 3)
        self.key = None  # PEM of its private key: never logged or traced
        self.by_csms = []  # fields the CSMS has set: provisioning keeps off them
        self.version = 0  # bumped on every change: the runtime reconnects

    def load(self):
        d = self.store.load()
        if not isinstance(d, dict):
            return
        for f in FIELDS:
            v = d.get(f)
            if f == "profile":
                if type(v) is int and 0 <= v <= 3:
                    self.profile = v
            elif v is None or isinstance(v, str):
                setattr(self, f, v)
        if isinstance(d.get("by_csms"), list):
            self.by_csms = [f for f in d["by_csms"] if f in FIELDS]

    def save(self):
        d = {f: getattr(self, f) for f in FIELDS}
        d["by_csms"] = self.by_csms
        self.store.save(d)

    def __repr__(self):
        return "Link(%s, %s, profile %d)" % (self.url, self.cp_id, self.profile)


def install(st):
    st.link = Link(st.storage.persist("link"))
    st.link.load()
    st.config.add_keys(_KEYS, checks={"AuthorizationKey": lambda v: _set_key(st, v),
                                      "SecurityProfile": lambda v: _set_profile(st, v)})
    _mirror(st)


def _mirror(st):
    # GetConfiguration shows the link's profile; the key itself is write-only.
    st.config.seed("SecurityProfile", str(st.link.profile))


def provision(st, force=(), **fields):
    """Factory seeding of the link: fields the CSMS has not set (or that are
    in `force`) take the given values; None leaves a field as it is.
    Returns True if anything changed."""
    link = st.link
    changed = False
    for f in fields:
        v = fields[f]
        if f not in FIELDS:
            raise ValueError("unknown link field " + f)
        if v is None or (f in link.by_csms and f not in force):
            continue
        if getattr(link, f) != v:
            setattr(link, f, v)
            changed = True
    if changed:
        link.version += 1
        link.save()
        _mirror(st)
    return changed


def _changed_by_csms(st, field, value):
    link = st.link
    setattr(link, field, value)
    if field not in link.by_csms:
        link.by_csms.append(field)
    link.version += 1
    link.save()


def _set_key(st, value):
    # ChangeConfiguration(AuthorizationKey): 16..40 characters (checked by the
    # table), stored in the link only; the next connect uses it (3.1.2).
    try:
        _changed_by_csms(st, "password", value)
    except OSError:
        return "Rejected"
    st.log("security", "AuthorizationKey changed by the CSMS")
    return "Accepted"  # a status: Config keeps no copy of the key


def _set_profile(st, value):
    link = st.link
    if value < link.profile:
        return "Rejected"  # whitepaper 3.1: never lowered
    if value == link.profile:
        return "Accepted"
    if value >= 2 and not link.ca:
        return "Rejected"  # TLS needs the CSMS root installed first
    if value == 3 and not (link.cert and link.key):
        return "Rejected"
    if value in (1, 2) and not link.password:
        return "Rejected"
    try:
        _changed_by_csms(st, "profile", value)
    except OSError:
        return "Rejected"
    _mirror(st)
    return "Accepted"
