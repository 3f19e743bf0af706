"""Reservations (evse/reservation.py): ReserveNow / CancelReservation,
connector 0 (whole station), Reserved status, who may use a reserved
connector, expiry on the virtual clock, termination on fault or
unavailability, persistence across reboots.

Sans-IO: the scripted CSMS and a virtual clock (host_tests/rig.py).
"""
import json
import os
import sys

import pytest

from boards.sim.board import SimBoard
from evse.timestamp import format_utc
from rig import Rig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import mpvm  # noqa: E402

TAGS = {"AA": "Accepted", "BB": "Accepted", "CC": {"status": "Accepted", "parentIdTag": "FLEET"}}


class TwoPorts(SimBoard):
    connectors = 2

    def card(self, cid, tag):
        self._pending.append(("card", cid, tag))


@pytest.fixture
def rig(tmp_path):
    return Rig(str(tmp_path), tags=TAGS).connect()


@pytest.fixture
def rig2(tmp_path):
    return Rig(str(tmp_path), tags=TAGS, board=TwoPorts()).connect()


def reserve(rig, cid, tag, rid=1, secs=600, parent=None):
    p = {"connectorId": cid, "idTag": tag, "reservationId": rid,
         "expiryDate": format_utc(rig.clock.unix() + secs)}
    if parent:
        p["parentIdTag"] = parent
    ans = rig.call("ReserveNow", p)
    assert ans[0] == 3, ans
    return ans[2]["status"]


def cancel(rig, rid):
    ans = rig.call("CancelReservation", {"reservationId": rid})
    assert ans[0] == 3, ans
    return ans[2]["status"]


def card(rig, tag, cid=1):
    if cid == 1:
        rig.cmd("card", tag)
    else:
        rig.board.card(cid, tag)
        rig.st.tick(rig.clock.ms())
        rig.cs.pump()


def started(rig):
    return rig.sent("StartTransaction")


def stored(rig):
    return json.dumps(rig.st.resv.store.load())


# ---- connector 1 ---------------------------------------------------------------

def test_profile_is_reported(rig):
    assert "Reservation" in rig.st.config.get("SupportedFeatureProfiles").split(",")


def test_reserve_connector_shows_reserved_and_is_json(rig):
    assert reserve(rig, 1, "AA", rid=7) == "Accepted"
    assert rig.statuses() == ["Available", "Reserved"]
    r = rig.st.connectors[1].reservation
    assert json.loads(json.dumps(r)) == r and r["reservationId"] == 7 and r["idTag"] == "AA"
    assert rig.st.connectors[0].status == "Available"


def test_wrong_card_is_refused(rig):
    reserve(rig, 1, "AA")
    rig.cmd("plug")
    card(rig, "BB")
    assert started(rig) == [] and rig.st.connectors[1].tx is None
    rig.cmd("unplug")
    assert rig.status() == "Reserved"  # still held for AA


def test_right_card_starts_with_reservation_id_and_consumes_it(rig):
    reserve(rig, 1, "aa", rid=42)
    card(rig, "AA")  # idTags are case-insensitive
    assert rig.status() == "Preparing"
    rig.cmd("plug")
    assert started(rig)[-1]["reservationId"] == 42
    assert rig.st.resv.items == [] and rig.st.connectors[1].reservation is None
    assert "42" not in stored(rig)
    card(rig, "AA")
    rig.cmd("unplug")
    assert rig.status() == "Available"
    assert cancel(rig, 42) == "Rejected"


def test_parent_group_may_use_the_reservation(rig):
    reserve(rig, 1, "AA", rid=3, parent="FLEET")
    rig.cmd("plug")
    card(rig, "CC")  # the CSMS says CC belongs to FLEET
    assert started(rig)[-1] == dict(started(rig)[-1], idTag="CC", reservationId=3)


def test_reservation_for_the_group_tag_itself(rig):
    reserve(rig, 1, "FLEET", rid=4)
    rig.cmd("plug")
    card(rig, "CC")  # CC's parentIdTag is the reserved idTag
    assert started(rig)[-1]["reservationId"] == 4


def test_start_without_reservation_carries_no_reservation_id(rig):
    rig.cmd("plug")
    card(rig, "AA")
    assert "reservationId" not in started(rig)[-1]


