"""Big CALLs read in place (SendLocalList, SetChargingProfile: rpc.decode_head,
Station.stream_handlers) answer exactly like the object-tree path and leave
the same state, for valid and broken requests alike; and over the wire
against the real CSMS with a list and a schedule far beyond the old limits."""
import json

import pytest
from ocpp.v16 import call
from rig import Rig
from test_smartcharge import profile

from evse.wire import rpc
from live import CsmsThread, StationThread


def entries(n, **info):
    return [{"idTag": "TAG%017d" % i, "idTagInfo": dict({"status": "Accepted"}, **info)} for i in range(n)]


def periods(n, step=60):
    return [(i * step, 6 + (i % 20)) for i in range(n)]


SLL = [
    {"listVersion": 3, "updateType": "Full", "localAuthorizationList": entries(100, expiryDate="2030-01-01T00:00:00Z")},
    {"localAuthorizationList": entries(40), "updateType": "Full", "listVersion": 2},  # the list before the fields
    {"listVersion": 3, "updateType": "Full", "localAuthorizationList": entries(101)},  # over SendLocalListMaxLength
    {"listVersion": 3, "updateType": "Full", "localAuthorizationList": entries(30) + entries(1)},  # duplicate
    {"listVersion": 3, "updateType": "Full", "localAuthorizationList": entries(30) + [{"idTag": 5}]},  # type
    {"listVersion": 3, "updateType": "Full", "localAuthorizationList": entries(30) + [{"idTagInfo": {}}]},
    {"listVersion": 3, "updateType": "Sometimes", "localAuthorizationList": entries(30)},
    {"listVersion": 0, "updateType": "Full", "localAuthorizationList": entries(30)},
    {"listVersion": 1, "updateType": "Differential", "localAuthorizationList": entries(30)},  # version mismatch
    {"listVersion": 3, "updateType": "Full", "localAuthorizationList": entries(30), "extra": [1, 2]},
    {"updateType": "Full", "localAuthorizationList": entries(30)},  # listVersion missing
    {"listVersion": 3, "updateType": "Full", "localAuthorizationList": "no"},
    {"listVersion": 3, "updateType": "Full"},
]

