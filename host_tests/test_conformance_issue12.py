"""Issue 12 deviations, each reproduced over the wire against the real CSMS
peer (tools/csms.py, `ocpp` package) and fixed at its mechanism. The case ids
are the deviation numbers of issue 12 (not OCTT ids)."""
import asyncio
import time

import pytest
from ocpp.v16 import call

from boards.sim.board import SimBoard
from test_conformance_harness import case, expiry, results_of
from live import wait_for

OFFLINE = {"AllowOfflineTxForUnknownId": "true"}



def family(tag):
    if tag in ("AA", "KID", "MUM"):
        return {"status": "Accepted", "parentIdTag": "FAM"}
    if tag == "BLK":
        return {"status": "Blocked", "parentIdTag": "FAM"}
    return {"status": "Accepted" if tag == "BB" else "Invalid"}


@case("ISSUE12_D01", "Stale authorization never starts on an Inoperative or Faulted connector", "Core")
def test_d01_authorization_dropped_when_unavailable_or_faulted(make):
    e = make()
    e.card("AA")
    e.wait_status("Preparing")
    assert e.call(call.ChangeAvailability(connector_id=1, type="Inoperative")).status == "Accepted"
    e.wait_status("Unavailable")
    e.cmd("plug")
    e.settle()
    assert e.calls("StartTransaction") == [] and e.status() == "Unavailable"
    e.call(call.ChangeAvailability(connector_id=1, type="Operative"))
    e.wait_status("Preparing")  # plugged, but the old authorization is gone
    e.settle()
    assert e.calls("StartTransaction") == [] and e.tx() is None
    e.cmd("unplug")
    e.card("AA")
    e.wait_status("Preparing")
    e.cmd("fault", "GroundFailure")
    e.wait_status("Faulted")
    e.cmd("clear")
    e.cmd("plug")
    e.settle()
    assert e.calls("StartTransaction") == [] and e.tx() is None


@case("ISSUE12_D02", "TriggerMessage accepted while the boot is Pending; its message goes out", "Remote Trigger")
def test_d02_trigger_while_pending(make):
    e = make(boot=["Pending"] * 20, wait_boot=False)
    e.wait_call("BootNotification")
    wait_for(lambda: e.st.do(lambda: e.st.station.registration) == "Pending", 5, "Pending")
    assert e.call(call.TriggerMessage(requested_message="StatusNotification", connector_id=1)).status == "Accepted"
    sn = e.wait_call("StatusNotification")
    assert sn[0]["connectorId"] == 1
    assert e.call(call.TriggerMessage(requested_message="Heartbeat")).status == "Accepted"
    e.wait_call("Heartbeat")
    e.cmd("plug")  # an unsolicited status stays gated while Pending
    e.settle()
    assert len(e.calls("StatusNotification")) == 1


@case("ISSUE12_D03", "After a reconnect only the present status; a status lost in flight is sent again", "Core")
def test_d03_status_resync(make):
    e = make()
    e.offline()
    for w in ("plug", "unplug", "plug"):
        e.cmd(w)
    n = len(e.statuses())
    e.online()
    e.wait_status("Preparing")
    e.settle()
    assert e.statuses()[n:] == ["Preparing"]  # not Preparing, Available, Preparing
    # A StatusNotification whose answer never comes (the link drops) is sent again.
    ids = results_of  # the station's StatusNotification ids at the moment of the answer
    e.rewrite(lambda m: None if m[0] == 3 and m[1] in ids(e, "StatusNotification") else m)
    e.cmd("unplug")
    e.wait_status("Available")
    e.offline()
    e.online()
    wait_for(lambda: e.statuses().count("Available") >= 3, 5, "Available sent again")


@case("ISSUE12_D04", "A Blocked card of the same group does not stop the transaction", "Core")
def test_d04_blocked_group_member_cannot_stop(make):
    e = make()
    e.csms.csms.id_tag_info = family
    e.card("BLK")  # Authorize: Blocked (parent FAM), now in the cache
    e.wait_call("Authorize", where=lambda p: p["idTag"] == "BLK")
    e.settle(0.2)
    e.card("AA")
    e.cmd("plug")
    e.wait_status("Charging")
    e.card("BLK")
    e.settle(0.5)
    assert e.calls("StopTransaction") == [] and e.tx() is not None
    e.card("MUM")  # Accepted, same parent: may stop it
    e.wait_call("StopTransaction")


@case("ISSUE12_D05", "MaxEnergyOnInvalidId enforced with MeterValueSampleInterval 0", "Core")
def test_d05_max_energy_without_sampling(make):
    e = make(seeds={"MeterValueSampleInterval": "0", "MaxEnergyOnInvalidId": "5",
                    "StopTransactionOnInvalidId": "false"})
    e.rewrite(lambda m: [3, m[1], dict(m[2], idTagInfo={"status": "Invalid"})]
              if m[0] == 3 and "transactionId" in m[2] else m)
    e.card("AA")
    e.cmd("plug")
    start = e.wait_call("StartTransaction")[0]
    e.wait_status("SuspendedEVSE", timeout=8)  # 5 Wh at 7.4 kW: about 2.5 s
    used = e.st.do(lambda: e.st.board.meter(1)[0]) - start["meterStart"]
    assert 5 <= used <= 7


