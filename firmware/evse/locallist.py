"""Local Auth List Management profile (OCPP 1.6 sections 3.5.2, 5.10, 5.15)."""
# Wiring only: the list itself (versions, limits, atomic persisted updates)
# is authlist.LocalList. Installing this module sets `st.authlist`, which
# auth.py consults before the cache, and answers SendLocalList and
# GetLocalListVersion.
#
# `LocalAuthListEnabled` false: the list is kept but not used; SendLocalList
# answers NotSupported and GetLocalListVersion -1 (authlist.py explains why).
# Sizes come from the read-only keys LocalAuthListMaxLength and
# SendLocalListMaxLength (100 on the reference station, ORS-12/13).
#
# (Comments, not a docstring: compiled from source on the device, a
# docstring stays in RAM.)
from evse.authlist import LocalList

PROFILE = "LocalAuthListManagement"  # reported in SupportedFeatureProfiles


def install(st):
    cfg = st.config
    st.authlist = LocalList(max_length=cfg.get("LocalAuthListMaxLength"),
                            max_send=cfg.get("SendLocalListMaxLength"),
                            persist=st.storage.persist("locallist"))
    st.handlers["SendLocalList"] = _send_local_list
    st.handlers["GetLocalListVersion"] = _get_version


def _send_local_list(st, p):
    status = st.authlist.send_local_list(p, st.config.get("LocalAuthListEnabled"))
    if status == "Accepted":
        st.log("info", "local list version %d, %d entries" % (st.authlist.version, len(st.authlist)))
    return {"status": status}


def _get_version(st, p):
    return {"listVersion": st.authlist.get_version(st.config.get("LocalAuthListEnabled"))}
