"""Smart charging wired into the station: profiles drive the pilot, exactly
at their boundaries, and survive reboots (sans-IO, virtual clock)."""
import pytest

from rig import Rig


def profile(pid, purpose, periods, stack=0, kind="Relative", unit="A", **extra):
    sched = {"chargingRateUnit": unit,
             "chargingSchedulePeriod": [{"startPeriod": s, "limit": lim} for s, lim in periods]}
    sched.update(extra.pop("schedule", {}))
    p = {"chargingProfileId": pid, "stackLevel": stack, "chargingProfilePurpose": purpose,
         "chargingProfileKind": kind, "chargingSchedule": sched}
    p.update(extra)
    return p


@pytest.fixture
def rig(tmp_path):
    return Rig(str(tmp_path), tags={"AA": "Accepted"}).connect()


def setp(rig, cid, prof):
    return rig.call("SetChargingProfile", {"connectorId": cid, "csChargingProfiles": prof})[2]["status"]


def charge(rig):
    rig.cmd("card", "AA")
    rig.cmd("plug")


def offered(rig):
    return rig.st.connectors[1].offered_da


def test_tx_default_profile_steps_exactly_at_boundaries(rig):
    assert setp(rig, 0, profile(1, "TxDefaultProfile", [(0, 16), (60, 10), (120, 5)])) == "Accepted"
    charge(rig)
    assert offered(rig) == 160 and rig.board.ev_state(1)["drawing_da"] > 150
    rig.run(59999)
    assert offered(rig) == 160
    rig.run(1)
    assert offered(rig) == 100
    rig.run(60000)  # 5 A < 6 A: no PWM, SuspendedEVSE (IEC 61851)
    assert offered(rig) == 0 and rig.status() == "SuspendedEVSE"
    sv = rig.sent("StatusNotification")[-1]
    assert sv["status"] == "SuspendedEVSE"


def test_charge_point_max_caps_tx_default(rig):
    setp(rig, 0, profile(1, "TxDefaultProfile", [(0, 20)]))
    assert setp(rig, 0, profile(2, "ChargePointMaxProfile", [(0, 13)], kind="Absolute",
                                schedule={"startSchedule": "2025-01-01T00:00:00Z"})) == "Accepted"
    charge(rig)
    assert offered(rig) == 130
    assert rig.call("ClearChargingProfile", {"id": 2})[2] == {"status": "Accepted"}
    assert offered(rig) == 200
    assert rig.call("ClearChargingProfile", {"id": 2})[2] == {"status": "Unknown"}


def test_power_units_convert_with_230_v_single_phase(rig):
    setp(rig, 0, profile(1, "TxDefaultProfile", [(0, 2300)], unit="W", schedule={}, ))
    charge(rig)
    assert offered(rig) == 100  # 2300 W / 230 V / 1 phase = 10 A


def test_tx_profile_needs_transaction_and_ends_with_it(rig):
    assert setp(rig, 1, profile(5, "TxProfile", [(0, 8)])) == "Rejected"
    charge(rig)
    tid = rig.st.connectors[1].tx.tx_id
    assert setp(rig, 1, profile(5, "TxProfile", [(0, 8)], transactionId=tid + 1)) == "Rejected"
    assert setp(rig, 1, profile(5, "TxProfile", [(0, 8)], transactionId=tid)) == "Accepted"
    assert offered(rig) == 80
    rig.cmd("card", "AA")
    assert rig.st.smart.engine.count == 0


def test_remote_start_with_tx_profile(rig):
    rig.cmd("plug")
    ans = rig.call("RemoteStartTransaction", {"idTag": "AA", "connectorId": 1,
                                              "chargingProfile": profile(9, "TxProfile", [(0, 7)])})
    assert ans[2] == {"status": "Accepted"}
    assert rig.status() == "Charging" and offered(rig) == 70
    bad = profile(10, "TxDefaultProfile", [(0, 7)])
    rig.cmd("card", "AA")
    assert rig.call("RemoteStartTransaction", {"idTag": "AA", "chargingProfile": bad})[2] == {"status": "Rejected"}


def test_stack_levels_and_daily_recurrence(rig):
    # Base 32 A; a daily recurring higher-stack profile throttles 00:00-01:00 UTC.
    setp(rig, 0, profile(1, "TxDefaultProfile", [(0, 32)]))
    daily = profile(2, "TxDefaultProfile", [(0, 6)], stack=1, kind="Recurring", recurrencyKind="Daily",
                    schedule={"startSchedule": "2025-06-01T00:00:00Z", "duration": 3600})
    assert setp(rig, 0, daily) == "Accepted"
    charge(rig)  # virtual clock starts at 2026-01-01T00:00:00Z
    assert offered(rig) == 60
    rig.run(3600 * 1000)
    assert offered(rig) == 320
    rig.run(23 * 3600 * 1000)  # next day, same hour: throttled again
    assert offered(rig) == 60


def test_validation_rejections(rig):
    assert setp(rig, 1, profile(1, "ChargePointMaxProfile", [(0, 10)], kind="Absolute",
                                schedule={"startSchedule": "2025-01-01T00:00:00Z"})) == "Rejected"
    assert setp(rig, 0, profile(1, "TxDefaultProfile", [(0, 10)], stack=4)) == "Rejected"
    assert setp(rig, 0, profile(1, "TxDefaultProfile", [(5, 10)])) == "Rejected"
    assert setp(rig, 0, profile(1, "TxDefaultProfile", [(0, 10), (0, 8)])) == "Rejected"
    assert setp(rig, 2, profile(1, "TxDefaultProfile", [(0, 10)])) == "Rejected"
    for i in range(3):
        assert setp(rig, 0, profile(10 + i, "TxDefaultProfile", [(0, 10)], stack=i)) == "Accepted"
    assert setp(rig, 0, profile(20, "TxDefaultProfile", [(0, 10)], stack=3)) == "Rejected"  # 3 installed
    assert setp(rig, 0, profile(11, "TxDefaultProfile", [(0, 12)], stack=1)) == "Accepted"  # replaces


def test_composite_schedule_answers(rig):
    setp(rig, 0, profile(1, "ChargePointMaxProfile", [(0, 20), (600, 10)], kind="Absolute",
                         schedule={"startSchedule": "2026-01-01T00:00:00Z"}))
    a = rig.call("GetCompositeSchedule", {"connectorId": 0, "duration": 1200})[2]
    assert a["status"] == "Accepted" and a["connectorId"] == 0
    periods = [(p["startPeriod"], p["limit"]) for p in a["chargingSchedule"]["chargingSchedulePeriod"]]
    assert periods == [(0, 20.0), (600, 10.0)]
    w = rig.call("GetCompositeSchedule", {"connectorId": 1, "duration": 60, "chargingRateUnit": "W"})[2]
    assert w["chargingSchedule"]["chargingRateUnit"] == "W"
    assert w["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"] == 4600.0
    assert rig.call("GetCompositeSchedule", {"connectorId": 2, "duration": 60})[2] == {"status": "Rejected"}


def test_profiles_survive_reboot(rig):
    setp(rig, 0, profile(1, "TxDefaultProfile", [(0, 9)]))
    rig.disconnect()
    rig.reboot()
    rig.connect()
    assert rig.st.smart.engine.count == 1
    charge(rig)
    assert offered(rig) == 90
