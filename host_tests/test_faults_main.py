"""The device entry point when things go wrong (issue 13): a core that cannot
go on opens the relay and stops the PWM before the MCU resets, the hardware
watchdog is fed only while the core ticks, repeated crashes at boot enter a
safe mode that keeps the relay open and only talks to the CSMS."""
import asyncio
import sys
import types

import main
import pytest
from ocpp.v16 import call
from test_boards import Hw

from evse.clock import SystemClock
from live import CsmsThread, wait_for


class Machine(types.ModuleType):
    """A fake `machine`: reset() ends main() (SystemExit), WDT counts feeds."""

    def __init__(self):
        super().__init__("machine")
        self.resets = 0
        self.wdts = []
        outer = self

        class WDT:
            def __init__(self, timeout):
                self.timeout, self.feeds = timeout, 0
                outer.wdts.append(self)

            def feed(self):
                self.feeds += 1

        self.WDT = WDT

    def reset(self):
        self.resets += 1
        raise SystemExit("reset")


@pytest.fixture
def device(tmp_path, monkeypatch):
    m = Machine()
    monkeypatch.setitem(sys.modules, "machine", m)
    monkeypatch.setattr(main, "CONFIG", str(tmp_path / "config.json"))
    monkeypatch.setattr(main, "DATA", str(tmp_path / "data"))
    monkeypatch.setattr(main, "CRASHES", str(tmp_path / "crashes.txt"))
    monkeypatch.setattr(main, "BOARD", "esp32")
    monkeypatch.setattr(main, "_PAUSE_MS", 0)
    (tmp_path / "data").mkdir()
    main.provision("ws://127.0.0.1:9/ocpp", "CP1", path=main.CONFIG)
    hw = Hw()
    board = hw.board()
    mod = types.SimpleNamespace(make=lambda cfg, energy: board, wifi=lambda *a, **k: None)
    monkeypatch.setattr(main, "board_module", lambda name: mod)
    return types.SimpleNamespace(m=m, hw=hw, board=board, logs=[], tmp=tmp_path)


def charging(hw):
    """A session as the core drives it: EV in B, PWM on, relay asked for, EV to C."""
    hw.line.ev = "B"
    hw.run(200)
    hw.b.set_relay(1, True)
    hw.b.set_pilot(1, 160)
    hw.run(200)


def test_core_crash_opens_relay_stops_pwm_then_resets(device, monkeypatch):
    seen = {}

    async def crash(mod, board, cfg, clock, wdt=None, safe=False):
        charging(device.hw)
        seen["relay"], seen["pwm"] = device.hw.coil.v, device.hw.line.permille()
        raise MemoryError("core")

    monkeypatch.setattr(main, "run", crash)
    with pytest.raises(SystemExit):
        main.main()
    assert seen == {"relay": 1, "pwm": 266}
    assert device.hw.coil.v == 0 and device.hw.line.permille() in (0, 1000)  # fail safe: no PWM
    assert device.m.resets == 1 and device.m.wdts and device.m.wdts[0].timeout == main._WDT_MS
    assert open(main.CRASHES).read() == "1"  # an unclean boot


def test_repeated_crashes_enter_safe_mode_and_a_clean_reset_leaves_it(device, monkeypatch):
    modes = []

    async def crash(mod, board, cfg, clock, wdt=None, safe=False):
        modes.append(safe)
        if not safe:
            raise MemoryError("core")
        return "Hard"  # the CSMS resets the station in safe mode

    monkeypatch.setattr(main, "run", crash)
    for _ in range(main.SAFE_AFTER + 1):
        with pytest.raises(SystemExit):
            main.main()
    assert modes == [False] * main.SAFE_AFTER + [True]
    assert open(main.CRASHES).read() == "0"  # the reset it asked for was clean
    with pytest.raises(SystemExit):
        main.main()
    assert modes[-1] is False and device.m.resets == main.SAFE_AFTER + 2


