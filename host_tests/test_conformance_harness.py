"""Conformance harness (no tests here; named so that it never clashes with
tools/conformance.py on sys.path): the station (sim board) against the real CSMS peer
(tools/csms.py on the `ocpp` package, which validates every frame against
the official OCPP 1.6 JSON schemas) over WebSockets on loopback.

Each test is tagged with `@case(id, title, profile)`: the OCA OCTT test case
it follows (ids and titles as listed in the OCTT 1.6 test case document; see
docs/CONFORMANCE.md for the source) or an issue-12 deviation. `NOT_RUN` lists
the cases that cannot run on the host, with the reason. tools/conformance.py
prints the table; under `make test` they are ordinary pytest tests.
"""
from __future__ import annotations


import json
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from live import CsmsThread, StationThread, wait_for

CASES: dict[str, tuple[str, str, str]] = {}  # test function name -> (id, title, profile)

TAGS = {"AA": "Accepted", "BB": "Accepted", "BLK": "Blocked", "EXP": "Expired"}

# Cases of the certified profiles this build cannot run on the host.
NOT_RUN = [
    ("TC_013_CS", "Hard Reset Without transaction", "Core",
     "restarts the MCU (machine.reset); on the host a Hard reset is an in-process reboot (see TC_014_CS)"),
    ("TC_017_1_CS", "Unlock connector - no charging session (Not fixed cable)", "Core",
     "the certified board has a fixed cable (UnlockConnector is NotSupported, TC_017_2_CS)"),
    ("TC_018_1_CS", "Unlock Connector - With Charging Session (Not fixed cable)", "Core", "fixed cable"),
    ("TC_024_CS", "Start Charging Session - Lock Failure", "Core", "fixed cable: no connector lock"),
    ("TC_030_CS", "Unlock Connector - Unlock Failure", "Core", "fixed cable: no connector lock"),
    ("TC_032_1_CS", "Power failure boot charging point - stop transactions before going down", "Core",
     "needs a real power cut; covered by `make soak` (kill -9 of tools/sim.py, energy monotonicity)"),
]


def case(cid: str, title: str, profile: str) -> Callable[[Any], Any]:
    def mark(fn: Any) -> Any:
        CASES[fn.__name__] = (cid, title, profile)
        return fn
    return mark


class Env:
    """One CSMS and one station (CP1) on loopback."""

    def __init__(self, data: str, tags: dict[str, Any] | None = None, seeds: dict[str, str] | None = None,
                 boot: list[str] | None = None, board: Any = None, wait_boot: bool = True) -> None:
        self.cp = "CP1"
        self.csms = CsmsThread(tags=dict(TAGS if tags is None else tags), heartbeat=300, boot_statuses=boot)
        self.st = StationThread(self.csms.url, self.cp, data, seeds=seeds, board=board)
        if wait_boot:
            self.wait_status("Available")

    def close(self) -> None:
        self.st.stop()
        self.csms.stop()

    # -- the CSMS side --
    def call(self, request: Any, timeout: float = 5) -> Any:
        return self.csms.call(self.cp, request, timeout)

    def calls(self, action: str) -> list[dict[str, Any]]:
        return self.csms.calls(action, self.cp)

    def wait_call(self, action: str, n: int = 1, timeout: float = 5,
                  where: Callable[[dict[str, Any]], bool] | None = None) -> list[dict[str, Any]]:
        return self.csms.wait_call(action, n, timeout, self.cp, where)

    def statuses(self, cid: int = 1) -> list[str]:
        return [p["status"] for p in self.calls("StatusNotification") if p["connectorId"] == cid]

    def wait_status(self, status: str, cid: int = 1, timeout: float = 5) -> None:
        wait_for(lambda: self.statuses(cid)[-1:] == [status], timeout, f"connector {cid} {status}")

    def frames(self, direction: str = "in") -> list[Any]:
        return [e["msg"] for e in list(self.csms.csms.log) if e["dir"] == direction and e["cp"] == self.cp]

    def rewrite(self, fn: Callable[[list[Any]], list[Any] | None]) -> None:
        """Rewrite (or drop: None) every frame the CSMS sends to the station:
        a misbehaving CSMS the `ocpp` package would not let us write."""
        tap = self.csms.csms.stations[self.cp]._connection
        send = tap.send

        async def rewritten(text: str) -> None:
            msg = fn(json.loads(text))
            if msg is not None:
                await send(json.dumps(msg))
        tap.send = rewritten

    def offline(self) -> None:
        """The CSMS goes away (its server closes the link and stops listening)."""
        self.csms.run(self.csms.csms.stop())
        wait_for(lambda: not self.st.do(lambda: self.st.station.online), 5, "station offline")

    def online(self) -> None:
        self.csms.run(self.csms.csms.start(port=self.csms.port))
        wait_for(lambda: self.st.do(lambda: self.st.station.online), 5, "station online")

    def restart(self, board: Any = None, seeds: dict[str, str] | None = None) -> None:
        """A power cut: the core stops where it is; a new one boots on the same flash."""
        data = self.st.data
        self.st.stop()
        self.st = StationThread(self.csms.url, self.cp, data, seeds=seeds, board=board)

    # -- the station side --
    def cmd(self, *words: str) -> None:
        self.st.command(*words)

    def card(self, tag: str) -> None:
        self.st.command("card", tag)

    def status(self, cid: int = 1) -> str:
        return self.st.status(cid)

    def tx(self, cid: int = 1) -> Any:
        return self.st.do(lambda: self.st.station.connectors[cid].tx)

    def settle(self, s: float = 0.3) -> None:
        time.sleep(s)


def answered(env: Env, action: str) -> list[Any]:
    """Payloads of the station's CALLRESULTs to the CSMS's `action` CALLs."""
    ids = {m[1] for m in env.frames("out") if m[0] == 2 and m[2] == action}
    return [m[2] for m in env.frames("in") if m[0] == 3 and m[1] in ids]


def expiry(secs: float) -> str:
    return (datetime.now(timezone.utc) + timedelta(seconds=secs)).strftime("%Y-%m-%dT%H:%M:%SZ")


def results_of(env: Env, action: str) -> set[str]:
    """Unique ids of the station's `action` CALLs (to match the CSMS's answers)."""
    return {m[1] for m in env.frames("in") if m[0] == 2 and m[2] == action}
