"""Charging sessions in the sans-IO core (virtual clock, scripted CSMS).

Each flow of the Core profile: card-first, plug-first, local and remote
start/stop, authorization outcomes, EV-side disconnect, offline queueing,
power loss, availability, reset, meter values.
"""
import os

import pytest

from rig import Rig


@pytest.fixture
def rig(tmp_path):
    return Rig(str(tmp_path), tags={"AA": "Accepted", "BB": "Accepted", "BAD": "Blocked"}).connect()


def session(rig, tag="AA"):
    rig.cmd("card", tag)
    rig.cmd("plug")


def test_card_first_session(rig):
    rig.cmd("card", "AA")
    assert rig.status() == "Preparing"
    rig.cmd("plug")
    assert rig.status() == "Charging"
    start = rig.sent("StartTransaction")[0]
    assert start["connectorId"] == 1 and start["idTag"] == "AA" and start["meterStart"] == 0
    rig.run(3600 * 1000)
    rig.cmd("card", "AA")
    stop = rig.sent("StopTransaction")[0]
    assert stop["transactionId"] == 1 and stop["reason"] == "Local" and stop["idTag"] == "AA"
    assert 7000 < stop["meterStop"] < 7400  # ~31.9 A x 230 V for an hour
    rig.cmd("unplug")
    assert rig.statuses() == ["Available", "Preparing", "Charging", "Finishing", "Available"]
    order = rig.actions()
    assert order.index("StartTransaction") < order.index("StopTransaction")


def test_plug_first_session(rig):
    rig.cmd("plug")
    assert rig.status() == "Preparing"
    rig.cmd("card", "BB")
    assert rig.status() == "Charging" and rig.sent("StartTransaction")[0]["idTag"] == "BB"
    rig.cmd("unplug")  # StopTransactionOnEVSideDisconnect true by default
    stop = rig.sent("StopTransaction")[0]
    assert stop["reason"] == "EVDisconnected"
    assert rig.statuses()[-1] == "Available"


def test_connection_timeout(rig):
    rig.call("ChangeConfiguration", {"key": "ConnectionTimeOut", "value": "30"})
    rig.cmd("card", "AA")
    rig.run(29000)
    assert rig.status() == "Preparing"
    rig.run(1000)
    assert rig.status() == "Available"
    rig.cmd("plug")
    assert rig.sent("StartTransaction") == []


@pytest.mark.parametrize("tag,status", [("BAD", "Blocked"), ("NOPE", "Invalid")])
def test_refused_cards_do_not_start(rig, tag, status):
    rig.cmd("plug")
    rig.cmd("card", tag)
    assert rig.sent("Authorize")[-1] == {"idTag": tag}
    assert rig.sent("StartTransaction") == [] and rig.status() == "Preparing"


def test_expired_cache_entry_is_not_used_offline(rig):
    rig.st.cache.update("OLD", {"status": "Accepted", "expiryDate": "2025-01-01T00:00:00Z"}, rig.clock.unix())
    rig.disconnect()
    rig.cmd("plug")
    rig.cmd("card", "OLD")
    assert rig.st.connectors[1].tx is None


def test_parent_id_tag_group_may_stop(rig):
    rig.tags.update({"KID": {"status": "Accepted", "parentIdTag": "FAMILY"},
                     "MUM": {"status": "Accepted", "parentIdTag": "FAMILY"}})
    session(rig, "KID")
    rig.cmd("card", "BB")  # other group: ignored
    assert rig.st.connectors[1].tx is not None
    rig.cmd("card", "MUM")
    assert rig.sent("StopTransaction")[0]["idTag"] == "MUM"
    assert rig.st.connectors[1].tx is None


