"""Development CSMS built on the `ocpp` package (which validates every
message against the official OCPP 1.6 JSON schemas).

Run it:   .venv/bin/python tools/csms.py --port 9000 --tags 04A2B3C4,CAFE01
It accepts boots, authorizes the configured tags, hands out transaction ids
and logs every frame readably. Tests use `Csms` in-process: its `log` keeps
every frame, and `call()` sends a CALL to a connected station.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import itertools
import json
import logging
import sys
import time
from datetime import datetime, timezone
from typing import Any, Callable

import websockets
from websockets.asyncio.server import serve
from websockets.http11 import Response
from websockets.typing import Subprotocol
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call_result
from ocpp.v16.enums import Action

for _name in ("ocpp", "websockets"):
    logging.getLogger(_name).setLevel(logging.CRITICAL)


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class _Tap:
    """Wraps the websocket so every frame lands in the CSMS log."""

    def __init__(self, ws: Any, csms: "Csms", cp_id: str) -> None:
        self.ws, self.csms, self.cp_id = ws, csms, cp_id

    async def recv(self) -> str:
        text = await self.ws.recv()
        self.csms.record(self.cp_id, "in", text)
        return text

    async def send(self, text: str) -> None:
        self.csms.record(self.cp_id, "out", text)
        await self.ws.send(text)


class CsmsChargePoint(ChargePoint):
    """One connected station, as the CSMS sees it."""

    csms: "Csms"

    @on(Action.boot_notification)
    def on_boot(self, **kw: Any) -> call_result.BootNotification:
        status = self.csms.next_boot_status(self.id)
        return call_result.BootNotification(current_time=now_iso(), status=status,
                                            interval=self.csms.interval_for(status))

    @on(Action.heartbeat)
    def on_heartbeat(self) -> call_result.Heartbeat:
        return call_result.Heartbeat(current_time=now_iso())

    @on(Action.status_notification)
    def on_status(self, **kw: Any) -> call_result.StatusNotification:
        return call_result.StatusNotification()

    @on(Action.authorize)
    def on_authorize(self, id_tag: str) -> call_result.Authorize:
        return call_result.Authorize(id_tag_info=self.csms.id_tag_info(id_tag))

    @on(Action.start_transaction)
    def on_start(self, id_tag: str, **kw: Any) -> call_result.StartTransaction:
        return call_result.StartTransaction(transaction_id=next(self.csms.tx_ids),
                                            id_tag_info=self.csms.id_tag_info(id_tag))

    @on(Action.stop_transaction)
    def on_stop(self, **kw: Any) -> call_result.StopTransaction:
        tag = kw.get("id_tag")
        if tag:
            return call_result.StopTransaction(id_tag_info=self.csms.id_tag_info(tag))
        return call_result.StopTransaction()

    @on(Action.meter_values)
    def on_meter(self, **kw: Any) -> call_result.MeterValues:
        return call_result.MeterValues()

    @on(Action.data_transfer)
    def on_data(self, vendor_id: str, **kw: Any) -> call_result.DataTransfer:
        return call_result.DataTransfer(status="UnknownVendorId")

    @on(Action.diagnostics_status_notification)
    def on_diag(self, **kw: Any) -> call_result.DiagnosticsStatusNotification:
        return call_result.DiagnosticsStatusNotification()

    @on(Action.firmware_status_notification)
    def on_fw(self, **kw: Any) -> call_result.FirmwareStatusNotification:
        return call_result.FirmwareStatusNotification()

    @on(Action.signed_firmware_status_notification)
    def on_signed_fw(self, **kw: Any) -> call_result.SignedFirmwareStatusNotification:
        return call_result.SignedFirmwareStatusNotification()

    @on(Action.log_status_notification)
    def on_log_status(self, **kw: Any) -> call_result.LogStatusNotification:
        return call_result.LogStatusNotification()

    @on(Action.security_event_notification)
    def on_sec(self, **kw: Any) -> call_result.SecurityEventNotification:
        return call_result.SecurityEventNotification()

    @on(Action.sign_certificate)
    def on_sign(self, csr: str) -> call_result.SignCertificate:
        # The CSR is in the log; a test (or an operator) signs it and sends
        # CertificateSigned with call().
        return call_result.SignCertificate(status=self.csms.sign_status)


class Csms:
    """The dev CSMS. `boot_statuses` is consumed per station, then Accepted."""

    def __init__(self, tags: dict[str, str] | None = None, heartbeat: int = 60,
                 boot_statuses: list[str] | None = None, passwords: dict[str, str] | None = None,
                 echo: Callable[[str], None] | None = None, log_max: int | None = None,
                 unimplemented: tuple[str, ...] = ()) -> None:
        self.tags = dict(tags or {})
        self.heartbeat = heartbeat
        self.boot_plan = list(boot_statuses or [])
        # Actions this CSMS has no handler for: the `ocpp` package answers
        # them with CALLERROR NotImplemented (a CSMS without the security extensions).
        self.unimplemented = tuple(unimplemented)
        self.passwords = passwords
        self.echo = echo
        # Unbounded for tests; long runs (fleets, make sim) keep the last `log_max` frames.
        self.log: Any = [] if log_max is None else collections.deque(maxlen=log_max)
        self.stations: dict[str, CsmsChargePoint] = {}
        self.tx_ids = itertools.count(1)
        self.server: Any = None
        self.port = 0
        self.sign_status = "Accepted"  # answer to SignCertificate
        # cp id -> the client certificate it presented (ssl getpeercert() dict;
        # None without one), for each connection in order: security profile 3.
        self.peers: dict[str, list[Any]] = {}

    # -- policy --
    def next_boot_status(self, cp_id: str) -> str:
        return self.boot_plan.pop(0) if self.boot_plan else "Accepted"

    def interval_for(self, status: str) -> int:
        return self.heartbeat if status == "Accepted" else max(1, min(self.heartbeat, 2))

    def id_tag_info(self, tag: str) -> dict[str, Any]:
        return {"status": self.tags.get(tag, "Invalid")}

    # -- log --
    def record(self, cp_id: str, direction: str, text: str) -> None:
        try:
            msg = json.loads(text)
        except ValueError:
            msg = text
        self.log.append({"cp": cp_id, "dir": direction, "msg": msg, "t": time.monotonic()})
        if self.echo:
            self.echo(f"{cp_id} {'->' if direction == 'in' else '<-'} {text}")

    def calls(self, action: str, cp_id: str | None = None) -> list[dict[str, Any]]:
        """Payloads of CALLs the stations sent with this action, in order."""
        return [e["msg"][3] for e in self.log
                if e["dir"] == "in" and isinstance(e["msg"], list) and e["msg"][0] == 2
                and e["msg"][2] == action and (cp_id is None or e["cp"] == cp_id)]

    # -- server --
    async def _auth(self, conn: Any, request: Any) -> Response | None:
        if self.passwords is None:
            return None
        cp_id = request.path.rstrip("/").rsplit("/", 1)[-1]
        want = self.passwords.get(cp_id)
        got = request.headers.get("Authorization", "")
        ok = want is not None and got == "Basic " + base64.b64encode(f"{cp_id}:{want}".encode()).decode()
        return None if ok else conn.respond(401, "bad credentials\n")

    async def _handler(self, ws: Any) -> None:
        cp_id = ws.request.path.rstrip("/").rsplit("/", 1)[-1]
        cp = CsmsChargePoint(cp_id, _Tap(ws, self, cp_id))
        cp.csms = self
        for action in self.unimplemented:
            cp.route_map.pop(action, None)
        transport = getattr(ws, "transport", None)
        peer = transport.get_extra_info("peercert") if transport is not None else None
        self.peers.setdefault(cp_id, []).append(peer or None)
        self.stations[cp_id] = cp
        try:
            await cp.start()
        except websockets.ConnectionClosed:
            pass
        finally:
            if self.stations.get(cp_id) is cp:
                del self.stations[cp_id]

    async def start(self, host: str = "127.0.0.1", port: int = 0, ssl: Any = None) -> int:
        """Listen (TLS when `ssl` is a server SSLContext); returns the port."""
        # backlog: asyncio's default of 100 overflows when a fleet connects at
        # once (dropped SYNs come back seconds later: connect timeouts).
        self.server = await serve(self._handler, host, port, subprotocols=[Subprotocol("ocpp1.6")],
                                  process_request=self._auth, ssl=ssl, backlog=4096)
        self.port = self.server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def call(self, cp_id: str, request: Any, timeout: float = 10) -> Any:
        cp = self.stations[cp_id]
        return await asyncio.wait_for(cp.call(request), timeout)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Development CSMS (OCPP 1.6-J)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9000)
    ap.add_argument("--tags", default="04A2B3C4,CAFE01", help="comma separated accepted idTags")
    ap.add_argument("--heartbeat", type=int, default=60)
    ap.add_argument("--log", metavar="FILE", help="frame log to FILE instead of stderr")
    ap.add_argument("--quiet", action="store_true", help="no frame log (fleets: only the listening line)")
    ap.add_argument("--log-max", type=int, default=10000, help="frames kept in memory")
    ap.add_argument("--unimplemented", default="", metavar="ACTIONS",
                    help="comma separated actions answered CALLERROR NotImplemented (e.g. SecurityEventNotification)")
    a = ap.parse_args(argv)
    out = open(a.log, "a", buffering=1) if a.log else sys.stderr

    def echo(line: str) -> None:
        print(time.strftime("%H:%M:%S"), "CSMS", line, file=out, flush=True)

    async def run() -> None:
        csms = Csms(tags={t: "Accepted" for t in a.tags.split(",") if t},
                    heartbeat=a.heartbeat, echo=None if a.quiet else echo, log_max=a.log_max,
                    unimplemented=tuple(x for x in a.unimplemented.split(",") if x))
        port = await csms.start(a.host, a.port)
        print(f"listening on ws://{a.host}:{port}/", file=sys.stderr, flush=True)
        await asyncio.Future()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
