"""Local Auth List Management wired into the station (evse/locallist.py):
SendLocalList / GetLocalListVersion through the OCPP-J dispatcher, sizes
from configuration, persistence across reboots, and the list's place in
authorization (before the cache, offline, never cached).

Sans-IO: the scripted CSMS and a virtual clock (host_tests/rig.py). The
list's own rules are tested in test_locallist_table.py.
"""
import json

import pytest

from rig import Rig

A = {"status": "Accepted"}


@pytest.fixture
def rig(tmp_path):
    return Rig(str(tmp_path), tags={"ONLINE": "Accepted"}).connect()


def send(rig, version, kind, entries=None):
    p = {"listVersion": version, "updateType": kind}
    if entries is not None:
        p["localAuthorizationList"] = entries
    ans = rig.call("SendLocalList", p)
    assert ans[0] == 3, ans
    return ans[2]["status"]


def version(rig):
    ans = rig.call("GetLocalListVersion", {})
    assert ans[0] == 3, ans
    return ans[2]["listVersion"]


def entry(tag, status="Accepted", **extra):
    info = {"status": status}
    info.update(extra)
    return {"idTag": tag, "idTagInfo": info}


def test_profile_is_reported(rig):
    profiles = rig.st.config.get("SupportedFeatureProfiles").split(",")
    assert "LocalAuthListManagement" in profiles


def test_version_empty_full_and_differential(rig):
    assert version(rig) == 0
    assert send(rig, 3, "Full", [entry("AA"), entry("BB", "Blocked")]) == "Accepted"
    assert version(rig) == 3
    # Differential: add CC, update BB, remove AA.
    assert send(rig, 4, "Differential", [entry("CC"), entry("BB"), {"idTag": "AA"}]) == "Accepted"
    assert version(rig) == 4
    now = rig.clock.unix()
    assert rig.st.authlist.get("AA", now) is None
    assert rig.st.authlist.get("bb", now) == A
    assert rig.st.authlist.get("CC", now) == A


def test_version_mismatch_keeps_the_list(rig):
    assert send(rig, 5, "Full", [entry("AA")]) == "Accepted"
    assert send(rig, 5, "Differential", [entry("BB")]) == "VersionMismatch"
    assert send(rig, 2, "Differential", [entry("BB")]) == "VersionMismatch"
    assert version(rig) == 5 and len(rig.st.authlist) == 1
    # A Full update replaces whatever the version.
    assert send(rig, 1, "Full", [entry("BB")]) == "Accepted"
    assert version(rig) == 1


def test_limits_come_from_configuration(tmp_path):
    r = Rig(str(tmp_path), seeds={"LocalAuthListMaxLength": "3", "SendLocalListMaxLength": "2"}).connect()
    assert send(r, 1, "Full", [entry("T%d" % i) for i in range(3)]) == "Failed"  # > SendLocalListMaxLength
    assert send(r, 1, "Full", [entry("T0"), entry("T1")]) == "Accepted"
    assert send(r, 2, "Differential", [entry("T2")]) == "Accepted"
    assert send(r, 3, "Differential", [entry("T3")]) == "Failed"  # 4 > LocalAuthListMaxLength
    assert version(r) == 2 and len(r.st.authlist) == 3
    # Removing and adding in one update stays within the limit.
    assert send(r, 3, "Differential", [{"idTag": "T0"}, entry("T3")]) == "Accepted"
    assert len(r.st.authlist) == 3


def test_default_limits_are_100(rig):
    assert send(rig, 1, "Full", [entry("T%d" % i) for i in range(100)]) == "Accepted"
    assert send(rig, 2, "Differential", [entry("X")]) == "Failed"
    assert send(rig, 2, "Full", [entry("T%d" % i) for i in range(101)]) == "Failed"
    assert version(rig) == 1 and len(rig.st.authlist) == 100


def test_disabled_list(rig):
    assert send(rig, 1, "Full", [entry("AA")]) == "Accepted"
    assert rig.call("ChangeConfiguration", {"key": "LocalAuthListEnabled", "value": "false"})[2] == A
    assert send(rig, 2, "Full", [entry("BB")]) == "NotSupported"
    assert version(rig) == -1
    rig.call("ChangeConfiguration", {"key": "LocalAuthListEnabled", "value": "true"})
    assert version(rig) == 1  # kept while disabled


def test_invalid_request_is_a_callerror_not_a_change(rig):
    assert send(rig, 1, "Full", [entry("AA")]) == "Accepted"
    ans = rig.call("SendLocalList", {"listVersion": 2, "updateType": "Sideways"})
    assert ans[0] == 4 and ans[2] == "PropertyConstraintViolation"
    ans = rig.call("SendLocalList", {"listVersion": 2, "updateType": "Full",
                                     "localAuthorizationList": [{"idTag": "X" * 21, "idTagInfo": A}]})
    assert ans[0] == 4
    assert send(rig, 2, "Full", [entry("AA"), entry("aa")]) == "Failed"  # duplicate (case-insensitive)
    assert version(rig) == 1


def test_list_survives_reboot_and_corruption_loads_empty(tmp_path):
    r = Rig(str(tmp_path)).connect()
    assert send(r, 7, "Full", [entry("AA", parentIdTag="FLEET", expiryDate="2030-01-01T00:00:00Z")]) == "Accepted"
    r.reboot()
    r.connect()
    assert version(r) == 7
    assert r.st.authlist.get("aa", r.clock.unix()) == {"status": "Accepted", "parentIdTag": "FLEET",
                                                       "expiryDate": "2030-01-01T00:00:00Z"}
    with open(str(tmp_path / "locallist.json"), "r+b") as f:
        f.seek(20)
        f.write(b"#")
    r.reboot()
    r.connect()
    assert version(r) == 0  # the CSMS sees 0 and sends a Full list again


