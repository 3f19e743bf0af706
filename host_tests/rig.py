"""A sans-IO test rig: station + sim board + scripted CSMS + virtual clock.

`Rig.reboot()` builds a new core on the same storage and board, like a
power cycle of the controller (the meter keeps its register).
"""
from __future__ import annotations

import json
from typing import Any

from boards.sim.board import SimBoard
from evse.station import Station
from evse.store.storage import FileStorage
from scenarios.scripted import ScriptedCsms
from scenarios.vclock import VirtualClock


class Rig:
    def __init__(self, data: str, seeds: dict[str, str] | None = None, tags: dict[str, Any] | None = None,
                 board: SimBoard | None = None, features: tuple[str, ...] | None = None) -> None:
        self.data = data
        self.features = features
        self.clock = VirtualClock()
        self.board = board or SimBoard(overrides=seeds)
        self.logs: list[tuple[str, str]] = []
        self.tags = tags or {}
        self.transcript: list[dict[str, Any]] = []
        self._make()

    def _make(self) -> None:
        kw: dict[str, Any] = {} if self.features is None else {"features": self.features}
        self.st = Station(board=self.board, clock=self.clock, storage=FileStorage(self.data),
                          log=lambda lvl, text: self.logs.append((lvl, text)), **kw)
        self.cs = ScriptedCsms(self.st, self.clock)
        self.cs.tags = self.tags
        self.cs.transcript = self.transcript  # one transcript across reboots

    def reboot(self) -> None:
        self._make()

    # -- link --
    def connect(self) -> "Rig":
        self.st.connected(self.clock.ms())
        self.cs.pump()
        return self

    def disconnect(self) -> None:
        self.st.disconnected(self.clock.ms())
        self.st.take_frames()

    # -- inputs --
    def cmd(self, name: str, *args: str) -> None:
        err = self.board.command(name, list(args))
        assert err is None, err
        self.st.tick(self.clock.ms())
        self.cs.pump()

    def run(self, ms: int) -> None:
        self.cs.run_for(ms)

    def call(self, action: str, payload: dict[str, Any]) -> Any:
        self.cs._n += 1
        return self.cs.call("t%d" % self.cs._n, action, payload)

    # -- outputs --
    def sent(self, action: str | None = None) -> list[dict[str, Any]]:
        return [e["msg"][3] for e in self.transcript
                if e["dir"] == "cs" and e["msg"][0] == 2 and (action is None or e["msg"][2] == action)]

    def actions(self) -> list[str]:
        return [e["msg"][2] for e in self.transcript if e["dir"] == "cs" and e["msg"][0] == 2]

    def statuses(self, cid: int = 1) -> list[str]:
        return [p["status"] for p in self.sent("StatusNotification") if p["connectorId"] == cid]

    def status(self, cid: int = 1) -> str:
        return self.st.connectors[cid].status

    def swallow(self) -> list[Any]:
        """Take the station's frames without answering (a dead CSMS)."""
        return [json.loads(f) for f in self.st.take_frames()]
