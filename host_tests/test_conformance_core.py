"""OCTT 1.6 Core cases (Charge Point as the system under test) against the
real CSMS peer over WebSockets. Ids and titles: docs/CONFORMANCE.md."""
from ocpp.v16 import call

from test_conformance_harness import answered, case
from live import wait_for



def session(e, tag="AA"):
    e.card(tag)
    e.cmd("plug")
    e.wait_status("Charging")
    return e.wait_call("StartTransaction")[-1]


@case("TC_001_CS", "Cold Boot Charge Point", "Core")
def test_tc_001_cold_boot(make):
    e = make()
    boot = e.calls("BootNotification")[0]
    assert boot["chargePointVendor"] and boot["chargePointModel"]
    assert [p["connectorId"] for p in e.calls("StatusNotification")][:2] == [0, 1]


@case("TC_002_CS", "Cold Boot Charge Point - Pending", "Core")
def test_tc_002_cold_boot_pending(make):
    e = make(boot=["Pending"], wait_boot=False)
    e.wait_status("Available", timeout=6)
    acts = [m[2] for m in e.frames("in") if m[0] == 2]
    assert acts[:2] == ["BootNotification", "BootNotification"]


@case("TC_003_CS", "Regular Charging Session - Plugin First", "Core")
def test_tc_003_plugin_first(make):
    e = make()
    e.cmd("plug")
    e.wait_status("Preparing")
    e.card("AA")
    assert e.wait_call("Authorize")[0] == {"idTag": "AA"}
    e.wait_status("Charging")
    assert e.calls("StartTransaction")[0]["idTag"] == "AA"


@case("TC_004_1_CS", "Regular Charging Session - Identification First", "Core")
def test_tc_004_1_identification_first(make):
    e = make()
    e.card("AA")
    e.wait_status("Preparing")
    e.cmd("plug")
    e.wait_status("Charging")


@case("TC_004_2_CS", "Regular Charging Session - Identification First - ConnectionTimeOut", "Core")
def test_tc_004_2_connection_timeout(make):
    e = make(seeds={"ConnectionTimeOut": "1"})
    e.card("AA")
    e.wait_status("Preparing")
    e.wait_status("Available", timeout=4)
    assert e.calls("StartTransaction") == []


@case("TC_005_2_CS", "EV Side Disconnected - StopTransactionOnEVSideDisconnect=true - UnlockConnector=false",
      "Core")
def test_tc_005_2_ev_side_disconnect(make):
    e = make()
    session(e)
    e.cmd("unplug")
    stop = e.wait_call("StopTransaction")[0]
    assert stop["reason"] == "EVDisconnected"
    e.wait_status("Available")


@case("TC_005_3_CS", "EV Side Disconnected - StopTransactionOnEVSideDisconnect=false", "Core")
def test_tc_005_3_ev_side_disconnect_keeps_transaction(make):
    e = make(seeds={"StopTransactionOnEVSideDisconnect": "false"})
    session(e)
    e.cmd("unplug")
    e.wait_status("SuspendedEV")
    e.cmd("plug")
    e.wait_status("Charging")
    assert e.calls("StopTransaction") == []


@case("TC_007_1_CS", "Regular Start Charging Session - Cached Id", "Core")
def test_tc_007_1_cached_id(make):
    e = make(seeds={"LocalPreAuthorize": "true"})
    session(e)
    e.card("AA")
    e.wait_call("StopTransaction")
    e.cmd("unplug")
    e.wait_status("Available")
    n = len(e.calls("Authorize"))
    session(e)
    assert len(e.calls("Authorize")) == n  # started from the cache


@case("TC_010_CS", "Remote Start Charging Session - Cable Plugged in First", "Core")
def test_tc_010_remote_start_plugged_first(make):
    e = make()
    e.cmd("plug")
    e.wait_status("Preparing")
    assert e.call(call.RemoteStartTransaction(id_tag="AA", connector_id=1)).status == "Accepted"
    e.wait_status("Charging")


