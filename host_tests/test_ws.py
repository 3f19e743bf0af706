"""Sans-IO WebSocket client (evse.link.ws): handshake, framing, close; the reconnect Backoff.

The server side is written out by hand here (frames built byte by byte,
accept keys from CPython's hashlib) so the tests do not trust the code
under test to check itself.
"""
import base64
import hashlib
import json
import os
import struct
import time

import pytest
from evse.link import ws as wsmod
from evse.link.sha1 import sha1 as pure_sha1
from evse.link.backoff import Backoff
from evse.link.ws import WsClient
from evse.link.wshandshake import accept_key

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEY = b"the sample nonce"  # RFC 6455 1.3 example: base64 dGhlIHNhbXBsZSBub25jZQ==
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def accept_for(key16):
    b64 = base64.b64encode(key16)
    return base64.b64encode(hashlib.sha1(b64 + GUID).digest()).decode()


def response(status="101 Switching Protocols", proto="ocpp1.6", accept=None, extra=()):
    lines = ["HTTP/1.1 " + status, "Upgrade: websocket", "Connection: Upgrade",
             "Sec-WebSocket-Accept: " + (accept if accept is not None else accept_for(KEY))]
    if proto is not None:
        lines.append("Sec-WebSocket-Protocol: " + proto)
    lines.extend(extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def frame(op, payload=b"", fin=True, rsv=0, mask=None, form=None):
    """A server frame; form forces the 7/16/64-bit length encoding."""
    n = len(payload)
    form = form or (7 if n < 126 else 16 if n < 65536 else 64)
    head = bytes([(0x80 if fin else 0) | rsv | op])
    mbit = 0x80 if mask else 0
    if form == 7:
        head += bytes([mbit | n])
    elif form == 16:
        head += bytes([mbit | 126]) + struct.pack(">H", n)
    else:
        head += bytes([mbit | 127]) + struct.pack(">Q", n)
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        head += mask
    return head + payload


def parse_client(data):
    """Decode one client frame: (fin, opcode, payload, mask_key, header_len)."""
    data = bytes(data)
    b0, b1 = data[0], data[1]
    assert b1 & 0x80, "client frames must be masked"
    n = b1 & 0x7F
    pos = 2
    if n == 126:
        n = struct.unpack(">H", data[2:4])[0]
        pos = 4
    elif n == 127:
        n = struct.unpack(">Q", data[2:10])[0]
        pos = 10
    key = data[pos:pos + 4]
    body = data[pos + 4:]
    assert len(body) == n
    return bool(b0 & 0x80), b0 & 0x0F, bytes(b ^ key[i % 4] for i, b in enumerate(body)), key, pos


def opened(**kw):
    c = WsClient("csms.example:8080", "/ocpp/CP1", key=KEY, **kw)
    c.handshake_request()
    c.receive_data(response())
    assert c.events() == [("open", "ocpp1.6")]
    return c


def feed(c, data, chunk):
    for i in range(0, len(data), chunk):
        c.receive_data(data[i:i + chunk])
    return c.events()


def fail_code(c):
    fin, op, payload, _, _ = parse_client(c.fail_bytes())
    assert (fin, op) == (True, 8)
    return struct.unpack(">H", payload[:2])[0]


# -- handshake ---------------------------------------------------------------

def test_accept_key_rfc_example():
    assert accept_key(b"dGhlIHNhbXBsZSBub25jZQ==") == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


@pytest.mark.parametrize("n", [0, 1, 55, 56, 63, 64, 65, 119, 120, 1000])
def test_pure_sha1_matches_hashlib(n):
    data = bytes(range(256)) * 4
    assert pure_sha1(data[:n]) == hashlib.sha1(data[:n]).digest()


def test_handshake_request_fields():
    c = WsClient("h:9000", "/ocpp/CP1", key=KEY, headers=[("Authorization", "Basic Q1A6cHc=")])
    raw = c.handshake_request().decode()
    assert raw.endswith("\r\n\r\n")
    lines = raw[:-4].split("\r\n")
    assert lines[0] == "GET /ocpp/CP1 HTTP/1.1"
    hdrs = dict(line.split(": ", 1) for line in lines[1:])
    assert hdrs == {
        "Host": "h:9000", "Upgrade": "websocket", "Connection": "Upgrade",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Protocol": "ocpp1.6", "Authorization": "Basic Q1A6cHc=",
    }


def test_handshake_request_rejects_header_injection_and_bad_key():
    with pytest.raises(ValueError):
        WsClient("h", "/", key=KEY, headers=[("X", "a\r\nEvil: 1")]).handshake_request()
    with pytest.raises(ValueError):
        WsClient("h", "/", key=b"short")


def test_default_key_is_random_16_bytes():
    a = WsClient("h", "/").handshake_request()
    b = WsClient("h", "/").handshake_request()
    ka = next(x for x in a.split(b"\r\n") if x.startswith(b"Sec-WebSocket-Key"))
    kb = next(x for x in b.split(b"\r\n") if x.startswith(b"Sec-WebSocket-Key"))
    assert ka != kb and len(base64.b64decode(ka.split(b": ")[1])) == 16


@pytest.mark.parametrize("chunk", [1, 2, 5, 17, 10000])
def test_good_handshake_in_chunks_with_frame_behind_it(chunk):
    c = WsClient("h", "/", key=KEY)
    c.handshake_request()
    assert c.state == "connecting"
    evs = feed(c, response() + frame(1, b'[2,"1","Reset",{}]'), chunk)
    assert evs == [("open", "ocpp1.6"), ("text", '[2,"1","Reset",{}]')]
    assert c.state == "open" and c.http_status == 101


def test_handshake_headers_case_insensitive_token_lists():
    raw = (b"HTTP/1.1 101 OK\r\nUPGRADE: WebSocket\r\nconnection: keep-alive, Upgrade\r\n"
           b"sec-websocket-accept: " + accept_for(KEY).encode() +
           b"\r\nSEC-WEBSOCKET-PROTOCOL:ocpp1.6\r\nX-Other: 1\r\n\r\n")
    c = WsClient("h", "/", key=KEY)
    c.receive_data(raw)
    assert c.events() == [("open", "ocpp1.6")]


@pytest.mark.parametrize("resp, needle", [
    (response(accept=accept_for(b"x" * 16)), "accept"),
    (response(proto=None), "subprotocol"),
    (response(proto="ocpp2.0.1"), "subprotocol"),
    (response(status="401 Unauthorized"), "http 401"),
    (response(status="200 OK"), "http 200"),
    (response().replace(b"Upgrade: websocket\r\n", b""), "upgrade"),
    (response().replace(b"Connection: Upgrade", b"Connection: close"), "connection"),
    (response(extra=["Sec-WebSocket-Extensions: permessage-deflate"]), "extension"),
    (b"garbage\r\n\r\n", "status"),
    (b"HTTP/1.1 101 OK\r\n folded\r\n\r\n", "header"),
])
def test_bad_handshake_is_an_error(resp, needle):
    c = WsClient("h", "/", key=KEY)
    c.receive_data(resp)
    evs = c.events()
    assert len(evs) == 1 and evs[0][0] == "error" and needle in evs[0][1]
    assert c.state == "closed"
    assert c.fail_bytes() == b""  # nothing to send before the upgrade
    with pytest.raises(RuntimeError):
        c.send_text("x")


def test_401_status_reported():
    c = WsClient("h", "/", key=KEY)
    c.receive_data(response(status="401 Unauthorized", proto=None))
    assert c.events() == [("error", "http 401")]
    assert c.http_status == 401


def test_oversized_handshake_response():
    c = WsClient("h", "/", key=KEY)
    c.receive_data(b"HTTP/1.1 101 OK\r\n" + b"X-Pad: aaaaaaaaaaaaaaa\r\n" * 200)
    assert c.events()[0][0] == "error" and c.state == "closed"
    # a complete head just over 4 KiB is refused too
    big = response(extra=["X-Pad: " + "a" * 4000])
    assert len(big) > 4096
    c = WsClient("h", "/", key=KEY)
    c.receive_data(big)
    assert c.events() == [("error", "handshake response too large")]


def test_eof_during_handshake():
    c = WsClient("h", "/", key=KEY)
    c.receive_data(b"HTTP/1.1 101")
    c.receive_data(b"")
    assert c.events() == [("error", "eof during handshake")] and c.state == "closed"


def test_no_subprotocol_requested():
    c = WsClient("h", "/", key=KEY, subprotocol=None)
    assert b"Sec-WebSocket-Protocol" not in c.handshake_request()
    c.receive_data(response(proto=None))
    assert c.events() == [("open", None)]


# -- frames ------------------------------------------------------------------

STREAM = [
    (frame(1, "héllo".encode()), ("text", "héllo")),
    (frame(1, b"x" * 300), ("text", "x" * 300)),
    (frame(1, b"y" * 200, form=16), ("text", "y" * 200)),
    (frame(2, bytes(range(256)) * 300), ("binary", bytes(range(256)) * 300)),  # 64-bit
    (frame(9, b"p1"), ("ping", b"p1")),
    (frame(10, b""), ("pong", b"")),
    (frame(1, b""), ("text", "")),
]


@pytest.mark.parametrize("chunk", [1, 3, 7, 64, 1000, 1 << 20])
def test_frames_in_odd_chunks(chunk):
    c = opened(max_message=100000)
    data = b"".join(f for f, _ in STREAM)
    if chunk == 1:
        data = b"".join(f for f, _ in STREAM[:3] + STREAM[4:])  # keep 1-byte feeding quick
        want = [e for _, e in STREAM[:3] + STREAM[4:]]
    else:
        want = [e for _, e in STREAM]
    assert feed(c, data, chunk) == want
    assert c.state == "open"


def test_receive_buffer_stays_bounded():
    # Payload moves to the message buffer as it arrives; the receive buffer
    # never holds more than a chunk.
    c = opened(max_message=80000)
    data = frame(1, b"a" * 70000)
    for i in range(0, len(data), 1000):
        c.receive_data(data[i:i + 1000])
        assert len(c._buf) <= 1000
    assert c.events() == [("text", "a" * 70000)]


def test_fragmented_message_with_ping_between():
    c = opened()
    data = (frame(1, b"[2,", fin=False) + frame(9, b"hb") + frame(0, b'"a",', fin=False)
            + frame(10, b"x") + frame(0, b'"B",{}]'))
    for chunk in (1, 4, len(data)):
        assert feed(c, data, chunk) == [("ping", b"hb"), ("pong", b"x"), ("text", '[2,"a","B",{}]')]


def test_fragmented_text_split_inside_utf8_char():
    c = opened()
    raw = "€".encode()
    c.receive_data(frame(1, raw[:1], fin=False) + frame(0, raw[1:]))
    assert c.events() == [("text", "€")]


@pytest.mark.parametrize("data, code", [
    (frame(1, b"a" * 101), 1009),
    (frame(1, b"a" * 60, fin=False) + frame(0, b"a" * 41), 1009),
    (frame(1, b"hi", mask=b"\x01\x02\x03\x04"), 1002),
    (frame(1, b"\xff\xfe"), 1007),
    (frame(1, b"\xed\xa0\x80"), 1007),  # UTF-16 surrogate
    (frame(1, b"\xc0\xaf"), 1007),  # overlong "/"
    (frame(1, "é".encode()[:1]), 1007),  # truncated
    (frame(1, b"x", rsv=0x40), 1002),
    (frame(1, b"x", rsv=0x10), 1002),
    (frame(9, b"p" * 126, form=16), 1002),
    (frame(9, b"p", fin=False), 1002),
    (frame(3, b"x"), 1002),
    (frame(11, b"x"), 1002),
    (frame(0, b"x"), 1002),
    (frame(1, b"a", fin=False) + frame(1, b"b"), 1002),
    (frame(8, b"\x03"), 1002),
    (frame(8, struct.pack(">H", 1005)), 1002),
    (frame(8, struct.pack(">H", 999)), 1002),
    (frame(8, struct.pack(">H", 1000) + b"\xff"), 1007),
    (b"\x81\x7f" + struct.pack(">Q", 1 << 63), 1002),
])
def test_protocol_violations(data, code):
    c = opened(max_message=100)
    c.receive_data(data)
    evs = c.events()
    assert [e[0] for e in evs] == ["error"], evs
    assert c.state == "closed" and c.fail_code == code
    assert fail_code(c) == code
    assert c.fail_bytes() == b""  # handed out once
    c.receive_data(frame(1, b"late"))
    assert c.events() == []


def test_oversized_message_refused_on_header_alone():
    c = opened(max_message=1000)
    c.receive_data(b"\x81\x7f" + struct.pack(">Q", 1 << 40))  # 1 TiB claimed, no payload
    assert c.events() == [("error", "message too big")] and fail_code(c) == 1009


def test_valid_utf8_table():
    cases = [b"", b"abc", "é€😀".encode(), b"\xed\x9f\xbf", b"\xee\x80\x80", b"\xf4\x8f\xbf\xbf",
             b"\xed\xa0\x80", b"\xc0\x80", b"\xc1\xbf", b"\xe0\x80\x80", b"\xf0\x80\x80\x80",
             b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80", b"\x80", b"\xe2\x82", b"\xe2\x28\xa1"]
    for b in cases:
        try:
            b.decode("utf-8")
            ok = True
        except UnicodeDecodeError:
            ok = False
        assert wsmod._valid_utf8(b) is ok, b


# -- close -------------------------------------------------------------------

def test_peer_close_then_our_reply():
    c = opened()
    c.receive_data(frame(8, struct.pack(">H", 1001) + "bye é".encode()) + frame(1, b"ignored"))
    assert c.events() == [("close", 1001, "bye é")]
    assert c.state == "close-received" and c.close_code == 1001
    with pytest.raises(RuntimeError):
        c.send_text("no")
    fin, op, payload, _, _ = parse_client(c.close(1001))
    assert (fin, op, payload) == (True, 8, struct.pack(">H", 1001))
    assert c.state == "closed" and c.close() == b""


def test_empty_close_frame_is_1005():
    c = opened()
    c.receive_data(frame(8))
    assert c.events() == [("close", 1005, "")]


@pytest.mark.parametrize("n,form", [(10, 16), (125, 16), (10, 64), (65535, 64)])
def test_a_length_not_in_its_shortest_form_is_a_protocol_error(n, form):
    """RFC 6455 5.2: the minimal number of bytes MUST be used for the length."""
    c = opened(max_message=100000)
    c.receive_data(frame(1, b"z" * n, form=form))
    assert c.events() == [("error", "length not in its shortest form")] and c.state == "closed"
    assert c.fail_code == 1002 and parse_client(c.fail_bytes())[1] == 8


def test_we_close_first():
    c = opened()
    _, op, payload, _, _ = parse_client(c.close(1000, "done"))
    assert (op, payload) == (8, struct.pack(">H", 1000) + b"done")
    assert c.state == "close-sent" and c.close() == b""
    with pytest.raises(RuntimeError):
        c.ping()
    c.receive_data(frame(1, b"still delivered") + frame(8, struct.pack(">H", 1000)))
    assert c.events() == [("text", "still delivered"), ("close", 1000, "")]
    assert c.state == "closed"


def test_close_argument_checks():
    c = opened()
    with pytest.raises(ValueError):
        c.close(1006)
    with pytest.raises(ValueError):
        c.close(1000, "r" * 124)
    assert parse_client(c.close(None))[2] == b""


def test_eof_when_open_is_1006():
    c = opened()
    c.receive_data(frame(1, b"a", fin=False))
    c.receive_data(b"")
    assert c.events() == [("close", 1006, "")] and c.state == "closed"
    c.receive_data(b"")
    assert c.events() == []


def test_eof_after_close_adds_nothing():
    c = opened()
    c.receive_data(frame(8, struct.pack(">H", 1000)))
    c.close(1000)
    c.events()
    c.receive_data(b"")
    assert c.events() == [] and c.state == "closed"


def test_close_while_connecting():
    c = WsClient("h", "/", key=KEY)
    assert c.close() == b"" and c.state == "closed"


# -- our frames --------------------------------------------------------------

@pytest.mark.parametrize("n, hl", [(0, 2), (1, 2), (63, 2), (64, 2), (125, 2), (126, 4),
                                   (1000, 4), (65535, 4), (65536, 10), (70001, 10)])
def test_our_frames_are_masked_and_decode_back(n, hl):
    c = opened()
    text = ("aé€" * (n // 3 + 1)).encode()[:n].decode("utf-8", "ignore")
    text += "a" * (n - len(text.encode()))  # exactly n bytes, non-ASCII inside
    fin, op, payload, _, pos = parse_client(c.send_text(text))
    assert (fin, op, payload, pos) == (True, 1, text.encode(), hl)
    data = bytes(range(256)) * (n // 256 + 1)
    _, op, payload, _, _ = parse_client(c.send_binary(data[:n]))
    assert (op, payload) == (2, data[:n])


def test_mask_key_from_random_bytes(monkeypatch):
    c = opened()
    monkeypatch.setattr(wsmod, "random_bytes", lambda n: b"\x11\x22\x33\x44"[:n])
    out = bytes(c.send_text("abcdefgh"))
    assert out[2:6] == b"\x11\x22\x33\x44"
    assert out[6:] == bytes(b ^ (0x11, 0x22, 0x33, 0x44)[i % 4] for i, b in enumerate(b"abcdefgh"))
    assert out[6:] != b"abcdefgh"


def test_ping_pong_frames():
    c = opened()
    assert parse_client(c.ping(b"hb"))[1:3] == (9, b"hb")
    assert parse_client(c.pong(b"hb"))[1:3] == (10, b"hb")
    with pytest.raises(ValueError):
        c.ping(b"x" * 126)


# -- Backoff -----------------------------------------------------------------

def test_backoff_bounds_growth_and_reset():
    lo = Backoff(base_ms=1000, max_ms=10000, rand=lambda n: 0)
    hi = Backoff(base_ms=1000, max_ms=10000, rand=lambda n: n - 1)
    assert [lo.next_ms() for _ in range(6)] == [500, 1000, 2000, 4000, 5000, 5000]
    assert [hi.next_ms() for _ in range(6)] == [1000, 2000, 4000, 8000, 10000, 10000]
    hi.reset()
    assert hi.next_ms() == 1000


def test_backoff_default_rand_stays_in_range():
    b = Backoff(base_ms=100, max_ms=1600)
    seen = set()
    for _ in range(20):
        b.reset()
        for cap in (100, 200, 400, 800, 1600, 1600):
            d = b.next_ms()
            assert cap // 2 <= d <= cap
            seen.add(d)
    assert len(seen) > 10  # jitter actually varies


# -- the same code in the MicroPython VM --------------------------------------

VM_CODE = r"""
import sys, json
sys.path.append('/lib')
from evse.link import ws
out = {}
from evse.link.wshandshake import accept_key
out['accept'] = accept_key(b'dGhlIHNhbXBsZSBub25jZQ==').decode()
c = ws.WsClient('h', '/ocpp/CP1', key=b'the sample nonce')
req = c.handshake_request()
resp = (b'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
        b'Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: ocpp1.6\r\n\r\n')
big = b'q' * 300
stream = (resp + b'\x01\x03[2,' + b'\x89\x02hb' + b'\x80\x02"a' + b'\x81\x7e\x01\x2c' + big)
for i in range(0, len(stream), 7):
    c.receive_data(stream[i:i + 7])
out['events'] = [list(e) if not isinstance(e[1], bytes) else [e[0], e[1].decode()] for e in c.events()]
f = c.send_text('€' * 50)
key = f[4:8]
body = bytes(b ^ key[i & 3] for i, b in enumerate(f[8:]))
out['roundtrip'] = [f[0], f[1], int.from_bytes(f[2:4], 'big'), body.decode() == '€' * 50]
c.receive_data(b'\x81\x03\xed\xa0\x80')
out['surrogate'] = [list(e) for e in c.events()] + [c.fail_code]
print(json.dumps(out))
"""


def test_runs_in_micropython_vm():
    import mpvm
    t0 = time.monotonic()
    out = mpvm.run(VM_CODE, timeout=30)
    elapsed = time.monotonic() - t0
    res = json.loads(out.strip().splitlines()[-1])
    assert res["accept"] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # pure-Python sha1 fallback there
    assert res["events"] == [["open", "ocpp1.6"], ["ping", "hb"], ["text", '[2,"a'], ["text", "q" * 300]]
    assert res["roundtrip"] == [0x81, 0x80 | 126, 150, True]
    assert res["surrogate"] == [["error", "invalid utf-8"], 1007]
    assert elapsed < 5