@case("ISSUE12_D06", "While Rejected, CSMS calls get no answer at all", "Core")
def test_d06_rejected_station_does_not_answer(make):
    e = make(boot=["Rejected"] * 20, wait_boot=False)
    e.wait_call("BootNotification")
    with pytest.raises((asyncio.TimeoutError, TimeoutError)):
        e.call(call.GetConfiguration(), timeout=1)
    assert not [m for m in e.frames("in") if m[0] in (3, 4)]


@case("ISSUE12_D07", "An empty MeterValuesSampledData is refused", "Core")
def test_d07_empty_sampled_data_refused(make):
    e = make()
    assert e.call(call.ChangeConfiguration(key="MeterValuesSampledData", value="")).status == "Rejected"
    r = e.call(call.GetConfiguration(key=["MeterValuesSampledData"]))
    assert r.configuration_key[0]["value"] == "Energy.Active.Import.Register"


@case("ISSUE12_D08", "RemoteStart by a group member of the reservation holder: parent resolved by Authorize",
      "Reservation")
def test_d08_remote_start_resolves_parent(make):
    e = make()
    e.csms.csms.id_tag_info = family
    assert e.call(call.ReserveNow(connector_id=1, expiry_date=expiry(300), id_tag="MUM",
                                  reservation_id=8, parent_id_tag="FAM")).status == "Accepted"
    assert e.call(call.RemoteStartTransaction(id_tag="KID", connector_id=1)).status == "Accepted"
    e.wait_call("Authorize", where=lambda p: p["idTag"] == "KID")
    e.cmd("plug")
    start = e.wait_call("StartTransaction")[0]
    assert start["idTag"] == "KID" and start["reservationId"] == 8


@case("ISSUE12_D09", "Finishing -> Preparing -> Charging for a new card (4.9 F2)", "Core")
def test_d09_finishing_goes_via_preparing(make):
    e = make()
    e.card("AA")
    e.cmd("plug")
    e.wait_status("Charging")
    e.card("AA")
    e.wait_status("Finishing")
    e.card("BB")
    e.wait_status("Charging")
    s = e.statuses()
    assert s[s.index("Finishing"):] == ["Finishing", "Preparing", "Charging"]


@case("ISSUE12_D10", "Energy never reported lower than before, across a power cut", "Core")
def test_d10_energy_never_backwards(make):
    e = make(seeds={"MeterValueSampleInterval": "1"})
    e.card("AA")
    e.cmd("plug")
    e.wait_call("MeterValues", 2, timeout=6)
    high = max(int(v["value"]) for p in e.calls("MeterValues") for mv in p["meterValue"]
               for v in mv["sampledValue"] if v.get("measurand") == "Energy.Active.Import.Register")
    # The cut: the new core's meter restarted from an older save (a volatile
    # counter, or a register saved before the last report).
    e.restart(board=SimBoard(serial="CP1", meter_wh=max(0, high - 3)))
    stop = e.wait_call("StopTransaction")[0]
    assert stop["reason"] == "PowerLoss" and stop["meterStop"] >= high
    e.card("AA")  # the EV is still plugged on the old board: plug on the new one
    e.cmd("plug")
    start = e.wait_call("StartTransaction", 2)[1]
    assert start["meterStart"] >= stop["meterStop"]


@case("ISSUE12_D11", "A Scheduled Inoperative survives a power cut during the transaction", "Core")
def test_d11_scheduled_availability_persisted(make):
    e = make()
    e.card("AA")
    e.cmd("plug")
    e.wait_status("Charging")
    assert e.call(call.ChangeAvailability(connector_id=1, type="Inoperative")).status == "Scheduled"
    e.restart()
    e.wait_call("StopTransaction")
    e.wait_status("Unavailable")


@case("ISSUE12_D12", "StartTransaction answered without transactionId: no energy at once, discarded after "
      "TransactionMessageAttempts (rule 12 as issue 19 item 24 has it)", "Core")
def test_d12_unregistered_transaction(make):
    e = make(seeds={"TransactionMessageAttempts": "2", "TransactionMessageRetryInterval": "1"})
    e.rewrite(lambda m: [3, m[1], {"idTagInfo": {"status": "Invalid"}}]
              if m[0] == 3 and "transactionId" in m[2] else m)
    e.card("AA")
    e.cmd("plug")
    # The answer without an id still says Invalid: acted on at once
    # (StopTransactionOnInvalidId true: stopped, DeAuthorized).
    e.wait_status("Finishing", timeout=6)
    assert e.st.do(lambda: e.st.station.board.ev_state(1)["relay"]) is False
    # Two attempts, then the Start is discarded and its Stop with it (logged).
    wait_for(lambda: e.st.do(lambda: len(e.st.station.transactions.queue)) == 0, 8, "transaction queue empty")
    e.settle(1.5)
    assert len(e.calls("StartTransaction")) == 2 and e.calls("StopTransaction") == []