def test_expiry_makes_the_connector_available(rig):
    reserve(rig, 1, "AA", secs=90)
    rig.run(89000)
    assert rig.status() == "Reserved"
    rig.run(1000)
    assert rig.status() == "Available"
    assert rig.statuses() == ["Available", "Reserved", "Available"]
    assert rig.st.resv.items == [] and rig.st.resv.store.load() == []
    rig.cmd("plug")
    card(rig, "BB")
    assert "reservationId" not in started(rig)[-1]


def test_expiry_follows_a_clock_set_by_the_csms(rig):
    t0 = rig.clock.unix()
    reserve(rig, 1, "AA", secs=3600)
    rig.cs._unix0 += 3600  # the CSMS's time is an hour ahead: its Heartbeat.conf sets ours
    rig.run(10000)  # heartbeat interval 10 s
    assert rig.clock.unix() >= t0 + 3600 and rig.status() == "Reserved"
    rig.run(60000)  # expiry is checked at least every minute
    assert rig.status() == "Available"


def test_authorized_but_unplugged_keeps_the_claim_then_times_out(rig):
    reserve(rig, 1, "AA", rid=5)
    card(rig, "AA")
    assert rig.st.connectors[1].auth[2] == 5
    rig.run(60000)  # ConnectionTimeOut 60 s
    assert rig.st.connectors[1].auth is None
    assert rig.status() == "Reserved"


@pytest.mark.parametrize("cid", [1, 0])
def test_cancelled_while_claimed_start_carries_no_reservation_id(rig, cid):
    reserve(rig, cid, "AA", rid=6)
    card(rig, "AA")
    assert rig.st.connectors[1].auth[2] == 6
    assert cancel(rig, 6) == "Accepted"
    assert rig.st.connectors[1].auth == ("AA", None, None)  # still authorized, no reservation
    rig.cmd("plug")
    assert "reservationId" not in started(rig)[-1]


def test_cancel(rig):
    reserve(rig, 1, "AA", rid=9)
    assert cancel(rig, 8) == "Rejected"
    assert cancel(rig, 9) == "Accepted"
    assert rig.status() == "Available" and rig.st.resv.items == []
    assert cancel(rig, 9) == "Rejected"


def test_same_id_replaces(rig):
    reserve(rig, 1, "AA", rid=1)
    assert reserve(rig, 1, "BB", rid=1) == "Accepted"
    assert [r["idTag"] for r in rig.st.resv.items] == ["BB"]
    rig.cmd("plug")
    card(rig, "AA")
    assert started(rig) == []
    card(rig, "BB")
    assert started(rig)[-1]["reservationId"] == 1


def test_other_id_on_a_reserved_connector_is_occupied(rig):
    reserve(rig, 1, "AA", rid=1)
    assert reserve(rig, 1, "BB", rid=2) == "Occupied"
    assert reserve(rig, 0, "BB", rid=2) == "Occupied"  # no connector left for it
    assert [r["reservationId"] for r in rig.st.resv.items] == [1]


def test_occupied_states(rig):
    rig.cmd("plug")
    assert reserve(rig, 1, "AA") == "Occupied"  # Preparing
    card(rig, "AA")
    assert rig.status() == "Charging"
    assert reserve(rig, 1, "BB") == "Occupied"
    assert reserve(rig, 0, "BB") == "Occupied"
    card(rig, "AA")
    assert rig.status() == "Finishing"
    assert reserve(rig, 1, "BB") == "Occupied"
    rig.cmd("unplug")
    assert reserve(rig, 1, "BB") == "Accepted"


def test_faulted_and_unavailable(rig):
    rig.cmd("fault", "GroundFailure")
    assert reserve(rig, 1, "AA") == "Faulted"
    assert reserve(rig, 0, "AA") == "Faulted"
    rig.cmd("clear")
    rig.call("ChangeAvailability", {"connectorId": 1, "type": "Inoperative"})
    assert reserve(rig, 1, "AA") == "Unavailable"
    assert reserve(rig, 0, "AA") == "Unavailable"
    rig.call("ChangeAvailability", {"connectorId": 1, "type": "Operative"})
    rig.call("ChangeAvailability", {"connectorId": 0, "type": "Inoperative"})
    assert reserve(rig, 1, "AA") == "Unavailable"
    assert rig.st.resv.items == []


