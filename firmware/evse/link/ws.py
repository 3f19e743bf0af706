"""RFC 6455 WebSocket client protocol, sans-IO (in the manner of wsproto/h11).

No sockets here: feed received bytes to `WsClient.receive_data()`, drain
`events()`, and write whatever bytes the send methods return.

States (all transitions live in this file):
    connecting --valid 101--------------------> open
    connecting --bad response / EOF / close()--> closed
    open       --close() (we start)------------> closing --peer close--> closed
    open       --peer close (we owe a reply)---> closing --close()-----> closed
    any        --protocol error / EOF----------> closed
"""
from binascii import b2a_base64

from evse.compat import const, random_bytes
from evse.link import wshandshake

CONNECTING = "connecting"
OPEN = "open"
CLOSE_SENT = "close-sent"  # we began the close handshake: the peer's close is due
CLOSE_RECEIVED = "close-received"  # the peer began it: our close (the echo) is due
CLOSED = "closed"

_MAX_HEAD = const(4096)  # largest handshake response we accept
_MASK_BLOCK = const(64)  # bytes XORed per big-int step when masking
_SMALL = const(1024)  # longest message handed out as a str; longer ones stay in the buffer
_GROW = const(1024)  # the receive buffer grows in steps of this

_OP_CONT = const(0)
_OP_TEXT = const(1)
_OP_BIN = const(2)
_OP_CLOSE = const(8)
_OP_PING = const(9)
_OP_PONG = const(10)


def _code_ok(code):
    # 7.4: 1004-1006 and 1015 must never appear on the wire; 1012-1014 are
    # IANA-registered; 3000-4999 belong to libraries and applications.
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


def _valid_utf8(b):
    """Strict UTF-8 check (RFC 3629): MicroPython's decoder lets surrogates,
    overlong forms and code points above U+10FFFF through."""
    i = 0
    n = len(b)
    while i < n:
        c = b[i]
        if c < 0x80:
            i += 1
            continue
        lo = 0x80
        hi = 0xBF
        if 0xC2 <= c <= 0xDF:
            k = 1
        elif 0xE0 <= c <= 0xEF:
            k = 2
            if c == 0xE0:
                lo = 0xA0  # overlong
            elif c == 0xED:
                hi = 0x9F  # surrogates
        elif 0xF0 <= c <= 0xF4:
            k = 3
            if c == 0xF0:
                lo = 0x90  # overlong
            elif c == 0xF4:
                hi = 0x8F  # above U+10FFFF
        else:
            return False
        if i + k >= n or not lo <= b[i + 1] <= hi:
            return False
        for j in range(i + 2, i + k + 1):
            if not 0x80 <= b[j] <= 0xBF:
                return False
        i += k + 1
    return True


def _utf8(data):
    s = str(data, "utf-8")  # raises UnicodeError (a ValueError) on both Pythons
    # Pure ASCII has as many characters as bytes and needs no second look.
    if len(s) != len(data) and not _valid_utf8(data):
        raise ValueError("invalid utf-8")
    return s


class RxBuffer:
    """Where a link's data messages are received: one bytearray kept across
    messages (and across links, when the owner passes it to each new
    client). It grows to the largest message seen and never shrinks, so a
    big message arriving in a fragmented heap needs no new contiguous block
    once one like it has been received."""

    def __init__(self, size=_SMALL, read=1024, piece=512):
        self.buf = bytearray(size)  # every message up to _SMALL fits from the start
        # Made with it (at boot, by the runtime): the socket read buffer and
        # the two write buffers of big outgoing frames (evse.link.wsconn), so no
        # link and no big message needs a new block for them later.
        self.rd = bytearray(read)
        self.wr = (bytearray(piece), bytearray(piece))

    def need(self, n, keep):
        """Room for n bytes; the first `keep` bytes survive a growth."""
        if n <= len(self.buf):
            return
        n = (n + _GROW - 1) // _GROW * _GROW
        if not keep:
            self.buf = b""  # the old block is free before the new one is made
            self.buf = bytearray(n)
            return
        new = bytearray(n)
        new[:keep] = memoryview(self.buf)[:keep]
        self.buf = new


class Frame:
    """A text message over _SMALL bytes, read in place: buf[:n] of the
    link's RxBuffer, valid until the link's next recv(). Readers take the
    buffer as it is (jsonstream.Reader(f.buf, n=f.n)); text() copies it."""

    def __init__(self, buf, n):
        self.buf = buf
        self.n = n

    def __len__(self):
        return self.n

    def mv(self):
        return memoryview(self.buf)[:self.n]

    def text(self):
        return str(self.mv(), "utf-8")

    def __eq__(self, other):
        return self.text() == other if isinstance(other, str) else self is other


