"""One fleet station on gevent, for Locust users (tools/locustfile.py).

The station is the firmware's sans-IO core (`Station`) and its sans-IO
WebSocket client (`evse.link.ws.WsClient`) over a gevent socket; only the loop
that feeds them is here. One greenlet per station: it waits on its socket
with a timeout that is the nearest of the core's next deadline, the next
step of the people (fleetscenario.driver_steps) and of the outages and power
cuts (fleetscenario.chaos_steps), so an idle station costs no wake-ups.

What it does not do (the asyncio Runtime does): the core's I/O jobs (a
diagnostics upload, a firmware download) are refused and counted, and it
sends no WebSocket pings of its own (it answers the CSMS's).

`report(kind, name, ms, length, error)` receives every measurement:
  ("OCPP", action)       a CALL of ours: the CSMS round trip; error on a
                         CALLERROR, a timeout, an invalid answer or link loss
  ("OCPP-CSMS", action)  a CALL of the CSMS: how long the core took to answer;
                         error when it answered with a CALLERROR
  ("WS", "connect" | "reconnect")  TCP + WebSocket handshake
  ("JOB", kind)          an I/O job the core asked for (always an error here)
"""
from __future__ import annotations

import os
import random
import socket
import time
from typing import Any, Callable

import fleet
from evse import runtime as fw_runtime
from evse import security
from evse.clock import SystemClock
from evse.compat import ticks_ms
from evse.station import Station
from evse.store.storage import FileStorage, MemStorage
from evse.link.backoff import Backoff
from evse.link.ws import OPEN, WsClient
from fleetscenario import chaos_steps, driver_steps

_READ = 4096
_CONNECT_S = 10.0
# The longest wait without a core tick. The Runtime ticks at least every 5 s
# to feed the device's watchdog; a simulated station has none and trusts
# next_ms() (the core's contract), so this is only a safety net.
_BEAT_S = 60.0
_FOREVER = 1e9

Report = Callable[[str, str, float, int, "Exception | None"], None]


class CallFailed(Exception):
    """A CALL of ours failed: CALLERROR, timeout, invalid answer, link lost."""


