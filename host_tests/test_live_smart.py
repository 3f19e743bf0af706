"""Smart charging against the real CSMS peer (`ocpp` package) over
WebSockets, one test per OCTT-style case: TxDefaultProfile, TxProfile via
RemoteStart, ChargePointMaxProfile, stacking, recurring, clearing and
composite schedules. MeterValues show the EV following the limit."""
import time
from datetime import datetime, timedelta, timezone

import pytest
from ocpp.v16 import call

from live import CsmsThread, StationThread, wait_for
from test_smartcharge import profile as prof


def iso(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def rig(tmp_path):
    c = CsmsThread(tags={"AA": "Accepted"}, heartbeat=60)
    s = StationThread(c.url, "SC1", str(tmp_path), seeds={
        "MeterValueSampleInterval": "1", "MeterValuesSampledData": "Current.Import,Energy.Active.Import.Register"})
    c.wait_call("StatusNotification", 2)
    yield c, s
    s.stop()
    c.stop()


def current(mv):
    return next(float(v["value"]) for v in mv["meterValue"][0]["sampledValue"] if v["measurand"] == "Current.Import")


def set_profile(c, cid, p):
    return c.call("SC1", call.SetChargingProfile(connector_id=cid, cs_charging_profiles=p)).status


def offered(s):
    return s.do(lambda: s.station.connectors[1].offered_da)


def start(c, s):
    s.command("plug")
    s.command("card", "AA")
    c.wait_call("StartTransaction")


def test_tx_default_profile_limits_and_meter_values_follow(rig):
    c, s = rig
    assert set_profile(c, 0, prof(1, "TxDefaultProfile", [(0, 10)])) == "Accepted"
    start(c, s)
    mv = c.wait_call("MeterValues", 2, timeout=5)
    assert 9.5 <= current(mv[-1]) <= 10.0  # the EV draws what the PWM offers


def test_tx_profile_via_remote_start(rig):
    c, s = rig
    s.command("plug")
    r = c.call("SC1", call.RemoteStartTransaction(id_tag="AA", connector_id=1,
                                                 charging_profile=prof(7, "TxProfile", [(0, 12)])))
    assert r.status == "Accepted"
    c.wait_call("StartTransaction")
    wait_for(lambda: offered(s) == 120, 5, "12 A offered")
    s.command("card", "AA")
    c.wait_call("StopTransaction")
    assert s.do(lambda: s.station.smart.engine.count) == 0  # the TxProfile ended with its transaction


def test_charge_point_max_and_stacking_and_clear(rig):
    c, s = rig
    start(c, s)
    assert offered(s) == 320
    set_profile(c, 0, prof(1, "TxDefaultProfile", [(0, 16)]))
    wait_for(lambda: offered(s) == 160, 5, "TxDefault 16 A")
    set_profile(c, 0, prof(2, "TxDefaultProfile", [(0, 8)], stack=2))
    wait_for(lambda: offered(s) == 80, 5, "higher stack 8 A")
    now = datetime.now(timezone.utc)
    set_profile(c, 0, prof(3, "ChargePointMaxProfile", [(0, 6.5)], kind="Absolute",
                           schedule={"startSchedule": iso(now - timedelta(hours=1))}))
    wait_for(lambda: offered(s) == 65, 5, "station max 6.5 A")
    assert c.call("SC1", call.ClearChargingProfile(charging_profile_purpose="ChargePointMaxProfile")).status == \
        "Accepted"
    wait_for(lambda: offered(s) == 80, 5, "back to 8 A")
    assert c.call("SC1", call.ClearChargingProfile(stack_level=2)).status == "Accepted"
    wait_for(lambda: offered(s) == 160, 5, "back to 16 A")
    assert c.call("SC1", call.ClearChargingProfile(id=99)).status == "Unknown"


def test_recurring_daily_boundary_and_suspend_below_6a(rig):
    c, s = rig
    start(c, s)
    # Yesterday's recurrence 2 s from now: 10 A, then 3 A (below 6 A: suspended).
    begin = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=1) + timedelta(seconds=2)
    p = prof(4, "TxDefaultProfile", [(0, 3)], stack=1, kind="Recurring", recurrencyKind="Daily",
             schedule={"startSchedule": iso(begin)})
    set_profile(c, 0, prof(5, "TxDefaultProfile", [(0, 10)]))
    assert set_profile(c, 0, p) == "Accepted"
    wait_for(lambda: offered(s) == 0, 6, "suspended at the recurrence boundary")
    sn = c.wait_call("StatusNotification", where=lambda x: x["status"] == "SuspendedEVSE")
    assert sn


def test_composite_schedule(rig):
    c, s = rig
    now = datetime.now(timezone.utc).replace(microsecond=0)
    set_profile(c, 0, prof(1, "ChargePointMaxProfile", [(0, 20), (300, 10)], kind="Absolute",
                           schedule={"startSchedule": iso(now)}))
    r = c.call("SC1", call.GetCompositeSchedule(connector_id=0, duration=600, charging_rate_unit="A"))
    # The ocpp package hands payloads over in snake_case.
    assert r.status == "Accepted" and r.charging_schedule["charging_rate_unit"] == "A"
    limits = [p["limit"] for p in r.charging_schedule["charging_schedule_period"]]
    assert limits == [20.0, 10.0]
    w = c.call("SC1", call.GetCompositeSchedule(connector_id=1, duration=60, charging_rate_unit="W"))
    assert w.charging_schedule["charging_schedule_period"][0]["limit"] == 4600.0
    time.sleep(0.1)
    assert c.call("SC1", call.GetCompositeSchedule(connector_id=3, duration=60)).status == "Rejected"
