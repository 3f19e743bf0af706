"""A full card-first charging session with meter values.

Runs under CPython and in the MicroPython VM; both transcripts must match.
"""
from boards.sim.board import SimBoard
from evse.station import Station
from evse.storage import FileStorage

from scenarios.scripted import ScriptedCsms
from scenarios.vclock import VirtualClock


def run(data_dir, probe=None):
    clock = VirtualClock()
    board = SimBoard(serial="VM-0002", ev_max_da=160)
    st = Station(board=board, clock=clock, storage=FileStorage(data_dir))
    cs = ScriptedCsms(st, clock)
    cs.tags = {"04A2B3C4": "Accepted"}
    if probe:
        cs.probe = probe
        cs.record = False
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

    do("card", "04A2B3C4")
    cs.run_for(5000)
    do("plug")
    cs.run_for(30 * 60 * 1000)  # half an hour at 16 A
    do("ev-suspend")
    cs.run_for(120 * 1000)
    do("ev-resume")
    cs.run_for(10 * 60 * 1000)
    do("card", "04A2B3C4")
    do("unplug")
    cs.run_for(5000)
    return cs.transcript