SCP = [
    {"connectorId": 1, "csChargingProfiles": profile(1, "TxDefaultProfile", periods(300))},
    {"csChargingProfiles": profile(2, "TxDefaultProfile", periods(200), stack=1), "connectorId": 0},
    {"connectorId": 1, "csChargingProfiles": profile(3, "TxDefaultProfile", periods(300) + [(10, 7)])},  # order
    {"connectorId": 1, "csChargingProfiles": profile(4, "TxDefaultProfile", periods(50) + [("x", 7)])},
    {"connectorId": 1, "csChargingProfiles": profile(5, "TxDefaultProfile", [(0, -1)] + periods(50)[1:])},
    {"connectorId": -1, "csChargingProfiles": profile(6, "TxDefaultProfile", periods(80))},
    {"connectorId": 7, "csChargingProfiles": profile(7, "TxDefaultProfile", periods(80))},
    {"connectorId": 1, "csChargingProfiles": profile(8, "TxProfile", periods(80))},  # no transaction
    {"connectorId": 1, "csChargingProfiles": profile(9, "TxDefaultProfile", periods(80), unit="kW")},
    {"connectorId": 1, "csChargingProfiles": profile(10, "TxDefaultProfile", [])},
    {"connectorId": 1, "csChargingProfiles": dict(profile(11, "TxDefaultProfile", periods(80)), chargingSchedule=5)},
    {"connectorId": 1},
    {"connectorId": 1, "csChargingProfiles": profile(12, "TxDefaultProfile", periods(80), schedule={
        "chargingSchedulePeriod": {"startPeriod": 0, "limit": 6}})},
    {"connectorId": 1, "csChargingProfiles": profile(13, "TxDefaultProfile", periods(100000 // 60 + 1))},
]


def state(rig):
    st = rig.st
    return json.dumps([st.authlist.dump(), st.smart.engine.dump()], sort_keys=True)


def answer(m):
    return m[:3] if m[0] == 4 else m  # the same error code; descriptions may word it differently


@pytest.mark.parametrize("action,payloads", [("SendLocalList", SLL), ("SetChargingProfile", SCP)],
                         ids=["SendLocalList", "SetChargingProfile"])
def test_streamed_answers_and_state_match_the_tree_path(tmp_path, monkeypatch, action, payloads):
    monkeypatch.setattr(rpc, "STREAM_MIN", 0)  # every frame of these actions streamed
    seeds = {"ChargingScheduleMaxPeriods": "1000"}
    a = Rig(str(tmp_path / "a"), seeds=seeds).connect()
    b = Rig(str(tmp_path / "b"), seeds=seeds).connect()
    b.st.stream_handlers = {}
    assert action in a.st.stream_handlers
    streamed = []
    for p in payloads:
        ra, rb = a.call(action, p), b.call(action, p)
        assert answer(ra) == answer(rb), p
        assert state(a) == state(b)
        streamed.append(ra)
    assert any(m[0] == 3 for m in streamed) and any(m[0] == 4 for m in streamed)


def test_broken_json_after_the_head_is_a_formation_violation(tmp_path):
    rig = Rig(str(tmp_path)).connect()
    text = json.dumps([2, "u1", "SendLocalList", SLL[0]])
    rig.st.receive(text[:-1] + ",]", rig.clock.ms())
    m = json.loads(rig.st.take_frames()[0])
    assert m[:3] == [4, "u1", "FormationViolation"] and rig.st.authlist.version == 0


def test_a_streamed_call_while_rejected_gets_no_answer(tmp_path, monkeypatch):
    # 4.2: while Rejected no CSMS CALL is answered, on the streamed path too
    # (both paths share the gate and the handler runner).
    monkeypatch.setattr(rpc, "STREAM_MIN", 0)
    rig = Rig(str(tmp_path))
    rig.cs.boot_plan = ["Rejected"]
    rig.connect()
    assert rig.st.registration == "Rejected"
    rig.st.take_frames()
    rig.st.receive(json.dumps([2, "u1", "SendLocalList", SLL[0]]), rig.clock.ms())
    assert rig.st.take_frames() == [] and rig.st.authlist.version == 0


def test_big_list_and_schedule_over_the_wire(tmp_path):
    """The real CSMS (`ocpp` validates every frame) sends a full list and a
    1,500-period schedule (a 52 KB frame: the link takes 64 KB messages):
    both read in place, straight into the compact tables."""
    c = CsmsThread(tags={"AA": "Accepted"}, heartbeat=30)
    s = StationThread(c.url, "CP1", str(tmp_path), seeds={"ChargingScheduleMaxPeriods": "1500"})
    try:
        c.wait_call("StatusNotification", 2)
        r = c.call("CP1", call.SendLocalList(list_version=5, update_type="Full", local_authorization_list=entries(100)))
        assert r.status == "Accepted" and len(s.station.authlist) == 100
        prof = profile(1, "TxDefaultProfile", periods(1500, step=30), kind="Absolute",
                       schedule={"startSchedule": "2020-01-01T00:00:00Z"})
        r = c.call("CP1", call.SetChargingProfile(connector_id=1, cs_charging_profiles=prof))
        assert r.status == "Accepted"
        p = s.station.smart.engine._table[0]
        assert len(p.starts) == 1500 and p.starts[-1] == 1499 * 30 and p.limits[7] == 130
        over = profile(2, "TxDefaultProfile", periods(1501), stack=1)
        r = c.call("CP1", call.SetChargingProfile(connector_id=1, cs_charging_profiles=over))
        assert r.status == "Rejected"  # ChargingScheduleMaxPeriods
    finally:
        s.stop()
        c.stop()
