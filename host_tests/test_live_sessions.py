"""Charging sessions against the real CSMS peer (`ocpp` package) over
WebSockets: every Core flow end to end, including a power cut (kill -9 of
a real simulator process) and offline operation."""
import time

import pytest
from ocpp.v16 import call

from live import CsmsThread, SimProcess, StationThread, wait_for

TAGS = {"AA": "Accepted", "BB": "Accepted", "BAD": "Blocked", "OLD": "Expired"}


@pytest.fixture
def csms():
    c = CsmsThread(tags=TAGS, heartbeat=30)
    yield c
    c.stop()


def start_station(csms, tmp_path, cp="CP1", **seeds):
    s = StationThread(csms.url, cp, str(tmp_path / cp), seeds={k: str(v) for k, v in seeds.items()})
    csms.wait_call("StatusNotification", 2, cp_id=cp)
    return s


def statuses(csms, cp="CP1"):
    return [p["status"] for p in csms.calls("StatusNotification", cp) if p["connectorId"] == 1]


def wait_status(csms, status, cp="CP1", timeout=5):
    return wait_for(lambda: statuses(csms, cp)[-1:] == [status], timeout, "status " + status)


def test_card_first_with_meter_values(csms, tmp_path):
    s = start_station(csms, tmp_path, MeterValueSampleInterval=1)
    try:
        s.command("card", "AA")
        wait_status(csms, "Preparing")
        s.command("plug")
        start = csms.wait_call("StartTransaction")[0]
        wait_status(csms, "Charging")
        mv = csms.wait_call("MeterValues", 2, timeout=5)
        assert all(m["transactionId"] == 1 for m in mv)
        s.command("card", "AA")
        stop = csms.wait_call("StopTransaction")[0]
        assert stop["reason"] == "Local" and stop["meterStop"] >= start["meterStart"]
        s.command("unplug")
        wait_status(csms, "Available")
        assert statuses(csms) == ["Available", "Preparing", "Charging", "Finishing", "Available"]
    finally:
        s.stop()


def test_plug_first_and_ev_disconnect_stops(csms, tmp_path):
    s = start_station(csms, tmp_path)
    try:
        s.command("plug")
        wait_status(csms, "Preparing")
        s.command("card", "BB")
        csms.wait_call("StartTransaction")
        s.command("unplug")
        assert csms.wait_call("StopTransaction")[0]["reason"] == "EVDisconnected"
    finally:
        s.stop()


def test_ev_disconnect_keeps_transaction_when_configured(csms, tmp_path):
    s = start_station(csms, tmp_path, StopTransactionOnEVSideDisconnect="false")
    try:
        s.command("plug")
        s.command("card", "AA")
        wait_status(csms, "Charging")
        s.command("unplug")
        wait_status(csms, "SuspendedEV")
        s.command("plug")
        wait_status(csms, "Charging")
        assert csms.calls("StopTransaction") == []
    finally:
        s.stop()


@pytest.mark.parametrize("tag", ["BAD", "OLD", "NOBODY"])
def test_refused_cards(csms, tmp_path, tag):
    s = start_station(csms, tmp_path)
    try:
        s.command("plug")
        s.command("card", tag)
        csms.wait_call("Authorize", where=lambda p: p["idTag"] == tag)
        time.sleep(0.2)
        assert csms.calls("StartTransaction") == [] and s.status() == "Preparing"
    finally:
        s.stop()


def test_parent_id_tag_stops(tmp_path):
    c = CsmsThread(tags=dict(TAGS), heartbeat=30)
    c.csms.id_tag_info = lambda tag: ({"status": "Accepted", "parentIdTag": "FAM"} if tag in ("KID", "MUM")
                                      else {"status": "Invalid"})
    s = start_station(c, tmp_path)
    try:
        s.command("plug")
        s.command("card", "KID")
        c.wait_call("StartTransaction")
        s.command("card", "MUM")
        assert c.wait_call("StopTransaction")[0]["idTag"] == "MUM"
    finally:
        s.stop()
        c.stop()


def test_remote_start_and_stop(csms, tmp_path):
    s = start_station(csms, tmp_path)
    try:
        assert csms.call("CP1", call.RemoteStartTransaction(id_tag="AA")).status == "Accepted"
        wait_status(csms, "Preparing")
        s.command("plug")
        csms.wait_call("StartTransaction")
        wait_for(lambda: s.do(lambda: s.station.connectors[1].tx.tx_id), 5, "transaction id")
        tid = s.do(lambda: s.station.connectors[1].tx.tx_id)
        assert csms.call("CP1", call.RemoteStopTransaction(transaction_id=tid + 7)).status == "Rejected"
        assert csms.call("CP1", call.RemoteStopTransaction(transaction_id=tid)).status == "Accepted"
        assert csms.wait_call("StopTransaction")[0]["reason"] == "Remote"
        assert csms.call("CP1", call.RemoteStartTransaction(id_tag="AA", connector_id=5)).status == "Rejected"
    finally:
        s.stop()