class GeventStation:
    def __init__(self, ident: str, sc: dict[str, Any], seeds: dict[str, str], url: str,
                 report: Report, data: str | None = None) -> None:
        self.ident, self.sc, self.url, self.report = ident, sc, url, report
        self.rng = random.Random(f"{sc['seed']}-{ident}")
        self.board = fleet.board_for(sc, seeds, ident, self.rng)
        self.clock = SystemClock()
        # In memory unless a folder is given; the diagnostics log then stays in RAM.
        self.data = data
        self.storage: Any = None if data else MemStorage(os.devnull + "/" + ident)
        self.st: Any = None
        self.ws: Any = None
        self.sock: Any = None
        self.sessions = self.connects = self.sent = self.received = self.ticks = 0
        self.stopped = False
        self._backoff = Backoff(base_ms=1000, max_ms=30000)
        self._out: Any = None  # (id, action, t0) of our CALL in flight
        self._in: Any = None  # (id, action, t0) of the CSMS CALL being answered
        self._answer: Any = None  # our CALL answered in this receive(): reported after it
        self._invalid = False
        self._rx_len = 0
        self._driver = driver_steps(sc, self.rng, ident)
        self._chaos = chaos_steps(sc, self.rng)
        self._held: Any = None  # a driver step not yet done ("ready" while not ready)
        now = time.monotonic()
        self.t_tick = self.t_connect = self.t_driver = self.t_chaos = now
        self.dark_until = 0.0  # power cut: no core until then
        self._version = None  # link.version of the open connection (Runtime.link_changed)

    # -- the core, built like the device boots it --
    def _boot(self) -> None:
        # The memory outlives the core like flash; a data folder is opened anew, as at a boot.
        storage = self.storage if self.data is None else FileStorage(self.data)
        self.st = Station(board=self.board, clock=self.clock, storage=storage,
                          log=self._log, trace=self._trace)
        security.provision(self.st, url=self.url, cp_id=self.ident, password=None)
        self.t_tick = time.monotonic()

    # Runtime.params / _link_done read these names: the connection
    # parameters come from the station's link exactly as on the device.
    @property
    def cp_id(self) -> str:
        return self.ident

    password = None
    ssl = None
    conn = None  # Runtime._link_done: writes here are synchronous, nothing waits in a queue
    # The device's own rules, borrowed (not copied): what to connect to, and when
    # new link parameters close the link.
    params = fw_runtime.Runtime.params
    link_changed = fw_runtime.Runtime.link_changed
    _link_done = fw_runtime.Runtime._link_done

    def run(self) -> None:
        """Until stop() or the greenlet is killed."""
        self._boot()
        try:
            while not self.stopped:
                self._round()
        finally:
            self.stop()

    def stop(self) -> None:
        """Locust stops the user: a CALL cut short now is no failure of the CSMS."""
        self.stopped = True
        self._out = None
        self._drop()

    def _round(self) -> None:
        now = time.monotonic()
        if self.st is None and now >= self.dark_until:
            self._boot()
        if self.st is not None and self.sock is None and now >= self.t_connect:
            self._connect()
            now = time.monotonic()
        if now >= self.t_chaos:
            self._chaos_step(now)
        if now >= self.t_driver:
            self._driver_step(now)
        if self.st is not None and time.monotonic() >= self.t_tick:
            self._tick()
        wake = min(self.t_tick if self.st is not None else self.dark_until, self.t_driver, self.t_chaos,
                   self.t_connect if self.sock is None else _FOREVER)
        wait = max(0.0, wake - time.monotonic())
        if self.sock is None:
            time.sleep(wait)  # gevent's (monkey-patched) sleep
            return
        sock = self.sock
        sock.settimeout(wait)
        try:
            data = sock.recv(_READ)
        except socket.timeout:
            return
        except OSError:
            data = b""
        if sock is self.sock:  # not dropped meanwhile (stop() from another greenlet)
            self._feed(data)

    def _tick(self) -> None:
        st = self.st
        self.ticks += 1
        st.tick(ticks_ms())
        if st.jobs:
            for job in st.jobs:
                self.report("JOB", type(job).__name__, 0, 0, NotImplementedError("no job runner under gevent"))
            st.jobs = []
        self._flush()
        if st.reboot is not None:  # Reset: a new core on the same flash, like the device
            self._drop()
            self.st = None
            self.dark_until = time.monotonic()
            return
        if self.sock is not None and self._link_done():  # type: ignore[misc]
            self._drop()  # new link parameters, and no CALL in flight: reconnect with them
        ms = st.next_ms(ticks_ms())
        self.t_tick = time.monotonic() + (_BEAT_S if ms is None else min(_BEAT_S, ms / 1000))

    def _poke(self) -> None:
        """An input may have moved the next deadline: tick now (every input ends in a timer round)."""
        self.t_tick = 0.0

    # -- the link --
    def _connect(self) -> None:
        st = self.st
        link = st.link
        self._version = link.version if link is not None else None
        t0 = time.perf_counter()
        sock = None
        try:
            host, port, path, headers, ctx = self.params()  # type: ignore[misc]
            family, kind, proto, addr = _resolve(host, port)
            sock = socket.socket(family, kind, proto)
            sock.settimeout(_CONNECT_S)
            try:
                sock.connect(addr)
            except OSError:
                _addrs.pop((host, port), None)  # asked again next time (the CSMS may have moved)
                raise
            if ctx is not None:
                sock = ctx.wrap_socket(sock, server_hostname=host)
            ws = WsClient(host if port in (80, 443) else f"{host}:{port}", path, "ocpp1.6", headers)
            sock.sendall(ws.handshake_request())
            deadline = time.monotonic() + _CONNECT_S
            events: list[Any] = []
            while ws.state != OPEN:
                sock.settimeout(max(0.01, deadline - time.monotonic()))
                data = sock.recv(_READ)
                ws.receive_data(data)
                events = ws.events()
                err = [e[1] for e in events if e[0] == "error"]
                if err or not data:
                    raise ConnectionError(err[0] if err else "eof during handshake")
        except Exception as e:  # noqa: BLE001 - refused, timeout, HTTP 401...: retried like the device
            if sock is not None:
                sock.close()
            self.report("WS", "reconnect" if self.connects else "connect", _ms(t0), 0, e)
            ms = self._backoff.next_ms()
            st.connect_failed(ticks_ms(), e, ms)
            self.t_connect = time.monotonic() + ms / 1000
            return
        self.report("WS", "reconnect" if self.connects else "connect", _ms(t0), 0, None)
        self.connects += 1
        self._backoff.reset()
        self.sock, self.ws = sock, ws
        st.hold = False  # as the Runtime: CALLs may go again on the new link
        if link is not None:
            link.peer = None  # the TLS peer's chain is not kept here (the Runtime's is)
        st.connected(ticks_ms())
        self._poke()
        self._flush()
        self._events(events[1:])  # whatever came right behind the 101

    def _drop(self) -> None:
        """The link is gone (or we end it): the core hears it, unsent CALLs are re-queued."""
        sock, self.sock, self.ws = self.sock, None, None
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass
            self.t_connect = time.monotonic() + self._backoff.next_ms() / 1000
        if self.st is not None:
            self.st.disconnected(ticks_ms())
            self.st.take_frames()
        if self._out is not None:
            uid, action, t0 = self._out
            self._out = None
            self.report("OCPP", action, _ms(t0), 0, CallFailed("link lost"))

    def _feed(self, data: bytes) -> None:
        ws = self.ws
        ws.receive_data(data)
        self._events(ws.events())
        if not data and self.sock is not None:
            self._drop()

    def _events(self, events: list[Any]) -> None:
        for ev in events:
            kind = ev[0]
            if kind == "text":
                self._receive(ev[1])
            elif kind == "ping" and self.ws.state == OPEN:
                self._write(self.ws.pong(ev[1]))
            elif kind in ("close", "error"):
                ws = self.ws
                if ws is not None:
                    self._write(ws.close() if kind == "close" else ws.fail_bytes())
                self._drop()
                return
            if self.sock is None:
                return

    def _receive(self, text: str) -> None:
        st = self.st
        self._rx_len = len(text)
        try:
            st.receive(text, ticks_ms())
        except Exception as e:  # noqa: BLE001 - like the Runtime: answer it, go on
            try:
                st.receive_failed(text, ticks_ms(), e)
            except Exception:  # noqa: BLE001 - cannot even answer: start over
                self._drop()
                return
        a, self._answer = self._answer, None
        if a is not None:
            bad = CallFailed("invalid answer") if self._invalid else a[3]
            self.report("OCPP", a[0], a[1], a[2], bad)
        self._invalid = False
        self._poke()
        self._flush()

    def _write(self, data: bytes) -> bool:
        if not data or self.sock is None:
            return self.sock is not None
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            self._drop()
            return False

    def _flush(self) -> None:
        frames = self.st.take_frames()
        for text in frames:
            if self.ws is None or self.ws.state != OPEN or not self._write(self.ws.send_text(text)):
                break  # unsent CALLs are re-queued by disconnected()

    # -- what the core tells us --
    def _trace(self, ev: dict[str, Any]) -> None:
        kind = ev["event"]
        if kind == "sent":
            self.sent += 1
            typ = ev["type"]
            if typ == "CALL":
                self._out = (ev["id"], ev["action"], time.perf_counter())
            elif self._in is not None and self._in[0] == ev["id"]:
                uid, action, t0 = self._in
                self._in = None
                err = CallFailed("CALLERROR " + ev["payload"]["errorCode"]) if typ == "CALLERROR" else None
                self.report("OCPP-CSMS", action, _ms(t0), 0, err)
        elif kind == "received":
            self.received += 1
            typ = ev["type"]
            if typ == "CALL":
                self._in = (ev["id"], ev["action"] or "?", time.perf_counter())
            elif self._out is not None and self._out[0] == ev["id"]:
                uid, action, t0 = self._out
                self._out = None
                err = CallFailed("CALLERROR " + str(ev["payload"]["errorCode"])) if typ == "CALLERROR" else None
                self._answer = (action, _ms(t0), self._rx_len, err)

    def _log(self, level: str, text: str) -> None:
        if level != "warn":
            return
        if text.endswith(" timed out") and self._out is not None:
            uid, action, t0 = self._out
            self._out = None
            self.report("OCPP", action, _ms(t0), 0, CallFailed("timeout"))
        elif " answer invalid: " in text:
            self._invalid = True

    # -- the people, the network, the power --
    def _driver_step(self, now: float) -> None:
        while self.t_driver <= now:
            step, self._held = self._held or next(self._driver), None
            if step[0] == "sleep":
                self.t_driver = now + min(step[1], _FOREVER)
            elif step[0] == "ready":
                if not fleet.ready(self.st):
                    self._held = step  # asked again about once a second
                    self.t_driver = now + 1 + self.rng.random()
            elif step[0] == "session":
                self.sessions += 1
            else:
                self.board.command(step[1], list(step[2:]))  # errors (already plugged) are part of life
                self._poke()

    def _chaos_step(self, now: float) -> None:
        step = next(self._chaos)
        if step[0] == "sleep":
            self.t_chaos = now + min(step[1], _FOREVER)
        elif step[0] == "offline":
            self._drop()  # no close handshake: the network went away
            self.t_connect = now + step[1]
        elif step[0] == "cut" and self.st is not None:
            self._drop()
            self.st = None  # power: the next core boots from the flash
            self.dark_until = self.t_connect = now + step[1]


_addrs: dict[tuple[str, int], tuple[Any, Any, int, Any]] = {}


def _resolve(host: str, port: int) -> tuple[Any, Any, int, Any]:
    """The CSMS's address, looked up once per process: under gevent every
    getaddrinfo is a hand-off to its thread pool, and a fleet connecting at
    once queued thousands of them behind a busy loop (10,000 stations here:
    connects took up to 116 s with a look-up each, 96 s without; 1,944 vs
    4,843 stations connected at the end of the same run)."""
    a = _addrs.get((host, port))
    if a is None:
        family, kind, proto, _, addr = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)[0]
        a = _addrs[(host, port)] = (family, kind, proto, addr)
    return a


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000