def test_failed_save_keeps_the_previous_list(rig):
    assert send(rig, 1, "Full", [entry("AA")]) == "Accepted"

    def broken(obj):
        raise OSError(28)  # ENOSPC: flash full
    rig.st.authlist._persist.snap.save = broken
    rig.st.authlist._persist.snap.save_pieces = broken
    assert send(rig, 2, "Full", [entry("BB")]) == "Failed"
    assert version(rig) == 1 and rig.st.authlist.get("AA", rig.clock.unix()) == A


# ---- authorization -----------------------------------------------------------

def test_offline_start_from_the_list(tmp_path):
    r = Rig(str(tmp_path)).connect()
    send(r, 1, "Full", [entry("LISTED"), entry("STOPPED", "Blocked")])
    r.disconnect()
    r.cmd("plug")
    r.cmd("card", "STOPPED")
    assert r.st.connectors[1].tx is None
    r.cmd("card", "listed")
    tx = r.st.connectors[1].tx
    assert tx is not None and tx.id_tag == "listed"
    r.connect()
    assert r.sent("StartTransaction")[-1]["idTag"] == "listed"


def test_offline_list_needs_local_authorize_offline(tmp_path):
    r = Rig(str(tmp_path), seeds={"LocalAuthorizeOffline": "false"}).connect()
    send(r, 1, "Full", [entry("LISTED")])
    r.disconnect()
    r.cmd("plug")
    r.cmd("card", "LISTED")
    assert r.st.connectors[1].tx is None


def test_expired_list_entry_is_refused_offline(tmp_path):
    r = Rig(str(tmp_path)).connect()
    past = "2025-06-01T00:00:00Z"  # the virtual clock starts in 2026
    send(r, 1, "Full", [entry("OLD", expiryDate=past)])
    assert r.st.authlist.get("OLD", r.clock.unix())["status"] == "Expired"
    r.disconnect()
    r.cmd("plug")
    r.cmd("card", "OLD")
    assert r.st.connectors[1].tx is None


def test_list_takes_precedence_over_the_cache(tmp_path):
    r = Rig(str(tmp_path), tags={"FLIP": "Accepted"}, seeds={"LocalPreAuthorize": "true"}).connect()
    r.cmd("card", "FLIP")  # online: Authorize, the answer is cached
    assert len(r.sent("Authorize")) == 1
    assert r.st.cache.get("FLIP", r.clock.unix()) == A
    r.cmd("card", "FLIP")  # presented again: cancel
    # A cached Accepted tag is pre-authorized without asking the CSMS...
    r.cmd("card", "FLIP")
    assert len(r.sent("Authorize")) == 1
    r.cmd("card", "FLIP")
    # ...unless the list says otherwise: the list is looked at first.
    send(r, 1, "Full", [entry("FLIP", "Blocked")])
    r.cmd("card", "FLIP")
    assert len(r.sent("Authorize")) == 2
    r.cmd("card", "FLIP")
    r.disconnect()
    r.cmd("plug")
    r.cmd("card", "FLIP")
    assert r.st.connectors[1].tx is None  # offline: Blocked from the list, not Accepted from the cache


def test_local_pre_authorize_from_the_list(tmp_path):
    r = Rig(str(tmp_path), tags={"LISTED": "Accepted"}, seeds={"LocalPreAuthorize": "true"}).connect()
    send(r, 1, "Full", [entry("LISTED")])
    r.cmd("plug")
    r.cmd("card", "LISTED")
    assert r.sent("Authorize") == []
    assert r.sent("StartTransaction")[-1]["idTag"] == "LISTED"


def test_list_entries_are_not_cached(tmp_path):
    r = Rig(str(tmp_path), tags={"LISTED": "Accepted", "OTHER": "Accepted"}).connect()
    send(r, 1, "Full", [entry("LISTED")])
    r.cmd("plug")
    r.cmd("card", "LISTED")  # LocalPreAuthorize false: the CSMS is asked
    assert r.sent("Authorize")[-1]["idTag"] == "LISTED"
    assert r.sent("StartTransaction")[-1]["idTag"] == "LISTED"
    r.cmd("card", "LISTED")  # stop: StopTransaction.conf carries an idTagInfo too
    assert r.sent("StopTransaction")
    now = r.clock.unix()
    assert r.st.cache.get("LISTED", now) is None
    r.cmd("card", "OTHER")
    assert r.st.cache.get("OTHER", now) == A  # a tag not on the list is cached
    assert "LISTED" not in json.dumps(r.st.cache.dump()).upper()


def test_disabled_list_is_not_used_for_authorization(tmp_path):
    r = Rig(str(tmp_path), seeds={"LocalAuthListEnabled": "false"}).connect()
    r.st.authlist.send_local_list({"listVersion": 1, "updateType": "Full",
                                   "localAuthorizationList": [entry("LISTED")]})
    r.disconnect()
    r.cmd("plug")
    r.cmd("card", "LISTED")
    assert r.st.connectors[1].tx is None


def test_group_stop_with_parent_from_the_list(tmp_path):
    r = Rig(str(tmp_path), tags={"DRIVER": {"status": "Accepted", "parentIdTag": "FLEET"}}).connect()
    send(r, 1, "Full", [entry("BOSS", parentIdTag="FLEET")])
    r.cmd("plug")
    r.cmd("card", "DRIVER")
    assert r.st.connectors[1].tx is not None
    r.cmd("card", "BOSS")  # same parentIdTag, known from the list: a local stop
    assert r.st.connectors[1].tx is None
    stop = r.sent("StopTransaction")[-1]
    assert stop["reason"] == "Local" and stop["idTag"] == "BOSS"
