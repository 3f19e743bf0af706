"""A station on real MicroPython (the unix port, e.g. built 32-bit with the
core frozen), run by tools/mcucheck.py under `-X heapsize=N`:

    micropython -X heapsize=N tools/mcu_station.py KIND URL DATA [CA] [LIB]

KIND  imports  import the core and the board, print the heap, exit
      sim      the sim board, Station + Runtime against URL
      device   firmware/main.py's run() with the ESP32 board on its fakes;
               a Hard reset rebuilds board and core like an MCU restart
URL   ws://127.0.0.1:PORT/ocpp or wss://...; the station id is "MCU1"
DATA  the storage directory (emptied by the caller)
CA    PEM file of the CSMS root for wss ("-" for none)
LIB   a directory put first on sys.path (.mpy files instead of frozen ones)

The CSMS drives the run: DataTransfer vendorId "mcucheck" with messageId
  mem      -> data "alloc free faults" after gc.collect()
  board    -> data is a board command ("plug", "card TAG", ...) (sim)
  samples  -> data N: N StopTxnSampledData values into the running transaction
  exit     -> the process ends (status 0) once the answer is out
Every log line is printed; "MEM <stage> <bytes>" lines carry figures.
"""
import asyncio
import gc
import sys

KIND, URL, DATA = sys.argv[1], sys.argv[2], sys.argv[3]
CA = sys.argv[4] if len(sys.argv) > 4 and sys.argv[4] != "-" else None
if len(sys.argv) > 5:
    sys.path.insert(0, sys.argv[5])
gc.collect()
BASE = gc.mem_alloc()  # type: ignore[attr-defined]  # MicroPython's gc
print("MEM start", BASE)


def log(level, text):
    print("LOG", level, text)


def mem():
    gc.collect()
    return gc.mem_alloc()  # type: ignore[attr-defined]


def imports():
    from evse import runtime  # noqa: F401
    from evse.link import tls, wsconn  # noqa: F401
    from evse.wire import jsonstream, rpc  # noqa: F401
    from evse.station import FEATURES, Station  # noqa: F401

    for f in FEATURES:
        __import__("evse." + f)
    from boards.sim.board import SimBoard  # noqa: F401


RT = [None]  # the running Runtime (device path: main.run's cores[0])


def trace_hooks():
    """MCU_TRACE=1: a hook that raises, and the link's reader when it dies,
    print the traceback (where a MemoryError came from) before the station
    logs it as usual."""
    from evse.station import Station

    run = Station._run

    def _run(self, fn, *args):
        def shown(st, *a):
            try:
                fn(st, *a)
            except Exception as e:
                sys.print_exception(e)  # type: ignore[attr-defined]
                raise
        return run(self, shown, *args)
    Station._run = _run
    from evse.link.wsconn import WsConnection

    died = WsConnection._died

    def _died(self, e):
        sys.print_exception(e)  # type: ignore[attr-defined]
        return died(self, e)
    WsConnection._died = _died


def vendor(st, msg, data):
    if msg == "mem":
        rt = RT[0]
        free = gc.mem_free()  # type: ignore[attr-defined]
        return "Accepted", "%d %d %d" % (mem(), free, rt.faults if rt is not None else -1)
    if msg == "info":  # the heap's layout (max free block) on stdout
        import micropython

        gc.collect()
        micropython.mem_info()
        return "Accepted", None
    if msg == "board":
        args = (data or "").split()
        err = st.board.command(args[0], args[1:])
        if RT[0] is not None:
            RT[0].poke()
        return ("Rejected", err) if err else ("Accepted", None)
    if msg == "samples":
        from evse import metervalues

        c = st.connectors[1]
        if c.tx is None:
            return "Rejected", "no transaction"
        for _ in range(int(data)):
            c.tx.data.add(metervalues._value(st, c, "StopTxnSampledData", "Sample.Periodic",
                                             metervalues._read(st, c)))
        return "Accepted", str(len(c.tx.data.items))
    if msg == "exit":
        st.reboot = "Exit"
        return "Accepted", None
    return "UnknownMessageId", None


def ssl_ctx():
    if CA is None:
        return None
    from evse.link import tls

    with open(CA, "rb") as f:
        return tls.client_context(f.read())


async def sim():
    from boards.sim.board import SimBoard
    from evse.clock import SystemClock
    from evse.runtime import Runtime
    from evse.station import Station
    from evse.store.storage import FileStorage

    board = SimBoard(serial="MCU1", overrides={
        "StopTxnSampledDataMaxLength": "20", "ChargingScheduleMaxPeriods": "192",
        "StopTxnSampledData": "Energy.Active.Import.Register,Power.Active.Import,Current.Import,Voltage"})
    st = Station(board=board, clock=SystemClock(), storage=FileStorage(DATA), log=log)
    st.vendors["mcucheck"] = vendor
    rt = RT[0] = Runtime(st, URL, "MCU1", ssl=ssl_ctx(), backoff_ms=(200, 1000))
    kind = await rt.run()
    print("END", kind, rt.faults)


def fake_board():
    import fakes  # host_tests/fakes.py (frozen beside the boards in the unix build)
    from boards.esp32.board import Esp32Board

    line = fakes.FakePilotLine()
    coil = fakes.FakePin()
    meter = fakes.FakeBl0942()
    rf = fakes.FakeMfrc522()
    parts = fakes.FakeParts({"pilot_pwm": line.pwm, "pilot_adc": line.adc, "relay": coil,
                             "relay_fb": fakes.MirrorPin(coil), "meter_uart": meter,
                             "rfid_spi": rf, "rfid_cs": rf.cs})
    return Esp32Board(parts=parts, serial="MCU1")


async def follow(cores):
    """RT follows the core main.run is running."""
    while True:
        RT[0] = cores[0]
        await asyncio.sleep_ms(20)


async def device():
    import main
    from boards.esp32 import board as mod
    from evse.clock import SystemClock

    main.DATA = DATA
    make = main.make_station

    def station(board, cfg, clock):
        st = make(board, cfg, clock)
        st.vendors["mcucheck"] = vendor
        return st
    main.make_station = station
    cfg = {"url": URL, "id": "MCU1", "ca": CA}
    boots = 0
    while True:
        boots += 1
        cores = [None, False]
        RT[0] = None
        t = asyncio.create_task(follow(cores))
        kind = await main.run(mod, fake_board(), cfg, SystemClock(), cores=cores)
        t.cancel()
        print("END", kind, boots)
        if kind != "Hard":
            return
        print("MEM hard-reset", mem())  # an MCU restart frees everything: the next boot starts over


def main_():
    if KIND == "imports":
        imports()
        print("MEM imports", mem() - BASE)
        return
    imports()
    print("MEM imports", mem() - BASE)
    if __import__("os").getenv("MCU_TRACE"):
        trace_hooks()
    asyncio.run(sim() if KIND == "sim" else device())


main_()
