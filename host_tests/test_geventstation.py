"""The Locust station runtime (tools/geventstation.py) against the dev CSMS.

Without gevent's monkey patching it runs on plain blocking sockets, so a
thread carries it here; what it reports is what Locust would count."""
from __future__ import annotations

import threading

import fleet
import fleetscenario
from geventstation import GeventStation
from live import CsmsThread, wait_for
from ocpp.v16 import call

SC = {"stations": 1, "seed": 3, "start_busy": 1.0, "cards": ["CARD1"], "meter_interval_s": 1,
      "session_minutes": {"dist": "fixed", "value": 10}, "offline": {"per_hour": 0}, "power_cut": {"per_hour": 0}}


def test_calls_both_ways_and_reconnects_are_reported():
    sc = fleetscenario.load_scenario(None, SC)
    csms = CsmsThread(tags={"CARD1": "Accepted"}, log_max=5000)
    seen: list[tuple] = []
    st = GeventStation("GS-0-00001", sc, fleet.seeds_for(sc, {}), csms.url,
                       lambda *r: seen.append(r))
    t = threading.Thread(target=st.run, daemon=True)
    t.start()

    def ok(kind, name):
        return [r for r in seen if r[:2] == (kind, name) and r[4] is None]
    try:
        wait_for(lambda: ok("OCPP", "MeterValues"), 15, "a session's meter values")
        # CSMS CALLs: answered (OCPP-CSMS, no error) and refused (a CALLERROR is a failure).
        csms.call(st.ident, call.GetConfiguration(key=["HeartbeatInterval"]))
        try:
            csms.call(st.ident, call.ChangeAvailability(connector_id=-1, type="Inoperative"))
        except Exception:  # noqa: BLE001 - the ocpp package raises on a CALLERROR
            pass
        wait_for(lambda: [r for r in seen if r[:2] == ("OCPP-CSMS", "ChangeAvailability")], 5, "refused CALL")
        csms.run(csms.csms.stations[st.ident]._connection.ws.close())  # the CSMS closes the link
        wait_for(lambda: ok("WS", "reconnect"), 15, "a reconnect")
    finally:
        st.stop()
        t.join(10)
        csms.stop()
    assert not t.is_alive()
    assert [r[:2] for r in seen if r[0] == "WS"][0] == ("WS", "connect")
    for action in ("BootNotification", "Authorize", "StartTransaction"):
        assert ok("OCPP", action), action
    assert all(r[2] >= 0 and r[3] > 0 for r in ok("OCPP", "BootNotification"))  # round trip, answer length
    assert ok("OCPP-CSMS", "GetConfiguration")
    refused = [r for r in seen if r[:2] == ("OCPP-CSMS", "ChangeAvailability")]
    assert refused and "PropertyConstraintViolation" in str(refused[0][4])
    assert st.sessions == 1 and st.connects >= 2


def test_flash_in_memory_outlives_the_core_a_data_folder_is_opened_at_each_boot(tmp_path):
    sc = fleetscenario.load_scenario(None, SC)
    seeds = fleet.seeds_for(sc, {})
    mem = GeventStation("GS-0-00002", sc, seeds, "ws://127.0.0.1:9/ocpp", lambda *r: None)
    mem._boot()
    first = mem.st
    mem._boot()  # a power cut: a new core
    assert mem.st is not first and mem.st.storage is first.storage
    disk = GeventStation("GS-0-00003", sc, seeds, "ws://127.0.0.1:9/ocpp", lambda *r: None,
                         data=str(tmp_path / "GS3"))
    disk._boot()
    before = disk.st.storage
    disk._boot()
    assert disk.st.storage is not before and disk.st.storage.root == str(tmp_path / "GS3")
    assert (tmp_path / "GS3").is_dir()