@pytest.mark.parametrize("stop_on_disconnect", [True, False])
def test_ev_side_disconnect(rig, stop_on_disconnect):
    rig.call("ChangeConfiguration", {"key": "StopTransactionOnEVSideDisconnect",
                                     "value": "true" if stop_on_disconnect else "false"})
    session(rig)
    rig.cmd("unplug")
    if stop_on_disconnect:  # C-06.2
        assert rig.sent("StopTransaction")[0]["reason"] == "EVDisconnected"
        assert rig.status() == "Available"
    else:  # C-06.1: the transaction stays, no energy until the EV is back
        assert rig.sent("StopTransaction") == [] and rig.status() == "SuspendedEV"
        rig.cmd("plug")
        assert rig.status() == "Charging" and len(rig.sent("StartTransaction")) == 1


@pytest.mark.parametrize("stop_on_invalid", [True, False])
def test_start_transaction_not_accepted(rig, stop_on_invalid):
    rig.call("ChangeConfiguration", {"key": "StopTransactionOnInvalidId",
                                     "value": "true" if stop_on_invalid else "false"})
    rig.call("ChangeConfiguration", {"key": "LocalPreAuthorize", "value": "true"})
    rig.st.cache.update("GONE", {"status": "Accepted"}, rig.clock.unix())  # stale cache
    rig.cmd("plug")
    rig.cmd("card", "GONE")  # pre-authorized locally, CSMS says Invalid at start
    assert rig.sent("Authorize") == [] and rig.sent("StartTransaction")
    if stop_on_invalid:
        assert rig.sent("StopTransaction")[0]["reason"] == "DeAuthorized"
    else:
        assert rig.sent("StopTransaction") == [] and rig.status() == "SuspendedEVSE"


def test_ev_suspends_and_resumes(rig):
    session(rig)
    rig.cmd("ev-suspend")
    assert rig.status() == "SuspendedEV"
    rig.cmd("ev-resume")
    assert rig.status() == "Charging"


def test_fault_during_session(rig):
    session(rig)
    rig.cmd("fault", "1", "GroundFailure")
    sn = rig.sent("StatusNotification")[-1]
    assert sn["status"] == "Faulted" and sn["errorCode"] == "GroundFailure"
    assert rig.st.connectors[1].offered_da == 0
    rig.cmd("clear")
    assert rig.status() == "Charging"


# ---- remote start / stop ------------------------------------------------------
def test_remote_start_then_plug_and_remote_stop(rig):
    ans = rig.call("RemoteStartTransaction", {"idTag": "AA"})
    assert ans[2] == {"status": "Accepted"} and rig.status() == "Preparing"
    assert rig.sent("Authorize") == []  # AuthorizeRemoteTxRequests false
    rig.cmd("plug")
    tid = rig.sent("StartTransaction") and rig.st.connectors[1].tx.tx_id
    assert rig.call("RemoteStopTransaction", {"transactionId": tid + 100})[2] == {"status": "Rejected"}
    assert rig.call("RemoteStopTransaction", {"transactionId": tid})[2] == {"status": "Accepted"}
    assert rig.sent("StopTransaction")[0]["reason"] == "Remote"


def test_remote_start_plugged_with_authorization(rig):
    rig.call("ChangeConfiguration", {"key": "AuthorizeRemoteTxRequests", "value": "true"})
    rig.cmd("plug")
    assert rig.call("RemoteStartTransaction", {"idTag": "AA", "connectorId": 1})[2]["status"] == "Accepted"
    assert rig.actions()[-3:] == ["Authorize", "StartTransaction", "StatusNotification"]
    assert rig.status() == "Charging"


def test_start_from_finishing_sends_start_transaction_before_its_preparing(rig):
    # Issue 20: the momentary Preparing of F2 (Finishing -> Preparing ->
    # Charging) used to go first and cost the StartTransaction a round trip.
    rig.cmd("plug")
    rig.call("RemoteStartTransaction", {"idTag": "AA", "connectorId": 1})
    rig.call("RemoteStopTransaction", {"transactionId": rig.st.connectors[1].tx.tx_id})
    assert rig.status() == "Finishing"
    n = len(rig.actions())
    rig.call("RemoteStartTransaction", {"idTag": "AA", "connectorId": 1})
    assert rig.actions()[n:] == ["StartTransaction", "StatusNotification", "StatusNotification"]
    assert rig.statuses()[-3:] == ["Finishing", "Preparing", "Charging"]  # 4.9 F2 still reported


