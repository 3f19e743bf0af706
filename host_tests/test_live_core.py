"""The foundation against the real CSMS peer (the `ocpp` package validates
every frame against the official schemas) over WebSockets on loopback:
boot, heartbeats, statuses, configuration, Basic auth, reconnects, bad
frames, and the simulator process."""
import json

import pytest
from ocpp.v16 import call

from live import CsmsThread, SimProcess, StationThread, wait_for


@pytest.fixture
def csms():
    c = CsmsThread(tags={"AA": "Accepted"}, heartbeat=1)
    yield c
    c.stop()


@pytest.fixture
def station(csms, tmp_path):
    s = StationThread(csms.url, "CP1", str(tmp_path))
    yield s
    s.stop()


def test_boot_heartbeat_status(csms, station):
    boot = csms.wait_call("BootNotification")[0]
    assert boot["chargePointVendor"] and boot["chargePointSerialNumber"] == "CP1"
    csms.wait_call("Heartbeat", 2, timeout=4)
    sn = csms.calls("StatusNotification")
    assert [p["connectorId"] for p in sn[:2]] == [0, 1]
    assert all(p["status"] == "Available" for p in sn[:2])


def test_pending_boot_then_accepted(tmp_path):
    c = CsmsThread(heartbeat=1, boot_statuses=["Pending"])
    s = StationThread(c.url, "CP2", str(tmp_path))
    try:
        c.wait_call("BootNotification", 2, timeout=5)
        acts = [e["msg"][2] for e in c.csms.log if e["dir"] == "in" and e["msg"][0] == 2]
        assert acts[:2] == ["BootNotification", "BootNotification"]
        c.wait_call("StatusNotification", 2)
    finally:
        s.stop()
        c.stop()


def test_configuration_over_the_wire(csms, station):
    csms.wait_call("StatusNotification", 2)
    r = csms.call("CP1", call.GetConfiguration(key=["HeartbeatInterval", "Nope"]))
    assert r.configuration_key[0]["key"] == "HeartbeatInterval" and r.unknown_key == ["Nope"]
    full = csms.call("CP1", call.GetConfiguration())
    assert len(full.configuration_key) > 30
    assert not any(k["key"] == "AuthorizationKey" for k in full.configuration_key)
    assert csms.call("CP1", call.ChangeConfiguration(key="MeterValueSampleInterval", value="30")).status == "Accepted"
    assert csms.call("CP1", call.ChangeConfiguration(key="NumberOfConnectors", value="3")).status == "Rejected"
    assert csms.call("CP1", call.ChangeConfiguration(key="Foo", value="1")).status == "NotSupported"
    r = csms.call("CP1", call.GetConfiguration(key=["MeterValueSampleInterval"]))
    assert r.configuration_key[0]["value"] == "30"


def test_basic_auth_security_profile_1(tmp_path):
    c = CsmsThread(heartbeat=1, passwords={"CP3": "0123456789abcdef"})
    bad = StationThread(c.url, "CP3", str(tmp_path / "a"), password="wrong-password-123")
    try:
        wait_for(lambda: any("401" in t for _, t in bad.logs), 5, "401 logged")
        assert c.calls("BootNotification") == []
    finally:
        bad.stop()
    good = StationThread(c.url, "CP3", str(tmp_path / "b"), password="0123456789abcdef")
    try:
        c.wait_call("BootNotification")
    finally:
        good.stop()
        c.stop()


def test_reconnect_after_csms_restart(tmp_path):
    c = CsmsThread(heartbeat=1)
    s = StationThread(c.url, "CP4", str(tmp_path))
    port = c.port
    try:
        c.wait_call("StatusNotification", 2)
        c.stop()
        s.command("plug")  # changes while the link is down
        c2 = CsmsThread(heartbeat=1)
        c2.run(c2.csms.stop())
        c2.run(c2.csms.start(port=port))
        sn = c2.wait_call("StatusNotification", timeout=10, where=lambda p: p["status"] == "Preparing")
        assert sn and c2.calls("BootNotification") == []  # same power cycle: no new boot
        c2.stop()
    finally:
        s.stop()


def test_bad_frames_over_the_wire(csms, station):
    csms.wait_call("StatusNotification", 2)
    cp = csms.csms.stations["CP1"]
    for text in ('[2, "x1", "Reset", {"type": "Warm"}]', '[2, "x2", "Teleport", {}]',
                 '[2, "x3", "Reset", {', "garbage"):
        csms.run(cp._connection.ws.send(text))

    def answers():
        return {e["msg"][1]: e["msg"][2] for e in csms.csms.log
                if e["dir"] == "in" and isinstance(e["msg"], list) and e["msg"][0] == 4}
    got = wait_for(lambda: answers() if len(answers()) >= 3 else None, 5, "CALLERRORs")
    assert got == {"x1": "PropertyConstraintViolation", "x2": "NotImplemented", "x3": "FormationViolation"}
    assert csms.call("CP1", call.ClearCache()).status == "Accepted"  # still alive


def test_simulator_process_json_events(csms, tmp_path):
    sim = SimProcess(csms.url, "SIM1", str(tmp_path), "--set", "MeterValueSampleInterval=5")
    try:
        sim.wait_event(lambda e: e.get("event") == "connected")
        sim.wait_event(lambda e: e.get("event") == "sent" and e.get("action") == "Heartbeat", timeout=5)
        sim.send("status")
        st = sim.wait_event(lambda e: e.get("event") == "status")
        assert st["connected"] and st["connectors"][1]["status"] == "Available"
        sim.send("fly")
        assert sim.wait_event(lambda e: e.get("event") == "error")["command"] == "fly"
        ev = next(e for e in sim.events if e.get("action") == "BootNotification" and e["event"] == "sent")
        assert ev["type"] == "CALL" and ev["payload"]["chargePointSerialNumber"] == "SIM1" and ev["id"]
        json.dumps(sim.events)
        r = csms.call("SIM1", call.GetConfiguration(key=["MeterValueSampleInterval"]))
        assert r.configuration_key[0]["value"] == "5"  # --set seeded it
    finally:
        sim.quit()
