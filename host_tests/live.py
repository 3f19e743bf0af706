"""Integration harness: the dev CSMS (ocpp package) and stations over real
WebSockets on loopback, each in its own thread and event loop, driven from
plain synchronous tests."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from typing import Any, Callable

from boards.sim.board import SimBoard
from evse.clock import SystemClock
from evse.runtime import Runtime
from evse.station import Station
from evse.store.storage import FileStorage

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import csms as csms_mod  # noqa: E402


def wait_for(pred: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.01)
    raise AssertionError("timed out waiting for " + what)


class _LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Any, timeout: float = 10) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def do(self, fn: Callable[[], Any], timeout: float = 5) -> Any:
        async def wrap() -> Any:
            return fn()
        return self.run(wrap(), timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class CsmsThread(_LoopThread):
    def __init__(self, ssl: Any = None, **kw: Any) -> None:
        super().__init__()
        self.csms = csms_mod.Csms(**kw)
        self.port = self.run(self.csms.start(ssl=ssl))
        self.url = f"{'wss' if ssl else 'ws'}://127.0.0.1:{self.port}/ocpp"

    def call(self, cp_id: str, request: Any, timeout: float = 10) -> Any:
        return self.run(self.csms.call(cp_id, request, timeout), timeout + 1)

    def calls(self, action: str, cp_id: str | None = None) -> list[dict[str, Any]]:
        return self.csms.calls(action, cp_id)

    def wait_call(self, action: str, n: int = 1, timeout: float = 5, cp_id: str | None = None,
                  where: Callable[[dict[str, Any]], bool] | None = None) -> list[dict[str, Any]]:
        def got() -> list[dict[str, Any]] | None:
            c = [p for p in self.calls(action, cp_id) if where is None or where(p)]
            return c if len(c) >= n else None
        return wait_for(got, timeout, f"{n} x {action}")

    def connected(self, cp_id: str) -> bool:
        return cp_id in self.csms.stations

    def stop(self) -> None:
        self.run(self.csms.stop())
        self.close()


class StationThread(_LoopThread):
    """A station core + runtime on the sim board, in-process."""

    def __init__(self, url: str, cp_id: str, data: str, seeds: dict[str, str] | None = None,
                 password: str | None = None, board: SimBoard | None = None, ssl: Any = None,
                 clock: Any = None) -> None:
        super().__init__()
        self.ssl = ssl
        self.url, self.cp_id, self.data, self.password = url, cp_id, data, password
        self.board = board or SimBoard(serial=cp_id, overrides=seeds)
        self.clock = clock or SystemClock()
        self.logs: list[tuple[str, str]] = []
        self.reboots: list[str] = []
        self.station: Station
        self.runtime: Runtime
        self._task = self.loop.call_soon_threadsafe(self._boot)
        wait_for(lambda: getattr(self, "runtime", None), 5, "station start")

    def _boot(self) -> None:
        self.station = Station(board=self.board, clock=self.clock, storage=FileStorage(self.data),
                               log=lambda lvl, text: self.logs.append((lvl, text)))
        self.runtime = Runtime(self.station, self.url, self.cp_id, password=self.password,
                               ssl=self.ssl, backoff_ms=(100, 500))  # quick reconnects keep tests short
        self.loop.create_task(self._run())

    async def _run(self) -> None:
        kind = await self.runtime.run()
        if kind:
            self.reboots.append(kind)
            self._boot()

    def command(self, cmd: str, *args: str) -> None:
        def go() -> None:
            err = self.board.command(cmd, list(args))
            assert err is None, err
            self.runtime.poke()
        self.do(go)

    def status(self, cid: int = 1) -> str:
        return self.do(lambda: self.station.connectors[cid].status)

    def stop(self) -> None:
        self.do(self.runtime.stop)
        time.sleep(0.05)
        self.close()


class SimProcess:
    """tools/sim.py as a real process (--json), for power-cut tests."""

    def __init__(self, url: str, cp_id: str, data: str, *extra: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "tools", "sim.py"), "--url", url, "--id", cp_id,
             "--data", data, "--json", "--quiet", *extra],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        self.events: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                self.events.append(json.loads(line))
            except ValueError:
                pass

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def wait_event(self, pred: Callable[[dict[str, Any]], bool], timeout: float = 5) -> dict[str, Any]:
        return wait_for(lambda: next((e for e in self.events if pred(e)), None), timeout, "sim event")

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(5)

    def quit(self) -> None:
        try:
            self.send("quit")
            self.proc.wait(5)
        except Exception:
            self.kill()
