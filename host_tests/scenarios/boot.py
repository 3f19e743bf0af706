"""Boot scenario: Pending then Accepted, heartbeats, statuses, configuration.

Runs under CPython and in the MicroPython VM; both transcripts must match.
`steps()` yields between steps so tools/memreport.py can measure the heap.
"""
from boards.sim.board import SimBoard
from evse.station import Station
from evse.store.storage import FileStorage

from scenarios.scripted import ScriptedCsms, run_scenario
from scenarios.vclock import VirtualClock


def run(data_dir):
    return run_scenario(steps, data_dir)


def steps(data_dir, out, measuring=False):
    """The scenario as a generator: each yield is one step (for memreport)."""
    clock = VirtualClock()
    st = Station(board=SimBoard(serial="VM-0001"), clock=clock, storage=FileStorage(data_dir))
    cs = ScriptedCsms(st, clock)
    cs.record = not measuring  # measure the station, not the test's transcript
    out.append(cs)
    cs.boot_plan = ["Pending"]
    st.connected(clock.ms())
    cs.pump()
    # While Pending the CSMS may read and change configuration (OCPP 1.6 4.2).
    yield
    cs.call("g1", "GetConfiguration", {"key": ["HeartbeatInterval", "NoSuchKey"]})
    yield from cs.run_steps(2500)  # the boot is retried after the 2 s interval, now Accepted
    yield from cs.run_steps(25000)  # heartbeats every 10 s
    cs.call("c1", "ChangeConfiguration", {"key": "HeartbeatInterval", "value": "5"})
    cs.call("c2", "ChangeConfiguration", {"key": "HeartbeatInterval", "value": "x"})
    cs.call("c3", "ChangeConfiguration", {"key": "NumberOfConnectors", "value": "2"})
    cs.call("g2", "GetConfiguration", {"key": ["HeartbeatInterval", "NumberOfConnectors"]})
    cs.call("u1", "FooBar", {})
    yield
    yield from cs.run_steps(12000)