@case("ISSUE12_D13", "Plug-in on a Reserved connector without the reservation's identity stays Reserved",
      "Reservation")
def test_d13_plug_on_reserved_stays_reserved(make):
    e = make()
    assert e.call(call.ReserveNow(connector_id=1, expiry_date=expiry(300), id_tag="AA",
                                  reservation_id=13)).status == "Accepted"
    e.wait_status("Reserved")
    e.cmd("plug")
    e.settle()
    assert e.statuses()[-1] == "Reserved"
    e.card("AA")
    e.wait_status("Charging")
    s = e.statuses()
    assert s[s.index("Reserved"):] == ["Reserved", "Preparing", "Charging"]


@case("ISSUE12_D14", "A second card during an Authorize in flight is asked about, not refused", "Core")
def test_d14_second_card_waits_for_its_authorize(make):
    e = make()
    assert e.call(call.ReserveNow(connector_id=1, expiry_date=expiry(300), id_tag="BB",
                                  reservation_id=14)).status == "Accepted"
    tap = e.csms.csms.stations["CP1"]._connection
    send = tap.send

    async def slow(text):
        if '"idTagInfo"' in text and '"transactionId"' not in text:
            await asyncio.sleep(1.0)  # the CSMS takes its time to answer Authorize
        await send(text)
    tap.send = slow
    e.card("AA")
    time.sleep(0.3)
    e.card("BB")  # the reservation holder
    e.wait_call("Authorize", 2, timeout=5)
    e.cmd("plug")
    start = e.wait_call("StartTransaction", timeout=5)[0]
    assert start["idTag"] == "BB" and start["reservationId"] == 14


@case("ISSUE12_D15", "Authorize answered with a CALLERROR while online: not authorized", "Core")
def test_d15_failed_authorize_online_is_not_authorized(make):
    e = make(seeds=OFFLINE)
    e.rewrite(lambda m: [4, m[1], "InternalError", "", {}] if m[0] == 3 and "idTagInfo" in m[2]
              and "transactionId" not in m[2] else m)
    e.card("ZZ")
    e.wait_call("Authorize")
    e.cmd("plug")
    e.settle(0.5)
    assert e.calls("StartTransaction") == [] and e.tx() is None


@case("ISSUE12_SIM1", "Simulator: after a reboot with the EV plugged in, the new core reports Preparing", "Core")
def test_sim1_reboot_keeps_board_state(tmp_path):
    from live import CsmsThread, SimProcess
    c = CsmsThread(tags={"AA": "Accepted"}, heartbeat=300)
    s = SimProcess(c.url, "CPS", str(tmp_path / "s"))
    try:
        c.wait_call("StatusNotification", 2, cp_id="CPS")
        s.send("plug")
        c.wait_call("StatusNotification", where=lambda p: p["status"] == "Preparing", cp_id="CPS")
        s.send("reboot")
        s.wait_event(lambda ev: ev.get("event") == "reboot", 8)
        c.wait_call("BootNotification", 2, cp_id="CPS")
        def one():
            return [p["status"] for p in c.calls("StatusNotification", "CPS") if p["connectorId"] == 1]
        wait_for(lambda: len(one()) >= 3, 5, "the new core's status of connector 1")
        time.sleep(0.3)
        assert one()[2:] == ["Preparing"]  # [Available (boot), Preparing (plug), then the new core]
    finally:
        s.quit()
        c.stop()


@case("ISSUE12_SIM2", "Simulator: --set of a feature key works; unknown key or refused value exits 2", "Core")
def test_sim2_set_feature_keys(tmp_path):
    import subprocess
    import sys
    from live import ROOT, CsmsThread, SimProcess
    c = CsmsThread(heartbeat=300)
    s = SimProcess(c.url, "CPT", str(tmp_path / "t"), "--set", "MinimumStatusDuration=0",
                   "--set", "MaxEnergyOnInvalidId=0")
    try:
        c.wait_call("StatusNotification", 2, cp_id="CPT")
    finally:
        s.quit()
        c.stop()
    for kv, word in (("Nope=1", "Nope"), ("MeterValuesSampledData=Foo", "MeterValuesSampledData")):
        r = subprocess.run([sys.executable, ROOT + "/tools/sim.py", "--url", "ws://127.0.0.1:9/x",
                            "--data", str(tmp_path / "u"), "--quiet", "--set", kv],
                           capture_output=True, text=True, timeout=20)
        assert r.returncode == 2 and word in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
