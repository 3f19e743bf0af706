"""`make sim`: the development CSMS and a simulated station in one terminal.

    tools/devsim.py [URL] [--verbose] [--http PORT] [--csms-log FILE|-] [--id CP001]

Type simulator commands (help, plug, card 04A2B3C4, status, quit...). The
terminal shows the station's side, one line per message; the bundled CSMS
writes its own log to .sim/csms.log (`--csms-log -` puts it on the terminal).
A web dashboard is served on localhost (port printed at start). With a URL
(`make sim SIM_URL=ws://host:port/path`) the bundled CSMS is not started.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import threading
import time

import csms as csms_mod
import sim as sim_mod
from simview import TermView

TAGS = {"04A2B3C4": "Accepted", "CAFE01": "Accepted", "BLOCKED1": "Blocked"}


def start_csms(port: int = 0, log_path: str | None = None) -> int:
    """The bundled CSMS in a thread; its log goes to `log_path` ("-": stderr, None: nowhere)."""
    ready: list[int] = []
    out = sys.stderr if log_path == "-" else None
    if log_path and log_path != "-":
        os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
        out = open(log_path, "a", buffering=1)

    def echo(line: str) -> None:
        if out is not None:
            out.write(f"{time.strftime('%H:%M:%S')} CSMS  {line}\n")

    async def serve() -> None:
        c = csms_mod.Csms(tags=TAGS, heartbeat=30, echo=echo, log_max=1000)
        ready.append(await c.start("127.0.0.1", port))
        await asyncio.Future()

    threading.Thread(target=lambda: asyncio.run(serve()), daemon=True).start()
    while not ready:
        time.sleep(0.05)
    return ready[0]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="bundled CSMS + one simulated station (make sim)")
    ap.add_argument("url", nargs="?", default="", help="an external CSMS instead of the bundled one")
    ap.add_argument("--id", default="CP001")
    ap.add_argument("--http", type=int, default=8180, metavar="PORT", help="dashboard port (default 8180)")
    ap.add_argument("--verbose", action="store_true", help="full payloads")
    ap.add_argument("--csms-log", default=os.path.join(sim_mod.ROOT, ".sim", "csms.log"), metavar="FILE",
                    help="the bundled CSMS's log ('-': this terminal)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    a = parse_args(argv)
    view = TermView(sys.stderr)
    url = a.url
    if not url:
        url = f"ws://127.0.0.1:{start_csms(log_path=a.csms_log)}/ocpp"
        where = "this terminal" if a.csms_log == "-" else os.path.relpath(a.csms_log)
        view.say(f"bundled CSMS at {url}, its log: {where}; accepted cards: 04A2B3C4 CAFE01")
    view.say(f"station {a.id} -> {url}")
    view.say(sim_mod.HELP)
    args = ["--url", url, "--id", a.id, "--http", str(a.http)]
    sim_mod.main(args + (["--verbose"] if a.verbose else []))


if __name__ == "__main__":
    main()
