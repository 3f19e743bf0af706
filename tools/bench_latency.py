"""Latency of the four KPIs, this station against the station a user would
build instead, both against the same real CSMS on loopback.

The dev CSMS (ocpp package) runs here; each station runs in its own process
with the same command line: tools/sim.py (this firmware core on the host)
and tools/bench_peer.py (a minimal charge point on the `ocpp` package).
Rounds alternate the two (sim, peer, peer, sim, ...), so both see the same
machine load. Times are taken at the CSMS from its frame log:
  1. GetConfiguration(HeartbeatInterval) sent -> its CALLRESULT received
  2. TriggerMessage(Heartbeat) sent -> the Heartbeat.req received
  3. RemoteStartTransaction sent -> StartTransaction.req received (EV plugged)
  4. RemoteStopTransaction sent -> StopTransaction.req received
Prints p50 / p99 per station and the ratio sim / peer per KPI, with the
certified product's average (certificate HS31007D) for scale.
  --profile FILE: run tools/sim.py under cProfile (pstats to FILE).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import csms as csms_mod  # noqa: E402
from ocpp.v16 import call  # noqa: E402

KPIS = ("GetConfiguration response", "TriggerMessage -> Heartbeat",
        "RemoteStart -> StartTransaction", "RemoteStop -> StopTransaction")
# Certificate HS31007D, "Performance Measurement Result", average (ms).
CERTIFIED = dict(zip(KPIS, (330, 420, 310, 320)))
STATIONS = {"sim": "sim.py", "peer": "bench_peer.py"}


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


class Bench:
    """One station process against a fresh CSMS: `runs` samples per KPI."""

    def __init__(self, station: str, runs: int, profile: str | None = None) -> None:
        self.station = station
        self.runs = runs
        self.profile = profile
        self.csms = csms_mod.Csms(tags={"AA": "Accepted"}, heartbeat=3600)
        self.results: dict[str, list[float]] = {k: [] for k in KPIS}

    def _mark(self) -> int:
        return len(self.csms.log)

    def _first_in(self, since: int, action: str) -> dict[str, Any] | None:
        for e in self.csms.log[since:]:
            m = e["msg"]
            if e["dir"] == "in" and isinstance(m, list) and m[0] == 2 and m[2] == action:
                return e
        return None

    def _out_call(self, since: int, action: str) -> dict[str, Any]:
        return next(e for e in self.csms.log[since:] if e["dir"] == "out" and e["msg"][0] == 2
                    and e["msg"][2] == action)

    async def _wait_in(self, since: int, action: str, timeout: float = 5) -> dict[str, Any]:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            e = self._first_in(since, action)
            if e:
                return e
            await asyncio.sleep(0.0005)
        raise TimeoutError(action)

    async def _answer(self, since: int, uid: str) -> dict[str, Any]:
        """The CSMS's CALLRESULT to the station's CALL `uid`."""
        for _ in range(5000):
            for x in self.csms.log[since:]:
                if x["dir"] == "out" and x["msg"][0] == 3 and x["msg"][1] == uid:
                    return x["msg"][2]
            await asyncio.sleep(0.001)
        raise TimeoutError(uid)

    async def _quiet(self) -> None:
        """Wait until the station's follow-up CALLs (StatusNotification...) are answered."""
        n = -1
        while n != len(self.csms.log):
            n = len(self.csms.log)
            await asyncio.sleep(0.01)

    async def run(self) -> None:
        port = await self.csms.start()
        data = tempfile.mkdtemp(prefix="bench-")
        cmd = [sys.executable]
        if self.profile:
            cmd += ["-m", "cProfile", "-o", self.profile]
        cmd += [os.path.join(HERE, STATIONS[self.station]), "--url", f"ws://127.0.0.1:{port}/ocpp",
                "--id", "BENCH", "--data", data, "--quiet"]
        proc = await asyncio.create_subprocess_exec(*cmd, stdin=asyncio.subprocess.PIPE)
        try:
            await self._wait_in(0, "StatusNotification", 20)
            await asyncio.sleep(0.3)
            assert proc.stdin is not None
            proc.stdin.write(b"plug\n")
            await proc.stdin.drain()
            await asyncio.sleep(0.3)
            await self._calls()
            await self._triggers()
            await self._remote()
            proc.stdin.write(b"quit\n")
            await proc.stdin.drain()
            await asyncio.wait_for(proc.wait(), 10)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            await self.csms.stop()

    async def _calls(self) -> None:
        for _ in range(self.runs):
            since = self._mark()
            await self.csms.call("BENCH", call.GetConfiguration(key=["HeartbeatInterval"]))
            out = self._out_call(since, "GetConfiguration")
            back = next(e for e in self.csms.log[since:] if e["dir"] == "in" and e["msg"][1] == out["msg"][1])
            self.results[KPIS[0]].append(back["t"] - out["t"])

    async def _triggers(self) -> None:
        for _ in range(self.runs):
            since = self._mark()
            res = await self.csms.call("BENCH", call.TriggerMessage(requested_message="Heartbeat"))
            assert res.status == "Accepted", res
            out = self._out_call(since, "TriggerMessage")
            e = await self._wait_in(since, "Heartbeat")
            self.results[KPIS[1]].append(e["t"] - out["t"])
            await self._quiet()

    async def _remote(self) -> None:
        for _ in range(self.runs):
            since = self._mark()
            res = await self.csms.call("BENCH", call.RemoteStartTransaction(id_tag="AA", connector_id=1))
            assert res.status == "Accepted", res
            out = self._out_call(since, "RemoteStartTransaction")
            e = await self._wait_in(since, "StartTransaction")
            self.results[KPIS[2]].append(e["t"] - out["t"])
            tid = (await self._answer(since, e["msg"][1]))["transactionId"]
            await self._quiet()
            for _ in range(100):  # a station still busy with StartTransaction.conf may not know the id yet
                since = self._mark()
                res = await self.csms.call("BENCH", call.RemoteStopTransaction(transaction_id=tid))
                if res.status == "Accepted":
                    break
                await asyncio.sleep(0.02)
            assert res.status == "Accepted", res
            out = self._out_call(since, "RemoteStopTransaction")
            e = await self._wait_in(since, "StopTransaction")
            self.results[KPIS[3]].append(e["t"] - out["t"])
            await self._quiet()


