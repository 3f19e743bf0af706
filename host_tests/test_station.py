"""The sans-IO station core: boot, heartbeat, statuses, dispatch and bad input.

Driven frame by frame with a virtual clock and the scripted CSMS; no
sockets, no sleeping.
"""
import json

import pytest

from boards.sim.board import SimBoard
from evse.station import Station
from evse.store.storage import FileStorage
from scenarios.scripted import ScriptedCsms
from scenarios.vclock import VirtualClock


@pytest.fixture
def rig(tmp_path):
    clock = VirtualClock()
    logs = []
    st = Station(board=SimBoard(), clock=clock, storage=FileStorage(str(tmp_path)),
                 log=lambda lvl, text: logs.append((lvl, text)))
    cs = ScriptedCsms(st, clock)
    cs.logs = logs
    return cs


def sent(cs, action=None):
    return [e["msg"] for e in cs.transcript
            if e["dir"] == "cs" and e["msg"][0] == 2 and (action is None or e["msg"][2] == action)]


def boot(cs, plan=()):
    cs.boot_plan = list(plan)
    cs.st.connected(cs.clock.ms())
    cs.pump()


def test_boot_accepted_sets_clock_heartbeat_and_statuses(rig):
    rig.clock.set_unix(0)  # the station's clock is wrong until the CSMS sets it
    boot(rig)
    assert rig.st.registration == "Accepted"
    assert rig.clock.unix() > 1700000000
    b = sent(rig, "BootNotification")[0][3]
    assert b["chargePointVendor"] and b["chargePointModel"] == "SIM-1P-32A"
    assert [m[3]["connectorId"] for m in sent(rig, "StatusNotification")] == [0, 1]
    rig.run_for(10000)  # interval 10 s from the boot answer
    assert len(sent(rig, "Heartbeat")) == 1
    assert rig.st.config.get("HeartbeatInterval") == 10


def test_pending_then_accepted_nothing_else_before(rig):
    boot(rig, ["Pending", "Pending"])
    assert rig.st.registration == "Pending"
    # While pending the CSMS may still query the station.
    ans = rig.call("q", "GetConfiguration", {"key": ["HeartbeatInterval"]})
    assert ans[0] == 3 and ans[2]["configurationKey"][0]["key"] == "HeartbeatInterval"
    assert rig.call("r", "RemoteStartTransaction", {"idTag": "A"})[2] == {"status": "Rejected"}
    rig.run_for(1999)
    assert len(sent(rig, "BootNotification")) == 1
    rig.run_for(1)
    assert len(sent(rig, "BootNotification")) == 2
    rig.run_for(2000)
    assert rig.st.registration == "Accepted"
    kinds = [m[2] for m in sent(rig)]
    first_other = next(i for i, k in enumerate(kinds) if k != "BootNotification")
    assert kinds[:first_other] == ["BootNotification"] * 3


def test_rejected_retries_and_refuses_management(rig):
    boot(rig, ["Rejected"])
    assert rig.st.registration == "Rejected"
    # OCPP 1.6 4.2: while Rejected the station SHALL NOT respond to any
    # CSMS-initiated message (this test used to expect a CALLERROR).
    ans = rig.call("x", "GetConfiguration", {})
    assert ans is None
    rig.run_for(2000)
    assert rig.st.registration == "Accepted"


def test_heartbeat_postponed_by_traffic_and_interval_change(rig):
    boot(rig)
    rig.run_for(5000)
    rig.call("c", "ChangeConfiguration", {"key": "HeartbeatInterval", "value": "3"})
    rig.run_for(2999)
    assert sent(rig, "Heartbeat") == []
    rig.run_for(1)
    assert len(sent(rig, "Heartbeat")) == 1
    rig.run_for(9000)
    assert len(sent(rig, "Heartbeat")) == 4


