"""A full card-first charging session with meter values.

Runs under CPython and in the MicroPython VM; both transcripts must match.
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
    board = SimBoard(serial="VM-0002", ev_max_da=160)
    st = Station(board=board, clock=clock, storage=FileStorage(data_dir))
    cs = ScriptedCsms(st, clock)
    cs.tags = {"04A2B3C4": "Accepted"}
    cs.record = not measuring
    out.append(cs)
    st.connected(clock.ms())
    cs.pump()
    for key, value in (("MeterValueSampleInterval", "60"),
                       ("MeterValuesSampledData", "Energy.Active.Import.Register,Power.Active.Import,"
                                                  "Current.Import,Voltage,SoC"),
                       ("StopTxnSampledData", "Energy.Active.Import.Register"),
                       ("ClockAlignedDataInterval", "900")):
        cs.call("c-" + key, "ChangeConfiguration", {"key": key, "value": value})

    def do(cmd, *args):
        board.command(cmd, list(args))
        st.tick(clock.ms())
        cs.pump()

    yield
    do("card", "04A2B3C4")
    yield from cs.run_steps(5000)
    do("plug")
    yield from cs.run_steps(30 * 60 * 1000)  # half an hour at 16 A
    do("ev-suspend")
    yield from cs.run_steps(120 * 1000)
    do("ev-resume")
    yield from cs.run_steps(10 * 60 * 1000)
    do("card", "04A2B3C4")
    yield
    do("unplug")
    yield from cs.run_steps(5000)
