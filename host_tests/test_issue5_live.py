"""Local Auth List Management, Reservations and Remote Trigger against the
real CSMS peer (the `ocpp` package validates every frame against the
official OCPP 1.6 schemas) over WebSockets on loopback (host_tests/live.py).
"""
import time
from datetime import datetime, timedelta, timezone

import pytest
from ocpp.v16 import call

from boards.sim.board import SimBoard
from live import CsmsThread, SimProcess, StationThread, wait_for

TAGS = {"AA": "Accepted", "BB": "Accepted", "CC": "Accepted", "FLIP": "Accepted", "LISTED": "Accepted"}


class TwoPorts(SimBoard):
    connectors = 2

    def card(self, cid, tag):
        self._pending.append(("card", cid, tag))


@pytest.fixture
def csms():
    c = CsmsThread(tags=TAGS, heartbeat=30)
    yield c
    c.stop()


def start_station(csms, tmp_path, cp="CP1", board=None, **seeds):
    s = StationThread(csms.url, cp, str(tmp_path / cp), board=board,
                      seeds={k: str(v) for k, v in seeds.items()})
    n = (board.connectors if board else 1) + 1
    csms.wait_call("StatusNotification", n, cp_id=cp)
    return s


def card(s, tag, cid=1):
    if cid == 1:
        s.command("card", tag)
        return

    def go():
        s.board.card(cid, tag)
        s.runtime.poke()
    s.do(go)


def statuses(csms, cid=1, cp="CP1"):
    return [p["status"] for p in csms.calls("StatusNotification", cp) if p["connectorId"] == cid]


def wait_status(csms, status, cid=1, cp="CP1", timeout=5):
    return wait_for(lambda: statuses(csms, cid, cp)[-1:] == [status], timeout,
                    "connector %d %s" % (cid, status))


def tx(s, cid=1):
    return s.do(lambda: s.station.connectors[cid].tx)


def expiry(secs):
    return (datetime.now(timezone.utc) + timedelta(seconds=secs)).strftime("%Y-%m-%dT%H:%M:%SZ")


def entry(tag, status="Accepted", **extra):
    info = {"status": status}
    info.update(extra)
    return {"idTag": tag, "idTagInfo": info}


def send_list(csms, version, kind, entries, cp="CP1"):
    return csms.call(cp, call.SendLocalList(list_version=version, update_type=kind,
                                            local_authorization_list=entries)).status


def list_version(csms, cp="CP1"):
    return csms.call(cp, call.GetLocalListVersion()).list_version


def reserve(csms, cid, tag, rid, secs=300, parent=None, cp="CP1"):
    return csms.call(cp, call.ReserveNow(connector_id=cid, expiry_date=expiry(secs), id_tag=tag,
                                         reservation_id=rid, parent_id_tag=parent)).status


# ---- local authorization list -------------------------------------------------------

def test_full_and_differential_updates_versions_and_limits(csms, tmp_path):
    s = start_station(csms, tmp_path)
    try:
        assert list_version(csms) == 0
        assert send_list(csms, 1, "Full", [entry("AA"), entry("BLK", "Blocked", parentIdTag="FAM"),
                                           entry("OLD", expiryDate="2030-01-01T00:00:00Z")]) == "Accepted"
        assert list_version(csms) == 1
        # add NEW, update BLK, remove AA
        assert send_list(csms, 2, "Differential", [entry("NEW"), entry("BLK"), {"idTag": "AA"}]) == "Accepted"
        assert list_version(csms) == 2
        assert send_list(csms, 2, "Differential", [entry("X")]) == "VersionMismatch"
        assert send_list(csms, 1, "Differential", [entry("X")]) == "VersionMismatch"
        got = s.do(lambda: s.station.authlist.dump())
        assert sorted(r[0] for r in got["list"]) == ["BLK", "NEW", "OLD"] and got["version"] == 2
        # Limits: SendLocalListMaxLength and LocalAuthListMaxLength are 100.
        assert send_list(csms, 3, "Full", [entry("T%d" % i) for i in range(101)]) == "Failed"
        assert send_list(csms, 3, "Differential", [entry("T%d" % i) for i in range(97)]) == "Accepted"
        assert send_list(csms, 4, "Differential", [entry("ONEMORE")]) == "Failed"
        assert list_version(csms) == 3 and s.do(lambda: len(s.station.authlist)) == 100
        assert send_list(csms, 9, "Full", []) == "Accepted"
        assert list_version(csms) == 0  # empty
        # Disabled: NotSupported, version -1.
        assert csms.call("CP1", call.ChangeConfiguration(key="LocalAuthListEnabled", value="false")).status \
            == "Accepted"
        assert send_list(csms, 10, "Full", [entry("AA")]) == "NotSupported"
        assert list_version(csms) == -1
    finally:
        s.stop()