@pytest.mark.parametrize("payload", [{"idTag": "AA", "connectorId": 2}, {"idTag": "AA", "connectorId": 0}])
def test_remote_start_bad_connector(rig, payload):
    assert rig.call("RemoteStartTransaction", payload)[2] == {"status": "Rejected"}


def test_remote_start_busy_connector_rejected(rig):
    session(rig)
    assert rig.call("RemoteStartTransaction", {"idTag": "BB"})[2] == {"status": "Rejected"}


# ---- offline, retries, power loss ---------------------------------------------
def test_offline_session_is_delivered_in_order_on_reconnect(rig):
    rig.disconnect()
    rig.st.cache.update("AA", {"status": "Accepted"}, rig.clock.unix())
    session(rig)  # LocalAuthorizeOffline: the cached tag may start
    rig.run(120 * 1000)
    rig.cmd("card", "AA")
    assert rig.sent("StartTransaction") == []
    rig.connect()
    acts = [a for a in rig.actions() if a in ("StartTransaction", "MeterValues", "StopTransaction")]
    assert acts[0] == "StartTransaction" and acts[-1] == "StopTransaction" and "MeterValues" in acts
    tid = rig.cs.tx_id
    assert rig.sent("StopTransaction")[0]["transactionId"] == tid  # filled in after the answer
    assert all(m["transactionId"] == tid for m in rig.sent("MeterValues"))


def test_callerror_retries_then_discard(rig):
    rig.call("ChangeConfiguration", {"key": "TransactionMessageRetryInterval", "value": "10"})
    session(rig)
    rig.cs.fail.add("StopTransaction")
    rig.cmd("card", "AA")

    def stops():
        return [e["t"] for e in rig.transcript if e["dir"] == "cs" and e["msg"][0] == 2
                and e["msg"][2] == "StopTransaction"]
    t0 = stops()[0]
    rig.run(100 * 1000)
    # TransactionMessageAttempts = 3: retried after 10 s, then 2 x 10 s, then discarded.
    assert [t - t0 for t in stops()] == [0, 10000, 30000]
    assert len(rig.st.transactions.queue) == 0 and any("discarded" in t for _, t in rig.logs)


def test_full_queue_drops_oldest_meter_values_never_start_stop(tmp_path):
    rig = Rig(str(tmp_path), tags={"AA": "Accepted"})
    rig.st.transactions.queue.j.max_bytes = 4096  # a small flash budget for the test
    rig.st.cache.update("AA", {"status": "Accepted"}, rig.clock.unix())
    rig.call("ChangeConfiguration", {"key": "MeterValueSampleInterval", "value": "1"})
    session(rig)  # offline: everything queues
    rig.run(600 * 1000)
    rig.cmd("card", "AA")
    kinds = [rec[1] for rec in rig.st.transactions.queue.index]
    assert kinds[0] == 1 and kinds[-1] == 2  # START first, STOP last: both kept
    assert any("oldest MeterValues dropped" in t for _, t in rig.logs)
    rig.connect()
    acts = [a for a in rig.actions() if a in ("StartTransaction", "MeterValues", "StopTransaction")]
    assert acts[0] == "StartTransaction" and acts[-1] == "StopTransaction"
    times = [m["meterValue"][0]["timestamp"] for m in rig.sent("MeterValues")]
    assert times == sorted(times) and len(times) < 600  # the newest survive, in order