def mask_into(out, off, data, key):
    """out[off:off+len(data)] = data XOR key (5.3), a block at a time through
    big ints (MPZ on ESP32/rp2) rather than a Python loop per byte."""
    n = len(data)
    km = int.from_bytes(key * (_MASK_BLOCK // 4), "big")
    i = 0
    while i + _MASK_BLOCK <= n:
        v = int.from_bytes(data[i:i + _MASK_BLOCK], "big") ^ km
        out[off + i:off + i + _MASK_BLOCK] = v.to_bytes(_MASK_BLOCK, "big")
        i += _MASK_BLOCK
    while i < n:
        out[off + i] = data[i] ^ key[i & 3]
        i += 1


def _head(out, op, n):
    """Write a FIN frame header with a fresh mask key into `out`; returns
    (header length incl. the key, key)."""
    hl = 2 if n < 126 else 4 if n < 65536 else 10
    out[0] = 0x80 | op
    if hl == 2:
        out[1] = 0x80 | n
    elif hl == 4:
        out[1] = 0x80 | 126
        out[2:4] = n.to_bytes(2, "big")
    else:
        out[1] = 0x80 | 127
        out[2:10] = n.to_bytes(8, "big")
    key = random_bytes(4)
    out[hl:hl + 4] = key
    return hl + 4, key


def _frame(op, payload):
    """One FIN frame, masked as every client frame must be (5.1)."""
    n = len(payload)
    out = bytearray((2 if n < 126 else 4 if n < 65536 else 10) + 4 + n)
    hl, key = _head(out, op, n)
    mask_into(out, hl, payload, key)
    return out


def masked_pieces(head, payload, buf):
    """A big frame in pieces through one preallocated buffer: yields the
    header, then the masked payload len(buf) bytes at a time (len(buf) a
    multiple of 4 keeps the key in phase). Each piece is a memoryview
    into `buf`, valid until the next one. `head` is a WsClient.text_head()."""
    mv = memoryview(buf)
    hl, key = head
    yield mv[:hl]
    step = len(buf)
    n = len(payload)
    data = memoryview(payload)
    for off in range(0, n, step):
        k = min(step, n - off)
        mask_into(buf, 0, data[off:off + k], key)
        yield mv[:k]


class WsClient:
    """Client side of one WebSocket connection.

    Events from `events()` are tuples: ("open", subprotocol), ("text", str
    or, over _SMALL bytes, a Frame: then nothing more is parsed until
    release()),
    ("binary", bytes), ("ping", bytes), ("pong", bytes), ("close", code,
    reason) and ("error", reason). After "error" the state is closed: send
    `fail_bytes()` (if not empty) and drop the socket. Send methods return
    the bytes to write (a bytearray) and raise RuntimeError unless open.
    """

    def __init__(self, host, path, subprotocol="ocpp1.6", headers=None,
                 key=None, max_message=65536, rx=None):
        if key is None:
            key = random_bytes(16)
        if len(key) != 16:
            raise ValueError("key must be 16 bytes")
        self.host = host
        self.path = path or "/"
        self.subprotocol = subprotocol
        self.headers = headers or []
        self.max_message = max_message
        self.state = CONNECTING
        self.http_status = 0  # status of the handshake response
        self.close_code = None  # code of the peer's close frame
        self.fail_code = 0  # close code we sent after a protocol error
        self._key = b2a_base64(key).strip()
        self._events = []
        self._buf = bytearray()
        self._scan = 0  # where to resume looking for the header end
        self._fail = b""
        self._need = -1  # payload bytes still due; -1 while reading a header
        self._op = 0  # opcode of the frame being read
        self._fin = 0
        self._ctl = bytearray()  # control frame payload (<= 125 bytes)
        self.rx = self._rx = rx or RxBuffer()  # data messages are received into rx.buf
        self._mlen = 0  # bytes of the message being reassembled
        self._ascii = True  # no byte >= 0x80 in it so far
        self.held = False  # a Frame in rx.buf is out: parse no further until release()
        self._msg_op = 0  # opcode of that message; 0 when none

    # -- handshake (4.1) --------------------------------------------------

    def handshake_request(self) -> bytes:
        """The HTTP Upgrade request to send first."""
        return wshandshake.request(self.host, self.path, self._key, self.subprotocol, self.headers)

    def _read_head(self):
        buf = self._buf
        end = buf.find(b"\r\n\r\n", self._scan)
        if end < 0:
            if len(buf) > _MAX_HEAD:
                self._error("handshake response too large", 0)
            else:
                self._scan = max(0, len(buf) - 3)
            return
        if end + 4 > _MAX_HEAD:
            self._error("handshake response too large", 0)
            return
        err = self._check_head(bytes(buf[:end]))
        if err:
            self._error(err, 0)
            return
        self._buf = buf[end + 4:]
        self.state = OPEN
        self._events.append(("open", self.subprotocol))

    def _check_head(self, head):
        """Reason the response is not an acceptable 101 (4.1 step 5), or None."""
        self.http_status, err = wshandshake.check(head, self._key, self.subprotocol)
        return err

    # -- receiving ---------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Feed bytes from the transport; b"" means it reached EOF."""
        if self.state == CLOSED:
            return
        if not data:
            if self.state == CONNECTING:
                self._error("eof during handshake", 0)
                return
            if self.state != CLOSE_RECEIVED:
                self._events.append(("close", 1006, ""))  # 7.1.5: abnormal
            self.state = CLOSED
            return
        if self.state == CONNECTING:
            self._buf.extend(data)
            self._read_head()
            if self.state != CONNECTING and self._buf:
                self._read_frames(self._buf)
        elif self._buf:  # a header the last read cut, or what waits behind a held Frame
            self._buf.extend(data)
            self._read_frames(self._buf)
        else:  # parsed where it was read: only an incomplete header is copied
            self._read_frames(data)

    def events(self) -> list:
        """Pending events, oldest first; the queue is emptied."""
        ev = self._events
        self._events = []
        return ev

    def fail_bytes(self) -> bytes:
        """Close frame owed after a protocol error (once), else b""."""
        out = self._fail
        self._fail = b""
        return out

    def _error(self, reason, code):
        if code and self.state in (OPEN, CLOSE_RECEIVED):  # no close of ours sent yet
            self._fail = _frame(_OP_CLOSE, code.to_bytes(2, "big") + reason.encode())
            self.fail_code = code
        self._events.append(("error", reason))
        self.state = CLOSED
        self._buf = bytearray()
        self._mlen = 0
        return -1

    def _read_frames(self, buf):
        n = len(buf)
        pos = 0
        while (self.state == OPEN or self.state == CLOSE_SENT) and not self.held:
            if self._need < 0:
                used = self._header(buf, pos, n)
                if used <= 0:
                    break
                pos += used
            take = min(self._need, n - pos)
            if take:
                # Payload goes straight to its destination: the receive
                # buffer never holds more than one chunk plus a header.
                piece = memoryview(buf)[pos:pos + take]
                if self._op >= _OP_CLOSE:
                    self._ctl.extend(piece)
                else:
                    m = self._mlen
                    memoryview(self._rx.buf)[m:m + take] = piece
                    self._mlen = m + take
                    if self._ascii and max(piece) > 0x7F:
                        self._ascii = False
                pos += take
                self._need -= take
            if self._need:
                break
            self._need = -1
            self._frame_done()
        if (self.state != OPEN and self.state != CLOSE_SENT) or pos == n:
            self._buf = bytearray()  # all used (nothing may follow a close frame, 5.5.1)
        elif pos or buf is not self._buf:
            # A cut header (a few bytes) or, behind a held Frame, the rest of
            # one read: `buf` may be the caller's buffer, reused next read.
            self._buf = bytearray(memoryview(buf)[pos:n])

    def _header(self, buf, pos, n):
        """Parse a frame header at buf[pos:]; its length, 0 if incomplete, -1 on error."""
        if n - pos < 2:
            return 0
        b0 = buf[pos]
        b1 = buf[pos + 1]
        op = b0 & 0x0F
        fin = b0 & 0x80
        ln = b1 & 0x7F
        if b0 & 0x70:
            return self._error("reserved bits set", 1002)  # 5.2, no extensions
        if b1 & 0x80:
            return self._error("masked server frame", 1002)  # 5.1
        if op >= _OP_CLOSE:
            if op > _OP_PONG:
                return self._error(f"unknown opcode {op}", 1002)
            if not fin or ln > 125:
                return self._error("bad control frame", 1002)  # 5.5
        elif op == _OP_CONT:
            if not self._msg_op:
                return self._error("continuation without start", 1002)
        elif op > _OP_BIN:
            return self._error(f"unknown opcode {op}", 1002)
        elif self._msg_op:
            return self._error("new message inside fragmented one", 1002)  # 5.4
        hl = 2 if ln < 126 else 4 if ln == 126 else 10
        if n - pos < hl:
            return 0
        if hl > 2:
            ln = int.from_bytes(buf[pos + 2:pos + hl], "big")
            if ln >> 63:
                return self._error("bad length", 1002)  # 5.2: MSB must be 0
            if ln < (126 if hl == 4 else 65536):
                return self._error("length not in its shortest form", 1002)  # 5.2: minimal bytes
        if op < _OP_CLOSE:
            # Refuse before buffering anything: memory stays bounded.
            if self._mlen + ln > self.max_message:
                return self._error("message too big", 1009)
            self._rx.need(self._mlen + ln, self._mlen)  # once per frame, at its full size
            if op:
                self._msg_op = op
            self._fin = fin
        else:
            self._ctl = bytearray()
        self._op = op
        self._need = ln
        return hl

    def _frame_done(self):
        op = self._op
        if op >= _OP_CLOSE:
            payload = bytes(self._ctl)
            self._ctl = bytearray()
            if op == _OP_PING:
                self._events.append(("ping", payload))
            elif op == _OP_PONG:
                self._events.append(("pong", payload))
            else:
                self._on_close(payload)
            return
        if not self._fin:
            return
        n, mop, ascii = self._mlen, self._msg_op, self._ascii
        self._mlen, self._msg_op, self._ascii = 0, 0, True
        data = memoryview(self._rx.buf)[:n]
        if mop == _OP_BIN:
            self._events.append(("binary", bytes(data)))
            return
        try:
            if n <= _SMALL:
                text = _utf8(data)
            elif not ascii and not _valid_utf8(data):
                raise ValueError("invalid utf-8")
            else:  # read in place; the buffer is lent out until release()
                text = Frame(self._rx.buf, n)
                self.held = True
        except ValueError:
            self._error("invalid utf-8", 1007)  # 8.1
            return
        self._events.append(("text", text))

    def release(self):
        """The Frame handed out is done with: parse what came after it
        (new events may follow)."""
        if self.held:
            self.held = False
            if self._buf and self.state != CLOSED:
                self._read_frames(self._buf)

    def _on_close(self, p):
        code = 1005  # 7.1.5: no status code present
        reason = ""
        if len(p) == 1:
            self._error("bad close frame", 1002)
            return
        if p:
            code = int.from_bytes(p[:2], "big")
            if not _code_ok(code):
                self._error(f"bad close code {code}", 1002)
                return
            try:
                reason = _utf8(p[2:])
            except ValueError:
                self._error("invalid utf-8", 1007)
                return
        self.close_code = code
        self._events.append(("close", code, reason))
        self.state = CLOSED if self.state == CLOSE_SENT else CLOSE_RECEIVED

    # -- sending -----------------------------------------------------------

    def _send(self, op, payload):
        if self.state != OPEN:
            raise RuntimeError(f"ws: cannot send opcode {op} in state {self.state}")
        return _frame(op, payload)

    def send_text(self, text: str) -> bytes:
        return self._send(_OP_TEXT, text.encode())

    def text_head(self, buf, n):
        """Header of a text frame of n bytes, written into buf (at least 14
        bytes): (its length, the mask key), for masked_pieces()."""
        if self.state != OPEN:
            raise RuntimeError(f"ws: cannot send in state {self.state}")
        return _head(buf, _OP_TEXT, n)

    def send_binary(self, data: bytes) -> bytes:
        return self._send(_OP_BIN, data)

    def ping(self, payload: bytes = b"") -> bytes:
        if len(payload) > 125:
            raise ValueError("ping payload > 125 bytes")
        return self._send(_OP_PING, payload)

    def pong(self, payload: bytes = b"") -> bytes:
        if len(payload) > 125:
            raise ValueError("pong payload > 125 bytes")
        return self._send(_OP_PONG, payload)

    def close(self, code: int = 1000, reason: str = "") -> bytes:
        """Start the close handshake, or answer the peer's close (5.5.1).

        Returns b"" when no frame is due (already sent, not yet open, closed).
        `code` None sends a close frame without a status code.
        """
        if self.state == CONNECTING:
            self.state = CLOSED
        if self.state == CLOSED or self.state == CLOSE_SENT:
            return b""
        payload = b""
        if code is not None:
            if not _code_ok(code):
                raise ValueError(f"close code {code} not sendable")
            payload = code.to_bytes(2, "big") + reason.encode()
            if len(payload) > 125:
                raise ValueError("close reason too long")
        self.state = CLOSED if self.state == CLOSE_RECEIVED else CLOSE_SENT
        return _frame(_OP_CLOSE, payload)