@case("TC_011_1_CS", "Remote Start Charging Session - Remote Start First", "Core")
def test_tc_011_1_remote_start_first(make):
    e = make()
    assert e.call(call.RemoteStartTransaction(id_tag="AA", connector_id=1)).status == "Accepted"
    e.wait_status("Preparing")
    e.cmd("plug")
    e.wait_status("Charging")


@case("TC_011_2_CS", "Remote Start Charging Session - Time Out", "Core")
def test_tc_011_2_remote_start_timeout(make):
    e = make(seeds={"ConnectionTimeOut": "1"})
    e.call(call.RemoteStartTransaction(id_tag="AA", connector_id=1))
    e.wait_status("Preparing")
    e.wait_status("Available", timeout=4)


@case("TC_012_CS", "Remote Stop Charging Session", "Core")
def test_tc_012_remote_stop(make):
    e = make()
    session(e)
    tid = e.st.do(lambda: e.st.station.connectors[1].tx.tx_id)
    assert e.call(call.RemoteStopTransaction(transaction_id=tid)).status == "Accepted"
    assert e.wait_call("StopTransaction")[0]["reason"] == "Remote"
    e.wait_status("Finishing")


@case("TC_014_CS", "Soft Reset Without Transaction", "Core")
def test_tc_014_soft_reset(make):
    e = make()
    assert e.call(call.Reset(type="Soft")).status == "Accepted"
    e.wait_call("BootNotification", 2, timeout=8)


@case("TC_016_CS", "Soft Reset With Transaction", "Core")
def test_tc_016_soft_reset_with_transaction(make):
    e = make()
    session(e)
    assert e.call(call.Reset(type="Soft")).status == "Accepted"
    assert e.wait_call("StopTransaction")[0]["reason"] == "SoftReset"
    e.wait_call("BootNotification", 2, timeout=8)


@case("TC_017_2_CS", "Unlock connector - no charging session (Fixed cable)", "Core")
def test_tc_017_2_unlock_fixed_cable(make):
    e = make()
    assert e.call(call.UnlockConnector(connector_id=1)).status == "NotSupported"


@case("TC_019_CS", "Retrieve configuration", "Core")
def test_tc_019_get_configuration(make):
    e = make()
    r = e.call(call.GetConfiguration())
    keys = {k["key"] for k in r.configuration_key}
    assert {"HeartbeatInterval", "MeterValueSampleInterval", "NumberOfConnectors"} <= keys


@case("TC_021_CS", "Change/set Configuration", "Core")
def test_tc_021_change_configuration(make):
    e = make()
    assert e.call(call.ChangeConfiguration(key="MeterValueSampleInterval", value="30")).status == "Accepted"
    r = e.call(call.GetConfiguration(key=["MeterValueSampleInterval"]))
    assert r.configuration_key[0]["value"] == "30"


@case("TC_026_CS", "Remote Start Charging Session - Rejected", "Core")
def test_tc_026_remote_start_rejected(make):
    e = make()
    session(e)
    assert e.call(call.RemoteStartTransaction(id_tag="BB", connector_id=1)).status == "Rejected"


@case("TC_027_CS", "Remote start transaction - connector id shall not be 0", "Core")
def test_tc_027_remote_start_connector_zero(make):
    e = make()
    assert e.call(call.RemoteStartTransaction(id_tag="AA", connector_id=0)).status == "Rejected"


@case("TC_028_CS", "Remote Stop Transaction - Rejected", "Core")
def test_tc_028_remote_stop_rejected(make):
    e = make()
    assert e.call(call.RemoteStopTransaction(transaction_id=4242)).status == "Rejected"


@case("TC_031_CS", "Unlock Connector - Unknown Connector", "Core")
def test_tc_031_unlock_unknown_connector(make):
    e = make()
    assert e.call(call.UnlockConnector(connector_id=2)).status in ("NotSupported", "UnlockFailed")