def test_fault_ends_the_reservation(rig):
    reserve(rig, 1, "AA")
    rig.cmd("fault", "GroundFailure")
    assert rig.st.resv.items == [] and rig.status() == "Faulted"
    rig.cmd("clear")
    assert rig.status() == "Available"


def test_unavailable_ends_the_reservation(rig):
    reserve(rig, 1, "AA")
    assert reserve(rig, 0, "BB", rid=2) == "Occupied"  # one connector only
    assert rig.call("ChangeAvailability", {"connectorId": 0, "type": "Inoperative"})[2]["status"] == "Accepted"
    assert rig.st.resv.items == [] and rig.status() == "Unavailable"
    rig.call("ChangeAvailability", {"connectorId": 0, "type": "Operative"})
    assert rig.status() == "Available"


@pytest.mark.parametrize("cid, secs", [(2, 600), (1, 0), (1, -5)])
def test_rejected_requests(rig, cid, secs):
    assert reserve(rig, cid, "AA", secs=secs) == "Rejected"
    assert rig.st.resv.items == []


def test_negative_connector_is_a_callerror(rig):
    ans = rig.call("ReserveNow", {"connectorId": -1, "expiryDate": "2026-01-01T01:00:00Z",
                                  "idTag": "AA", "reservationId": 1})
    assert ans[0] == 4 and ans[2] == "PropertyConstraintViolation"
    assert rig.st.resv.items == []


def test_remote_start_honours_the_reservation(rig):
    reserve(rig, 1, "AA", rid=11)
    # 5.13: BB's parentIdTag is not known here, so the station asks the CSMS
    # (Authorize.req) before deciding (this test used to expect Rejected at
    # once); BB is not of AA's group, so nothing starts.
    ans = rig.call("RemoteStartTransaction", {"idTag": "BB", "connectorId": 1})
    assert ans[2]["status"] == "Accepted"
    assert rig.sent("Authorize")[-1] == {"idTag": "BB"}
    rig.cmd("plug")
    assert started(rig) == [] and rig.status() == "Reserved"
    rig.cmd("unplug")
    rig.st.cache.update("BB", {"status": "Accepted"}, rig.clock.unix())  # now known: refused at once
    ans = rig.call("RemoteStartTransaction", {"idTag": "BB", "connectorId": 1})
    assert ans[2]["status"] == "Rejected"
    ans = rig.call("RemoteStartTransaction", {"idTag": "AA", "connectorId": 1})
    assert ans[2]["status"] == "Accepted"
    rig.cmd("plug")
    assert started(rig)[-1]["idTag"] == "AA" and started(rig)[-1]["reservationId"] == 11


def test_reservations_survive_a_reboot(tmp_path):
    r = Rig(str(tmp_path), tags=TAGS).connect()
    reserve(r, 1, "AA", rid=21, secs=120)
    r.reboot()
    assert r.st.connectors[1].status == "Reserved"
    r.connect()
    assert r.statuses()[-1] == "Reserved"
    r.run(120000)
    assert r.status() == "Available"


def test_expired_while_off_and_garbage_are_dropped_at_boot(tmp_path):
    r = Rig(str(tmp_path), tags=TAGS)
    now = r.clock.unix()
    bad = [{"reservationId": 1, "connectorId": 1, "idTag": "AA", "expiryDate": format_utc(now - 1)},
           {"reservationId": "x", "connectorId": 1, "idTag": "AA", "expiryDate": format_utc(now + 60)},
           {"reservationId": 3, "connectorId": 9, "idTag": "AA", "expiryDate": format_utc(now + 60)},
           ["junk"],
           {"reservationId": 4, "connectorId": 0, "idTag": "BB", "expiryDate": format_utc(now + 60)}]
    r.st.resv.store.save(bad)
    r.reboot()
    assert [x["reservationId"] for x in r.st.resv.items] == [4]
    assert r.st.connectors[1].status == "Reserved"
    r.st.resv.store.save({"not": "a list"})
    r.reboot()
    assert r.st.resv.items == [] and r.st.connectors[1].status == "Available"


# ---- connector 0 (whole station, R-1) --------------------------------------------

