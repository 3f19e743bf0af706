"""Remote Trigger (evse/trigger.py): TriggerMessage and ExtendedTriggerMessage
for every target, with and without connectorId; the triggered message
follows the .conf; Rejected / NotImplemented cases.

Sans-IO: the scripted CSMS and a virtual clock (host_tests/rig.py).
"""
import pytest

from rig import Rig

BOTH = ["TriggerMessage", "ExtendedTriggerMessage"]


@pytest.fixture
def rig(tmp_path):
    return Rig(str(tmp_path), tags={"AA": "Accepted"}).connect()


def trigger(rig, what, cid=None, action="TriggerMessage"):
    """Status of the .conf and the CALLs the station sent after it."""
    p = {"requestedMessage": what}
    if cid is not None:
        p["connectorId"] = cid
    mark = len(rig.transcript)
    ans = rig.call(action, p)
    assert ans[0] == 3, ans
    after = rig.transcript[mark:]
    # The .conf is the station's first frame after the request (5.17).
    first = next(e["msg"] for e in after if e["dir"] == "cs")
    assert first[0] == 3 and first[2] == ans[2]
    return ans[2]["status"], [(e["msg"][2], e["msg"][3]) for e in after if e["dir"] == "cs" and e["msg"][0] == 2]


def test_profile_is_reported(rig):
    assert "RemoteTrigger" in rig.st.config.get("SupportedFeatureProfiles").split(",")


@pytest.mark.parametrize("action", BOTH)
def test_heartbeat(rig, action):
    status, sent = trigger(rig, "Heartbeat", action=action)
    assert status == "Accepted" and sent == [("Heartbeat", {})]
    status, sent = trigger(rig, "Heartbeat", cid=1, action=action)  # connectorId not relevant: ignored
    assert status == "Accepted" and sent == [("Heartbeat", {})]


@pytest.mark.parametrize("action", BOTH)
def test_boot_notification_when_accepted(rig, action):
    status, sent = trigger(rig, "BootNotification", action=action)
    assert status == "Accepted"
    assert sent[0][0] == "BootNotification" and sent[0][1]["chargePointModel"] == "SIM-1P-32A"
    assert rig.st.registration == "Accepted"


@pytest.mark.parametrize("action", BOTH)
def test_status_notification(rig, action):
    rig.cmd("plug")
    status, sent = trigger(rig, "StatusNotification", cid=1, action=action)
    assert status == "Accepted"
    assert [(a, p["connectorId"], p["status"]) for a, p in sent] == [("StatusNotification", 1, "Preparing")]
    status, sent = trigger(rig, "StatusNotification", cid=0, action=action)
    assert [(p["connectorId"], p["status"]) for a, p in sent] == [(0, "Available")]
    status, sent = trigger(rig, "StatusNotification", action=action)  # the Charge Point and every connector
    assert sorted((p["connectorId"], p["status"]) for a, p in sent) == [(0, "Available"), (1, "Preparing")]


@pytest.mark.parametrize("action", BOTH)
def test_meter_values_with_context_trigger(rig, action):
    for cid in (1, None):
        status, sent = trigger(rig, "MeterValues", cid=cid, action=action)
        assert status == "Accepted" and [a for a, p in sent] == ["MeterValues"]
        p = sent[0][1]
        assert p["connectorId"] == 1 and "transactionId" not in p
        values = p["meterValue"][0]["sampledValue"]
        assert values and all(v["context"] == "Trigger" for v in values)
        assert {v.get("measurand", "Energy.Active.Import.Register") for v in values} == {
            "Energy.Active.Import.Register"}  # MeterValuesSampledData


def test_meter_values_in_a_transaction_carry_its_id(rig):
    rig.cmd("plug")
    rig.cmd("card", "AA")
    rig.run(5000)
    status, sent = trigger(rig, "MeterValues", cid=1)
    assert status == "Accepted" and sent[0][1]["transactionId"] == 1
    assert int(float(sent[0][1]["meterValue"][0]["sampledValue"][0]["value"])) > 0


def test_meter_values_of_connector_zero_rejected(rig):
    assert trigger(rig, "MeterValues", cid=0) == ("Rejected", [])


@pytest.mark.parametrize("what, status", [("DiagnosticsStatusNotification", "Idle"),
                                          ("FirmwareStatusNotification", "Idle")])
def test_diagnostics_and_firmware_idle(rig, what, status):
    st, sent = trigger(rig, what)
    assert st == "Accepted" and sent == [(what, {"status": status})]


def test_extended_firmware_status(rig):
    st, sent = trigger(rig, "FirmwareStatusNotification", action="ExtendedTriggerMessage")
    # Whitepaper 6.16: the extended trigger asks for SignedFirmwareStatusNotification (issue 19 item 12).
    assert st == "Accepted" and sent == [("SignedFirmwareStatusNotification", {"status": "Idle"})]
    st, sent = trigger(rig, "FirmwareStatusNotification")
    assert st == "Accepted" and sent == [("FirmwareStatusNotification", {"status": "Idle"})]