def test_offline_authorization_from_the_list_and_precedence_over_the_cache(tmp_path):
    c = CsmsThread(tags=TAGS, heartbeat=30)
    s = start_station(c, tmp_path)
    port = c.port
    try:
        card(s, "FLIP")  # authorized online: cached as Accepted
        wait_for(lambda: s.status() == "Preparing", 5, "authorized")
        card(s, "FLIP")  # presented again: cancel
        wait_for(lambda: s.status() == "Available", 5, "cancelled")
        assert s.do(lambda: s.station.cache.get("FLIP", s.station.clock.unix()))["status"] == "Accepted"
        assert send_list(c, 1, "Full", [entry("LISTED"), entry("FLIP", "Blocked")]) == "Accepted"
        c.stop()
        wait_for(lambda: not s.do(lambda: s.station.online), 5, "offline")
        s.command("plug")
        card(s, "FLIP")
        time.sleep(0.3)
        assert tx(s) is None  # the list says Blocked, whatever the cache says
        card(s, "LISTED")  # LocalAuthorizeOffline: the list authorizes
        wait_for(lambda: s.status() == "Charging", 5, "charging offline")
        c2 = CsmsThread(tags=TAGS, heartbeat=30)
        c2.run(c2.csms.stop())
        c2.run(c2.csms.start(port=port))
        start = c2.wait_call("StartTransaction", timeout=15)[0]
        assert start["idTag"] == "LISTED"
        wait_for(lambda: tx(s).tx_id is not None, 5, "transaction id")
        # The StartTransaction.conf's idTagInfo is not cached for a tag on the list.
        assert s.do(lambda: s.station.cache.get("LISTED", s.station.clock.unix())) is None
        c2.stop()
    finally:
        s.stop()


def test_local_pre_authorize_uses_the_list(csms, tmp_path):
    s = start_station(csms, tmp_path, LocalPreAuthorize="true")
    try:
        assert send_list(csms, 1, "Full", [entry("LISTED")]) == "Accepted"
        s.command("plug")
        card(s, "LISTED")
        assert csms.wait_call("StartTransaction")[0]["idTag"] == "LISTED"
        assert csms.calls("Authorize") == []
    finally:
        s.stop()


# ---- reservations -------------------------------------------------------------------------

def test_reserve_connector_wrong_card_refused_right_card_accepted(csms, tmp_path):
    s = start_station(csms, tmp_path)
    try:
        assert reserve(csms, 1, "AA", 11) == "Accepted"
        wait_status(csms, "Reserved")
        s.command("plug")
        # OCPP 1.6 4.9: Reserved -> Preparing only when the reservation's
        # identity is presented (G2); plugging in alone stays Reserved (this
        # test used to wait for Preparing here).
        wait_for(lambda: s.status() == "Reserved" and s.do(lambda: s.station.connectors[1].plugged),
                 3, "plugged, still Reserved")
        card(s, "BB")
        csms.wait_call("Authorize", where=lambda p: p["idTag"] == "BB")
        time.sleep(0.3)
        assert csms.calls("StartTransaction") == [] and tx(s) is None
        card(s, "AA")
        start = csms.wait_call("StartTransaction")[0]
        assert start["idTag"] == "AA" and start["reservationId"] == 11
        wait_status(csms, "Charging")
        assert csms.call("CP1", call.CancelReservation(reservation_id=11)).status == "Rejected"  # used
    finally:
        s.stop()


def test_parent_group_may_use_the_reservation(tmp_path):
    c = CsmsThread(tags=TAGS, heartbeat=30)
    c.csms.id_tag_info = lambda tag: ({"status": "Accepted", "parentIdTag": "FAM"} if tag in ("KID", "MUM")
                                      else {"status": "Accepted"})
    s = start_station(c, tmp_path)
    try:
        assert reserve(c, 1, "MUM", 12, parent="FAM") == "Accepted"
        s.command("plug")
        card(s, "BB")  # accepted by the CSMS, but not of the group
        c.wait_call("Authorize", where=lambda p: p["idTag"] == "BB")
        time.sleep(0.3)
        assert c.calls("StartTransaction") == []
        card(s, "KID")
        start = c.wait_call("StartTransaction")[0]
        assert start["idTag"] == "KID" and start["reservationId"] == 12
    finally:
        s.stop()
        c.stop()


