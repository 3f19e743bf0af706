"""Big outgoing frames go out in pieces through one buffer (issue 13): the
bytes on the wire are exactly the one-piece frame's, on CPython and in the
MicroPython VM, and a real WebSocket peer reads them back."""
import asyncio

import pytest
from websockets.asyncio.server import serve

from evse.link import ws, wsconn
from evse.link.ws import OPEN, WsClient, masked_pieces

import mpvm

TEXT = "[2,\"id\",\"DataTransfer\",{\"data\":\"" + "\u00e9x" * 3000 + "\"}]"


@pytest.mark.parametrize("n", [0, 1, 125, 126, 511, 512, 513, 4096, 70000])
def test_pieces_equal_the_whole_frame(monkeypatch, n):
    monkeypatch.setattr(ws, "random_bytes", lambda k: (b"\x01\x82\x43\xf4" * 4)[:k])
    payload = bytes(range(256)) * (n // 256) + bytes(n % 256)
    c = WsClient("h", "/")
    c.state = OPEN
    buf = bytearray(512)
    got = b"".join(bytes(p) for p in masked_pieces(c.text_head(buf, n), payload, buf))
    assert got == ws._frame(1, payload)


def test_pieces_in_the_vm():
    out = mpvm.run("""
from evse.link import ws
c = ws.WsClient('h', '/')
c.state = ws.OPEN
data = ('\\u00e9x' * 700).encode()
buf = bytearray(512)
head = c.text_head(buf, len(data))
key = bytes(buf[head[0] - 4:head[0]])
got = b''.join(bytes(p) for p in ws.masked_pieces(head, data, buf))
body = got[head[0]:]
print(bytes(body[i] ^ key[i & 3] for i in range(len(body))) == data, got[0] == 0x81)
""")
    assert out.split() == ["True", "True"]


def _peer(send):
    """What a real websockets peer receives while `send(conn)` runs; it
    answers each message with "ok"."""
    async def main():
        got = []

        async def handler(conn):
            async for m in conn:
                got.append(m)
                await conn.send("ok")

        async with serve(handler, "127.0.0.1", 0, subprotocols=["ocpp1.6"]) as server:
            port = server.sockets[0].getsockname()[1]
            c = await wsconn.connect("127.0.0.1", port, "/ocpp/CP1")
            n = await send(c)
            for _ in range(n):
                assert await asyncio.wait_for(c.recv(), 5) == "ok"
            await c.close()
        return got
    return asyncio.run(asyncio.wait_for(main(), 10))


def test_a_big_text_reaches_a_real_peer_intact():
    async def send(c):
        await c.send(TEXT)
        await c.send("small")
        assert c._ws.rx.wr is not None and len(c._ws.rx.wr[0]) == 512  # the one write buffer of the link's owner
        return 2

    assert _peer(send) == [TEXT, "small"]


def test_a_big_message_is_written_without_its_json_text():
    # rpc.Out (GetConfiguration of every key, a composite schedule,
    # StopTransaction): its JSON goes to the peer in packed, masked pieces;
    # the peer reads the same document json.dumps would give.
    import json

    from evse.wire import jsonout, rpc
    payload = {"configurationKey": [{"key": "K%03d" % i, "readonly": i % 2 == 0, "value": "\u00e9" * (i % 7)}
                                    for i in range(120)]}
    out = rpc.result_frame("u1", "GetConfiguration", payload)
    assert isinstance(out, rpc.Out) and json.loads(out.text()) == [3, "u1", payload]
    assert out.size() == len(json.dumps([3, "u1", payload], separators=(",", ":"), ensure_ascii=False).encode()) \
        or out.size() == len(json.dumps([3, "u1", payload], separators=(",", ":")).encode())
    seen = []
    orig = jsonout.dump

    def spy(obj, write):  # no single write is the whole document
        orig(obj, lambda s: (seen.append(len(s)), write(s)))

    async def send(c):
        jsonout.dump = spy
        try:
            await c.send_out(out)
        finally:
            jsonout.dump = orig
        await c.send("small")
        return 2

    got = _peer(send)
    assert json.loads(got[0]) == [3, "u1", payload] and got[1] == "small"
    assert max(seen) < 100 < out.size()
    assert rpc.result_frame("u2", "Heartbeat", {}) == rpc.encode_result("u2", {})  # small ones stay text
