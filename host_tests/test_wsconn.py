"""evse.link.wsconn against a real websockets 17 server (and raw asyncio servers
for the misbehaving peers) on 127.0.0.1, ephemeral ports."""
import asyncio
import base64
import hashlib
import json
import socket
import time
from http import HTTPStatus

import pytest
from evse.link.wsconn import WsError, connect
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def run(coro, limit=10):
    return asyncio.run(asyncio.wait_for(coro, limit))


async def echo(ws):
    async for msg in ws:
        await ws.send(msg)


def port_of(server):
    return server.sockets[0].getsockname()[1]


async def raw_server(after_handshake, proto=b"ocpp1.6"):
    """A bare TCP server: answers the upgrade itself, then runs after_handshake."""
    async def handle(reader, writer):
        head = await reader.readuntil(b"\r\n\r\n")
        key = next(line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
                   if line.lower().startswith(b"sec-websocket-key:"))
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        resp = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: " + accept + b"\r\nSec-WebSocket-Protocol: " + proto + b"\r\n\r\n")
        try:
            await after_handshake(reader, writer, resp)
        finally:
            writer.close()
    return await asyncio.start_server(handle, "127.0.0.1", 0)


def test_echo_both_ways_and_large_message():
    async def main():
        async with serve(echo, "127.0.0.1", 0, subprotocols=["ocpp1.6"], max_size=2**20) as srv:
            conn = await connect("127.0.0.1", port_of(srv), "/ocpp/CP1", max_message=200000)
            assert not conn.closed
            await conn.send('[2,"1","Heartbeat",{}]')
            assert await conn.recv() == '[2,"1","Heartbeat",{}]'
            await conn.send("é€")
            assert await conn.recv() == "é€"
            big = ("0123456789abcdeé" * 7000)[:100000]
            await conn.send(big)
            assert await conn.recv() == big
            await conn.close()
            assert conn.closed
    run(main())


def test_message_over_max_message_drops_link():
    async def main():
        async with serve(echo, "127.0.0.1", 0, subprotocols=["ocpp1.6"]) as srv:
            conn = await connect("127.0.0.1", port_of(srv), "/", max_message=1000)
            await conn.send("x" * 1001)  # the echo comes back too big
            assert await conn.recv() is None
            assert conn.closed
    run(main())


def test_server_ping_answered_without_recv():
    got = []

    async def handler(ws):
        waiter = await ws.ping(b"hb")
        got.append(await asyncio.wait_for(waiter, 2))  # latency once our pong arrives
        await ws.send("after ping")
        await ws.wait_closed()

    async def main():
        async with serve(handler, "127.0.0.1", 0, subprotocols=["ocpp1.6"]) as srv:
            conn = await connect("127.0.0.1", port_of(srv), "/")
            for _ in range(100):  # nobody in recv(): the reader task answers
                if got:
                    break
                await asyncio.sleep(0.01)
            assert got
            assert await conn.recv() == "after ping"
            await conn.close()
    run(main())


def test_client_pings_at_interval_and_link_stays_up():
    async def main():
        async with serve(echo, "127.0.0.1", 0, subprotocols=["ocpp1.6"], ping_interval=None) as srv:
            conn = await connect("127.0.0.1", port_of(srv), "/", ping_interval_s=0.05,
                                 pong_timeout_s=0.3)
            ws = conn._ws
            sent, kinds = [], []
            ping, events = ws.ping, ws.events
            ws.ping = lambda p=b"": (sent.append(p), ping(p))[1]
            ws.events = lambda: [kinds.append(e[0]) or e for e in events()]
            await asyncio.sleep(0.5)
            assert not conn.closed
            assert len(sent) >= 4 and kinds.count("pong") >= 3
            await conn.send("still up")
            assert await conn.recv() == "still up"
            await conn.close()
            assert conn._pinger.done() or conn._pinger.cancelled()
    run(main())


@pytest.mark.parametrize("reads", [True, False])
def test_dead_link_detected(reads):
    async def silent(reader, writer, resp):
        writer.write(resp)
        await writer.drain()
        while reads and await reader.read(1024):
            pass  # swallow our pings, never answer
        await asyncio.sleep(5)

    async def main():
        srv = await raw_server(silent)
        async with srv:
            port = srv.sockets[0].getsockname()[1]
            conn = await connect("127.0.0.1", port, "/", ping_interval_s=0.1, pong_timeout_s=0.2)
            t0 = time.monotonic()
            assert await conn.recv() is None
            assert 0.25 <= time.monotonic() - t0 < 2.0
            assert conn.closed and conn.close_code == 1006
            with pytest.raises(WsError):
                await conn.send("x")
            srv.close()
    run(main())


