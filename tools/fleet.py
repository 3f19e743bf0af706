"""Fleet mode: N virtual stations in one process and one event loop.

    tools/sim.py --fleet 1000 [--url ws://host:port/path] [--scenario FILE] [--duration S] [--csv FILE]

Each station has its own core (`Station`), board, clock, identity
(<prefix>0001...) and data folder, and its own `Runtime`, so the
connection code is the firmware's. A driver per station follows the scenario
(arrivals, session lengths, cards, offline periods, power cuts; format in
docs/SIMULATOR.md). Without --url the bundled CSMS runs in its own process.
Every second a report line; at the end a summary and a CSV (fleetstats.py).
"""
from __future__ import annotations

import asyncio
import gc
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _p in (os.path.join(ROOT, "firmware"), ROOT, os.path.join(ROOT, "tools")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from boards.sim.board import SimBoard  # noqa: E402
from evse.clock import SystemClock  # noqa: E402
from evse.runtime import Runtime  # noqa: E402
from evse.station import Station  # noqa: E402
from evse.store.storage import FileStorage, MemStorage  # noqa: E402
from fleetscenario import DEFAULTS, chaos_steps, driver_steps, load_scenario  # noqa: E402,F401
from fleetstats import Stats, cpu_seconds, print_summary, rss_bytes  # noqa: E402

def seeds_for(sc: dict[str, Any], seeds: dict[str, str]) -> dict[str, str]:
    """Configuration seeded into every station: the scenario's, then the command line's."""
    return {"MeterValueSampleInterval": str(sc["meter_interval_s"]),
            **{k: str(v) for k, v in sc["config"].items()}, **seeds}


def board_for(sc: dict[str, Any], seeds: dict[str, str], ident: str, rng: random.Random) -> SimBoard:
    """One station's simulated hardware, its EV drawn from the scenario."""
    ev = sc["ev"]
    return SimBoard(serial=ident, overrides=seeds, ev_max_da=int(ev["max_a"] * 10),
                    battery_wh=int(ev["battery_kwh"] * 1000), soc=rng.randint(*ev["soc"]))


def ready(st: Any) -> bool:
    """The station can start a session: online, accepted, connector 1 Available."""
    return bool(st is not None and st.online and st.registration == "Accepted" and len(st.connectors) > 1
                and st.connectors[1].status == "Available")


class FleetRuntime(Runtime):
    """The firmware Runtime, plus a switch that keeps the network away (offline periods)."""

    offline_until = 0.0

    async def _session(self) -> None:
        left = self.offline_until - time.monotonic()
        if left > 0:
            await self._sleep_ms(int(left * 1000))
            return
        await super()._session()

    def go_offline(self, seconds: float) -> None:
        self.offline_until = time.monotonic() + seconds
        self.drop_link()



class Member:
    """One virtual station: core, runtime, board, and the driver that uses it."""

    def __init__(self, fleet: "Fleet", n: int) -> None:
        self.fleet, sc = fleet, fleet.sc
        self.ident = f"{sc['prefix']}{n:04d}"
        self.rng = random.Random(f"{sc['seed']}-{n}")
        self.board = board_for(sc, fleet.seeds, self.ident, self.rng)
        self.clock = SystemClock()
        self.data = os.path.join(fleet.data, self.ident)
        # The in-memory flash outlives the core (a reboot reads it back); its
        # root takes no folder: the diagnostics log stays in RAM too.
        self.storage: Any = MemStorage(os.devnull + "/" + self.ident) if fleet.mem_flash else None
        self.station: Any = None
        self.runtime: Any = None
        self.online = False
        self.connects = 0
        self.pending: dict[str, tuple[str, float]] = {}
        self.sessions = 0

    # -- the core --
    def _build(self) -> None:
        st = Station(board=self.board, clock=self.clock, storage=self.storage or FileStorage(self.data),
                     log=self._log, trace=self._trace)
        acc = self.fleet.stats
        for name in ("receive", "tick", "connected", "disconnected"):
            setattr(st, name, _timed(getattr(st, name), acc))
        self.station = st
        self.runtime = FleetRuntime(st, self.fleet.url, self.ident, backoff_ms=(1000, 30000))

    def _log(self, level: str, text: str) -> None:
        if level in ("error", "security") and len(self.fleet.core_errors) < 20:
            self.fleet.core_errors.append(f"{self.ident} {level} {text}")
        if "timed out" in text:
            self.fleet.stats.timeouts += 1

    def _trace(self, ev: dict[str, Any]) -> None:
        s, kind = self.fleet.stats, ev["event"]
        if kind == "sent":
            s.sent += 1
            if ev["type"] == "CALL":
                if len(self.pending) > 8:
                    self.pending.clear()
                self.pending[ev["id"]] = (ev["action"], time.perf_counter())
            elif ev["type"] == "CALLERROR":
                s.callerrors_sent += 1
        elif kind == "received":
            s.recv += 1
            if ev["type"] == "CALLERROR":
                s.callerrors_recv += 1
            if ev["type"] != "CALL":
                p = self.pending.pop(ev["id"], None)
                if p is not None:
                    s.latency(p[0], (time.perf_counter() - p[1]) * 1000)
        elif kind == "connected":
            self.online = True
            s.connected += 1
            self.connects += 1
            if self.connects > 1:
                s.reconnects += 1
        elif kind == "disconnected" and self.online:
            self.online = False
            s.connected -= 1

    async def life(self) -> None:
        """Boot, run; a reboot builds a new core on the same data, like the device."""
        while not self.fleet.stopping:
            self._build()
            self.task = asyncio.ensure_future(self.runtime.run())
            try:
                await self.task
            except asyncio.CancelledError:
                if self.fleet.stopping:
                    return
                await asyncio.sleep(self.cut_s)  # power cut: dark, then a cold boot
            if self.online:  # a cancelled session may not have reported the link loss
                self._trace({"event": "disconnected"})

    # -- the people --
    def cmd(self, *words: str) -> None:
        self.board.command(words[0], list(words[1:]))  # errors (e.g. already plugged) are part of life
        if self.runtime is not None:
            self.runtime.poke()

    def _ready(self) -> bool:
        return ready(self.station)

    async def driver(self) -> None:
        for step in driver_steps(self.fleet.sc, self.rng, self.ident):
            if step[0] == "sleep":
                await asyncio.sleep(min(step[1], 1e6))
            elif step[0] == "ready":
                while not self._ready():
                    await asyncio.sleep(1 + self.rng.random())
            elif step[0] == "session":
                self.sessions += 1
            else:
                self.cmd(*step[1:])

    async def chaos(self) -> None:
        for step in chaos_steps(self.fleet.sc, self.rng):
            if step[0] == "sleep":
                await asyncio.sleep(min(step[1], 1e6))
            elif step[0] == "offline" and self.runtime is not None:
                self.fleet.offline_periods += 1
                self.runtime.go_offline(step[1])
            elif step[0] == "cut" and getattr(self, "task", None) is not None:
                self.fleet.power_cuts += 1
                self.cut_s = step[1]
                if self.runtime is not None:
                    self.runtime.drop_link()
                self.task.cancel()


def core_heap_kb(seeds: dict[str, str]) -> float:
    """Python heap held by one idle station core (Station, board, storage), by tracemalloc."""
    import tracemalloc

    with tempfile.TemporaryDirectory() as d:
        Station(board=SimBoard(overrides=seeds), clock=SystemClock(), storage=FileStorage(d + "/w"))  # imports
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            keep = Station(board=SimBoard(overrides=seeds), clock=SystemClock(), storage=FileStorage(d + "/m"))
            gc.collect()
            used = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        del keep
    return round(used / 1024, 1)


def _timed(fn: Any, stats: Stats) -> Any:
    """Counts the CPU time (not wall time: file syncs block) spent inside a core input."""
    def run(*a: Any) -> Any:
        t = time.thread_time()
        try:
            return fn(*a)
        finally:
            stats.core_s += time.thread_time() - t
    return run


class Fleet:
    def __init__(self, sc: dict[str, Any], url: str, data: str, seeds: dict[str, str],
                 out: Any = sys.stderr, json_out: bool = False, mem_flash: bool = False) -> None:
        self.sc, self.url, self.data, self.out, self.json_out = sc, url, data, out, json_out
        self.mem_flash = mem_flash
        self.seeds = seeds_for(sc, seeds)
        self.stats = Stats(sc["stations"])
        self.stopping = False
        self.core_errors: list[str] = []
        self.power_cuts = self.offline_periods = 0
        self.members: list[Member] = []

    async def run(self) -> dict[str, Any]:
        sc, n = self.sc, self.sc["stations"]
        heap_kb = core_heap_kb(self.seeds)
        tasks: list[asyncio.Future[Any]] = []
        rss0 = rss_bytes()
        t0 = time.monotonic()
        reporter = asyncio.ensure_future(self._report())
        for i in range(1, n + 1):
            m = Member(self, i)
            self.members.append(m)
            tasks += [asyncio.ensure_future(m.life()), asyncio.ensure_future(m.driver()),
                      asyncio.ensure_future(m.chaos())]
            ramp = min(sc["ramp_s"], sc["duration_s"])
            await asyncio.sleep(max(0.0, t0 + ramp * i / n - time.monotonic()))
        rss_started = rss_bytes()
        await asyncio.sleep(max(0.0, t0 + sc["duration_s"] - time.monotonic()))
        reporter.cancel()
        self._emit(self.stats.tick())
        connected = self.stats.connected
        self.stopping = True
        for m in self.members:
            if m.runtime is not None:
                m.runtime.stop()
        await asyncio.sleep(0.2)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return self.stats.summary({
            "connected": connected,
            "kb_per_station": round((rss_started - rss0) / 1024 / max(1, n), 1), "core_heap_kb": heap_kb,
            "sessions": sum(m.sessions for m in self.members),
            "power_cuts": self.power_cuts, "offline_periods": self.offline_periods,
            "core_errors": len(self.core_errors), "core_error_samples": self.core_errors[:5]})

    async def _report(self) -> None:
        while True:
            await asyncio.sleep(1)
            self._emit(self.stats.tick())

    def _emit(self, row: dict[str, Any]) -> None:
        if self.json_out:
            sys.stdout.write(json.dumps(dict(row, event="fleet")) + "\n")
            sys.stdout.flush()
        if self.out is not None:
            self.out.write(self.stats.line(row) + "\n")
            self.out.flush()


def start_csms(tags: list[str], heartbeat: int) -> tuple[subprocess.Popen[str], str]:
    """The bundled CSMS in its own process (its own core); returns (process, url)."""
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "tools", "csms.py"), "--port", "0", "--quiet",
                             "--heartbeat", str(heartbeat), "--log-max", "1000", "--tags", ",".join(tags)],
                            stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    line = proc.stderr.readline()
    if "listening on" not in line:
        proc.kill()
        raise RuntimeError("bundled CSMS did not start: " + line)
    return proc, line.split("listening on ", 1)[1].strip().rstrip("/") + "/ocpp"


