"""The link parameters belong to the core (security.py): a CSMS change of
AuthorizationKey reconnects with the new key, without a reboot; factory
seeding never undoes what the CSMS set. Over real WebSockets."""
from ocpp.v16 import call

from live import CsmsThread, StationThread, wait_for
from test_conformance_harness import case

OLD = "0123456789abcdef"
NEW = "OCA_OCTT_admin_test"  # TC_073 sets its hex representation
NEW_HEX = "4F43415F4F4354545F61646D696E5F74657374"


@case("TC_073_CS", "Update Charge Point Password for HTTP Basic Authentication", "Security")
def test_authorization_key_change_reconnects_with_the_new_key(tmp_path):
    c = CsmsThread(heartbeat=60, passwords={"CPK": OLD})
    s = StationThread(c.url, "CPK", str(tmp_path), password=OLD)
    try:
        wait_for(lambda: s.do(lambda: s.station.registration == "Accepted"), 5, "boot accepted")
        first = s.do(lambda: s.runtime.conn)
        c.csms.passwords["CPK"] = NEW  # the CSMS now expects the new key only
        assert c.call("CPK", call.ChangeConfiguration(key="AuthorizationKey", value=NEW_HEX)).status == "Accepted"
        # Reconnected with the new key's bytes (the old one, or the hex text, would get a 401), no reboot.
        wait_for(lambda: s.do(lambda: s.runtime.conn not in (None, first) and s.station.online), 5, "reconnect")
        assert s.reboots == [] and len(c.calls("BootNotification")) == 1
        assert c.call("CPK", call.TriggerMessage(requested_message="Heartbeat")).status == "Accepted"
        c.wait_call("Heartbeat")
        # Write-only: never in GetConfiguration, asked for by name or not.
        for keys in (None, ["AuthorizationKey"]):
            r = c.call("CPK", call.GetConfiguration(key=keys))
            assert NEW not in str(r) and OLD not in str(r) and NEW_HEX.lower() not in str(r).lower()
        assert not [t for _, t in s.logs if NEW in t or OLD in t or NEW_HEX.lower() in t.lower()]
    finally:
        s.stop()
    # A restart with the factory password keeps the key the CSMS set.
    s = StationThread(c.url, "CPK", str(tmp_path), password=OLD)
    try:
        wait_for(lambda: s.do(lambda: s.station.online), 5, "connected with the CSMS's key")
        assert s.do(lambda: s.station.link.authkey) == NEW_HEX.lower()
    finally:
        s.stop()
        c.stop()


def test_security_profile_is_only_raised_and_only_with_its_material(tmp_path):
    c = CsmsThread(heartbeat=60, passwords={"CPS": OLD})
    s = StationThread(c.url, "CPS", str(tmp_path), password=OLD)
    try:
        wait_for(lambda: s.do(lambda: s.station.registration == "Accepted"), 5, "boot accepted")
        change = lambda v: c.call("CPS", call.ChangeConfiguration(key="SecurityProfile", value=v)).status  # noqa: E731
        r = c.call("CPS", call.GetConfiguration(key=["SecurityProfile"]))
        assert r.configuration_key[0]["value"] == "0"
        assert change("2") == "Rejected"  # no CSMS root installed: TLS cannot be verified
        old = c.csms.stations["CPS"]
        assert change("1") == "Accepted"  # Basic auth is what it already does
        # A new profile means a new connection (whitepaper 2.4): wait for it.
        wait_for(lambda: c.csms.stations.get("CPS") not in (None, old), 5, "reconnect")
        assert change("0") == "Rejected"  # never lowered
        r = c.call("CPS", call.GetConfiguration(key=["SecurityProfile"]))
        assert r.configuration_key[0]["value"] == "1"
    finally:
        s.stop()
        c.stop()


def test_wss_without_a_trust_anchor_refuses_and_says_why(tmp_path):
    # Security WP 2.3: MicroPython's default TLS wrapper does not
    # verify. wss:// without an installed CSMS root never connects.
    from boards.sim.board import SimBoard
    from evse.clock import SystemClock
    from evse.runtime import Runtime
    from evse.station import Station
    from evse.store.storage import FileStorage
    st = Station(board=SimBoard(), clock=SystemClock(), storage=FileStorage(str(tmp_path)))
    rt = Runtime(st, "wss://csms.example:443/ocpp", "CPW")
    try:
        rt.params()
        raise AssertionError("a TLS context without a trust anchor was built")
    except ValueError as e:
        assert "trust anchor" in str(e)


def test_simulator_reports_its_startup_once_and_each_reboot(tmp_path):
    # StartupOfTheDevice when the process (the device) starts; a reboot of the
    # core is a ResetOrReboot, not a new startup.
    from live import SimProcess
    c = CsmsThread(heartbeat=60)
    sim = SimProcess(c.url, "CPU1", str(tmp_path))
    try:
        c.wait_call("SecurityEventNotification", where=lambda p: p["type"] == "StartupOfTheDevice")
        sim.send("reboot")
        c.wait_call("SecurityEventNotification", where=lambda p: p["type"] == "ResetOrReboot", timeout=10)
        c.wait_call("BootNotification", 2, timeout=10)
        types = [p["type"] for p in c.calls("SecurityEventNotification")]
        assert types.count("StartupOfTheDevice") == 1
    finally:
        sim.quit()
        c.stop()
