"""A small HTTP/1.1 client for firmware downloads and log uploads.

Sans-IO underneath: parse_url, join_url, request_head and the Response
parser (status line, headers, Content-Length / chunked / until-close body)
take and give bytes only, so they run in tests and in the VM without
sockets. request() is the thin asyncio adapter: one request per connection
(`Connection: close`), bodies streamed through one reusable buffer into a
sink callable (download) or out of a source callable (upload); the body
never sits in RAM whole.

TLS: the caller passes a verified SSL context (`ssl=`); this module never
builds one, and an https URL without a context is refused.
"""
from evse.compat import MICROPYTHON, const
from evse.link.url import port as urlport
from evse.link.url import split as urlsplit

_HEAD = const(0)  # parser states / body modes
_LEN = const(1)  # Content-Length bytes
_EOF = const(2)  # until the server closes
_CSIZE = const(3)  # chunk-size line
_CDATA = const(4)  # chunk data
_CCRLF = const(5)  # CRLF after chunk data
_TRAILER = const(6)  # trailer lines up to the empty one
_DONE = const(7)
_MAX_LINE = const(256)  # chunk-size and trailer lines
REDIRECTS = (301, 302, 303, 307, 308)


class HttpError(OSError):
    """Transport, protocol or status failure. `status` is the HTTP status
    the server answered (e.g. 404), 0 when there was none."""

    def __init__(self, msg, status=0):
        super().__init__(msg)
        self.status = status


def _digits(s):
    """ASCII digits only: CPython's isdigit() also takes latin-1 superscripts (0xB2),
    which int() then refuses with a ValueError, not an HttpError."""
    return bool(s) and all("0" <= c <= "9" for c in s)


# -- URLs ----------------------------------------------------------------------

def parse_url(url):
    """(scheme, host, port, target, userinfo or None) of an http(s) URL;
    host without IPv6 brackets, target = path?query. Raises ValueError."""
    scheme, host, port, target, user, _ = urlsplit(url)
    if scheme not in ("http", "https"):
        raise ValueError("not an http(s) url")
    for ch in target:
        if ch <= " " or ch == "\x7f":  # would break the request line
            raise ValueError("bad character in url")
    return scheme, host, urlport(port, scheme, empty_ok=True), target, user


def _origin(scheme, host, port):
    h = "[" + host + "]" if ":" in host else host
    return f"{scheme}://{h}" if port == (443 if scheme == "https" else 80) else f"{scheme}://{h}:{port}"


def _dots(path):
    """Remove . and .. segments (RFC 3986 5.2.4, enough for redirects)."""
    out = []
    segs = path.split("/")
    for s in segs[1:]:
        if s == "..":
            if out:
                out.pop()
        elif s != ".":
            out.append(s)
    if segs[-1] in (".", ".."):
        out.append("")
    return "/" + "/".join(out)


def join_url(base, loc):
    """Absolute URL of a Location header `loc` seen at `base`."""
    i = loc.find("://")
    if i > 0 and loc[:i].isalpha():
        return loc
    scheme, host, port, target, _ = parse_url(base)
    if loc.startswith("//"):
        return scheme + ":" + loc
    origin = _origin(scheme, host, port)
    path = target.split("?")[0]
    if loc.startswith("?"):
        return origin + path + loc
    if not loc.startswith("/"):
        loc = path[:path.rfind("/") + 1] + loc
    q = loc.find("?")
    return origin + (_dots(loc) if q < 0 else _dots(loc[:q]) + loc[q:])


def _unquote(s):
    """Percent-decoding of a URL's userinfo, to bytes."""
    b = s.encode()
    out = bytearray()
    i = 0
    while i < len(b):
        if b[i] == 0x25 and i + 3 <= len(b):  # %XX
            out.append(int(b[i + 1:i + 3].decode(), 16))
            i += 3
        else:
            out.append(b[i])
            i += 1
    return bytes(out)