@pytest.mark.parametrize("action", BOTH)
@pytest.mark.parametrize("what", ["Heartbeat", "MeterValues", "StatusNotification", "BootNotification"])
def test_connector_that_does_not_exist_is_rejected(rig, action, what):
    assert trigger(rig, what, cid=2, action=action) == ("Rejected", [])  # NumberOfConnectors + 1 (TC_055)
    ans = rig.call(action, {"requestedMessage": what, "connectorId": -1})
    assert ans[0] == 4 and ans[2] == "PropertyConstraintViolation"  # connectorId >= 0


@pytest.mark.parametrize("what, owner, sent", [("SignChargePointCertificate", "certificates", "SignCertificate"),
                                               ("LogStatusNotification", "diagnostics", "LogStatusNotification")])
def test_security_targets_come_with_their_features(rig, tmp_path, what, owner, sent):
    status, msgs = trigger(rig, what, action="ExtendedTriggerMessage")
    assert status == "Accepted" and [m[0] for m in msgs] == [sent]
    # Without the feature that owns the target: NotImplemented.
    from evse.station import FEATURES
    r = Rig(str(tmp_path / "without"), features=tuple(f for f in FEATURES if f != owner)).connect()
    assert trigger(r, what, action="ExtendedTriggerMessage") == ("NotImplemented", [])


@pytest.mark.parametrize("action, what", [
    ("TriggerMessage", "StartTransaction"), ("TriggerMessage", "LogStatusNotification"),
    ("ExtendedTriggerMessage", "DiagnosticsStatusNotification")])
def test_names_outside_the_enum_are_a_callerror(rig, action, what):
    ans = rig.call(action, {"requestedMessage": what})
    assert ans[0] == 4 and ans[2] == "PropertyConstraintViolation"


def test_target_seam_for_other_features(rig):
    got = []
    rig.st.triggers["LogStatusNotification"] = lambda st, cid: got.append(cid)
    assert trigger(rig, "LogStatusNotification", cid=1, action="ExtendedTriggerMessage")[0] == "Accepted"
    assert got == [1]
    rig.st.triggers["FirmwareStatusNotification"] = lambda st, cid: st.send(
        "FirmwareStatusNotification", {"status": "Downloading"})
    assert trigger(rig, "FirmwareStatusNotification")[1] == [("FirmwareStatusNotification",
                                                              {"status": "Downloading"})]


def test_pending_boot_triggered_messages_go_out(tmp_path):
    # OCPP 1.6 4.2: while Pending the station "SHALL NOT send request
    # messages ... unless it has been instructed by the Central System to do
    # so with a TriggerMessage.req": triggers are Accepted and their message
    # goes out (this test used to expect Rejected); nothing unsolicited does.
    r = Rig(str(tmp_path))
    r.cs.boot_plan = ["Pending", "Pending", "Pending"]
    r.connect()
    assert r.st.registration == "Pending"
    assert trigger(r, "Heartbeat") == ("Accepted", [("Heartbeat", {})])
    status, sent = trigger(r, "StatusNotification", cid=1)
    assert status == "Accepted" and [(a, p["connectorId"]) for a, p in sent] == [("StatusNotification", 1)]
    status, sent = trigger(r, "BootNotification")
    assert status == "Accepted" and [a for a, p in sent] == ["BootNotification"]
    assert len(r.sent("BootNotification")) == 2  # sent now, not after the retry interval
    r.cmd("plug")  # an unsolicited status stays gated while Pending
    assert r.actions() == ["BootNotification", "Heartbeat", "StatusNotification", "BootNotification"]


def test_pending_lets_out_the_triggered_message_not_an_older_one_of_its_action(tmp_path):
    # An unsolicited MeterValues queued while Pending must not leave in the
    # place of the triggered one (context Trigger) queued after it.
    r = Rig(str(tmp_path))
    r.cs.boot_plan = ["Pending", "Pending", "Pending"]
    r.connect()
    r.st.send("MeterValues", {"connectorId": 1, "meterValue": [
        {"timestamp": "2026-01-01T00:00:00Z", "sampledValue": [{"value": "1", "context": "Sample.Clock"}]}]})
    status, sent = trigger(r, "MeterValues", cid=1)
    assert status == "Accepted" and len(sent) == 1
    assert sent[0][1]["meterValue"][0]["sampledValue"][0]["context"] == "Trigger"
    assert r.st.queued("MeterValues") is not None  # the unsolicited one waits for the acceptance


def test_heartbeat_not_duplicated_when_one_is_queued(rig):
    rig.disconnect()
    rig.st.registration = "Accepted"  # accepted earlier; the link is down now
    rig.st.handlers["TriggerMessage"](rig.st, {"requestedMessage": "Heartbeat"})
    rig.st.handlers["TriggerMessage"](rig.st, {"requestedMessage": "Heartbeat"})
    assert [i[0] for i in rig.st.outbox].count("Heartbeat") == 1