def test_expiry_and_cancel(csms, tmp_path):
    s = start_station(csms, tmp_path)
    try:
        assert reserve(csms, 1, "AA", 21, secs=2) == "Accepted"
        wait_status(csms, "Reserved")
        wait_status(csms, "Available", timeout=6)
        assert s.do(lambda: s.station.resv.items) == []
        assert reserve(csms, 1, "AA", 22) == "Accepted"
        wait_status(csms, "Reserved")
        assert csms.call("CP1", call.CancelReservation(reservation_id=22)).status == "Accepted"
        wait_status(csms, "Available")
        assert csms.call("CP1", call.CancelReservation(reservation_id=22)).status == "Rejected"
        assert statuses(csms) == ["Available", "Reserved", "Available", "Reserved", "Available"]
    finally:
        s.stop()


def test_reservation_while_occupied_faulted_unavailable(csms, tmp_path):
    s = start_station(csms, tmp_path)
    try:
        s.command("plug")
        wait_status(csms, "Preparing")
        assert reserve(csms, 1, "AA", 31) == "Occupied"
        card(s, "BB")
        wait_status(csms, "Charging")
        assert reserve(csms, 1, "AA", 31) == "Occupied"
        assert reserve(csms, 0, "AA", 31) == "Occupied"
        card(s, "BB")
        s.command("unplug")
        wait_status(csms, "Available")
        s.command("fault", "GroundFailure")
        wait_status(csms, "Faulted")
        assert reserve(csms, 1, "AA", 31) == "Faulted"
        s.command("clear")
        wait_status(csms, "Available")
        assert csms.call("CP1", call.ChangeAvailability(connector_id=1, type="Inoperative")).status == "Accepted"
        wait_status(csms, "Unavailable")
        assert reserve(csms, 1, "AA", 31) == "Unavailable"
        assert csms.call("CP1", call.ChangeAvailability(connector_id=1, type="Operative")).status == "Accepted"
        assert reserve(csms, 2, "AA", 31) == "Rejected"  # no such connector
        # A reservation ends when its connector becomes Faulted.
        assert reserve(csms, 1, "AA", 32) == "Accepted"
        wait_status(csms, "Reserved")
        s.command("fault", "GroundFailure")
        wait_status(csms, "Faulted")
        s.command("clear")
        wait_status(csms, "Available")
        assert s.do(lambda: s.station.resv.items) == []
    finally:
        s.stop()


def test_reserve_connector_zero_one_connector(csms, tmp_path):
    s = start_station(csms, tmp_path)
    try:
        assert reserve(csms, 0, "AA", 41) == "Accepted"
        wait_status(csms, "Reserved")
        assert reserve(csms, 1, "BB", 42) == "Occupied"
        s.command("plug")
        card(s, "BB")
        csms.wait_call("Authorize", where=lambda p: p["idTag"] == "BB")
        time.sleep(0.3)
        assert csms.calls("StartTransaction") == []
        card(s, "AA")
        assert csms.wait_call("StartTransaction")[0]["reservationId"] == 41
    finally:
        s.stop()


def test_reserve_connector_zero_blocks_the_last_free_connector(csms, tmp_path):
    s = start_station(csms, tmp_path, board=TwoPorts(serial="CP1"))
    try:
        assert reserve(csms, 0, "AA", 51) == "Accepted"
        time.sleep(0.2)
        assert statuses(csms, 1) == statuses(csms, 2) == ["Available"]  # two free: none held yet
        s.command("plug", "1")
        card(s, "BB", 1)
        start = csms.wait_call("StartTransaction")[0]
        assert start["connectorId"] == 1 and "reservationId" not in start
        wait_status(csms, "Reserved", cid=2)  # the last free connector is kept for AA
        s.command("plug", "2")
        card(s, "CC", 2)
        csms.wait_call("Authorize", where=lambda p: p["idTag"] == "CC")
        time.sleep(0.3)
        assert len(csms.calls("StartTransaction")) == 1
        card(s, "AA", 2)
        start = csms.wait_call("StartTransaction", 2)[1]
        assert start["connectorId"] == 2 and start["reservationId"] == 51
    finally:
        s.stop()