BAD = [
    ("not json at all", None, None),
    ('[2, "b1", "Heartbeat", {', "b1", "FormationViolation"),
    ('[2, "b2"]', "b2", "FormationViolation"),
    ('[7, "b3", "Reset", {}]', None, None),
    ('[2, "b4", "Reset", []]', "b4", "FormationViolation"),
    ('[2, "b5", "Reset", {}]', "b5", "ProtocolError"),
    ('[2, "b6", "Reset", {"type": 1}]', "b6", "TypeConstraintViolation"),
    ('[2, "b7", "Reset", {"type": "Warm"}]', "b7", "PropertyConstraintViolation"),
    ('[2, "b8", "Reset", {"type": "Soft", "x": 1}]', "b8", "FormationViolation"),
    ('[2, "b9", "ChangeConfiguration", {"key": "' + "k" * 51 + '", "value": "1"}]', "b9",
     "PropertyConstraintViolation"),
    ('[2, "b10", "FlyToTheMoon", {}]', "b10", "NotImplemented"),
    ('[2, "b11", "GetDiagnostics", {"location": "ftp://x/"}]', "b11", "NotSupported"),
    ('[2, "b12", "UnlockConnector", {"connectorId": 1.5}]', "b12", "TypeConstraintViolation"),
    ('[2, "b13", "ChangeAvailability", {"connectorId": -1, "type": "Inoperative"}]', "b13",
     "PropertyConstraintViolation"),
]


@pytest.mark.parametrize("text,uid,code", BAD)
def test_bad_frames_get_the_right_callerror(rig, text, uid, code):
    boot(rig)
    rig.st.receive(text, rig.clock.ms())
    frames = [json.loads(f) for f in rig.st.take_frames()]
    errors = [f for f in frames if f[0] == 4]
    if uid is None:
        assert errors == []
    else:
        assert errors and errors[0][1] == uid and errors[0][2] == code
    assert rig.st.online  # still alive and answering
    assert rig.call("ok", "GetConfiguration", {"key": ["HeartbeatInterval"]})[0] == 3


def test_handler_bug_becomes_internal_error(rig):
    boot(rig)

    def broken(st, p):
        raise KeyError("bug")
    rig.st.handlers["ClearCache"] = broken
    ans = rig.call("e", "ClearCache", {})
    assert ans[0] == 4 and ans[2] == "InternalError"


def test_answers_with_unknown_ids_are_ignored(rig):
    boot(rig)
    rig.st.receive('[3, "nobody", {}]', rig.clock.ms())
    rig.st.receive('[4, "nobody", "GenericError", "", {}]', rig.clock.ms())
    assert rig.st.take_frames() == []
    assert any("unknown id" in t for _, t in rig.logs)


def test_call_timeout_frees_the_slot(rig):
    boot(rig)
    rig.run_for(10000)
    hb = sent(rig, "Heartbeat")
    assert len(hb) == 1
    # Swallow the next heartbeat: nothing is answered, the CALL times out.
    rig.st.tick(rig.clock.ms())
    rig.clock.advance(10000)
    rig.st.tick(rig.clock.ms())
    f = rig.st.take_frames()
    assert json.loads(f[0])[2] == "Heartbeat"
    rig.clock.advance(29999)
    rig.st.tick(rig.clock.ms())
    assert rig.st.rpc.busy() and rig.st.take_frames() == []
    rig.clock.advance(1)
    rig.st.tick(rig.clock.ms())  # timed out: the slot is free, the next heartbeat goes
    again = [json.loads(x) for x in rig.st.take_frames()]
    assert again[0][2] == "Heartbeat" and again[0][1] != json.loads(f[0])[1]
    assert any("timed out" in t for _, t in rig.logs)


def test_reconnect_resyncs_changed_status_without_new_boot(rig):
    boot(rig)
    rig.st.disconnected(rig.clock.ms())
    rig.st.board.command("plug", [])
    rig.st.tick(rig.clock.ms())
    assert rig.st.connectors[1].status == "Preparing"
    rig.st.connected(rig.clock.ms())
    rig.pump()
    assert len(sent(rig, "BootNotification")) == 1
    st = sent(rig, "StatusNotification")
    assert st[-1][3]["status"] == "Preparing"


def test_invalid_answer_payload_is_a_failure_not_a_crash(rig):
    rig.st.connected(rig.clock.ms())
    f = json.loads(rig.st.take_frames()[0])
    rig.st.receive(json.dumps([3, f[1], {"status": "Maybe"}]), rig.clock.ms())
    assert rig.st.registration is None
    rig.run_for(30000)
    assert rig.st.registration == "Accepted"


