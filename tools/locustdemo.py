"""A distributed Locust run on this machine: a master, N workers, the bundled CSMS.

    .venv/bin/python tools/locustdemo.py [--workers 2] [--users 1000] [--rate 100] [--seconds 60]
                                         [--scenario FILE] [--url ws://...] [--csv PREFIX] [--report FILE]

Everything listens on loopback only. The master runs headless with
--expect-workers and a time limit, so the run ends by itself; its summary
(Locust's tables, then one `ocpp worker` line per worker) goes to this
process's output. Without --url the bundled CSMS runs in its own process.
`make locust-demo` runs it; host_tests/test_locust.py runs a small one.
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))

from fleet import start_csms  # noqa: E402
from fleetstats import cpu_seconds  # noqa: E402
from fleetscenario import load_scenario  # noqa: E402

LOCUSTFILE = os.path.join(ROOT, "tools", "locustfile.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def locust_cmd() -> list[str]:
    return [sys.executable, "-m", "locust", "-f", LOCUSTFILE]


def run(a: argparse.Namespace) -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # the workers and the CSMS are ended too
    csms, url = None, a.url
    if not url:
        sc = load_scenario(a.scenario)
        csms, url = start_csms(sc["cards"], sc["heartbeat_s"])
    port = free_port()
    workers = []
    try:
        for _ in range(a.workers):
            workers.append(subprocess.Popen(locust_cmd() + ["--worker", "--master-host", "127.0.0.1",
                                                            "--master-port", str(port), "-L", "WARNING"]))
        master = locust_cmd() + [
            "--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
            "--expect-workers", str(a.workers), "--expect-workers-max-wait", "60",
            "-H", url, "-u", str(a.users), "-r", str(a.rate), "-t", f"{a.seconds}s",
            "--stop-timeout", "2", "--exit-code-on-error", "0", "--ocpp-scenario", a.scenario]
        if a.web:
            master += ["--web-host", "127.0.0.1", "--web-port", str(a.web), "--autostart", "--autoquit", "5"]
        else:
            master += ["--headless", "--only-summary"]
        if a.csv:
            master += ["--csv", a.csv]
        if a.report:
            master += ["--ocpp-report", a.report]
        if a.reset_stats:
            master += ["--reset-stats"]
        sys.stderr.write(f"locust: a master and {a.workers} workers, {a.users} stations -> {url} "
                         f"for {a.seconds} s\n")
        t0 = time.monotonic()
        rc = subprocess.run(master, timeout=a.seconds + 120).returncode
        if csms is not None:
            cpu = cpu_seconds(csms.pid)
            sys.stderr.write(f"bundled CSMS process: {cpu:.1f} s CPU in {time.monotonic() - t0:.0f} s "
                             f"= {100 * cpu / (time.monotonic() - t0):.0f}% of one core\n")
        return rc
    finally:
        deadline = time.monotonic() + 10
        for w in workers:  # they quit with the master; a straggler is ended
            _end(w, max(0.1, deadline - time.monotonic()))
        if csms is not None:
            _end(csms, 0)


def _end(p: subprocess.Popen[Any], grace_s: float) -> None:
    """Wait grace_s, then SIGTERM, then (a worker stopping thousands of users is slow) SIGKILL."""
    for step in (None, p.terminate, p.kill):
        if step is not None:
            step()
        try:
            p.wait(grace_s if step is None else 10)
            return
        except subprocess.TimeoutExpired:
            continue


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="a distributed Locust run of stations on this machine")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--users", type=int, default=1000, help="stations (Locust users)")
    ap.add_argument("--rate", type=float, default=100, help="stations started per second")
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--scenario", default=os.path.join(ROOT, "tools", "scenarios", "demo.json"))
    ap.add_argument("--url", help="an external CSMS (default: the bundled one, in its own process)")
    ap.add_argument("--csv", metavar="PREFIX", help="Locust's CSV files")
    ap.add_argument("--report", metavar="FILE", help="the per-worker station report (JSON)")
    ap.add_argument("--reset-stats", action="store_true", help="Locust's stats from the end of the ramp on")
    ap.add_argument("--web", type=int, metavar="PORT", help="with Locust's web UI on 127.0.0.1:PORT")
    return run(ap.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
