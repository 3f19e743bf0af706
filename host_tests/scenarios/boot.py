"""Boot scenario: Pending then Accepted, heartbeats, statuses, configuration.

Runs under CPython and in the MicroPython VM; both transcripts must match.
`probe` (optional) is called at every step, e.g. to sample the heap.
"""
from boards.sim.board import SimBoard
from evse.station import Station
from evse.storage import FileStorage

from scenarios.scripted import ScriptedCsms
from scenarios.vclock import VirtualClock


def run(data_dir, probe=None):
    clock = VirtualClock()
    st = Station(board=SimBoard(serial="VM-0001"), clock=clock, storage=FileStorage(data_dir))
    cs = ScriptedCsms(st, clock)
    if probe:
        probe("boot")
        cs.probe = probe
        cs.record = False  # measure the station, not the test's transcript
    cs.boot_plan = ["Pending"]
    st.connected(clock.ms())
    cs.pump()
    # While Pending the CSMS may read and change configuration (OCPP 1.6 4.2).
    cs.call("g1", "GetConfiguration", {"key": ["HeartbeatInterval", "NoSuchKey"]})
    cs.run_for(2500)  # the boot is retried after the 2 s interval, now Accepted
    if probe:
        probe("accepted")
    cs.run_for(25000)  # heartbeats every 10 s
    cs.call("c1", "ChangeConfiguration", {"key": "HeartbeatInterval", "value": "5"})
    cs.call("c2", "ChangeConfiguration", {"key": "HeartbeatInterval", "value": "x"})
    cs.call("c3", "ChangeConfiguration", {"key": "NumberOfConnectors", "value": "2"})
    cs.call("g2", "GetConfiguration", {"key": ["HeartbeatInterval", "NumberOfConnectors"]})
    cs.call("u1", "FooBar", {})
    cs.run_for(12000)
    if probe:
        probe("end")
    return cs.transcript