def test_power_loss_stops_with_last_persisted_meter(rig):
    session(rig)
    rig.run(200 * 1000)
    last = rig.st.connectors[1].tx.last_meter
    rig.disconnect()
    rig.reboot()  # power cut: a new core on the same flash
    assert rig.st.connectors[1].tx is None
    rig.connect()
    stop = rig.sent("StopTransaction")[-1]
    assert stop["reason"] == "PowerLoss" and stop["transactionId"] == 1
    # The meter's own register (it survives the cut) is further on than the
    # snapshot, written at most once a minute: it is the better figure.
    assert last < stop["meterStop"] == rig.board.meter(1)[0]


def test_power_loss_uses_the_journal_when_the_meter_lost_its_register(tmp_path):
    # The last energy reported is on flash in the journal (the answered
    # MeterValues' FLOOR record), not in a snapshot rewritten per sample.
    from boards.sim.board import SimBoard
    rig = Rig(str(tmp_path), tags={"AA": "Accepted"}).connect()
    session(rig)
    rig.run(200 * 1000)
    saved = rig.st.transactions.register.floor[1]  # the highest energy reported
    assert rig.sent("MeterValues") and not os.path.exists(str(tmp_path / "register.json"))
    rig.disconnect()
    rig.board = SimBoard()  # a meter that restarted from 0
    rig.reboot()
    rig.connect()
    stop = rig.sent("StopTransaction")[-1]
    assert stop["reason"] == "PowerLoss" and stop["meterStop"] == saved > 0


def test_power_loss_before_start_was_answered(rig):
    rig.disconnect()
    rig.st.cache.update("AA", {"status": "Accepted"}, rig.clock.unix())
    session(rig)
    rig.reboot()
    rig.connect()
    acts = [a for a in rig.actions() if a.endswith("Transaction")]
    assert acts == ["StartTransaction", "StopTransaction"]
    assert rig.sent("StopTransaction")[0]["reason"] == "PowerLoss"
    assert rig.sent("StopTransaction")[0]["transactionId"] == rig.cs.tx_id


# ---- availability, reset, unlock, data transfer, cache ------------------------
def test_change_availability_scheduled_during_transaction(rig):
    session(rig)
    assert rig.call("ChangeAvailability", {"connectorId": 1, "type": "Inoperative"})[2] == {"status": "Scheduled"}
    assert rig.status() == "Charging"
    rig.cmd("card", "AA")
    rig.cmd("unplug")
    assert rig.status() == "Unavailable"
    rig.reboot()
    assert rig.status() == "Unavailable"  # persisted
    rig.connect()
    assert rig.call("ChangeAvailability", {"connectorId": 0, "type": "Operative"})[2] == {"status": "Accepted"}
    assert rig.status() == "Available"


def test_station_inoperative_blocks_sessions(rig):
    assert rig.call("ChangeAvailability", {"connectorId": 0, "type": "Inoperative"})[2] == {"status": "Accepted"}
    assert rig.status(0) == "Unavailable" and rig.status(1) == "Unavailable"
    rig.cmd("plug")
    rig.cmd("card", "AA")
    assert rig.sent("StartTransaction") == []
    assert rig.call("ChangeAvailability", {"connectorId": 3, "type": "Operative"})[2] == {"status": "Rejected"}


@pytest.mark.parametrize("kind", ["Soft", "Hard"])
def test_reset_stops_transaction_then_reboots(rig, kind):
    session(rig)
    assert rig.call("Reset", {"type": kind})[2] == {"status": "Accepted"}
    assert rig.sent("StopTransaction")[0]["reason"] == kind + "Reset"
    rig.run(100)
    assert rig.st.reboot == kind


def test_unlock_fixed_cable_not_supported(rig):
    assert rig.call("UnlockConnector", {"connectorId": 1})[2] == {"status": "NotSupported"}