def request_head(method, host, port, target, scheme="http", headers=None, length=None,
                 chunked=False, userinfo=None):
    """The request line and headers as bytes. `headers`: extra (name, value)
    pairs; `userinfo` "user:pass" from the URL becomes Basic auth."""
    from binascii import b2a_base64

    hostport = _origin(scheme, host, port).split("://")[1]
    lines = [f"{method} {target} HTTP/1.1", "Host: " + hostport, "Connection: close",
             "Accept-Encoding: identity"]
    if userinfo:
        lines.append("Authorization: Basic " + b2a_base64(_unquote(userinfo)).decode().strip())
    if length is not None:
        lines.append(f"Content-Length: {length}")
    elif chunked:
        lines.append("Transfer-Encoding: chunked")
    for k, v in headers or ():
        if "\r" in k + v or "\n" in k + v or ":" in k:  # header injection
            raise ValueError("bad header")
        lines.append(f"{k}: {v}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


# -- response parser --------------------------------------------------------------

class Response:
    """Sans-IO parser of one response. Feed it the bytes as they come with
    feed(data, sink); the body goes to sink(memoryview) piece by piece
    (each piece is valid only during the call). Call eof() when the
    connection closes. Protocol violations raise HttpError."""

    def __init__(self, method="GET", max_head=2048):
        self.status = 0
        self.reason = ""
        self.headers = {}  # lower-case name -> value
        self.length = None  # Content-Length, if the server sent one
        self.received = 0  # body bytes passed to the sink
        self._method = method
        self._max = max_head
        self._head = bytearray()
        self._mode = _HEAD
        self._left = 0  # bytes left of the body or of the chunk
        self._line = bytearray()

    @property
    def head_done(self):
        return self._mode != _HEAD

    @property
    def done(self):
        return self._mode == _DONE

    def feed(self, data, sink=None):
        """Consume `data`; returns how many bytes were used. Stops right
        after the head so the caller can look at the status before any body
        byte reaches the sink; bytes after the end of the body are ignored."""
        mv = memoryview(data)
        n = len(mv)
        i = 0
        while i < n and self._mode != _DONE:
            m = self._mode
            if m == _HEAD:
                return self._feed_head(mv, n)
            if m in (_LEN, _CDATA, _EOF):
                k = n - i if m == _EOF else min(self._left, n - i)
                if sink is not None and k:
                    sink(mv[i:i + k])
                self.received += k
                i += k
                self._left -= k
                if m != _EOF and not self._left:
                    self._mode = _DONE if m == _LEN else _CCRLF
            else:
                i = self._feed_line(mv, i, n)
        return n if self._mode == _DONE else i

    def eof(self):
        """The connection closed: fine only if the body is complete (or runs until close)."""
        if self._mode == _EOF:
            self._mode = _DONE
        if self._mode == _HEAD:
            raise HttpError("connection closed before the response head")
        if self._mode != _DONE:
            raise HttpError("body truncated", self.status)

    def _feed_head(self, mv, n):
        h = self._head
        old = len(h)
        take = min(n, self._max + 4 - old)
        if take <= 0:
            raise HttpError("response head too long")
        h.extend(mv[:take])
        p = h.find(b"\r\n\r\n", max(0, old - 3))
        if p < 0:
            if len(h) >= self._max + 4:
                raise HttpError("response head too long")
            return take
        used = p + 4 - old
        self._parse_head(bytes(h[:p]))
        self._head = bytearray()
        if 100 <= self.status < 200:  # 100 Continue and friends: the real head follows
            self._mode = _HEAD
            self.headers = {}
        return used

    def _parse_head(self, raw):
        lines = raw.decode("latin-1").split("\r\n")  # ISO-8859-1: never fails
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or len(parts[1]) != 3 or not _digits(parts[1]):
            raise HttpError("bad status line")
        self.status = int(parts[1])
        self.reason = parts[2] if len(parts) > 2 else ""
        hd = {}
        for line in lines[1:]:
            j = line.find(":")
            if j <= 0 or line[0] in " \t":  # obsolete folding is refused (RFC 9112 5.2)
                raise HttpError("bad header line")
            k = line[:j].strip().lower()
            v = line[j + 1:].strip()
            hd[k] = hd[k] + ", " + v if k in hd else v
        self.headers = hd
        self._mode = self._body_mode()

    def _body_mode(self):
        # RFC 9112 6.3: which of these frames the body.
        s = self.status
        hd = self.headers
        if self._method == "HEAD" or s < 200 or s in (204, 304):
            cl = hd.get("content-length", "")
            self.length = int(cl) if _digits(cl) else None  # HEAD: the size a GET would get
            return _DONE
        if hd.get("content-encoding", "identity").lower() != "identity":
            raise HttpError("content-encoding not supported", s)
        te = hd.get("transfer-encoding")
        if te is not None:
            if te.lower() != "chunked":
                raise HttpError("transfer-encoding not supported", s)
            return _CSIZE
        cl = hd.get("content-length")
        if cl is None:
            return _EOF
        vals = [v.strip() for v in cl.split(",")]
        if not _digits(vals[0]) or any(v != vals[0] for v in vals):
            raise HttpError("bad content-length", s)
        self.length = self._left = int(vals[0])
        return _LEN if self._left else _DONE

    def _feed_line(self, mv, i, n):
        """Collect one CRLF-terminated line of chunk framing; act on it when complete."""
        ln = self._line
        while i < n:
            b = mv[i]
            i += 1
            if b == 10:
                self._on_line(bytes(ln).rstrip(b"\r"))
                self._line = bytearray()
                return i
            if len(ln) >= _MAX_LINE:
                raise HttpError("chunk line too long", self.status)
            ln.append(b)
        return i

    def _on_line(self, line):
        m = self._mode
        if m == _CCRLF:
            if line:
                raise HttpError("chunk not followed by CRLF", self.status)
            self._mode = _CSIZE
        elif m == _CSIZE:
            size = line.split(b";")[0].strip()
            # int() would also take "0x", "+" and "_": only hex digits are framing.
            if not size or len(size) > 8 or any(c not in b"0123456789abcdefABCDEF" for c in size):
                raise HttpError("bad chunk size", self.status)
            self._left = int(size.decode(), 16)
            self._mode = _CDATA if self._left else _TRAILER
        elif not line:  # _TRAILER: an empty line ends the message
            self._mode = _DONE


# -- asyncio adapter ----------------------------------------------------------------

async def _read(reader, mv, timeout_s=None):
    """Read into mv (the reusable buffer); 0 at EOF."""
    import asyncio

    while True:
        # MicroPython streams have readinto (no allocation per read); CPython's only read.
        op = reader.readinto(mv) if hasattr(reader, "readinto") else reader.read(len(mv))
        r = await (op if timeout_s is None else asyncio.wait_for(op, timeout_s))
        if r is None:  # MicroPython TLS: only part of a record came in; wait for the rest
            continue
        if isinstance(r, int):
            return r
        mv[:len(r)] = r
        return len(r)


async def _send(writer, data, timeout_s):
    import asyncio

    # CPython's transport may keep a view of `data` after drain(): give it a copy,
    # as the buffer is reused. MicroPython copies whatever it cannot send at once.
    writer.write(data if MICROPYTHON else bytes(data))
    await asyncio.wait_for(writer.drain(), timeout_s)


async def _upload(writer, source, length, mv, timeout_s):
    """Stream the body from source(mv) -> n (0 at the end): exactly `length`
    bytes, or chunked when length is None."""
    left = length
    while left is None or left > 0:
        n = source(mv if left is None else mv[:min(left, len(mv))])
        if not n:
            break
        if left is None:
            await _send(writer, ("%x\r\n" % n).encode(), timeout_s)
            await _send(writer, mv[:n], timeout_s)
            await _send(writer, b"\r\n", timeout_s)
        else:
            await _send(writer, mv[:n], timeout_s)
            left -= n
    if left:
        raise HttpError("upload source ended early")
    if length is None:
        await _send(writer, b"0\r\n\r\n", timeout_s)


async def _close(writer):
    import asyncio

    try:
        writer.close()  # does nothing on MicroPython: wait_closed() closes
        await asyncio.wait_for(writer.wait_closed(), 1)
    except (OSError, asyncio.TimeoutError):  # noqa: UP041 - its own class on MicroPython
        pass


async def _once(method, u, sink, source, length, headers, ssl, t, mv):
    import asyncio

    scheme, host, port, target, user = u
    if scheme == "https":
        if ssl is None:
            raise ValueError("https needs an ssl context")
        opening = asyncio.open_connection(host, port, ssl=ssl, server_hostname=host)
    else:
        opening = asyncio.open_connection(host, port)
    try:
        # MicroPython's connect has no timeout of its own.
        reader, writer = await asyncio.wait_for(opening, t[0])
    except asyncio.TimeoutError:  # noqa: UP041
        raise HttpError("connect timeout") from None
    try:
        head = request_head(method, host, port, target, scheme, headers, length,
                            source is not None and length is None, user)
        await _send(writer, head, t[2])
        if source is not None:
            await _upload(writer, source, length, mv, t[2])
        resp = Response(method)
        try:
            start, n = await asyncio.wait_for(_read_head(reader, resp, mv), t[1])
        except asyncio.TimeoutError:  # noqa: UP041
            raise HttpError("response timeout") from None
        if 200 <= resp.status < 300:
            await _read_body(reader, resp, mv, start, n, sink, t[2])
        return resp
    except asyncio.TimeoutError:  # noqa: UP041
        raise HttpError("idle timeout") from None
    finally:
        await _close(writer)


async def _read_head(reader, resp, mv):
    """Read until the head is parsed; (start, end) of the body bytes already in mv."""
    while True:
        n = await _read(reader, mv)  # the caller's wait_for bounds the whole head
        if not n:
            resp.eof()
        i = 0
        while i < n and not resp.head_done:
            i += resp.feed(mv[i:n])
        if resp.head_done:
            return i, n


async def _read_body(reader, resp, mv, i, n, sink, idle_s):
    if i < n:
        resp.feed(mv[i:n], sink)
    while not resp.done:
        n = await _read(reader, mv, idle_s)
        if not n:
            resp.eof()
            break
        resp.feed(mv[:n], sink)


async def request(method, url, *, sink=None, source=None, length=None, headers=None, ssl=None,
                  connect_s=10, header_s=15, idle_s=30, max_redirects=5, bufsize=1024):
    """Make one HTTP request and return the final Response (a 2xx).

    sink(memoryview) takes the response body piece by piece (the view is
    reused after the call). source(buffer) -> n fills the buffer with the
    next upload bytes (0 at the end; `file.readinto` fits): sent with
    Content-Length when `length` is given, else chunked. Redirects are
    followed for requests without a body, at most max_redirects, never
    from https to http; Basic auth is kept only within one origin.
    Raises HttpError (with .status for non-2xx answers), ValueError for a
    bad URL, and whatever the sink raises.
    """
    mv = memoryview(bytearray(bufsize))
    t = (connect_s, header_s, idle_s)
    u = parse_url(url)
    for _ in range(max_redirects + 1):
        resp = await _once(method, u, sink, source, length, headers, ssl, t, mv)
        s = resp.status
        loc = resp.headers.get("location")
        if s not in REDIRECTS or not loc:
            if not 200 <= s < 300:
                raise HttpError(f"HTTP {s} {resp.reason}", s)
            return resp
        if source is not None:
            raise HttpError(f"HTTP {s}: an upload is not redirected", s)
        try:
            url = join_url(url, loc)
            v = parse_url(url)
        except ValueError:
            raise HttpError("bad redirect location", s) from None
        if u[0] == "https" and v[0] != "https":
            raise HttpError("redirect from https to http refused", s)
        if v[4] is None and v[:3] == u[:3]:
            v = v[:4] + (u[4],)  # same origin: keep the credentials
        u = v
        if s == 303 and method != "HEAD":
            method = "GET"
    raise HttpError("too many redirects", s)


async def get(url, sink, **kw):
    """Download `url` into sink(memoryview); the Response (see request)."""
    return await request("GET", url, sink=sink, **kw)