def report(results: dict[str, dict[str, list[float]]]) -> None:
    sim, peer = results.get("sim"), results.get("peer")
    cols = [s for s in ("sim", "peer") if s in results]
    head = f"{'KPI (ms)':33}"
    for s in cols:
        head += f" {s + ' p50':>9} {s + ' p99':>9}"
    if sim and peer:
        head += f" {'p50 ratio':>9} {'p99 ratio':>9} {'sim p99/p50':>11}"
    print(head + f" {'certified avg':>13}")
    for k in KPIS:
        line = f"{k:33}"
        for s in cols:
            ms = [x * 1000 for x in results[s][k]]
            line += f" {pct(ms, 50):9.2f} {pct(ms, 99):9.2f}"
        if sim and peer:
            a, b = [x * 1000 for x in sim[k]], [x * 1000 for x in peer[k]]
            line += f" {pct(a, 50) / pct(b, 50):9.2f} {pct(a, 99) / pct(b, 99):9.2f}" \
                    f" {pct(a, 99) / pct(a, 50):11.2f}"
        print(line + f" {CERTIFIED[k]:13d}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=100, help="samples per KPI per round (default 100)")
    ap.add_argument("--rounds", type=int, default=2, help="rounds per station, alternating (default 2)")
    ap.add_argument("--only", choices=sorted(STATIONS), help="one station, no comparison")
    ap.add_argument("--profile", metavar="FILE", help="cProfile tools/sim.py into FILE (pstats)")
    a = ap.parse_args()
    names = [a.only] if a.only else ["sim", "peer"]
    total: dict[str, dict[str, list[float]]] = {s: {k: [] for k in KPIS} for s in names}
    for r in range(a.rounds):
        order = names if r % 2 == 0 else names[::-1]
        this: dict[str, dict[str, list[float]]] = {}
        for s in order:
            b = Bench(s, a.runs, a.profile if s == "sim" else None)
            asyncio.run(b.run())
            this[s] = b.results
            for k in KPIS:
                total[s][k] += b.results[k]
        print(f"round {r + 1} ({' then '.join(order)}, {a.runs} samples each):")
        report(this)
    if a.rounds > 1:
        print(f"all {a.rounds} rounds:")
        report(total)
    print("machine load (1/5/15 min):", " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