class FakeRt:
    def __init__(self):
        self.ok = True
        self.st = types.SimpleNamespace(registration="Accepted")

    def alive(self, now, max_ms):
        return self.ok


def test_watchdog_fed_only_while_the_core_ticks(tmp_path, monkeypatch):
    monkeypatch.setattr(main, "_FEED_MS", 5)
    monkeypatch.setattr(main, "_STABLE_MS", 30)
    path = str(tmp_path / "crashes.txt")
    main.set_boot_count(2, path)
    wdt = Machine().WDT(1000)
    rt = FakeRt()
    cores = [rt, False]

    async def go():
        task = asyncio.create_task(main.watchdog(wdt, cores, SystemClock(), path))
        await asyncio.sleep(0.1)
        fed = wdt.feeds
        rt.ok = False  # the timer loop stopped completing rounds
        await asyncio.sleep(0.05)
        stalled = wdt.feeds
        await asyncio.sleep(0.05)
        cores[0] = None  # between two cores
        await asyncio.sleep(0.03)
        task.cancel()
        return fed, stalled, wdt.feeds

    fed, stalled, end = asyncio.run(go())
    assert fed >= 5 and end == stalled <= fed + 1
    assert open(path).read() == "0"  # ran stable with the boot accepted


def run_device(board, cfg, safe=False):
    """main.run on its own loop in a thread, as the device runs it; returns
    (thread, out): out["kind"] is the reset kind main.run returned."""
    import threading
    out = {}
    loop = asyncio.new_event_loop()

    def runner():
        out["kind"] = loop.run_until_complete(main.run(None, board, cfg, SystemClock(), safe=safe))

    th = threading.Thread(target=runner, daemon=True)
    th.start()
    return th, out


def test_safe_mode_core_over_the_wire(tmp_path, monkeypatch):
    """Safe mode against the real CSMS: it boots and heartbeats, refuses to
    charge (no transaction feature), keeps the relay open, and a Reset from
    the CSMS ends it."""
    monkeypatch.setattr(main, "DATA", str(tmp_path))
    csms = CsmsThread(tags={"AA": "Accepted"}, heartbeat=1)
    hw = Hw()
    board = hw.board()
    th, out = run_device(board, {"url": csms.url, "id": "SAFE1"}, safe=True)
    try:
        csms.wait_call("BootNotification", cp_id="SAFE1", timeout=5)
        csms.wait_call("Heartbeat", cp_id="SAFE1", timeout=4)
        assert csms.call("SAFE1", call.RemoteStartTransaction(id_tag="AA"), timeout=3) is None  # NotSupported
        assert hw.coil.v == 0
        assert csms.call("SAFE1", call.Reset(type="Soft")).status == "Accepted"
        th.join(5)
        assert out["kind"] == "Soft"
    finally:
        csms.stop()
        wait_for(lambda: not th.is_alive(), 5, "runner ended")