def test_data_transfer_and_clear_cache(rig):
    assert rig.call("DataTransfer", {"vendorId": "nobody"})[2] == {"status": "UnknownVendorId"}
    rig.st.vendors["acme"] = lambda st, mid, data: ("Accepted", (data or "")[::-1])
    assert rig.call("DataTransfer", {"vendorId": "acme", "data": "abc"})[2] == {"status": "Accepted", "data": "cba"}
    rig.st.cache.update("X", {"status": "Accepted"}, rig.clock.unix())
    assert rig.call("ClearCache", {})[2] == {"status": "Accepted"} and len(rig.st.cache) == 0


# ---- meter values ------------------------------------------------------------------
def test_sampled_and_stop_transaction_data(rig):
    for k, v in (("MeterValueSampleInterval", "10"), ("MeterValuesSampledData",
                 "Energy.Active.Import.Register,Power.Active.Import,Current.Import,Voltage,SoC"),
                 ("StopTxnSampledData", "Energy.Active.Import.Register")):
        assert rig.call("ChangeConfiguration", {"key": k, "value": v})[2] == {"status": "Accepted"}
    session(rig)
    rig.run(30 * 1000)
    mvs = rig.sent("MeterValues")
    assert len(mvs) == 3
    sv = {s["measurand"]: s for s in mvs[-1]["meterValue"][0]["sampledValue"]}
    assert set(sv) == {"Energy.Active.Import.Register", "Power.Active.Import", "Current.Import", "Voltage", "SoC"}
    assert sv["Voltage"]["value"] == "230.0" and sv["Current.Import"]["unit"] == "A"
    assert all(s["context"] == "Sample.Periodic" for s in sv.values())
    rig.run(1000 * 1000)  # 100 more samples: transactionData stays bounded
    rig.cmd("card", "AA")
    data = rig.sent("StopTransaction")[0]["transactionData"]
    assert len(data) == 20
    assert data[0]["sampledValue"][0]["context"] == "Transaction.Begin"
    assert data[-1]["sampledValue"][0]["context"] == "Transaction.End"


def test_clock_aligned_values(rig):
    rig.call("ChangeConfiguration", {"key": "ClockAlignedDataInterval", "value": "900"})
    rig.run(900 * 1000)
    idle = rig.sent("MeterValues")
    assert len(idle) == 1 and "transactionId" not in idle[0]
    assert idle[0]["meterValue"][0]["sampledValue"][0]["context"] == "Sample.Clock"
    assert idle[0]["meterValue"][0]["timestamp"].endswith(":15:00Z")
    session(rig)
    rig.run(900 * 1000)
    assert rig.sent("MeterValues")[-1]["transactionId"] == 1


def test_minimum_status_duration(rig):
    assert rig.call("ChangeConfiguration", {"key": "MinimumStatusDuration", "value": "5"})[2]["status"] == "Accepted"
    rig.cmd("plug")
    rig.cmd("unplug")  # Preparing for less than 5 s: never reported
    rig.run(6000)
    assert rig.statuses() == ["Available"]
    rig.cmd("plug")
    rig.run(4999)
    assert rig.statuses() == ["Available"]
    rig.run(1)
    assert rig.statuses() == ["Available", "Preparing"]


def test_max_energy_on_invalid_id(rig):
    rig.call("ChangeConfiguration", {"key": "StopTransactionOnInvalidId", "value": "false"})
    rig.call("ChangeConfiguration", {"key": "MaxEnergyOnInvalidId", "value": "100"})
    rig.call("ChangeConfiguration", {"key": "MeterValueSampleInterval", "value": "10"})
    rig.call("ChangeConfiguration", {"key": "LocalPreAuthorize", "value": "true"})
    rig.st.cache.update("GONE", {"status": "Accepted"}, rig.clock.unix())
    session(rig, "GONE")  # StartTransaction.conf: Invalid
    assert rig.status() == "Charging"  # may still take 100 Wh
    rig.run(120 * 1000)
    assert rig.status() == "SuspendedEVSE"
    used = rig.board.meter(1)[0] - rig.sent("StartTransaction")[0]["meterStart"]
    assert 100 <= used < 130  # stopped at the first sample past the cap