def test_offline_session_delivered_on_reconnect(tmp_path):
    c = CsmsThread(tags=TAGS, heartbeat=30)
    s = start_station(c, tmp_path, MeterValueSampleInterval=1)
    port = c.port
    try:
        s.command("card", "AA")  # authorized online: now in the cache
        wait_for(lambda: s.status() == "Preparing", 5, "authorized")
        s.command("card", "AA")  # cancel
        c.stop()
        wait_for(lambda: not s.do(lambda: s.station.online), 5, "offline")
        s.command("plug")
        s.command("card", "AA")  # LocalAuthorizeOffline + cache
        wait_for(lambda: s.status() == "Charging", 5, "charging offline")
        time.sleep(2.2)
        s.command("card", "AA")
        c2 = CsmsThread(tags=TAGS, heartbeat=30)
        c2.run(c2.csms.stop())
        c2.run(c2.csms.start(port=port))
        stop = c2.wait_call("StopTransaction", timeout=15)[0]
        acts = [e["msg"][2] for e in c2.csms.log if e["dir"] == "in" and e["msg"][0] == 2
                and e["msg"][2] in ("StartTransaction", "MeterValues", "StopTransaction")]
        assert acts[0] == "StartTransaction" and acts[-1] == "StopTransaction" and "MeterValues" in acts
        start_id = 1  # the new CSMS's first transaction id
        assert stop["transactionId"] == start_id and stop["reason"] == "Local"
        c2.stop()
    finally:
        s.stop()


def test_power_cut_during_transaction(csms, tmp_path):
    data = str(tmp_path / "sim")
    sim = SimProcess(csms.url, "PC1", data, "--set", "MeterValueSampleInterval=1")
    try:
        sim.wait_event(lambda e: e.get("action") == "StatusNotification" and e["event"] == "received")
        sim.send("plug")
        sim.send("card AA")
        csms.wait_call("StartTransaction", cp_id="PC1")
        csms.wait_call("MeterValues", 2, cp_id="PC1", timeout=5)
        time.sleep(1.2)
    finally:
        sim.kill()  # power cut
    n_before = len(csms.calls("MeterValues", "PC1"))
    sim = SimProcess(csms.url, "PC1", data)
    try:
        stop = csms.wait_call("StopTransaction", cp_id="PC1", timeout=10)[0]
        assert stop["reason"] == "PowerLoss" and stop["transactionId"] == 1
        assert stop["meterStop"] >= csms.calls("StartTransaction", "PC1")[0]["meterStart"]
        assert len(csms.calls("BootNotification", "PC1")) == 2
        assert len(csms.calls("MeterValues", "PC1")) >= n_before
    finally:
        sim.quit()


def test_availability_change_during_transaction(csms, tmp_path):
    s = start_station(csms, tmp_path)
    try:
        s.command("plug")
        s.command("card", "AA")
        csms.wait_call("StartTransaction")
        r = csms.call("CP1", call.ChangeAvailability(connector_id=0, type="Inoperative"))
        assert r.status == "Scheduled"
        s.command("card", "AA")
        csms.wait_call("StopTransaction")
        s.command("unplug")
        wait_status(csms, "Unavailable")
        assert csms.call("CP1", call.ChangeAvailability(connector_id=0, type="Operative")).status == "Accepted"
        wait_status(csms, "Available")
    finally:
        s.stop()


@pytest.mark.parametrize("kind", ["Soft", "Hard"])
def test_reset_with_transaction(csms, tmp_path, kind):
    s = start_station(csms, tmp_path)
    try:
        s.command("plug")
        s.command("card", "AA")
        csms.wait_call("StartTransaction")
        assert csms.call("CP1", call.Reset(type=kind)).status == "Accepted"
        assert csms.wait_call("StopTransaction")[0]["reason"] == kind + "Reset"
        csms.wait_call("BootNotification", 2, timeout=10)  # rebooted in-process
        assert s.reboots == [kind]
    finally:
        s.stop()


def test_unlock_data_transfer_clear_cache(csms, tmp_path):
    s = start_station(csms, tmp_path)
    try:
        assert csms.call("CP1", call.UnlockConnector(connector_id=1)).status == "NotSupported"
        assert csms.call("CP1", call.DataTransfer(vendor_id="x")).status == "UnknownVendorId"
        assert csms.call("CP1", call.ClearCache()).status == "Accepted"
    finally:
        s.stop()