def test_bug_in_a_result_hook_or_timer_is_contained(rig):
    boot(rig)

    def broken(st, *a):
        raise ValueError("bug")
    rig.st.on_result["Heartbeat"] = broken
    rig.st.on_timer["hb"] = broken
    rig.run_for(20000)  # the timer hook raises: logged, the core goes on
    rig.st.send("Heartbeat", {})
    rig.st.tick(rig.clock.ms())
    rig.pump()  # the result hook raises: logged, the core goes on
    assert sum("hook broken" in t for _, t in rig.logs) >= 2
    assert rig.call("ok", "GetConfiguration", {"key": ["HeartbeatInterval"]})[0] == 3


def test_corrupt_state_falls_back_and_reports_a_security_event(tmp_path):
    from rig import Rig
    r = Rig(str(tmp_path)).connect()
    r.call("ChangeConfiguration", {"key": "HeartbeatInterval", "value": "77"})
    with open(tmp_path / "config.json", "r+b") as f:  # a bit flip in flash
        data = bytearray(f.read())
        data[-3] ^= 0x20
        f.seek(0)
        f.write(data)
    r.disconnect()
    r.reboot()
    assert r.st.config.get("HeartbeatInterval") != 77  # defaults, no crash
    assert any(lvl == "security" and "config" in t for lvl, t in r.logs)
    r.connect()
    ev = r.sent("SecurityEventNotification")
    assert ev and ev[0]["type"] == "StorageCorrupted" and "config" in ev[0]["techInfo"]


def test_triggered_boot_does_not_resend_statuses(tmp_path):
    from rig import Rig
    r = Rig(str(tmp_path)).connect()
    n = len(r.sent("StatusNotification"))
    assert r.call("TriggerMessage", {"requestedMessage": "BootNotification"})[2] == {"status": "Accepted"}
    assert len(r.sent("BootNotification")) == 2
    assert len(r.sent("StatusNotification")) == n


def test_send_queues_are_a_seam_and_send_needs_a_schema_row(tmp_path):
    """Issue 17: the hub knows send queues only by their seam (txq and the
    security log register themselves); a feature's own queue is sent the
    same way, by order. send() refuses an action whose answer has no schema row."""
    import pytest
    from rig import Rig
    r = Rig(str(tmp_path)).connect()
    assert sorted(map(id, r.st.queues)) == sorted(map(id, [r.st.transactions.queue, r.st.seclog]))

    class OneShot:
        name, last, corrupt = "probe", 0, False

        def __init__(self):
            self.sent = False

        def head_call(self, st, now):
            return None if self.sent else ("DataTransfer", {"vendorId": "probe"}, "ctx", 0)

        def retry_ms(self, now):
            return None

        def pending(self, st):
            return not self.sent

    q = OneShot()
    r.st.queues.append(q)
    r.st.on_result["DataTransfer"] = lambda st, p, ctx: setattr(q, "sent", ctx == "ctx")
    r.st.tick(r.clock.ms())
    r.cs.pump()
    assert {"vendorId": "probe"} in r.sent("DataTransfer") and q.sent
    with pytest.raises(ValueError):
        r.st.send("NoSuchAction", {})


@pytest.mark.parametrize("entry,operative", [([], True), ([False], False), (["x"], True), ([True, 5], True),
                                             ([False, "Operative", 1], True), ([True, "Inoperative"], False)])
def test_any_shape_of_availability_on_flash_boots(tmp_path, entry, operative):
    """Found by fuzzing (fuzz_corpus/flash): a CRC-good availability.json
    whose entry was a short list raised IndexError in the constructor: the
    station could not boot. Any shape now boots, a bad entry as Operative."""
    from evse.store.snapshot import Snapshot
    Snapshot(str(tmp_path / "availability.json")).save([True, entry])
    st = Station(board=SimBoard(), clock=VirtualClock(), storage=FileStorage(str(tmp_path)))
    assert st.connectors[1].operative is operative and st.connectors[1].scheduled is None
