"""The baseline for `make bench`: the minimal charge point a user would
write instead, on the mobilityhouse `ocpp` package (which checks every
message against the OCPP 1.6 JSON schemas with `jsonschema`).

  .venv/bin/python tools/bench_peer.py --url ws://HOST:PORT/PATH --id CP001 [--data DIR] [--quiet]

It speaks the subset of tools/sim.py's command line the bench uses: the
same flags (--data and --quiet are accepted; it persists nothing and logs
nothing) and the stdin commands `plug [C]` / `unplug [C]` / `quit`. It
answers GetConfiguration, TriggerMessage, RemoteStart/StopTransaction,
ChangeAvailability and ClearCache, and sends what a station sends for them.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import threading
from datetime import datetime, timezone
from typing import Any

import websockets
from ocpp.routing import after, on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action

CONFIG = {"HeartbeatInterval": "3600", "MeterValueSampleInterval": "60", "ConnectionTimeOut": "60",
          "AuthorizeRemoteTxRequests": "false", "NumberOfConnectors": "1",
          "SupportedFeatureProfiles": "Core,RemoteTrigger"}


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class Peer(ChargePoint):
    def __init__(self, cp_id: str, ws: Any) -> None:
        super().__init__(cp_id, ws)
        self.plugged = False
        self.meter = 0  # Wh
        self.tx: int | None = None
        self.pending_tag: str | None = None

    async def status(self, state: str) -> None:
        await self.call(call.StatusNotification(connector_id=1, error_code="NoError", status=state))

    @on(Action.get_configuration)
    def on_get_configuration(self, key: list[str] | None = None) -> call_result.GetConfiguration:
        names = key if key else list(CONFIG)
        known = [{"key": k, "readonly": False, "value": CONFIG[k]} for k in names if k in CONFIG]
        unknown = [k for k in names if k not in CONFIG]
        return call_result.GetConfiguration(configuration_key=known, unknown_key=unknown or None)

    @on(Action.change_availability)
    def on_change_availability(self, connector_id: int, type: str) -> call_result.ChangeAvailability:
        return call_result.ChangeAvailability(status="Accepted")

    @on(Action.clear_cache)
    def on_clear_cache(self) -> call_result.ClearCache:
        return call_result.ClearCache(status="Accepted")

    @on(Action.trigger_message)
    def on_trigger(self, requested_message: str, connector_id: int | None = None) -> call_result.TriggerMessage:
        ok = requested_message in ("Heartbeat", "StatusNotification", "BootNotification")
        return call_result.TriggerMessage(status="Accepted" if ok else "NotImplemented")

    @after(Action.trigger_message)
    async def after_trigger(self, requested_message: str, connector_id: int | None = None) -> None:
        if requested_message == "Heartbeat":
            await self.call(call.Heartbeat())
        elif requested_message == "StatusNotification":
            await self.status("Charging" if self.tx else "Preparing" if self.plugged else "Available")
        elif requested_message == "BootNotification":
            await self.boot()

    @on(Action.remote_start_transaction)
    def on_remote_start(self, id_tag: str, connector_id: int | None = None,
                        charging_profile: Any = None) -> call_result.RemoteStartTransaction:
        ok = self.tx is None and connector_id in (None, 1)
        self.pending_tag = id_tag if ok else None
        return call_result.RemoteStartTransaction(status="Accepted" if ok else "Rejected")

    @after(Action.remote_start_transaction)
    async def after_remote_start(self, id_tag: str, **_: Any) -> None:
        if self.pending_tag is None or not self.plugged:
            return
        self.pending_tag = None
        res = await self.call(call.StartTransaction(connector_id=1, id_tag=id_tag, meter_start=self.meter,
                                                    timestamp=now_iso()))
        self.tx = res.transaction_id
        await self.status("Charging")

    @on(Action.remote_stop_transaction)
    def on_remote_stop(self, transaction_id: int) -> call_result.RemoteStopTransaction:
        ok = self.tx is not None and transaction_id == self.tx
        return call_result.RemoteStopTransaction(status="Accepted" if ok else "Rejected")

    @after(Action.remote_stop_transaction)
    async def after_remote_stop(self, transaction_id: int) -> None:
        if self.tx is None or transaction_id != self.tx:
            return
        self.tx = None
        self.meter += 10
        await self.call(call.StopTransaction(meter_stop=self.meter, timestamp=now_iso(),
                                             transaction_id=transaction_id, reason="Remote"))
        await self.status("Finishing" if self.plugged else "Available")

    async def boot(self) -> None:
        await self.call(call.BootNotification(charge_point_model="BenchPeer", charge_point_vendor="bench"))

    async def command(self, line: str) -> bool:
        words = line.split()
        if not words:
            return True
        if words[0] == "quit":
            return False
        if words[0] in ("plug", "unplug"):
            self.plugged = words[0] == "plug"
            await self.status("Preparing" if self.plugged else "Available")
        return True


async def run(url: str, cp_id: str) -> None:
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str] = asyncio.Queue()

    def read_stdin() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(lines.put_nowait, line.strip())
        loop.call_soon_threadsafe(lines.put_nowait, "quit")

    threading.Thread(target=read_stdin, daemon=True).start()
    async with websockets.connect(url.rstrip("/") + "/" + cp_id, subprotocols=["ocpp1.6"]) as ws:  # type: ignore[list-item]
        cp = Peer(cp_id, ws)
        reader = asyncio.create_task(cp.start())
        await cp.boot()
        await cp.status("Available")
        while await cp.command(await lines.get()):
            pass
        reader.cancel()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--id", default="CP001")
    ap.add_argument("--data", help="accepted for tools/sim.py's command line; nothing is stored")
    ap.add_argument("--quiet", action="store_true", help="accepted; the peer never logs")
    a = ap.parse_args(argv)
    try:
        asyncio.run(run(a.url, a.id))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