def test_connector_zero_on_one_connector_station(rig):
    assert reserve(rig, 0, "AA", rid=50) == "Accepted"
    assert rig.status() == "Reserved"
    assert rig.st.connectors[0].status == "Available"
    assert rig.st.connectors[1].reservation["connectorId"] == 0
    rig.cmd("plug")
    card(rig, "BB")
    assert started(rig) == []
    card(rig, "AA")
    assert started(rig)[-1]["reservationId"] == 50
    assert rig.st.resv.items == []


def test_connector_zero_not_supported(tmp_path):
    r = Rig(str(tmp_path), tags=TAGS, seeds={"ReserveConnectorZeroSupported": "false"}).connect()
    assert reserve(r, 0, "AA") == "Rejected"
    assert reserve(r, 1, "AA") == "Accepted"


def test_connector_zero_blocks_the_last_free_connector(rig2):
    r = rig2
    assert reserve(r, 0, "AA", rid=60) == "Accepted"
    assert [r.status(1), r.status(2)] == ["Available", "Available"]
    r.cmd("plug", "1")
    card(r, "BB", 1)  # two free connectors: BB may take one
    assert started(r)[-1]["connectorId"] == 1 and "reservationId" not in started(r)[-1]
    assert r.status(2) == "Reserved"  # the last free one is kept for AA
    assert r.statuses(2) == ["Available", "Reserved"]
    r.cmd("plug", "2")
    card(r, "CC", 2)
    assert len(started(r)) == 1
    card(r, "AA", 2)
    assert started(r)[-1] == dict(started(r)[-1], connectorId=2, idTag="AA", reservationId=60)
    assert r.st.resv.items == []


def test_connector_zero_released_when_a_connector_frees_up(rig2):
    r = rig2
    r.cmd("plug", "1")
    card(r, "BB", 1)
    assert reserve(r, 0, "AA", rid=61) == "Accepted"
    assert r.status(2) == "Reserved"
    card(r, "BB", 1)
    r.cmd("unplug", "1")  # connector 1 free again: nothing needs holding back
    assert [r.status(1), r.status(2)] == ["Available", "Available"]
    assert r.statuses(2) == ["Available", "Reserved", "Available"]


def test_connector_zero_used_on_any_connector(rig2):
    r = rig2
    reserve(r, 0, "AA", rid=62, parent="FLEET")
    r.cmd("plug", "1")
    card(r, "CC", 1)  # a FLEET member takes it on connector 1
    assert started(r)[-1]["reservationId"] == 62
    assert r.st.resv.items == [] and r.status(2) == "Available"


def test_connector_zero_and_connector_reservations_share_the_connectors(rig2):
    r = rig2
    assert reserve(r, 0, "AA", rid=1) == "Accepted"
    assert reserve(r, 1, "BB", rid=2) == "Accepted"
    assert r.status(2) == "Reserved"  # the only free connector left
    assert reserve(r, 2, "CC", rid=3) == "Occupied"
    assert reserve(r, 0, "CC", rid=3) == "Occupied"
    assert cancel(r, 2) == "Accepted"
    assert [r.status(1), r.status(2)] == ["Available", "Available"]
    assert reserve(r, 0, "CC", rid=3) == "Accepted"
    assert [r.status(1), r.status(2)] == ["Reserved", "Reserved"]


def test_connector_zero_expiry(rig2):
    r = rig2
    r.cmd("plug", "1")
    card(r, "BB", 1)
    reserve(r, 0, "AA", secs=30)
    assert r.status(2) == "Reserved"
    r.run(30000)
    assert r.status(2) == "Available" and r.st.resv.items == []