def test_reboot_command_stops_with_reason_reboot(rig):
    from evse import remote
    session(rig)
    remote.reboot(rig.st, "Soft")
    rig.run(10)
    assert rig.sent("StopTransaction")[0]["reason"] == "Reboot" and rig.st.reboot == "Soft"


def test_outgoing_data_transfer(rig):
    from evse import remote
    got = []
    remote.send_data(rig.st, "acme", "hello", "x", lambda status, data: got.append((status, data)))
    rig.run(10)
    assert rig.sent("DataTransfer") == [{"vendorId": "acme", "messageId": "hello", "data": "x"}]
    assert got == [("UnknownVendorId", None)]


def test_unlock_on_a_board_with_a_lock(tmp_path):
    from boards.sim.board import SimBoard

    class LockBoard(SimBoard):
        has_lock = True
        unlocked = []

        def unlock(self, cid):
            self.unlocked.append(cid)
            return len(self.unlocked) == 1

    r = Rig(str(tmp_path), tags={"AA": "Accepted"}, board=LockBoard()).connect()
    session(r)
    assert r.call("UnlockConnector", {"connectorId": 1})[2] == {"status": "Unlocked"}
    assert r.sent("StopTransaction")[0]["reason"] == "UnlockCommand"
    assert r.call("UnlockConnector", {"connectorId": 1})[2] == {"status": "UnlockFailed"}
    assert r.call("UnlockConnector", {"connectorId": 2})[2] == {"status": "NotSupported"}


def test_fault_with_info_and_vendor_code(rig):
    # A board reports ("fault", cid, errorCode, info, vendorErrorCode).
    rig.st.on_hw["fault"](rig.st, ("fault", 1, "HighTemperature", "enclosure 71 C", "T-71"))
    rig.run(1)
    sn = rig.sent("StatusNotification")[-1]
    assert sn["status"] == "Faulted" and sn["errorCode"] == "HighTemperature"
    assert sn["info"] == "enclosure 71 C" and sn["vendorErrorCode"] == "T-71"
    rig.st.on_hw["clear"](rig.st, ("clear", 1))
    rig.run(1)
    sn = rig.sent("StatusNotification")[-1]
    assert sn["status"] == "Available" and "vendorErrorCode" not in sn and "info" not in sn


class Cut(BaseException):
    """A power cut at a chosen flash write (BaseException: nothing catches it)."""


def cut(*_):
    raise Cut()


def test_power_cut_between_start_answer_and_snapshot_loses_no_stop(tmp_path):
    # Soak finding W1: the id must reach flash before the journal forgets the Start.
    r = Rig(str(tmp_path), tags={"AA": "Accepted"})
    r.st.cache.update("AA", {"status": "Accepted"}, r.clock.unix())
    r.cmd("card", "AA")
    r.cmd("plug")  # offline: StartTransaction journalled
    r.st.transactions.snapshot.snap.save = cut  # the cut hits the next tx.json write
    with pytest.raises(Cut):
        r.connect()
    r.reboot()
    r.connect()
    r.run(5000)
    stops = r.sent("StopTransaction")
    assert len(stops) == 1 and stops[0]["reason"] == "PowerLoss"
    starts_answered = r.cs.tx_id
    assert stops[0]["transactionId"] == starts_answered  # the latest id the CSMS gave
    assert len(r.st.transactions.queue) == 0


