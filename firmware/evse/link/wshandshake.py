"""The WebSocket opening handshake (RFC 6455 section 4.1), sans-IO: the
client's Upgrade request and the check of the server's 101 response. The
frames that follow are evse/link/ws.py's."""
from binascii import b2a_base64

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3


def _sha1(data):
    try:
        from hashlib import sha1
    except ImportError:  # WebAssembly VM: hashlib has sha256 only
        from evse.link.sha1 import sha1 as pure
        return pure(data)
    return sha1(data).digest()


def accept_key(key: bytes) -> bytes:
    """Expected Sec-WebSocket-Accept for a base64 Sec-WebSocket-Key (4.2.2)."""
    return b2a_base64(_sha1(key + _GUID)).strip()


def _tokens(value):
    if value is None:
        return []
    return [t.strip().lower() for t in value.split(b",")]


def request(host, path, key, subprotocol, headers):
    """The HTTP Upgrade request (bytes); `key` the base64 Sec-WebSocket-Key."""
    lines = [
        "GET " + path + " HTTP/1.1",
        "Host: " + host,
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: " + key.decode(),
        "Sec-WebSocket-Version: 13",
    ]
    if subprotocol:
        lines.append("Sec-WebSocket-Protocol: " + subprotocol)
    for name, value in headers:
        if "\r" in name + value or "\n" in name + value:
            raise ValueError("CR/LF in header " + name)
        lines.append(name + ": " + value)
    lines.append("\r\n")
    return "\r\n".join(lines).encode()


def check(head, key, subprotocol):
    """(HTTP status or 0, the reason `head` -- the response up to its blank
    line -- is not an acceptable 101 (4.1 step 5), or None)."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        return 0, "bad status line"
    try:
        status = int(parts[1])
    except ValueError:
        return 0, "bad status line"
    if status != 101:
        return status, "http %d" % status
    hdrs = {}  # type: dict[bytes, bytes]
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or line[:1] in (b" ", b"\t"):
            return status, "bad header line"
        name = name.strip().lower()
        value = value.strip()
        # Repeated fields combine into one comma list (RFC 9110 5.3).
        hdrs[name] = hdrs[name] + b"," + value if name in hdrs else value
    if b"websocket" not in _tokens(hdrs.get(b"upgrade")):
        return status, "no upgrade: websocket"
    if b"upgrade" not in _tokens(hdrs.get(b"connection")):
        return status, "no connection: upgrade"
    if hdrs.get(b"sec-websocket-accept") != accept_key(key):
        return status, "bad sec-websocket-accept"
    if b"sec-websocket-extensions" in hdrs:
        return status, "extension not requested"
    want = subprotocol.encode() if subprotocol else None
    got = hdrs.get(b"sec-websocket-protocol")
    if got != want:
        return status, "subprotocol %r, wanted %r" % (got, want)
    return status, None
