"""Fleet mode measurements: message rates, CSMS latency per action, CPU and memory.

One `Stats` for the whole fleet; every station's trace hook feeds `frame()`.
`tick()` closes one second (a report row); `summary()` is the end report.
"""
from __future__ import annotations

import csv
import os
import random
import time
from typing import IO, Any

_SAMPLES_MAX = 100000  # latency samples kept per action (reservoir beyond that)
CSV_FIELDS = ("t_s", "connected", "stations", "sent_per_s", "recv_per_s", "callerrors", "reconnects",
              "p50_ms", "p99_ms", "max_ms", "core_cpu_pct", "process_cpu_pct", "rss_mb")


def rss_bytes() -> int:
    """Resident set size of this process (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of another process (Linux /proc; 0.0 elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def percentile(sorted_vals: list[float], q: float) -> float:
    if not sorted_vals:
        return 0.0
    i = min(len(sorted_vals) - 1, max(0, int(round(q * (len(sorted_vals) - 1)))))
    return sorted_vals[i]


class Stats:
    def __init__(self, stations: int) -> None:
        self.stations = stations
        self.connected = 0
        self.sent = self.recv = 0
        self.callerrors_sent = self.callerrors_recv = 0
        self.reconnects = 0
        self.timeouts = 0
        self.core_s = 0.0  # time inside the station cores' inputs (receive, tick, link events)
        self.lat: dict[str, list[float]] = {}
        self.lat_n: dict[str, int] = {}
        self.rng = random.Random(0)
        self.rows: list[dict[str, Any]] = []
        self._sec: list[float] = []  # this second's latencies
        self._last = (0, 0, 0, 0)  # sent, recv, callerrors, reconnects at the previous tick
        self._t0 = self._tw = time.monotonic()
        self._cpu0 = self._cpu = time.process_time()
        self._core_prev = 0.0
        self.rss0 = rss_bytes()
        self.rss_peak = self.rss0

    # -- fed by the stations --
    def latency(self, action: str, ms: float) -> None:
        n = self.lat_n.get(action, 0) + 1
        self.lat_n[action] = n
        vals = self.lat.setdefault(action, [])
        if len(vals) < _SAMPLES_MAX:
            vals.append(ms)
        else:  # reservoir sampling keeps the percentiles honest on long runs
            j = self.rng.randrange(n)
            if j < _SAMPLES_MAX:
                vals[j] = ms
        self._sec.append(ms)

    # -- once a second --
    def tick(self) -> dict[str, Any]:
        now, cpu = time.monotonic(), time.process_time()
        dt = max(1e-6, now - self._tw)
        sent, recv = self.sent, self.recv
        errs = self.callerrors_sent + self.callerrors_recv
        sec = sorted(self._sec)
        rss = rss_bytes()
        self.rss_peak = max(self.rss_peak, rss)
        row = {
            "t_s": round(now - self._t0, 1), "connected": self.connected, "stations": self.stations,
            "sent_per_s": round((sent - self._last[0]) / dt, 1), "recv_per_s": round((recv - self._last[1]) / dt, 1),
            "callerrors": errs - self._last[2], "reconnects": self.reconnects - self._last[3],
            "p50_ms": round(percentile(sec, 0.5), 1), "p99_ms": round(percentile(sec, 0.99), 1),
            "max_ms": round(sec[-1], 1) if sec else 0.0,
            "core_cpu_pct": round(100 * (self.core_s - self._core_prev) / dt, 1),
            "process_cpu_pct": round(100 * (cpu - self._cpu) / dt, 1), "rss_mb": round(rss / 2**20, 1),
        }
        self._last = (sent, recv, errs, self.reconnects)
        self._tw, self._cpu, self._core_prev, self._sec = now, cpu, self.core_s, []
        self.rows.append(row)
        return row

    def line(self, row: dict[str, Any]) -> str:
        return (f"[{row['t_s']:6.1f}s] connected {row['connected']}/{row['stations']}  "
                f"sent {row['sent_per_s']:7.1f}/s  recv {row['recv_per_s']:7.1f}/s  "
                f"latency p50 {row['p50_ms']:.1f} p99 {row['p99_ms']:.1f} max {row['max_ms']:.1f} ms  "
                f"CALLERRORs {row['callerrors']}  reconnects {row['reconnects']}  "
                f"core {row['core_cpu_pct']:.1f}%  process {row['process_cpu_pct']:.1f}%  rss {row['rss_mb']} MB")

    # -- at the end --
    def actions(self) -> list[dict[str, Any]]:
        out = []
        for action in sorted(self.lat):
            v = sorted(self.lat[action])
            out.append({"action": action, "n": self.lat_n[action], "p50_ms": round(percentile(v, 0.5), 1),
                        "p99_ms": round(percentile(v, 0.99), 1), "max_ms": round(v[-1], 1)})
        return out

    def summary(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        wall = max(1e-6, time.monotonic() - self._t0)
        cpu = time.process_time() - self._cpu0
        s = {
            "stations": self.stations, "connected": self.connected, "wall_s": round(wall, 1),
            "sent": self.sent, "received": self.recv,
            "sent_per_s": round(self.sent / wall, 1), "recv_per_s": round(self.recv / wall, 1),
            "callerrors_sent": self.callerrors_sent, "callerrors_received": self.callerrors_recv,
            "timeouts": self.timeouts, "reconnects": self.reconnects,
            "core_cpu_s": round(self.core_s, 2), "process_cpu_s": round(cpu, 2),
            "core_cpu_pct_of_core": round(100 * self.core_s / wall, 1),
            "process_cpu_pct_of_core": round(100 * cpu / wall, 1),
            "core_share_of_process_pct": round(100 * self.core_s / cpu, 1) if cpu else 0.0,
            "rss_peak_mb": round(self.rss_peak / 2**20, 1),
            "latency": self.actions(),
        }
        s.update(extra or {})
        return s

    def write_csv(self, path: str) -> None:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=CSV_FIELDS)
            w.writeheader()
            w.writerows(self.rows)
        with open(os.path.splitext(path)[0] + "-latency.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=("action", "n", "p50_ms", "p99_ms", "max_ms"))
            w.writeheader()
            w.writerows(self.actions())


def print_summary(s: dict[str, Any], out: IO[str]) -> None:
    p = lambda text: out.write(text + "\n")  # noqa: E731
    p(f"fleet: {s['stations']} stations for {s['wall_s']} s; connected at the end {s['connected']}")
    p(f"messages: sent {s['sent']} ({s['sent_per_s']}/s), received {s['received']} ({s['recv_per_s']}/s)")
    p(f"CALLERRORs: sent {s['callerrors_sent']}, received {s['callerrors_received']}; "
      f"timeouts {s['timeouts']}; reconnects {s['reconnects']}")
    for k in ("sessions", "power_cuts", "offline_periods", "core_errors"):
        if k in s:
            p(f"{k.replace('_', ' ')}: {s[k]}")
    p(f"CPU: station cores {s['core_cpu_s']} s = {s['core_cpu_pct_of_core']}% of one core "
      f"({s['core_share_of_process_pct']}% of this process); whole process {s['process_cpu_s']} s = "
      f"{s['process_cpu_pct_of_core']}% of one core")
    if "csms_cpu_s" in s:
        p(f"bundled CSMS process: {s['csms_cpu_s']} s CPU")
    p(f"memory: peak RSS {s['rss_peak_mb']} MB; {s.get('kb_per_station', '?')} KB per station "
      f"(RSS growth after all stations started / stations); one idle core holds "
      f"{s.get('core_heap_kb', '?')} KB of Python heap (tracemalloc)")
    p(f"{'CSMS latency per action':<28}{'n':>8}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for a in s["latency"]:
        p(f"  {a['action']:<26}{a['n']:>8}{a['p50_ms']:>9}{a['p99_ms']:>9}{a['max_ms']:>9}")
    if s.get("csv"):
        p(f"csv: {s['csv']}")
