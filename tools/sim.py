"""Station simulator: the firmware core on the host simulator board.

  .venv/bin/python tools/sim.py --url ws://HOST:PORT/PATH --id CP001 [--data DIR]
                                [--set KEY=VALUE ...] [--password SECRET] [--json]

Connects to <url>/<id>. Commands on stdin, one per line (see HELP). Logs
to stderr; with --json one JSON object per event on stdout. A reboot
(command, Reset) restarts the core in-process from --data; SIGKILL is a
power cut.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import threading
import time
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "firmware"), ROOT]

from boards.sim.board import SimBoard  # noqa: E402
from evse.clock import SystemClock  # noqa: E402
from evse import remote  # noqa: E402
from evse.runtime import Runtime  # noqa: E402
from evse.station import Station  # noqa: E402
from evse.storage import FileStorage  # noqa: E402

HELP = ("commands: plug [C] | unplug [C] | card IDTAG | ev-suspend [C] | ev-resume [C] | "
        "fault [C] ERRORCODE | clear [C] | status | reboot | quit")


class Sim:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.data = args.data or os.path.join(ROOT, ".sim", args.id)
        self.seeds = dict(kv.split("=", 1) for kv in args.set)
        self.clock = SystemClock()  # kept across reboots: the RTC survives a soft reboot
        self.station: Station | None = None
        self.board: SimBoard
        self.runtime: Runtime | None = None
        self.quit = False
        self.out_lock = threading.Lock()

    # -- output --
    def emit(self, ev: dict[str, Any]) -> None:
        if self.args.json:
            with self.out_lock:
                sys.stdout.write(json.dumps(ev) + "\n")
                sys.stdout.flush()
        self.log("info", _readable(ev))

    def log(self, level: str, text: str) -> None:
        if self.args.quiet:
            return
        sys.stderr.write(f"{time.strftime('%H:%M:%S')} {self.args.id} {level:5} {text}\n")
        sys.stderr.flush()

    # -- commands --
    def command(self, line: str) -> None:
        words = line.split()
        if not words:
            return
        cmd, rest = words[0], words[1:]
        st = self.station
        if cmd == "quit":
            self.quit = True
            if self.runtime:
                self.runtime.stop()
        elif cmd == "reboot":
            if st:
                remote.reboot(st, "Soft")  # stops transactions (reason Reboot) first
                st.tick(st.clock.ms())
        elif cmd == "status":
            self.emit(self.status())
        elif cmd in ("help", "?"):
            self.log("info", HELP)
        elif cmd in ("plug", "unplug", "card", "ev-suspend", "ev-resume", "fault", "clear"):
            err = self.board.command(cmd, rest)
            if err:
                self.log("info", err)
                self.emit({"event": "error", "command": cmd, "error": err})
        else:
            self.log("info", "unknown command: " + cmd + "; " + HELP)
            self.emit({"event": "error", "command": cmd, "error": "unknown command"})
        if self.runtime:
            self.runtime.poke()  # the core polls the board on its next tick

    def status(self) -> dict[str, Any]:
        st = self.station
        ev: dict[str, Any] = {"event": "status", "connected": bool(st and st.online),
                              "registration": st.registration if st else None, "connectors": []}
        if st is not None:
            for c in st.connectors:
                row: dict[str, Any] = {"connectorId": c.id, "status": c.status, "errorCode": c.error}
                if c.id:
                    tx = c.tx
                    row["transactionId"] = tx.tx_id if tx else None
                    row["idTag"] = tx.id_tag if tx else None
                    row["limitA"] = c.offered_da / 10
                    row["energyWh"] = self.board.meter(c.id)[0]
                    row["ev"] = self.board.ev_state(c.id)
                    if c.reservation is not None:
                        row["reservation"] = c.reservation
                ev["connectors"].append(row)
        return ev

    # -- main loop --
    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        threading.Thread(target=self._stdin, args=(loop,), daemon=True).start()
        # One board for the process: the EV and the meter outlive a reboot
        # of the core; the meter register also survives a power cut (file).
        self.board = SimBoard(serial=self.args.id, overrides=self.seeds)
        self._load_meter()
        asyncio.ensure_future(self._save_meter_loop())
        while not self.quit:
            st = Station(board=self.board, clock=self.clock, storage=FileStorage(self.data),
                         log=self.log, trace=self.emit)
            if self.args.password:
                st.config.seed("AuthorizationKey", self.args.password)
            self.station = st
            self.runtime = Runtime(st, self.args.url, self.args.id, password=self.args.password)
            kind = await self.runtime.run()
            if kind and not self.quit:
                self.emit({"event": "reboot", "kind": kind})

    def _meter_file(self) -> str:
        return os.path.join(self.data, "sim-meter.json")

    def _load_meter(self) -> None:
        try:
            with open(self._meter_file()) as f:
                self.board.restore_meter(json.load(f))
        except (OSError, ValueError):
            pass

    async def _save_meter_loop(self) -> None:
        while True:
            await asyncio.sleep(1)
            tmp = self._meter_file() + ".tmp"
            os.makedirs(self.data, exist_ok=True)
            with open(tmp, "w") as f:
                json.dump(self.board.meter_state(), f)
            os.replace(tmp, self._meter_file())

    def _stdin(self, loop: asyncio.AbstractEventLoop) -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(self.command, line.strip())
        loop.call_soon_threadsafe(self.command, "quit")


def _readable(ev: dict[str, Any]) -> str:
    if ev.get("event") in ("sent", "received"):
        arrow = ">>" if ev["event"] == "sent" else "<<"
        return f"{arrow} {ev.get('type')} {ev.get('action') or ''} {json.dumps(ev.get('payload'))}"
    return json.dumps(ev)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="OCPP 1.6-J station simulator")
    ap.add_argument("--url", required=True, help="CSMS endpoint; the station id is appended")
    ap.add_argument("--id", default="CP001")
    ap.add_argument("--data", help="the station's flash (default .sim/<id>)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--password", help="AuthorizationKey (security profile 1)")
    ap.add_argument("--json", action="store_true", help="JSON event lines on stdout")
    ap.add_argument("--quiet", action="store_true", help="no log on stderr")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    try:
        asyncio.run(Sim(parse_args(argv)).run())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
