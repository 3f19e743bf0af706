"""The simulator's web dashboard: a tiny asyncio HTTP server with Server-Sent Events.

    GET  /             tools/dashboard/index.html (+ app.js, style.css): no build step, no CDN
    GET  /state        the station snapshot (JSON)
    GET  /history      the session so far: the samples below, oldest first (JSON list)
    GET  /events       SSE: `history` once, then `state` and `sample` once a second,
                       `frame` per OCPP message / simulator event
    POST /cmd          body = one stdin command line ("plug", "card 04A2B3C4"...)

A sample is {"t": unix s, "c": [{"id", "status", "tx", "offeredA", "drawnA",
"powerW", "energyWh", "scheduleA"}, ...]} per connector; the page plots them
and marks where the status or the transaction changes. Samples are taken
whether a browser watches or not, so a page opened mid-session shows it
all; past _HISTORY of them every other one is dropped (the plot gets coarser,
memory stays bounded). Localhost only. Slow SSE clients are dropped rather
than buffered without bound.
"""
from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any, Callable

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dashboard")
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".css": "text/css; charset=utf-8"}
_BACKLOG = 200  # recent events replayed to a new client
_MAX_BUFFER = 1 << 20  # bytes queued to one client before it is dropped
_MAX_BODY = 4096
_HISTORY = 2000  # samples kept (about 160 bytes each per connector)


def sample(state: dict[str, Any], now: float) -> dict[str, Any]:
    """What the session plot needs of one snapshot."""
    return {"t": round(now, 3), "c": [
        {"id": c["connectorId"], "status": c.get("status"), "tx": c.get("transactionId"),
         "offeredA": c.get("limitA"), "drawnA": c.get("currentA"), "powerW": c.get("powerW"),
         "energyWh": c.get("energyWh"), "scheduleA": c.get("scheduleLimitA")}
        for c in state.get("connectors", []) if c.get("connectorId")]}


class Dashboard:
    """Serves the dashboard for one simulator; `publish(ev)` pushes an event to every browser."""

    def __init__(self, state: Callable[[], dict[str, Any]], command: Callable[[str], None],
                 interval_s: float = 1.0) -> None:
        self.state = state
        self.command = command
        self.interval_s = interval_s
        self.clients: list[asyncio.StreamWriter] = []
        self.backlog: list[str] = []
        self.history: list[dict[str, Any]] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self, port: int = 0, host: str = "127.0.0.1") -> int:
        """Listen on `port` (0: any free port); returns the port."""
        self.server = await asyncio.start_server(self._serve, host, port)
        self.port = self.server.sockets[0].getsockname()[1]
        asyncio.ensure_future(self._state_loop())
        return self.port

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        for w in self.clients:
            w.close()
        self.clients = []

    # -- push --
    def publish(self, ev: dict[str, Any], kind: str = "frame") -> None:
        msg = f"event: {kind}\ndata: {json.dumps(ev, separators=(',', ':'))}\n\n"
        if kind == "frame":
            self.backlog.append(msg)
            del self.backlog[:-_BACKLOG]
        for w in list(self.clients):
            if w.is_closing() or w.transport.get_write_buffer_size() > _MAX_BUFFER:
                self._drop(w)
            else:
                w.write(msg.encode())

    def _drop(self, w: asyncio.StreamWriter) -> None:
        if w in self.clients:
            self.clients.remove(w)
        w.close()

    async def _state_loop(self) -> None:
        while self.server is not None and self.server.is_serving():
            state = self._state()
            if "error" not in state:
                self.record(sample(state, time.time()))
            if self.clients:
                self.publish(state, "state")
                if self.history:
                    self.publish(self.history[-1], "sample")
            await asyncio.sleep(self.interval_s)

    def record(self, s: dict[str, Any]) -> None:
        self.history.append(s)
        if len(self.history) > _HISTORY:
            self.history = self.history[::2]

    def _state(self) -> dict[str, Any]:
        try:
            return self.state()
        except Exception as e:  # the page shows it; the simulator keeps running
            return {"error": repr(e), "connectors": []}

    # -- HTTP --
    async def _serve(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 10)
            lines = head.decode("latin-1").split("\r\n")
            method, path = lines[0].split(" ")[:2]
            headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:] if x)}
            n = min(int(headers.get("content-length", "0") or 0), _MAX_BODY)
            body = await r.readexactly(n) if n else b""
            if method == "GET" and path.startswith("/events"):
                return await self._subscribe(r, w)
            await self._route(method, path.split("?", 1)[0], body, w)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError,
                ConnectionError, ValueError):
            w.close()

    async def _route(self, method: str, path: str, body: bytes, w: asyncio.StreamWriter) -> None:
        if method == "GET" and path == "/state":
            return await _reply(w, 200, "application/json", json.dumps(self._state()).encode())
        if method == "GET" and path == "/history":
            return await _reply(w, 200, "application/json", json.dumps(self.history).encode())
        if method == "POST" and path == "/cmd":
            line = body.decode("utf-8", "replace").strip()
            self.command(line)
            return await _reply(w, 200, "application/json", json.dumps({"ok": True, "command": line}).encode())
        name = "index.html" if path == "/" else path.lstrip("/")
        ext = os.path.splitext(name)[1]
        if method == "GET" and "/" not in name and ext in _TYPES:
            try:
                with open(os.path.join(STATIC, name), "rb") as f:
                    return await _reply(w, 200, _TYPES[ext], f.read())
            except OSError:
                pass
        await _reply(w, 404, "text/plain", b"not found\n")

    async def _subscribe(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                b"Connection: keep-alive\r\n\r\n")
        w.write(f"event: state\ndata: {json.dumps(self._state())}\n\n".encode())
        w.write(f"event: history\ndata: {json.dumps(self.history, separators=(',', ':'))}\n\n".encode())
        for msg in self.backlog:
            w.write(msg.encode())
        self.clients.append(w)
        try:
            while await r.read(1024):  # held open until the browser goes away
                pass
        finally:
            self._drop(w)


async def _reply(w: asyncio.StreamWriter, code: int, ctype: str, body: bytes) -> None:
    reason = {200: "OK", 404: "Not Found"}.get(code, "Error")
    w.write(f"HTTP/1.1 {code} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
            f"Cache-Control: no-store\r\nConnection: close\r\n\r\n".encode() + body)
    try:
        await w.drain()
    finally:
        w.close()
