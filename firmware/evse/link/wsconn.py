"""asyncio adapter for the sans-IO WebSocket client in evse.link.ws.

Uses only what MicroPython's asyncio has: open_connection, wait_for, sleep,
create_task, Event, Lock (no Queue, no timeout()). One reader task owns the
socket's read side, so pings are answered even while nobody is in recv();
writes go through a Lock because MicroPython lets only one task wait to
write on a socket.
"""
import asyncio
import gc
import sys

from evse.compat import const
from evse.link.transport import open_connection
from evse.link.ws import CLOSED, CONNECTING, OPEN, WsClient, mask_into, masked_pieces

_READ = const(1024)  # bytes per socket read
_INBOX = const(4)  # text messages held before the reader stops reading
_PIECE = const(512)  # bytes per write of a big outgoing frame (a multiple of 4)
# MicroPython's Stream.write hands the view to the socket and copies only
# what it did not take (out_buf += rest): a view of our buffer is safe and
# costs nothing. CPython's transports may keep the object: copy there.
_COPY = sys.implementation.name == "cpython"


def _out(buf):
    return bytes(buf) if _COPY else buf


class WsError(OSError):
    """Connect or handshake failure. `status` is the HTTP status of the
    handshake response (e.g. 401), 0 when there was none."""

    def __init__(self, msg, status=0):
        super().__init__(msg)
        self.status = status


async def _handshake(reader, writer, ws):
    writer.write(ws.handshake_request())
    await writer.drain()
    into = getattr(reader, "readinto", None)
    while ws.state == CONNECTING:
        if into is None:
            data = await reader.read(_READ)
        else:  # the buffer every link of this owner reads into (ws.RxBuffer)
            buf = ws.rx.rd
            n = None
            while n is None:  # None: a TLS record not complete yet
                n = await into(buf)
            data = memoryview(buf)[:n]
        ws.receive_data(data)
        if not data:
            break
    events = ws.events()
    # A peer may send frames, even its close, right behind the 101.
    if not events or events[0][0] != "open":
        reason = "handshake failed"
        for ev in events:
            if ev[0] == "error":
                reason = ev[1]
        raise WsError(reason, ws.http_status)
    return events[1:]  # whatever arrived right behind the 101


async def connect(host, port, path, *, headers=None, ssl=None, server_hostname=None,
                  subprotocol="ocpp1.6", timeout_s=10, ping_interval_s=0,
                  pong_timeout_s=10, max_message=65536, rx=None) -> "WsConnection":
    """Open a WebSocket. Raises OSError (WsError for a refused or broken
    handshake and for timeouts, with `.status` set when the server answered).
    `ssl` goes straight to asyncio.open_connection. `rx` (ws.RxBuffer) is
    the buffer messages are received into, kept by the caller across links."""
    default_port = 443 if ssl else 80
    host_hdr = host if port == default_port else f"{host}:{port}"
    ws = WsClient(host_hdr, path, subprotocol, headers, max_message=max_message, rx=rx)
    if ssl:
        # CPython refuses server_hostname without ssl.
        opening = open_connection(host, port, ssl=ssl, server_hostname=server_hostname or host)
    else:
        opening = open_connection(host, port)
    try:
        # MicroPython's connect has no timeout of its own (getaddrinfo still blocks).
        reader, writer = await asyncio.wait_for(opening, timeout_s)
    except asyncio.TimeoutError:  # noqa: UP041 - its own class on MicroPython
        raise WsError("connect timeout") from None
    try:
        pending = await asyncio.wait_for(_handshake(reader, writer, ws), timeout_s)
    except BaseException as e:
        await _close_writer(writer)
        if isinstance(e, asyncio.TimeoutError):
            raise WsError("handshake timeout") from None
        if isinstance(e, OSError) and not isinstance(e, WsError):
            # The peer took the connection and then dropped or refused it:
            # a WsError says so (security.py counts it against a new profile).
            raise WsError("handshake: " + repr(e)) from None
        raise
    conn = WsConnection(reader, writer, ws, ping_interval_s, pong_timeout_s)
    conn._start(pending)
    return conn


async def _close_writer(writer):
    try:
        writer.close()
        # CPython's wait_closed can wait on a peer that stopped reading.
        await asyncio.wait_for(writer.wait_closed(), 1)
    except (OSError, asyncio.TimeoutError):  # noqa: UP041 - its own class on MicroPython
        return  # the socket is gone either way


