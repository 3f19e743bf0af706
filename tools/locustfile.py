"""Locust users that are charging stations: the real firmware core each.

    locust -f tools/locustfile.py -H ws://127.0.0.1:9000/ocpp --headless -u 1000 -r 100 -t 60s
    locust -f tools/locustfile.py -H ws://... --master --expect-workers 2 ...   # + N x --worker

Each user is one station (tools/geventstation.py) following a fleet scenario
(--ocpp-scenario, the `--fleet` format): its people, outages and power cuts.
Locust's -u / -r / -t take the place of the scenario's stations, ramp and
duration. Every CALL a station sends is a request (type OCPP, name = the
action, time = the CSMS round trip); CSMS CALLs are type OCPP-CSMS, connects
type WS. Workers also report their own cost (CPU, RSS, stations, frames);
--ocpp-report FILE writes it, per worker, as JSON when the run ends.
See docs/SIMULATOR.md.
"""
from __future__ import annotations

import itertools
import json
import os
import sys
import time
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _p in (os.path.join(ROOT, "firmware"), ROOT, os.path.join(ROOT, "tools")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import gevent  # noqa: E402
from locust import User, events, task  # noqa: E402
from locust import runners  # noqa: E402
from locust.runners import MasterRunner  # noqa: E402

import fleet  # noqa: E402
from fleetscenario import load_scenario  # noqa: E402
from fleetstats import rss_bytes  # noqa: E402
from geventstation import GeventStation  # noqa: E402

# A worker booting thousands of stations on a busy machine can miss Locust's
# 1 s heartbeats for many seconds (seen: over 15 on this shared 2-core machine);
# after the default 3 the master marks it
# missing and moves its users to the others (read at run time, so this holds).
runners.HEARTBEAT_LIVENESS = max(runners.HEARTBEAT_LIVENESS, 60)

_numbers = itertools.count(1)
_scenarios: dict[str, tuple[dict[str, Any], dict[str, str]]] = {}  # path -> (scenario, seeds), read once
_alive: set[GeventStation] = set()


@events.init_command_line_parser.add_listener
def _args(parser: Any) -> None:
    parser.add_argument("--ocpp-scenario", default=os.path.join(ROOT, "tools", "scenarios", "demo.json"),
                        help="fleet scenario JSON (docs/SIMULATOR.md); -u/-r/-t replace its size and times")
    parser.add_argument("--ocpp-prefix", default="", help="identities <prefix>-<worker>-<n> (default: the scenario's)")
    parser.add_argument("--ocpp-flash", default="mem",
                        help="'mem' (default): each station's flash in memory; else a folder for data folders")
    parser.add_argument("--ocpp-report", default="", help="write the per-worker station report (JSON) here at the end")


class Cost:
    """This process's side: CPU, memory, station-seconds, frames (sent to the master)."""

    def __init__(self) -> None:
        self.t = time.monotonic()
        self.cpu0 = time.process_time()
        self.station_s = 0.0
        self.rss0 = self.rss_peak = rss_bytes()
        self.stations_peak = 0
        self.gone = [0, 0, 0, 0]  # sent, received, sessions, ticks of stations that stopped

    def tick(self) -> None:
        """Once a second: station-seconds so far, peaks."""
        now = time.monotonic()
        self.station_s += len(_alive) * (now - self.t)
        self.t = now
        self.stations_peak = max(self.stations_peak, len(_alive))
        self.rss_peak = max(self.rss_peak, rss_bytes())

    def retire(self, s: GeventStation) -> None:
        _alive.discard(s)
        for i, n in enumerate((s.sent, s.received, s.sessions, s.ticks)):
            self.gone[i] += n

    def mark(self) -> None:
        """All users are spawned: what follows is the steady state."""
        self.steady0 = (time.monotonic(), *self._counts())

    def _counts(self) -> tuple[float, float, int, int]:
        alive = list(_alive)
        return (time.process_time(), self.station_s, self.gone[0] + self.gone[1] +
                sum(s.sent + s.received for s in alive), self.gone[3] + sum(s.ticks for s in alive))

    def steady(self) -> dict[str, Any]:
        """CPU per station-second, per frame and per tick since mark(), frames and ticks per second."""
        if not getattr(self, "steady0", None):
            return {}
        t0, cpu0, ss0, f0, k0 = self.steady0
        cpu, ss, f, k = self._counts()
        dt = max(1e-6, time.monotonic() - t0)
        return {"steady_s": round(dt, 1), "steady_cpu_pct": round(100 * (cpu - cpu0) / dt, 1),
                "steady_cpu_us_per_station_s": round(1e6 * (cpu - cpu0) / max(1e-6, ss - ss0), 1),
                "steady_cpu_us_per_frame": round(1e6 * (cpu - cpu0) / max(1, f - f0), 1),
                "steady_frames_per_s": round((f - f0) / dt, 1), "steady_ticks_per_s": round((k - k0) / dt, 1)}

    def sample(self) -> dict[str, Any]:
        self.tick()
        alive = list(_alive)
        return {**self.steady(), "stations": len(alive), "stations_peak": self.stations_peak,
                "connected": sum(1 for s in alive if s.sock is not None),
                "cpu_s": round(time.process_time() - self.cpu0, 3), "station_s": round(self.station_s, 1),
                "rss_mb": round(rss_bytes() / 2**20, 1), "rss0_mb": round(self.rss0 / 2**20, 1),
                "rss_peak_mb": round(self.rss_peak / 2**20, 1),
                "sent": self.gone[0] + sum(s.sent for s in alive),
                "received": self.gone[1] + sum(s.received for s in alive),
                "sessions": self.gone[2] + sum(s.sessions for s in alive),
                "ticks": self.gone[3] + sum(s.ticks for s in alive)}


def _ticker() -> None:
    while True:
        gevent.sleep(1)
        _cost.tick()


_cost = Cost()
_workers: dict[str, dict[str, Any]] = {}  # master: client id -> the last report, plus requests seen


def _index(env: Any) -> int:
    return int(getattr(env.runner, "worker_index", 0) or 0)


@events.spawning_complete.add_listener
def _spawned(user_count: int, **_: Any) -> None:
    _cost.mark()


@events.report_to_master.add_listener
def _to_master(client_id: str, data: dict[str, Any]) -> None:
    data["ocpp"] = dict(_cost.sample(), index=_index(_env()))


@events.worker_report.add_listener
def _from_worker(client_id: str, data: dict[str, Any]) -> None:
    w = _workers.setdefault(client_id, {"requests": 0, "failures": 0})
    w["requests"] += sum(e.get("num_requests", 0) for e in data.get("stats", []))
    w["failures"] += sum(e.get("num_failures", 0) for e in data.get("stats", []))
    if "ocpp" in data:
        w.update(data["ocpp"])


@events.quitting.add_listener
def _at_end(environment: Any, **_: Any) -> None:
    if isinstance(environment.runner, MasterRunner):
        workers = _workers
    elif environment.parsed_options is not None and environment.parsed_options.worker:
        return  # the master writes the report
    else:
        s = environment.runner.stats.total
        workers = {"local": dict(_cost.sample(), index=0, requests=s.num_requests, failures=s.num_failures)}
    for w in workers.values():
        if w.get("stations_peak"):
            w["kb_per_station"] = round(1024 * (w["rss_peak_mb"] - w["rss0_mb"]) / w["stations_peak"], 1)
        if w.get("station_s"):
            w["cpu_us_per_station_s"] = round(1e6 * w["cpu_s"] / w["station_s"], 1)
        if w.get("sent"):
            w["cpu_us_per_frame"] = round(1e6 * w["cpu_s"] / (w["sent"] + w["received"]), 1)
        sys.stderr.write(f"ocpp worker {w.get('index')}: {json.dumps(w, sort_keys=True)}\n")
    path = environment.parsed_options.ocpp_report if environment.parsed_options else ""
    if path:
        with open(path, "w") as f:
            json.dump({"workers": workers}, f, indent=1, sort_keys=True)


_ENV: list[Any] = []


@events.init.add_listener
def _init(environment: Any, **_: Any) -> None:
    _ENV.append(environment)
    if not isinstance(environment.runner, MasterRunner):
        gevent.spawn(_ticker)


def _env() -> Any:
    return _ENV[-1]


class StationUser(User):
    """One charging station; it runs until Locust stops the user."""

    def on_start(self) -> None:
        opts = self.environment.parsed_options
        path = opts.ocpp_scenario if opts else ""
        if path not in _scenarios:
            sc = load_scenario(path or None)
            _scenarios[path] = (sc, fleet.seeds_for(sc, {}))
        sc, seeds = _scenarios[path]
        prefix = (opts.ocpp_prefix if opts else "") or sc["prefix"]
        ident = f"{prefix}-{_index(self.environment)}-{next(_numbers):05d}"
        flash = opts.ocpp_flash if opts else "mem"
        data = None if flash == "mem" else os.path.join(flash, ident)
        if not self.host:
            raise ValueError("give the CSMS endpoint with -H ws://host:port/path")
        self.station = GeventStation(ident, sc, seeds, self.host, self._report, data)

    def _report(self, kind: str, name: str, ms: float, length: int, error: Exception | None) -> None:
        self.environment.events.request.fire(request_type=kind, name=name, response_time=ms,
                                             response_length=length, exception=error, context={})

    @task
    def live(self) -> None:
        _alive.add(self.station)
        try:
            self.station.run()
        finally:
            _cost.retire(self.station)

    def on_stop(self) -> None:
        self.station.stop()
