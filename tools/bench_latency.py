"""Latency of the certificate's four KPIs against a real CSMS on loopback.

The dev CSMS (ocpp package) runs here; the station is tools/sim.py in its
own process. Times are taken at the CSMS from its frame log:
  1. response time to a CSMS CALL (GetConfiguration, ChangeAvailability,
     ClearCache in turn): CALL sent -> CALLRESULT received
  2. triggered message: TriggerMessage(StatusNotification) sent -> the
     StatusNotification.req received (skipped if the build lacks it)
  3. RemoteStartTransaction sent -> StartTransaction.req received (EV plugged)
  4. RemoteStopTransaction sent -> StopTransaction.req received
Prints min / p50 / p99 / max in ms beside the certified product's figures.
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

# Certificate HS31007D, "Performance Measurement Result" (seconds: min, max, average).
CERTIFIED = {
    "CALL response": (0.28, 1.61, 0.33),
    "triggered message": (0.31, 0.96, 0.42),
    "RemoteStart -> StartTransaction": (0.31, 0.31, 0.31),
    "RemoteStop -> StopTransaction": (0.32, 0.33, 0.32),
}


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


class Bench:
    def __init__(self, runs: int) -> None:
        self.runs = runs
        self.csms = csms_mod.Csms(tags={"AA": "Accepted"}, heartbeat=3600)
        self.results: dict[str, list[float]] = {k: [] for k in CERTIFIED}

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

    async def _call_timed(self, req: Any) -> tuple[Any, float]:
        since = self._mark()
        res = await self.csms.call("BENCH", req)
        out = self._out_call(since, type(req).__name__)
        back = next(e for e in self.csms.log[since:] if e["dir"] == "in" and e["msg"][1] == out["msg"][1])
        return res, back["t"] - out["t"]

    async def run(self) -> None:
        port = await self.csms.start()
        data = tempfile.mkdtemp(prefix="bench-")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, os.path.join(HERE, "sim.py"), "--url", f"ws://127.0.0.1:{port}/ocpp",
            "--id", "BENCH", "--data", data, "--quiet", stdin=asyncio.subprocess.PIPE)
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
        finally:
            proc.kill()
            await proc.wait()
            await self.csms.stop()

    async def _calls(self) -> None:
        reqs = [call.GetConfiguration(key=["HeartbeatInterval"]),
                call.ChangeAvailability(connector_id=1, type="Operative"), call.ClearCache()]
        for i in range(self.runs):
            _, dt = await self._call_timed(reqs[i % 3])
            self.results["CALL response"].append(dt)

    async def _triggers(self) -> None:
        for _ in range(self.runs):
            since = self._mark()
            res = await self.csms.call("BENCH", call.TriggerMessage(requested_message="StatusNotification",
                                                                   connector_id=1))
            if res.status != "Accepted":
                print("TriggerMessage not supported by this build:", res.status)
                return
            out = self._out_call(since, "TriggerMessage")
            e = await self._wait_in(since, "StatusNotification")
            self.results["triggered message"].append(e["t"] - out["t"])

    async def _remote(self) -> None:
        for _ in range(self.runs):
            since = self._mark()
            res = await self.csms.call("BENCH", call.RemoteStartTransaction(id_tag="AA", connector_id=1))
            assert res.status == "Accepted", res
            out = self._out_call(since, "RemoteStartTransaction")
            e = await self._wait_in(since, "StartTransaction")
            self.results["RemoteStart -> StartTransaction"].append(e["t"] - out["t"])
            await asyncio.sleep(0.005)  # let StartTransaction.conf land
            tid = None
            for _ in range(200):
                tid = next((x["msg"][2].get("transactionId") for x in reversed(self.csms.log)
                            if x["dir"] == "out" and x["msg"][0] == 3 and "transactionId" in x["msg"][2]), None)
                if tid:
                    break
                await asyncio.sleep(0.001)
            since = self._mark()
            res = await self.csms.call("BENCH", call.RemoteStopTransaction(transaction_id=tid))
            assert res.status == "Accepted", res
            out = self._out_call(since, "RemoteStopTransaction")
            e = await self._wait_in(since, "StopTransaction")
            self.results["RemoteStop -> StopTransaction"].append(e["t"] - out["t"])
            await asyncio.sleep(0.005)

    def report(self) -> None:
        print(f"{'KPI':34} {'runs':>5} {'min':>8} {'p50':>8} {'p99':>8} {'max':>8}   certified min/avg/max")
        for k, xs in self.results.items():
            c = CERTIFIED[k]
            cert = f"{c[0] * 1000:.0f} / {c[2] * 1000:.0f} / {c[1] * 1000:.0f} ms"
            if not xs:
                print(f"{k:34} {0:5d} {'-':>8} {'-':>8} {'-':>8} {'-':>8}   {cert}")
                continue
            ms = [x * 1000 for x in xs]
            print(f"{k:34} {len(ms):5d} {min(ms):7.2f}  {pct(ms, 50):7.2f}  {pct(ms, 99):7.2f}  "
                  f"{max(ms):7.2f}   {cert}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=200)
    a = ap.parse_args()
    b = Bench(a.runs)
    asyncio.run(b.run())
    b.report()


if __name__ == "__main__":
    main()