def run_from_args(args: Any) -> dict[str, Any]:
    """`tools/sim.py --fleet N ...`: run, print the summary, write the CSV."""
    sc = load_scenario(args.scenario, {"stations": args.fleet, "prefix": args.prefix,
                                       "duration_s": args.duration})
    seeds = dict(kv.split("=", 1) for kv in args.set)
    data = args.data or tempfile.mkdtemp(prefix="fleet-")
    csms, url = None, args.url
    if not url:
        csms, url = start_csms(sc["cards"], sc["heartbeat_s"])
    out = None if args.quiet else sys.stderr
    if out:
        where = "in memory" if getattr(args, "mem_flash", False) else "in " + data
        out.write(f"fleet of {sc['stations']} -> {url} for {sc['duration_s']} s, data {where}\n")
    fleet = Fleet(sc, url, data, seeds, out, args.json, getattr(args, "mem_flash", False))
    try:
        summary = asyncio.run(fleet.run())
    finally:
        if csms is not None:
            summary_cpu = cpu_seconds(csms.pid)
            csms.terminate()
            csms.wait(5)
        if not args.data:
            shutil.rmtree(data, ignore_errors=True)
    if csms is not None:
        summary["csms_cpu_s"] = round(summary_cpu, 2)
    if args.csv:
        fleet.stats.write_csv(args.csv)
        summary["csv"] = args.csv
    return _finish(summary, args)


def _finish(summary: dict[str, Any], args: Any) -> dict[str, Any]:
    if args.json:
        sys.stdout.write(json.dumps(dict(summary, event="fleet-summary")) + "\n")
    print_summary(summary, sys.stdout if not args.json else sys.stderr)
    return summary