def test_no_ping_without_interval():
    async def quiet(reader, writer, resp):
        writer.write(resp)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(1024), 1)  # only our close arrives
        assert data[0] == 0x88
        writer.close()

    async def main():
        srv = await raw_server(quiet)
        async with srv:
            conn = await connect("127.0.0.1", srv.sockets[0].getsockname()[1], "/")
            assert conn._pinger is None
            await asyncio.sleep(0.3)
            assert not conn.closed
            await conn.close(timeout_s=0.5)
            assert conn.closed
    run(main())


def test_frame_right_behind_101_is_delivered():
    async def eager(reader, writer, resp):
        writer.write(resp + b"\x81\x05hello")  # one write: 101 and a frame
        await writer.drain()
        await reader.read(1024)
        writer.close()

    async def main():
        srv = await raw_server(eager)
        async with srv:
            conn = await connect("127.0.0.1", srv.sockets[0].getsockname()[1], "/")
            assert await conn.recv() == "hello"
            await conn.close(timeout_s=0.5)
    run(main())


def test_close_handshake_client_first():
    seen = []

    async def handler(ws):
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        seen.append((ws.close_code, ws.close_reason))

    async def main():
        async with serve(handler, "127.0.0.1", 0, subprotocols=["ocpp1.6"]) as srv:
            conn = await connect("127.0.0.1", port_of(srv), "/", ping_interval_s=0.05)
            t0 = time.monotonic()
            await conn.close(4000)
            assert time.monotonic() - t0 < 1
            assert conn.closed and conn.close_code == 4000  # the server echoed it
            assert await conn.recv() is None
            await conn.close()  # idempotent
            for _ in range(100):
                if seen:
                    break
                await asyncio.sleep(0.01)
            assert seen == [(4000, "")]
    run(main())


def test_close_handshake_server_first():
    echoed = []

    async def handler(ws):
        await ws.send("last")
        await ws.close(4001, "bye")
        echoed.append(ws.protocol.close_rcvd.code)  # our reply echoes the code (5.5.1)

    async def main():
        async with serve(handler, "127.0.0.1", 0, subprotocols=["ocpp1.6"]) as srv:
            conn = await connect("127.0.0.1", port_of(srv), "/")
            assert await conn.recv() == "last"
            assert await conn.recv() is None
            assert conn.closed and conn.close_code == 4001
            for _ in range(100):
                if echoed:
                    break
                await asyncio.sleep(0.01)
            assert echoed == [4001]
    run(main())


def test_close_times_out_on_silent_peer():
    async def deaf(reader, writer, resp):
        writer.write(resp)
        await writer.drain()
        await asyncio.sleep(5)

    async def main():
        srv = await raw_server(deaf)
        async with srv:
            conn = await connect("127.0.0.1", srv.sockets[0].getsockname()[1], "/")
            t0 = time.monotonic()
            await conn.close(timeout_s=0.2)
            assert 0.15 <= time.monotonic() - t0 < 1.5
            assert conn.closed
            srv.close()
    run(main())


def test_basic_auth_header_reaches_server():
    seen = []

    def check(connection, request):
        seen.append((request.path, request.headers.get("Authorization"), request.headers.get("Host")))

    async def main():
        async with serve(echo, "127.0.0.1", 0, subprotocols=["ocpp1.6"], process_request=check) as srv:
            port = port_of(srv)
            conn = await connect("127.0.0.1", port, "/ocpp/CP1",
                                 headers=[("Authorization", "Basic Q1AxOnNlY3JldA==")])
            await conn.close()
            assert seen == [("/ocpp/CP1", "Basic Q1AxOnNlY3JldA==", f"127.0.0.1:{port}")]
    run(main())


def test_401_rejection_raises_with_status():
    def deny(connection, request):
        return connection.respond(HTTPStatus.UNAUTHORIZED, "bad credentials\n")

    async def main():
        async with serve(echo, "127.0.0.1", 0, subprotocols=["ocpp1.6"], process_request=deny) as srv:
            with pytest.raises(WsError) as ei:
                await connect("127.0.0.1", port_of(srv), "/")
            assert isinstance(ei.value, OSError)
            assert ei.value.status == 401 and "401" in str(ei.value)
    run(main())


