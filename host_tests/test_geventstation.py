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