VM_FAULTS = """
import asyncio, json, gc
import main
from evse import runtime
from evse.link import wsconn
from evse.link.ws import WsClient, OPEN
out = {}

class Clock:
    t = 0
    def ms(self):
        return Clock.t

class St:
    link = None
    jobs = []
    reboot = None
    clock = Clock()
    config = None
    n = 0
    logs = []
    def log(self, level, text):
        St.logs.append(text)
    def tick(self, now):
        St.n += 1
        Clock.t += 10
        if St.n <= 2:
            raise MemoryError("tick")
    def next_ms(self, now):
        return 1
    def take_frames(self):
        return []
    def take_out(self):
        return []

class Wdt:
    feeds = 0
    def feed(self):
        Wdt.feeds += 1

class Reader:
    def __init__(self, chunks):
        self.chunks = chunks
    async def readinto(self, buf):
        await asyncio.sleep(0)
        if not self.chunks:
            return 0
        c = self.chunks.pop(0)
        if c is None:
            return None
        buf[:len(c)] = c
        return len(c)

class Writer:
    def write(self, d):
        pass
    async def drain(self):
        pass
    def close(self):
        pass
    async def wait_closed(self):
        pass

async def go():
    st = St()
    rt = runtime.Runtime(st, "ws://x/ocpp", "CP")
    t = asyncio.create_task(rt._timer_loop())
    main._FEED_MS = 5
    cores = [rt, False]
    w = asyncio.create_task(main.watchdog(Wdt(), cores, Clock()))
    await asyncio.sleep(0.6)
    rt._stop = True
    t.cancel()
    w.cancel()
    out["timer"] = [rt.faults, St.n > 5, [l for l in St.logs if "timer" in l][:1], Wdt.feeds > 0]
    # the reader: readinto (None = a TLS record not complete), then a fault
    ws = WsClient("h", "/")
    ws.state = OPEN
    frame = bytes([0x81, 5]) + b"hello"
    conn = wsconn.WsConnection(Reader([None, frame[:3], frame[3:]]), Writer(), ws)
    conn._start([])
    out["recv"] = await conn.recv()
    ws2 = WsClient("h", "/")
    ws2.state = OPEN
    def boom(data):
        raise MemoryError("frame")
    ws2.receive_data = boom
    conn2 = wsconn.WsConnection(Reader([b"x"]), Writer(), ws2)
    conn2._start([])
    out["dead"] = [await conn2.recv(), repr(conn2.error), conn2.closed]
    print(json.dumps(out))

await asyncio.create_task(go())
"""


def test_fault_paths_under_micropython_asyncio():
    """The same survival paths in the MicroPython VM's own asyncio."""
    import mpvm
    out = mpvm.run(VM_FAULTS, {"/lib/main.py": open(main.__file__).read()}, timeout=30, run_async=True)
    res = __import__("json").loads(out.strip().splitlines()[-1])
    faults, ticking, log, fed = res["timer"]
    assert faults == 2 and ticking and "MemoryError" in log[0] and fed
    assert res["recv"] == "hello"
    assert res["dead"] == [None, "MemoryError('frame',)", True]


def test_soft_reset_frees_the_old_core_before_building_the_new(tmp_path, monkeypatch):
    """Issue 18: main.run kept the old station while it built the new one, so
    a Soft reset needed two cores' heap at once. When the next core is built
    the old one must be garbage (nothing references it)."""
    import gc
    import weakref

    monkeypatch.setattr(main, "DATA", str(tmp_path))
    csms = CsmsThread(tags={"AA": "Accepted"}, heartbeat=30)
    hw = Hw()
    board = hw.board()
    cfg = {"url": csms.url, "id": "SOFT1"}
    old, alive_at_build = [], []
    built = main.make_station

    def make_station(board, cfg, clock):
        gc.collect()
        alive_at_build.append([r() is not None for r in old])
        st = built(board, cfg, clock)
        old.append(weakref.ref(st))
        return st

    monkeypatch.setattr(main, "make_station", make_station)
    th, out = run_device(board, cfg)
    try:
        csms.wait_call("BootNotification", cp_id="SOFT1", timeout=5)
        assert csms.call("SOFT1", call.Reset(type="Soft")).status == "Accepted"
        wait_for(lambda: len(alive_at_build) == 2, 10, "second core built")
        csms.wait_call("BootNotification", n=2, cp_id="SOFT1", timeout=10)  # the new core is online
        csms.wait_call("StatusNotification", n=4, cp_id="SOFT1", timeout=10)
        assert csms.call("SOFT1", call.Reset(type="Hard")).status == "Accepted"
        th.join(10)
        assert out["kind"] == "Hard"
    finally:
        csms.stop()
        wait_for(lambda: not th.is_alive(), 5, "runner ended")
    assert alive_at_build == [[], [False]]