def test_server_without_our_subprotocol_fails():
    async def main():
        async with serve(echo, "127.0.0.1", 0) as srv:  # accepts, selects no subprotocol
            with pytest.raises(WsError) as ei:
                await connect("127.0.0.1", port_of(srv), "/")
            assert "subprotocol" in str(ei.value) and ei.value.status == 101
        async with serve(echo, "127.0.0.1", 0, subprotocols=["ocpp2.0.1"]) as srv:
            with pytest.raises(WsError) as ei:
                await connect("127.0.0.1", port_of(srv), "/")
            assert ei.value.status == 400
    run(main())


def test_handshake_timeout_and_refused_port():
    async def mute(reader, writer, resp):
        await asyncio.sleep(5)

    async def main():
        srv = await raw_server(mute)
        async with srv:
            t0 = time.monotonic()
            with pytest.raises(WsError, match="timeout"):
                await connect("127.0.0.1", srv.sockets[0].getsockname()[1], "/", timeout_s=0.2)
            assert time.monotonic() - t0 < 1
            srv.close()
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        with pytest.raises(OSError):
            await connect("127.0.0.1", port, "/", timeout_s=1)
    run(main())


# -- the adapter under MicroPython's asyncio (WebAssembly VM, fake streams) ----

VM_CODE = r"""
import asyncio, json
from evse.link import ws, wsconn

HEAD = (b'HTTP/1.1 101 x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
        b'Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: ocpp1.6\r\n\r\n')

class Reader:
    def __init__(self):
        self.chunks = []
        self.ev = asyncio.Event()
    def feed(self, b):
        self.chunks.append(b)
        self.ev.set()
    async def read(self, n):
        while not self.chunks:
            self.ev.clear()
            await self.ev.wait()
        return self.chunks.pop(0)

class Writer:
    def __init__(self):
        self.out = []
        self.closed = False
    def write(self, b):
        self.out.append(bytes(b))
    async def drain(self):
        pass
    def close(self):
        self.closed = True
    async def wait_closed(self):
        pass

def unmask(f):
    key = f[2:6]
    return [f[0], bytes(b ^ key[i & 3] for i, b in enumerate(f[6:])).decode()]

def opened(ping_s=0, pong_s=10):
    c = ws.WsClient('h', '/', key=b'the sample nonce')
    c.receive_data(HEAD)
    c.events()
    r, w = Reader(), Writer()
    conn = wsconn.WsConnection(r, w, c, ping_s, pong_s)
    conn._start([])
    return conn, r, w

async def main():
    out = {}
    conn, r, w = opened(0.05, 0.1)
    r.feed(b'\x81\x02hi\x89\x01p')
    out['recv'] = await conn.recv()
    await asyncio.sleep(0.01)
    await conn.send('yo')
    t = asyncio.ticks()
    out['dead'] = [await conn.recv(), conn.closed, conn.close_code, w.closed,
                   asyncio.ticks_diff(asyncio.ticks(), t)]
    out['frames'] = [unmask(f) for f in w.out]
    try:
        await conn.send('x')
    except OSError as e:
        out['send_closed'] = str(e)
    conn, r, w = opened()
    async def answer():
        await asyncio.sleep(0.02)
        r.feed(b'\x88\x02\x03\xe8')
    asyncio.create_task(answer())
    await conn.close()
    out['close'] = [conn.closed, conn.close_code, w.closed, len(w.out)]
    conn, r, w = opened()
    t = asyncio.ticks()
    await conn.close(timeout_s=0.1)
    out['close_timeout'] = [conn.closed, conn.close_code, asyncio.ticks_diff(asyncio.ticks(), t)]
    print(json.dumps(out))

# wait_for cannot wake the VM's top-level coroutine: run everything in a task
await asyncio.create_task(main())
"""


def test_adapter_runs_under_micropython_asyncio():
    import mpvm
    out = mpvm.run(VM_CODE, timeout=30, run_async=True)
    lines = out.strip().splitlines()
    assert len(lines) == 1, out  # no stray task tracebacks
    res = json.loads(lines[0])
    assert res["recv"] == "hi"
    msg, closed, code, wclosed, ms = res["dead"]
    assert (msg, closed, code, wclosed) == (None, True, 1006, True)
    assert 100 <= ms < 1000  # one 50 ms interval, then 100 ms without an answer
    assert res["frames"][:3] == [[0x8A, "p"], [0x81, "yo"], [0x89, ""]]
    assert res["send_closed"] == "websocket not open"
    assert res["close"] == [True, 1000, True, 1]
    closed, code, ms = res["close_timeout"]
    assert (closed, code) == (True, 1006) and 90 <= ms < 1000
