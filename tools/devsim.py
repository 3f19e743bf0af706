"""`make sim`: the development CSMS and a simulated station in one terminal.

Type simulator commands (help, plug, card 04A2B3C4, status, quit...). Both
sides log to the terminal. `make sim SIM_URL=ws://host:port/path` skips the
bundled CSMS and points the station at another one.
"""
from __future__ import annotations

import asyncio
import sys
import threading
import time

import csms as csms_mod
import sim as sim_mod


def start_csms(port: int = 0) -> int:
    ready: list[int] = []

    def echo(line: str) -> None:
        sys.stderr.write(f"{time.strftime('%H:%M:%S')} CSMS  {line}\n")

    async def serve() -> None:
        c = csms_mod.Csms(tags={"04A2B3C4": "Accepted", "CAFE01": "Accepted", "BLOCKED1": "Blocked"},
                          heartbeat=30, echo=echo)
        ready.append(await c.start("127.0.0.1", port))
        await asyncio.Future()

    threading.Thread(target=lambda: asyncio.run(serve()), daemon=True).start()
    while not ready:
        time.sleep(0.05)
    return ready[0]


def main() -> None:
    url = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] else ""
    if not url:
        url = f"ws://127.0.0.1:{start_csms()}/ocpp"
    print(f"station CP001 -> {url}\n{sim_mod.HELP}", file=sys.stderr)
    sim_mod.main(["--url", url, "--id", "CP001"])


if __name__ == "__main__":
    main()