# ---- MicroPython VM ----------------------------------------------------------------------
# The three issue-5 features through one scenario on both Pythons; the
# transcripts (message ids normalised by the scripted CSMS) must be equal.
VM_SCENARIO = r'''
from boards.sim.board import SimBoard
from evse.station import Station
from evse.store.storage import FileStorage
from evse.timestamp import format_utc
from scenarios.scripted import ScriptedCsms
from scenarios.vclock import VirtualClock


def run(data):
    clock = VirtualClock()
    st = Station(board=SimBoard(serial="VM5"), clock=clock, storage=FileStorage(data))
    cs = ScriptedCsms(st, clock)
    cs.tags = {"AA": "Accepted", "BB": "Accepted", "KID": {"status": "Accepted", "parentIdTag": "FAM"}}
    st.connected(clock.ms())
    cs.pump()

    def hw(cmd, *args):
        st.board.command(cmd, list(args))
        cs.run_for(1000)
    cs.call("l1", "SendLocalList", {"listVersion": 2, "updateType": "Full", "localAuthorizationList": [
        {"idTag": "LISTED", "idTagInfo": {"status": "Accepted", "parentIdTag": "FAM"}},
        {"idTag": "BLK", "idTagInfo": {"status": "Blocked", "expiryDate": "2030-01-01T00:00:00Z"}}]})
    cs.call("l2", "SendLocalList", {"listVersion": 2, "updateType": "Differential"})
    cs.call("l3", "GetLocalListVersion", {})
    until = format_utc(clock.unix() + 30)
    cs.call("r1", "ReserveNow", {"connectorId": 1, "idTag": "MUM", "parentIdTag": "FAM",
                                 "reservationId": 1, "expiryDate": until})
    hw("plug")
    hw("card", "BB")
    hw("card", "KID")
    hw("card", "KID")
    hw("unplug")
    cs.call("r2", "ReserveNow", {"connectorId": 0, "idTag": "AA", "reservationId": 2, "expiryDate": until})
    cs.call("r3", "ReserveNow", {"connectorId": 1, "idTag": "BB", "reservationId": 3, "expiryDate": until})
    cs.call("r4", "CancelReservation", {"reservationId": 2})
    cs.call("r5", "ReserveNow", {"connectorId": 0, "idTag": "AA", "reservationId": 4, "expiryDate": until})
    cs.run_for(30000)
    cs.call("r6", "CancelReservation", {"reservationId": 4})
    for what in ("BootNotification", "DiagnosticsStatusNotification", "FirmwareStatusNotification",
                 "Heartbeat", "MeterValues", "StatusNotification"):
        cs.call("t" + what, "TriggerMessage", {"requestedMessage": what})
    cs.call("x1", "ExtendedTriggerMessage", {"requestedMessage": "StatusNotification", "connectorId": 1})
    cs.call("x2", "ExtendedTriggerMessage", {"requestedMessage": "LogStatusNotification"})
    cs.call("x3", "TriggerMessage", {"requestedMessage": "Heartbeat", "connectorId": 2})
    st.disconnected(clock.ms())
    hw("plug")
    hw("card", "BLK")
    hw("card", "LISTED")
    st.connected(clock.ms())
    cs.pump()
    cs.run_for(2000)
    return cs.transcript
'''


@pytest.mark.skipif(not os.path.isdir(os.path.join(ROOT, "node_modules", "@micropython")),
                    reason="MicroPython WebAssembly VM not installed")
def test_micropython_vm_gives_cpython_transcript(tmp_path):
    ns = {"__name__": "vm_scenario"}
    exec(VM_SCENARIO, ns)  # noqa: S102 - our own script, run on both Pythons
    host = json.loads(json.dumps(ns["run"](str(tmp_path))))
    sent = [e["msg"] for e in host if e["dir"] == "cs"]
    answers = [m[2] for m in sent if m[0] == 3 and isinstance(m[2], dict)]
    assert {"listVersion": 2} in answers
    assert [m[2] for m in sent if m[0] == 2 and m[2] == "LogStatusNotification"] == ["LogStatusNotification"]
    asked = {e["msg"][1]: e["msg"][2] for e in host if e["dir"] == "csms" and e["msg"][0] == 2}
    resv = [m[2]["status"] for m in sent if m[0] == 3 and asked.get(m[1]) in ("ReserveNow", "CancelReservation")]
    assert resv == ["Accepted", "Accepted", "Occupied", "Accepted", "Accepted", "Rejected"]
    starts = [m[3] for m in sent if m[0] == 2 and m[2] == "StartTransaction"]
    assert [s.get("reservationId") for s in starts] == [1, None]
    assert starts[1]["idTag"] == "LISTED"  # offline, from the list
    code = VM_SCENARIO + "\nimport json\nfor e in run('/data'):\n    print(json.dumps(e))\n"
    vm = mpvm.json_lines(mpvm.run(code, _scenario_files()))
    assert vm == host


def _scenario_files():
    return mpvm.scenario_files()