@case("TC_036_CS", "Connection Loss During Transaction", "Core")
def test_tc_036_connection_loss(make):
    e = make(seeds={"MeterValueSampleInterval": "1"})
    session(e)
    e.offline()
    e.card("AA")  # stopped offline (the cache knows AA)
    e.settle(0.2)
    e.online()
    stop = e.wait_call("StopTransaction")[0]
    assert stop["reason"] == "Local"


@case("TC_037_1_CS", "Offline Start Transaction - Valid IdTag", "Core")
def test_tc_037_1_offline_start(make):
    e = make()
    session(e)
    e.card("AA")
    e.wait_call("StopTransaction")
    e.cmd("unplug")
    e.offline()
    e.card("AA")  # valid in the cache, LocalAuthorizeOffline
    e.cmd("plug")
    wait_for(lambda: e.tx() is not None, 3, "offline start")
    e.online()
    assert e.wait_call("StartTransaction", 2)[1]["idTag"] == "AA"


@case("TC_037_3_CS", "Offline Start Transaction - Invalid IdTag - StopTransactionOnInvalidId=true", "Core")
def test_tc_037_3_offline_invalid_tag(make):
    e = make(seeds={"AllowOfflineTxForUnknownId": "true"})
    e.offline()
    e.card("ZZ")
    e.cmd("plug")
    wait_for(lambda: e.tx() is not None, 3, "offline start")
    e.online()
    e.wait_call("StartTransaction")
    stop = e.wait_call("StopTransaction")[0]
    assert stop["reason"] == "DeAuthorized"


@case("TC_038_CS", "Offline Stop Transaction", "Core")
def test_tc_038_offline_stop(make):
    e = make()
    session(e)
    e.offline()
    e.cmd("unplug")
    wait_for(lambda: e.tx() is None, 3, "stopped offline")
    e.online()
    assert e.wait_call("StopTransaction")[0]["reason"] == "EVDisconnected"


@case("TC_040_1_CS", "Configuration key - NotSupported", "Core")
def test_tc_040_1_unknown_key(make):
    e = make()
    assert e.call(call.ChangeConfiguration(key="NoSuchKey", value="1")).status == "NotSupported"


@case("TC_040_2_CS", "Configuration key - Invalid value", "Core")
def test_tc_040_2_invalid_value(make):
    e = make()
    assert e.call(call.ChangeConfiguration(key="MeterValueSampleInterval", value="-1")).status == "Rejected"


@case("TC_041_CS", "Fault Behavior", "Core")
def test_tc_041_fault(make):
    e = make()
    e.cmd("fault", "GroundFailure")
    e.wait_status("Faulted")
    sn = e.calls("StatusNotification")[-1]
    assert sn["errorCode"] == "GroundFailure"
    e.cmd("clear")
    e.wait_status("Available")


@case("TC_068_CS", "Stop transaction - IdTag in StopTransaction matches IdTag in StartTransaction", "Core")
def test_tc_068_stop_same_tag(make):
    e = make()
    session(e)
    e.card("AA")
    stop = e.wait_call("StopTransaction")[0]
    assert stop["idTag"] == "AA" and stop["reason"] == "Local"


@case("TC_069_CS", "Stop transaction - ParentIdTag in StopTransaction matches ParentIdTag in StartTransaction",
      "Core")
def test_tc_069_stop_by_parent(make):
    e = make()
    e.csms.csms.id_tag_info = lambda tag: {"status": "Accepted", "parentIdTag": "FAM"}
    session(e, "AA")
    e.card("BB")
    stop = e.wait_call("StopTransaction")[0]
    assert stop["idTag"] == "BB"


@case("TC_062_CS", "Data Transfer to a Charge Point", "Core")
def test_tc_062_data_transfer(make):
    e = make()
    assert e.call(call.DataTransfer(vendor_id="nobody")).status == "UnknownVendorId"
    assert answered(e, "DataTransfer") == [{"status": "UnknownVendorId"}]