class WsConnection:
    """An open WebSocket carrying text messages (OCPP-J). Made by connect()."""

    def __init__(self, reader, writer, ws, ping_interval_s=0, pong_timeout_s=10):
        self.closed = False
        self.close_code = None  # the peer's close code; 1006 if the link died
        self._r = reader
        self._w = writer
        self._ws = ws
        self._ping_s = ping_interval_s
        self._pong_s = pong_timeout_s
        self._inbox = []  # type: list  # str, or ws.Frame (in the receive buffer)
        self._lent = False  # recv() handed out a Frame: released at the next recv()
        self._wlock = asyncio.Lock()
        self._msg_ev = asyncio.Event()  # inbox grew or connection ended
        self._room_ev = asyncio.Event()  # inbox has room again
        self._rx_ev = asyncio.Event()  # any bytes arrived
        self._done_ev = asyncio.Event()  # peer's close seen or link gone
        self._reader = None  # type: asyncio.Task | None
        self._pinger = None  # type: asyncio.Task | None
        self.error = None  # an unexpected exception that ended the link (MemoryError...)
        # MicroPython's Stream.readinto fills one buffer for the whole link;
        # read(n) would allocate n bytes per call.
        self._into = getattr(reader, "readinto", None)
        self._rbuf = ws.rx.rd if self._into is not None else None

    def peer_certs(self):
        """DER certificates the TLS peer's chain holds, leaf first: the chain
        as verified up to the trust anchor where the platform gives it
        (CPython), else the peer's own certificate (MicroPython); [] when
        the platform tells nothing."""
        w = self._w
        obj = None
        try:
            obj = w.get_extra_info("ssl_object")
        except (AttributeError, KeyError):  # MicroPython's Stream knows only "peername" (a KeyError)
            pass
        if obj is None:
            obj = getattr(w, "s", None)  # MicroPython: the stream's SSLSocket
        try:
            inner = getattr(obj, "_sslobj", obj)
            chain = getattr(inner, "get_verified_chain", None)
            if chain is not None:
                return [c if isinstance(c, bytes) else c.public_bytes(2) for c in chain()]  # 2: _ssl.ENCODING_DER
            der = obj.getpeercert(True)
            return [bytes(der)] if der else []
        except Exception:  # noqa: BLE001 - a platform without these calls
            return []

    def _start(self, pending):
        self._reader = asyncio.create_task(self._read_loop(pending))
        if self._ping_s:
            self._pinger = asyncio.create_task(self._ping_loop())

    async def recv(self):
        """Next text message: a str, or over 1 KB a ws.Frame read in place
        (valid until the next recv()); None once the connection is closed
        or dead."""
        if self._lent:  # the caller is done with the Frame it got last
            self._lent = False
            self._ws.release()
            self._room_ev.set()
        while True:
            if self._inbox:
                self._room_ev.set()
                msg = self._inbox.pop(0)
                self._lent = not isinstance(msg, str)
                return msg
            if self.closed:
                return None
            self._msg_ev.clear()
            await self._msg_ev.wait()

    def queued(self) -> int:
        """Text messages received and not yet taken by recv()."""
        return len(self._inbox)

    async def send(self, text: str) -> None:
        """Send one text message; raises WsError if the connection is not open."""
        if self.closed or self._ws.state != OPEN:
            raise WsError("websocket not open")
        if len(text) <= _PIECE:
            return await self._write(self._ws.send_text(text))
        # A big frame goes out in pieces through one buffer per link: no
        # masked copy of the whole frame (encode() shares the str's bytes
        # on MicroPython).
        data = text.encode()
        buf = self._ws.rx.wr[0]
        async with self._wlock:
            for piece in masked_pieces(self._ws.text_head(buf, len(data)), data, buf):
                self._w.write(_out(piece))
                await self._w.drain()

    async def send_out(self, out) -> None:
        """Send a big message without its JSON text in RAM: `out` (rpc.Out)
        gives its size and writes its JSON through a writer; the pieces are
        packed and masked through two small buffers and handed to the stream
        as they come (the stream may queue what the socket does not take
        at once; drained at the end)."""
        if self.closed or self._ws.state != OPEN:
            raise WsError("websocket not open")
        from evse.wire.jsonout import Chunks

        buf, chunk = self._ws.rx.wr
        async with self._wlock:
            hl, key = self._ws.text_head(buf, out.size())
            w = self._w
            whole = memoryview(buf)
            w.write(_out(whole[:hl]))

            # A full chunk is _PIECE bytes (a multiple of 4): the key stays in
            # phase. No copy per piece on MicroPython (_out).
            def emit(mv):
                mask_into(buf, 0, mv, key)
                w.write(_out(whole[:len(mv)]))
            ch = Chunks(emit, len(chunk), chunk)
            out.dump(ch.write)
            ch.flush()
            await w.drain()

    async def close(self, code: int = 1000, timeout_s=5) -> None:
        """Close handshake (RFC 6455 7.1.2): send our close, wait up to
        timeout_s for the peer's, then close the socket."""
        if self.closed:
            return
        try:
            await asyncio.wait_for(self._close_handshake(code), timeout_s)
        except (OSError, asyncio.TimeoutError):  # noqa: UP041 - MicroPython's own class
            pass  # no answer in time (or socket gone): drop the link anyway
        await self._shutdown()

    async def _close_handshake(self, code):
        if self._ws.state == OPEN:
            await self._write(self._ws.close(code))
        await self._done_ev.wait()  # set by the reader on the peer's close

    async def _write(self, data):
        async with self._wlock:
            self._w.write(data)
            await self._w.drain()

    async def _read_loop(self, pending):
        try:
            await self._pump(pending)
        except OSError:  # the socket failed: the link is gone
            return
        except Exception as e:  # noqa: BLE001 - MemoryError mid-frame: the stream is lost
            self._died(e)
        finally:
            await self._shutdown()

    def _died(self, e):
        self.error = e
        gc.collect()

    async def _pump(self, pending):
        await self._handle(pending)
        ws = self._ws
        while not self.closed and ws.state != CLOSED:
            if len(self._inbox) >= _INBOX or ws.held:
                # Back-pressure: stop reading until recv() makes room (or
                # gives back the receive buffer a Frame was read in).
                self._room_ev.clear()
                await self._room_ev.wait()
                await self._handle(ws.events())  # what release() parsed
                continue
            data = await self._read()
            self._rx_ev.set()
            self._ws.receive_data(data)
            await self._handle(self._ws.events())
            if not data or self._ws.state == CLOSED:
                # Both close frames exchanged (or a protocol error): we
                # drop the TCP link rather than wait on the server's FIN.
                break

    async def _read(self):
        into = self._into
        if into is None:
            return await self._r.read(_READ)
        n = None
        while n is None:  # None: a TLS record not complete yet
            n = await into(self._rbuf)
        return memoryview(self._rbuf)[:n] if n else b""

    async def _handle(self, events):
        ws = self._ws
        for ev in events:
            kind = ev[0]
            if kind == "text":
                self._inbox.append(ev[1])
                self._msg_ev.set()
            elif kind == "ping" and ws.state == OPEN:
                await self._write(ws.pong(ev[1]))
            elif kind == "close":
                self.close_code = ev[1]
                # Echo the peer's code (5.5.1); 1005/1006 may not be sent.
                code = ev[1] if ev[1] not in (1005, 1006) else 1000
                out = ws.close(code)
                if out:
                    await self._write(out)
                self._done_ev.set()
            elif kind == "error":
                out = ws.fail_bytes()
                if out:
                    await self._write(out)
                self._done_ev.set()
            # binary frames are not part of OCPP-J: dropped; pongs only count as traffic

    async def _ping_loop(self):
        # OCPP WebSocketPingInterval: ping, and treat pong_timeout_s of silence
        # after it as a dead link (any received bytes count as life).
        while not self.closed:
            await asyncio.sleep(self._ping_s)
            if self.closed or self._ws.state != OPEN:
                return
            self._rx_ev.clear()
            try:
                await asyncio.wait_for(self._ping_wait(), self._pong_s)
            except (OSError, asyncio.TimeoutError):  # noqa: UP041 - MicroPython
                await self._shutdown()
                return
            except Exception as e:  # noqa: BLE001 - no ping out: a silent link would go unseen
                self._died(e)
                await self._shutdown()
                return

    async def _ping_wait(self):
        if self._ws.state == OPEN:  # may have changed while wait_for started us
            await self._write(self._ws.ping())
        await self._rx_ev.wait()

    def abort(self):
        """Drop the link now, no close handshake: as if the network went
        away (CPython resets the TCP link; elsewhere the socket closes)."""
        transport = getattr(self._w, "transport", None)
        if transport is not None:
            transport.abort()
        else:
            asyncio.create_task(self._shutdown())

    async def _shutdown(self):
        """Drop the link once: stop both tasks, close the socket, wake recv()."""
        if self.closed:
            return
        self.closed = True
        if self.close_code is None:
            self.close_code = 1006  # 7.1.5: closed without a close frame
        me = asyncio.current_task()
        for task in (self._reader, self._pinger):
            if task is not None and task is not me:
                task.cancel()
        self._msg_ev.set()
        self._done_ev.set()
        self._room_ev.set()
        await _close_writer(self._w)
