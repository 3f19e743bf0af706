"""OCTT 1.6 cases of the Local Auth List, Reservation, Smart Charging and
Remote Trigger profiles against the real CSMS peer over WebSockets."""
from ocpp.v16 import call

from test_conformance_harness import TAGS, case, expiry
from live import wait_for



def offered(e):
    return e.st.do(lambda: e.st.station.connectors[1].offered_da)


def profile(pid, purpose, limit_a, level=0, tx=None):
    p = {"chargingProfileId": pid, "stackLevel": level, "chargingProfilePurpose": purpose,
         "chargingProfileKind": "Absolute" if purpose != "TxDefaultProfile" else "Relative",
         "chargingSchedule": {"chargingRateUnit": "A",
                              "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit_a}]}}
    if p["chargingProfileKind"] == "Absolute":
        p["chargingSchedule"]["startSchedule"] = expiry(-60)
    if tx is not None:
        p["transactionId"] = tx
    return p


# ---- Local Auth List Management ---------------------------------------------------
@case("TC_042_2_CS", "Get Local List Version (empty)", "Local Auth List")
def test_tc_042_2_get_local_list_version(make):
    e = make()
    assert e.call(call.GetLocalListVersion()).list_version == 0


@case("TC_043_CS", "Send Local Authorization List", "Local Auth List")
def test_tc_043_send_local_list(make):
    e = make()
    r = e.call(call.SendLocalList(list_version=3, update_type="Full",
                                  local_authorization_list=[{"idTag": "LL", "idTagInfo": {"status": "Accepted"}}]))
    assert r.status == "Accepted"
    assert e.call(call.GetLocalListVersion()).list_version == 3


@case("TC_043_2_CS", "Send Local Authorization List - VersionMismatch", "Local Auth List")
def test_tc_043_2_version_mismatch(make):
    e = make()
    e.call(call.SendLocalList(list_version=3, update_type="Full",
                              local_authorization_list=[{"idTag": "L1", "idTagInfo": {"status": "Accepted"}}]))
    r = e.call(call.SendLocalList(list_version=2, update_type="Differential",
                                  local_authorization_list=[{"idTag": "LL", "idTagInfo": {"status": "Accepted"}}]))
    assert r.status == "VersionMismatch"


@case("TC_008_1_CS", "Regular Start Charging Session - Id in Local Authorization List", "Local Auth List")
def test_tc_008_1_start_from_local_list(make):
    e = make(seeds={"LocalPreAuthorize": "true"}, tags=dict(TAGS, LL="Accepted"))
    e.call(call.SendLocalList(list_version=1, update_type="Full",
                              local_authorization_list=[{"idTag": "LL", "idTagInfo": {"status": "Accepted"}}]))
    e.card("LL")
    e.cmd("plug")
    e.wait_status("Charging")
    e.settle(0.2)
    assert e.calls("Authorize") == [] and e.statuses()[-1] == "Charging"


# ---- Reservation ----------------------------------------------------------------------
@case("TC_046_1_CS", "Reservation of a Connector - Local start transaction", "Reservation")
def test_tc_046_1_reserve_local_start(make):
    e = make()
    assert e.call(call.ReserveNow(connector_id=1, expiry_date=expiry(300), id_tag="AA",
                                  reservation_id=1)).status == "Accepted"
    e.wait_status("Reserved")
    e.card("AA")
    e.cmd("plug")
    e.wait_status("Charging")
    assert e.calls("StartTransaction")[0]["reservationId"] == 1


@case("TC_046_2_CS", "Reservation of a Connector - Remote start transaction", "Reservation")
def test_tc_046_2_reserve_remote_start(make):
    e = make()
    e.call(call.ReserveNow(connector_id=1, expiry_date=expiry(300), id_tag="AA", reservation_id=2))
    assert e.call(call.RemoteStartTransaction(id_tag="AA", connector_id=1)).status == "Accepted"
    e.cmd("plug")
    e.wait_status("Charging")
    assert e.calls("StartTransaction")[0]["reservationId"] == 2


@case("TC_047_CS", "Reservation of a Connector - Expire", "Reservation")
def test_tc_047_reservation_expires(make):
    e = make()
    assert e.call(call.ReserveNow(connector_id=1, expiry_date=expiry(2), id_tag="AA",
                                  reservation_id=3)).status == "Accepted"
    e.wait_status("Reserved")
    e.wait_status("Available", timeout=5)


@case("TC_048_1_CS", "Reservation of a Connector - Faulted", "Reservation")
def test_tc_048_1_reserve_faulted(make):
    e = make()
    e.cmd("fault", "GroundFailure")
    e.wait_status("Faulted")
    assert e.call(call.ReserveNow(connector_id=1, expiry_date=expiry(300), id_tag="AA",
                                  reservation_id=4)).status == "Faulted"


@case("TC_048_2_CS", "Reservation of a Connector - Occupied", "Reservation")
def test_tc_048_2_reserve_occupied(make):
    e = make()
    e.cmd("plug")
    e.wait_status("Preparing")
    assert e.call(call.ReserveNow(connector_id=1, expiry_date=expiry(300), id_tag="AA",
                                  reservation_id=5)).status == "Occupied"


@case("TC_048_3_CS", "Reservation of a Connector - Unavailable", "Reservation")
def test_tc_048_3_reserve_unavailable(make):
    e = make()
    e.call(call.ChangeAvailability(connector_id=1, type="Inoperative"))
    e.wait_status("Unavailable")
    assert e.call(call.ReserveNow(connector_id=1, expiry_date=expiry(300), id_tag="AA",
                                  reservation_id=6)).status == "Unavailable"


@case("TC_049_CS", "Reservation of a Charge Point - Transaction", "Reservation")
def test_tc_049_reserve_charge_point(make):
    e = make()
    assert e.call(call.ReserveNow(connector_id=0, expiry_date=expiry(300), id_tag="AA",
                                  reservation_id=7)).status == "Accepted"
    e.wait_status("Reserved")
    e.card("AA")
    e.cmd("plug")
    e.wait_status("Charging")
    assert e.calls("StartTransaction")[0]["reservationId"] == 7


@case("TC_051_CS", "Cancel Reservation", "Reservation")
def test_tc_051_cancel(make):
    e = make()
    e.call(call.ReserveNow(connector_id=1, expiry_date=expiry(300), id_tag="AA", reservation_id=9))
    e.wait_status("Reserved")
    assert e.call(call.CancelReservation(reservation_id=9)).status == "Accepted"
    e.wait_status("Available")


@case("TC_052_CS", "Cancel Reservation - Rejected", "Reservation")
def test_tc_052_cancel_rejected(make):
    e = make()
    assert e.call(call.CancelReservation(reservation_id=99)).status == "Rejected"


@case("TC_053_1_CS", "Use a reserved Connector with parentIdTag - Local", "Reservation")
def test_tc_053_1_reserved_parent_local(make):
    e = make()
    e.csms.csms.id_tag_info = lambda tag: {"status": "Accepted", "parentIdTag": "FAM"}
    e.call(call.ReserveNow(connector_id=1, expiry_date=expiry(300), id_tag="MUM", reservation_id=10,
                           parent_id_tag="FAM"))
    e.card("KID")
    e.cmd("plug")
    e.wait_status("Charging")
    assert e.calls("StartTransaction")[0]["reservationId"] == 10


# ---- Smart Charging ---------------------------------------------------------------------
@case("TC_056_CS", "Central Smart Charging - TxDefaultProfile", "Smart Charging")
def test_tc_056_tx_default_profile(make):
    e = make()
    assert e.call(call.SetChargingProfile(connector_id=1, cs_charging_profiles=profile(
        1, "TxDefaultProfile", 10))).status == "Accepted"
    e.card("AA")
    e.cmd("plug")
    e.wait_status("Charging")
    wait_for(lambda: offered(e) == 100, 3, "10 A offered")


@case("TC_057_CS", "Central Smart Charging - TxProfile", "Smart Charging")
def test_tc_057_tx_profile(make):
    e = make()
    e.card("AA")
    e.cmd("plug")
    e.wait_status("Charging")
    tid = e.st.do(lambda: e.st.station.connectors[1].tx.tx_id)
    assert e.call(call.SetChargingProfile(connector_id=1, cs_charging_profiles=profile(
        2, "TxProfile", 8, tx=tid))).status == "Accepted"
    wait_for(lambda: offered(e) == 80, 3, "8 A offered")


@case("TC_058_1_CS", "Central Smart Charging - No ongoing transaction", "Smart Charging")
def test_tc_058_1_tx_profile_without_transaction(make):
    e = make()
    assert e.call(call.SetChargingProfile(connector_id=1, cs_charging_profiles=profile(
        3, "TxProfile", 8, tx=1))).status == "Rejected"


@case("TC_066_CS", "Get Composite Schedule", "Smart Charging")
def test_tc_066_composite_schedule(make):
    e = make()
    e.call(call.SetChargingProfile(connector_id=1, cs_charging_profiles=profile(4, "TxDefaultProfile", 12)))
    r = e.call(call.GetCompositeSchedule(connector_id=1, duration=300, charging_rate_unit="A"))
    assert r.status == "Accepted" and r.charging_schedule["charging_schedule_period"][0]["limit"] == 12


@case("TC_067_CS", "Clear Charging Profile", "Smart Charging")
def test_tc_067_clear_profile(make):
    e = make()
    e.call(call.SetChargingProfile(connector_id=1, cs_charging_profiles=profile(5, "TxDefaultProfile", 12)))
    assert e.call(call.ClearChargingProfile(id=5)).status == "Accepted"
    assert e.call(call.ClearChargingProfile(id=5)).status == "Unknown"


# ---- Remote Trigger ---------------------------------------------------------------------
@case("TC_054_CS", "Trigger Message", "Remote Trigger")
def test_tc_054_trigger(make):
    e = make()
    for what, action in (("Heartbeat", "Heartbeat"), ("StatusNotification", "StatusNotification"),
                         ("BootNotification", "BootNotification"), ("MeterValues", "MeterValues")):
        n = len(e.calls(action))
        assert e.call(call.TriggerMessage(requested_message=what, connector_id=1)).status == "Accepted"
        e.wait_call(action, n + 1)


@case("TC_055_CS", "Trigger Message - Rejected", "Remote Trigger")
def test_tc_055_trigger_rejected(make):
    e = make()
    assert e.call(call.TriggerMessage(requested_message="MeterValues", connector_id=2)).status == "Rejected"