def test_power_cut_between_stop_and_snapshot_sends_one_stop(tmp_path):
    # Soak finding W5: the Stop was journalled, the snapshot still shows the
    # transaction running: recovery must not add a PowerLoss Stop.
    r = Rig(str(tmp_path), tags={"AA": "Accepted"}).connect()
    r.cmd("card", "AA")
    r.cmd("plug")
    r.run(3000)
    r.disconnect()
    r.cmd("card", "AA")  # the snapshot is cleared only when the STOP is answered
    assert r.st.transactions.snapshot.load()[0] is not None
    r.reboot()
    r.connect()
    r.run(5000)
    stops = r.sent("StopTransaction")
    assert [s["reason"] for s in stops] == ["Local"] and stops[0]["transactionId"] == 1


def test_power_cut_during_recovery_sends_one_power_loss_stop(tmp_path):
    r = Rig(str(tmp_path), tags={"AA": "Accepted"}).connect()
    r.cmd("card", "AA")
    r.cmd("plug")
    r.disconnect()
    from evse.store import snapshot as store
    orig = store.Snapshot.save
    store.Snapshot.save = lambda self, obj: cut() if self.path.endswith("tx.json") else orig(self, obj)
    try:
        with pytest.raises(Cut):
            r.reboot()  # recovery journals the PowerLoss Stop, then the cut
    finally:
        store.Snapshot.save = orig
    r.reboot()
    r.connect()
    r.run(5000)
    assert [s["reason"] for s in r.sent("StopTransaction")] == ["PowerLoss"]


def test_unanswered_authorize_is_asked_again_then_offline_rules_at_connection_timeout(rig):
    """Issue 18: the link drops with the card's Authorize in flight. The card
    is not refused at once by the offline rules: it is asked again when the
    link is back; a CSMS not reached within ConnectionTimeOut lets the
    offline rules decide (here: an unknown card, refused)."""
    rig.cs.pump = lambda: None  # the CSMS does not answer: the Authorize stays in flight
    rig.cmd("card", "AA")
    assert "Authorize" in [f[2] for f in rig.swallow()]
    rig.disconnect()
    assert not any("not authorized" in t for _, t in rig.logs)
    del rig.cs.pump  # the scripted CSMS answers again
    rig.connect()
    rig.cs.pump()
    assert rig.sent("Authorize")[-1] == {"idTag": "AA"}
    rig.cmd("plug")
    assert rig.sent("StartTransaction")[0]["idTag"] == "AA"


def test_unanswered_authorize_offline_past_connection_timeout_is_refused(rig):
    rig.cs.pump = lambda: None
    rig.cmd("card", "ZZ")  # unknown everywhere, AllowOfflineTxForUnknownId false
    rig.swallow()
    rig.disconnect()
    assert not any("not authorized" in t for _, t in rig.logs)
    rig.st.tick(rig.clock.ms())
    rig.clock.advance(61 * 1000)  # ConnectionTimeOut 60 s
    rig.st.tick(rig.clock.ms())
    assert any("ZZ not authorized" in t for _, t in rig.logs)
    assert rig.st.queued("Authorize") is None and rig.status() == "Available"


def test_energy_floor_survives_a_power_cut_in_the_journal_alone(tmp_path):
    # Issue 20: no register.json per sample; the answered records' FLOOR
    # record keeps the last energy reported, so a meter that restarted from 0
    # never reports less than before the cut.
    from boards.sim.board import SimBoard
    rig = Rig(str(tmp_path), tags={"AA": "Accepted"}).connect()
    rig.call("ChangeConfiguration", {"key": "MeterValueSampleInterval", "value": "1"})
    session(rig)
    rig.run(120 * 1000)
    rig.cmd("card", "AA")  # stop: every record answered
    last = rig.sent("StopTransaction")[-1]["meterStop"]
    assert last > 0 and len(rig.st.transactions.queue) == 0 and not os.path.exists(str(tmp_path / "register.json"))
    rig.disconnect()
    rig.board = SimBoard()  # a meter that restarted from 0
    rig.reboot()
    rig.connect()
    session(rig)
    assert len(rig.sent("StartTransaction")) == 2 and rig.sent("StartTransaction")[-1]["meterStart"] >= last