def test_simulator_status_shows_reservation_and_expiry(csms, tmp_path):
    sim = SimProcess(csms.url, "SIM5", str(tmp_path / "sim"))
    try:
        csms.wait_call("StatusNotification", 2, cp_id="SIM5")
        assert reserve(csms, 1, "AA", 61, secs=2, cp="SIM5") == "Accepted"
        sim.send("status")
        ev = sim.wait_event(lambda e: e.get("event") == "status")
        row = ev["connectors"][1]
        assert row["status"] == "Reserved" and row["reservation"]["reservationId"] == 61
        wait_status(csms, "Available", cp="SIM5", timeout=6)
        n = len(sim.events)
        sim.send("status")
        ev = sim.wait_event(lambda e: e.get("event") == "status" and sim.events.index(e) >= n)
        assert ev["connectors"][1]["status"] == "Available" and "reservation" not in ev["connectors"][1]
    finally:
        sim.quit()


# ---- remote trigger -------------------------------------------------------------------------

def _after_answer(csms, action, cp="CP1"):
    """Actions the station sent after answering our last `action` CALL."""
    log = [e for e in csms.csms.log if e["cp"] == cp]
    i = max(k for k, e in enumerate(log) if e["dir"] == "out" and e["msg"][0] == 2 and e["msg"][2] == action)
    uid = log[i]["msg"][1]
    j = next(k for k, e in enumerate(log) if k > i and e["dir"] == "in" and e["msg"][1] == uid)
    return [e["msg"][2] for e in log[j + 1:] if e["dir"] == "in" and e["msg"][0] == 2]


# BootNotification last: once accepted again the station re-reports every
# status, which would come between a later .conf and its message.
TARGETS = [("DiagnosticsStatusNotification", None), ("FirmwareStatusNotification", None),
           ("Heartbeat", None), ("MeterValues", 1), ("MeterValues", None), ("StatusNotification", 1),
           ("StatusNotification", 0), ("StatusNotification", None), ("BootNotification", None)]


def test_every_trigger_target(csms, tmp_path):
    s = start_station(csms, tmp_path)
    try:
        for what, cid in TARGETS:
            n = len(csms.calls(what))
            r = csms.call("CP1", call.TriggerMessage(requested_message=what, connector_id=cid))
            assert r.status == "Accepted", what
            k = 2 if what == "StatusNotification" and cid is None else 1  # the station and connector 1
            got = csms.wait_call(what, n + k)[n:]
            assert _after_answer(csms, "TriggerMessage")[:k] == [what] * k  # sent after the .conf
            if what == "StatusNotification":
                assert sorted(p["connectorId"] for p in got) == ([0, 1] if cid is None else [cid])
        mv = csms.calls("MeterValues")
        assert all(v["context"] == "Trigger" for m in mv for v in m["meterValue"][0]["sampledValue"])
        assert [p["status"] for p in csms.calls("DiagnosticsStatusNotification")] == ["Idle"]
        assert [p["status"] for p in csms.calls("FirmwareStatusNotification")] == ["Idle"]
        r = csms.call("CP1", call.TriggerMessage(requested_message="MeterValues", connector_id=2))
        assert r.status == "Rejected"  # NumberOfConnectors + 1 (TC_055)
    finally:
        s.stop()


def test_extended_trigger_message(csms, tmp_path):
    s = start_station(csms, tmp_path)
    try:
        # Whitepaper 6.16: FirmwareStatusNotification triggers SignedFirmwareStatusNotification.
        for what in ("FirmwareStatusNotification", "Heartbeat", "MeterValues", "StatusNotification",
                     "BootNotification"):
            sent = "SignedFirmwareStatusNotification" if what == "FirmwareStatusNotification" else what
            n = len(csms.calls(sent))
            r = csms.call("CP1", call.ExtendedTriggerMessage(requested_message=what, connector_id=1))
            assert r.status == "Accepted", what
            csms.wait_call(sent, n + 1)
            assert _after_answer(csms, "ExtendedTriggerMessage")[0] == sent
        for what, sent in (("SignChargePointCertificate", "SignCertificate"),
                           ("LogStatusNotification", "LogStatusNotification")):
            n = len(csms.calls(sent))
            r = csms.call("CP1", call.ExtendedTriggerMessage(requested_message=what))
            assert r.status == "Accepted"  # targets of the certificates and diagnostics features
            csms.wait_call(sent, n + 1)
        r = csms.call("CP1", call.ExtendedTriggerMessage(requested_message="Heartbeat", connector_id=3))
        assert r.status == "Rejected"
    finally:
        s.stop()
