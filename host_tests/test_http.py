"""evse.link.http: the sans-IO parts table-driven (also in the MicroPython VM), the
asyncio client over real loopback sockets against host_tests/httpserver.py,
plain and TLS with a test CA made here."""
import asyncio
import datetime
import ipaddress
import json
import socket
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from evse.link import http
from evse.link.http import HttpError, Response, join_url, parse_url, request_head
from httpserver import HttpServer
from vmcheck import run_both

BLOB = bytes((i * 7 + (i >> 8)) & 0xFF for i in range(20000))

# -- URLs -------------------------------------------------------------------------

URLS = [
    ("http://h/", ("http", "h", 80, "/", None)),
    ("http://h", ("http", "h", 80, "/", None)),
    ("HTTPS://h.example:8443/a/b?x=1&y=%20#frag", ("https", "h.example", 8443, "/a/b?x=1&y=%20", None)),
    ("https://h?q", ("https", "h", 443, "/?q", None)),
    ("http://[::1]:8080/fw.bin", ("http", "::1", 8080, "/fw.bin", None)),
    ("https://[fe80::1%25eth0]/x", ("https", "fe80::1%25eth0", 443, "/x", None)),
    ("http://u:p%40ss@h:81/", ("http", "h", 81, "/", "u:p%40ss")),
    ("http://a@b@h/", ("http", "h", 80, "/", "a@b")),
    ("http://h:/p", ("http", "h", 80, "/p", None)),
]
BAD_URLS = ["ftp://h/", "h/x", "http://", "http://h:0/", "http://h:99999/", "http://h:8x/",
            "http://[::1/", "http://[::1]x/", "http://h/a b", "http://:80/"]


@pytest.mark.parametrize("url,want", URLS)
def test_parse_url(url, want):
    assert parse_url(url) == want


@pytest.mark.parametrize("url", BAD_URLS)
def test_parse_url_refuses(url):
    with pytest.raises(ValueError):
        parse_url(url)


JOINS = [
    ("http://h/a/b?q", "c", "http://h/a/c"),
    ("http://h/a/b", "../c?z=1", "http://h/c?z=1"),
    ("http://h/a/b", "./", "http://h/a/"),
    ("http://h:81/a/b", "/x/./y/../z", "http://h:81/x/z"),
    ("https://h/a", "//other:9/p", "https://other:9/p"),
    ("http://h/a/b", "?v=2", "http://h/a/b?v=2"),
    ("http://[::1]:8/a", "b", "http://[::1]:8/b"),
    ("http://u:p@h/a", "b", "http://h/b"),
    ("http://h/", "https://x/y", "https://x/y"),
]


@pytest.mark.parametrize("base,loc,want", JOINS)
def test_join_url(base, loc, want):
    assert join_url(base, loc) == want


def test_request_head():
    h = request_head("PUT", "::1", 8080, "/up?a=1", "http", [("X-Id", "7")], length=5, userinfo="u:p%40ss")
    assert h == (b"PUT /up?a=1 HTTP/1.1\r\nHost: [::1]:8080\r\nConnection: close\r\n"
                 b"Accept-Encoding: identity\r\nAuthorization: Basic dTpwQHNz\r\n"
                 b"Content-Length: 5\r\nX-Id: 7\r\n\r\n")
    h = request_head("POST", "h", 443, "/", "https", chunked=True)
    assert b"Host: h\r\n" in h and b"Transfer-Encoding: chunked\r\n" in h
    with pytest.raises(ValueError):
        request_head("GET", "h", 80, "/", headers=[("X", "a\r\nEvil: 1")])


# -- response parser --------------------------------------------------------------

def parse(raw, step, method="GET"):
    """Feed raw in pieces of `step`; (response, body, done before eof)."""
    r = Response(method)
    body = bytearray()
    for i in range(0, len(raw), step):
        piece = raw[i:i + step]
        k = 0
        while k < len(piece):
            k += r.feed(piece[k:], body.extend)
    done = r.done
    r.eof()
    return r, bytes(body), done


CHUNKED = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\nx-a: 2\r\n\r\n"
           b"5;ext=1\r\nhello\r\n1A\r\n" + b"z" * 26 + b"\r\n0\r\nTrailer: t\r\n\r\n")
GOOD = [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA", b"hello", True),
    (CHUNKED, b"hello" + b"z" * 26, True),
    (b"HTTP/1.0 200 OK\r\n\r\nuntil close", b"until close", False),
    (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", b"ok", True),
    (b"HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n", b"", True),
    (b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", b"", True),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\nabc", b"abc", True),
]


@pytest.mark.parametrize("step", [1, 2, 7, 64, 100000])
@pytest.mark.parametrize("raw,body,done", GOOD)
def test_response_in_odd_pieces(raw, body, done, step):
    r, got, was_done = parse(raw, step)
    assert got == body and was_done == done and r.received == len(body)


def test_response_head_fields():
    r, _, _ = parse(CHUNKED, 3)
    assert (r.status, r.reason, r.headers["x-a"], r.length) == (200, "OK", "1, 2", None)
    r, _, _ = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n", 5, method="HEAD")
    assert r.done and r.length == 4


def test_feed_stops_after_head():
    r = Response()
    raw = b"HTTP/1.1 301 Moved\r\nLocation: /x\r\nContent-Length: 3\r\n\r\nabc"
    k = r.feed(raw, lambda b: pytest.fail("body before the caller saw the status"))
    assert raw[k:] == b"abc" and r.status == 301 and r.headers["location"] == "/x"


BAD = [
    b"HTTX/1.1 200 OK\r\n\r\n",
    b"HTTP/1.1 2000 OK\r\n\r\n",
    b"HTTP/1.1 200 OK\r\n folded\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 3, 4\r\n\r\nabc",
    b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n+5\r\nhello\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"1" * 300,
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",  # truncated
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel",  # truncated
    b"HTTP/1.1 200 OK\r\nX: " + b"a" * 3000 + b"\r\n\r\n",  # head too long
    b"HTTP/1.1 200 OK\r\n",  # closed in the head
    # Latin-1 superscripts pass CPython's isdigit(), then int() raised ValueError (not HttpError).
    b"HTTP/1.1 \xb200 OK\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: \xb9\r\n\r\n",
]


@pytest.mark.parametrize("step", [1, 7, 100000])
@pytest.mark.parametrize("raw", BAD)
def test_response_protocol_errors(raw, step):
    with pytest.raises(HttpError):
        parse(raw, step)


VM_SCRIPT = """
import json
from evse.link.http import Response, parse_url, join_url, request_head
print(json.dumps(list(parse_url("https://u:p@[::1]:8443/a/b?x#f"))))
print(json.dumps(join_url("http://h/a/b", "../c?z=1")))
print(request_head("GET", "h", 80, "/", userinfo="u:p%40ss").decode().replace("\\r\\n", "|"))
raws = [RAWS]
for raw in raws:
    for step in (1, 7, 4096):
        r = Response()
        body = bytearray()
        try:
            for i in range(0, len(raw), step):
                p = raw[i:i + step]
                k = 0
                while k < len(p):
                    k += r.feed(p[k:], body.extend)
            r.eof()
            print(json.dumps([step, r.status, r.headers.get("x-a"), body.decode()]))
        except OSError as e:
            print(json.dumps([step, "error", str(e)]))
"""


def test_sans_io_in_the_vm(tmp_path, capsys):
    raws = [CHUNKED, GOOD[0][0], GOOD[2][0], GOOD[3][0], BAD[7], BAD[9], BAD[11], BAD[13]]
    script = VM_SCRIPT.replace("RAWS", ", ".join(repr(r) for r in raws))
    vm, cp = run_both(script, tmp_path, capsys)
    assert len(vm) == 3 + 3 * len(raws)
    assert [json.loads(x) for x in vm[3:]] == [json.loads(x) for x in cp[3:]]
    assert vm[:3] == cp[:3]


# -- the client over loopback ---------------------------------------------------

def run(coro):
    return asyncio.run(coro)


def fetch(url, **kw):
    body = bytearray()
    resp = run(http.get(url, body.extend, **kw))
    return resp, bytes(body)


@pytest.fixture(scope="module")
def srv():
    with HttpServer() as s:
        s.files["fw.bin"] = BLOB
        s.files["small"] = b"tiny"
        yield s


@pytest.mark.parametrize("query", ["", "?chunked=1", "?eof=1", "?chunked=1&piece=7", "?piece=1&delay=0"])
def test_download_framings(srv, query):
    resp, body = fetch(srv.url("/files/fw.bin" + query), bufsize=256)
    assert body == BLOB and resp.status == 200 and resp.received == len(BLOB)


def test_download_one_byte_pieces_small_buffer(srv):
    _, body = fetch(srv.url("/files/small?piece=1&chunked=1"), bufsize=3)
    assert body == b"tiny"


def test_sink_gets_views_of_one_reused_buffer(srv):
    ids, sizes = set(), []

    def sink(mv):
        ids.add(id(mv.obj))
        sizes.append(len(mv))
    run(http.get(srv.url("/files/fw.bin"), sink, bufsize=512))
    assert len(ids) == 1 and max(sizes) <= 512 and sum(sizes) == len(BLOB)


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_redirects_relative_and_absolute(srv, code):
    _, body = fetch(srv.url(f"/redirect/{code}?to=../files/small"))
    assert body == b"tiny"
    _, body = fetch(srv.url(f"/redirect/{code}?to=" + srv.url("/files/small")))
    assert body == b"tiny"


def test_bad_redirect_location(srv):
    with pytest.raises(HttpError, match="bad redirect location") as e:
        fetch(srv.url("/redirect/302?to=ftp://x/y"))
    assert e.value.status == 302


def test_redirect_loop_ends(srv):
    with pytest.raises(HttpError, match="too many redirects") as e:
        fetch(srv.url("/loop"), max_redirects=3)
    assert e.value.status == 302
    n = sum(1 for r in srv.requests if r[1] == "/loop")
    assert n >= 4


@pytest.mark.parametrize("code", [404, 500, 401])
def test_status_codes_are_errors(srv, code):
    with pytest.raises(HttpError) as e:
        fetch(srv.url(f"/status/{code}"))
    assert e.value.status == code


@pytest.mark.parametrize("path", ["/files/fw.bin?truncate=1000", "/files/fw.bin?chunked=1&truncate=999", "/drop"])
def test_truncated_or_dropped(srv, path):
    with pytest.raises(HttpError, match="truncated|closed"):
        fetch(srv.url(path))


def test_header_and_idle_timeouts(srv):
    with pytest.raises(HttpError, match="response timeout"):
        fetch(srv.url("/silent"), header_s=0.3)
    with pytest.raises(HttpError, match="idle timeout"):
        fetch(srv.url("/files/fw.bin?stall=100"), idle_s=0.3)


def test_connect_timeout(monkeypatch):
    async def never(*a, **k):
        await asyncio.sleep(60)
    monkeypatch.setattr(asyncio, "open_connection", never)
    with pytest.raises(HttpError, match="connect timeout"):
        fetch("http://10.0.0.1/x", connect_s=0.2)


def test_connect_refused():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(OSError):
        fetch(f"http://127.0.0.1:{port}/x")


def test_basic_auth(srv):
    base = srv.base.replace("://", "://user:p%40ss%3Aw@")
    _, body = fetch(base + "/auth/small")
    assert body == b"tiny"
    with pytest.raises(HttpError) as e:
        fetch(srv.url("/auth/small"))
    assert e.value.status == 401
    # credentials follow a same-origin redirect
    _, body = fetch(base + "/redirect/302?to=/auth/small")
    assert body == b"tiny"


def test_credentials_do_not_follow_to_another_origin(srv):
    base = srv.base.replace("://", "://user:p%40ss%3Aw@")
    other = srv.url("/auth/small").replace("127.0.0.1", "localhost")
    with pytest.raises(HttpError) as e:
        fetch(base + "/redirect/302?to=" + other)
    assert e.value.status == 401 and "authorization" not in srv.requests[-1][2]


def test_head_reports_the_length(srv):
    resp = run(http.request("HEAD", srv.url("/files/fw.bin"), sink=lambda mv: pytest.fail("body")))
    assert resp.status == 200 and resp.length == len(BLOB) and resp.received == 0


def reader_of(data):
    pos = [0]

    def source(buf):
        n = min(len(buf), len(data) - pos[0])
        buf[:n] = data[pos[0]:pos[0] + n]
        pos[0] += n
        return n
    return source


def test_uploads_put_with_length_and_post_chunked(srv):
    resp = run(http.request("PUT", srv.url("/upload/log1"), source=reader_of(BLOB), length=len(BLOB),
                            headers=[("Content-Type", "application/octet-stream")], bufsize=333))
    assert resp.status == 201
    method, headers, body = srv.uploads["log1"]
    assert (method, body, headers["content-length"]) == ("PUT", BLOB, str(len(BLOB)))
    run(http.request("POST", srv.url("/upload/log2"), source=reader_of(BLOB[:5000]), bufsize=7))
    method, headers, body = srv.uploads["log2"]
    assert (method, body, headers["transfer-encoding"]) == ("POST", BLOB[:5000], "chunked")


def test_upload_short_source_and_redirect(srv):
    with pytest.raises(HttpError, match="ended early"):
        run(http.request("PUT", srv.url("/upload/x"), source=reader_of(b"abc"), length=10))
    with pytest.raises(HttpError, match="upload is not redirected"):
        run(http.request("POST", srv.url("/redirect/307?to=/upload/y"), source=reader_of(b"abc")))


def test_ipv6_loopback():
    try:
        s = HttpServer(host="::1")
    except OSError:
        pytest.skip("no IPv6 loopback here")
    with s:
        s.files["small"] = b"tiny"
        _, body = fetch(s.url("/files/small"))
        assert body == b"tiny" and s.requests[0][2]["host"] == f"[::1]:{s.port}"


# -- TLS ------------------------------------------------------------------------------

def _cert(subject, issuer, key, sign_key, ca, sans=()):
    now = datetime.datetime.now(datetime.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
         .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
         .not_valid_after(now + datetime.timedelta(days=1))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    return b.sign(sign_key, hashes.SHA256())


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("httppki")
    ca_key, srv_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test FW Root")])
    ca = _cert(ca_name, ca_name, ca_key, ca_key, True)
    srv = _cert(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]), ca_name, srv_key, ca_key,
                False, [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    pem = serialization.Encoding.PEM
    (d / "ca.pem").write_bytes(ca.public_bytes(pem))
    (d / "srv.pem").write_bytes(srv.public_bytes(pem))
    (d / "srv.key").write_bytes(srv_key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                      serialization.NoEncryption()))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(d / "srv.pem", d / "srv.key")
    with HttpServer(ssl=ctx) as s:
        s.files["fw.bin"] = BLOB
        yield s, str(d / "ca.pem")


def test_https_with_trusted_root(pki):
    s, ca = pki
    ctx = ssl.create_default_context(cafile=ca)
    resp, body = fetch(s.url("/files/fw.bin?chunked=1&piece=999"), ssl=ctx)
    assert body == BLOB and s.base.startswith("https://")
    resp, body = fetch(s.url("/redirect/302?to=/files/fw.bin"), ssl=ctx)
    assert body == BLOB


def test_https_untrusted_server_is_refused(pki):
    s, _ = pki
    with pytest.raises(ssl.SSLCertVerificationError):
        fetch(s.url("/files/fw.bin"), ssl=ssl.create_default_context())


def test_https_needs_a_context_and_never_downgrades(pki, srv):
    s, ca = pki
    with pytest.raises(ValueError):
        fetch(s.url("/files/fw.bin"))
    with pytest.raises(HttpError, match="https to http"):
        fetch(s.url("/redirect/302?to=" + srv.url("/files/small")), ssl=ssl.create_default_context(cafile=ca))


# -- MicroPython-style streams ---------------------------------------------------------

class MpReader:
    """Like MicroPython's asyncio Stream: readinto() that may return None
    (TLS: a partial record) before data, and 0 at EOF."""

    def __init__(self, data, step):
        self.data, self.step, self.pos, self.nones = data, step, 0, 0

    async def readinto(self, buf):
        if self.nones < 3 or self.pos % 3 == 1:
            self.nones += 1
            if self.nones % 2:
                return None
        n = min(len(buf), self.step, len(self.data) - self.pos)
        buf[:n] = self.data[self.pos:self.pos + n]
        self.pos += n
        return n


class MpWriter:
    def __init__(self):
        self.out, self.closed = bytearray(), False

    def write(self, b):
        self.out += b

    async def drain(self):
        pass

    def close(self):
        pass  # does nothing on MicroPython

    async def wait_closed(self):
        self.closed = True


def test_micropython_streams_none_reads_and_close(monkeypatch):
    raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"".join(
        b"%x\r\n%s\r\n" % (len(BLOB[i:i + 500]), BLOB[i:i + 500]) for i in range(0, len(BLOB), 500)) + b"0\r\n\r\n"
    r, w = MpReader(raw, 333), MpWriter()
    seen = {}

    async def opener(host, port, **kw):
        seen.update(host=host, port=port, **kw)
        return r, w
    monkeypatch.setattr(asyncio, "open_connection", opener)
    ctx = object()  # the caller's context goes through untouched
    resp, body = fetch("https://u:p@[2001:db8::1]:8443/fw.bin?v=2", ssl=ctx, bufsize=100)
    assert body == BLOB and resp.status == 200 and r.nones > 3
    assert seen == {"host": "2001:db8::1", "port": 8443, "ssl": ctx, "server_hostname": "2001:db8::1"}
    assert bytes(w.out).startswith(b"GET /fw.bin?v=2 HTTP/1.1\r\nHost: [2001:db8::1]:8443\r\n")
    assert b"Authorization: Basic dTpw\r\n" in w.out and w.closed


def test_sink_error_stops_the_download_and_closes(monkeypatch):
    r, w = MpReader(b"HTTP/1.1 200 OK\r\nContent-Length: 20000\r\n\r\n" + BLOB, 1000), MpWriter()

    async def opener(host, port, **kw):
        return r, w
    monkeypatch.setattr(asyncio, "open_connection", opener)

    def sink(mv):
        raise ValueError("bad image")
    with pytest.raises(ValueError, match="bad image"):
        run(http.get("http://h/x", sink))
    assert w.closed and r.pos < 3000


# -- the adapter under MicroPython's asyncio (WebAssembly VM, fake streams) ----------

VM_ASYNC = r"""
import asyncio, json
from evse.link import http

class Reader:
    def __init__(self, data, stall=False):
        self.data, self.pos, self.n, self.stall = data, 0, 0, stall
    async def readinto(self, buf):
        self.n += 1
        if self.stall:
            await asyncio.sleep(10)
        if self.n % 3 == 0:
            return None  # a TLS read that got only part of a record
        k = min(len(buf), 37, len(self.data) - self.pos)
        buf[:k] = self.data[self.pos:self.pos + k]
        self.pos += k
        return k

class Writer:
    def __init__(self):
        self.out, self.closed = bytearray(), False
    def write(self, b):
        self.out += b
    async def drain(self):
        pass
    def close(self):
        pass
    async def wait_closed(self):
        self.closed = True

BODY = bytes(range(256)) * 8
CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"".join(
    b"%x\r\n" % len(BODY[i:i + 300]) + BODY[i:i + 300] + b"\r\n" for i in range(0, len(BODY), 300)) + b"0\r\n\r\n"
SCRIPT = {}
WRITERS = []

async def opener(host, port, ssl=None, server_hostname=None):
    w = Writer()
    WRITERS.append(w)
    return SCRIPT[(host, port)](), w

async def slow_opener(host, port, **kw):
    await asyncio.sleep(10)

async def main():
    out = {}
    asyncio.open_connection = opener
    SCRIPT[("h", 80)] = lambda: Reader(b"HTTP/1.1 302 Found\r\nLocation: https://[::1]:8443/fw\r\n\r\n")
    SCRIPT[("::1", 8443)] = lambda: Reader(CHUNKED)
    got = bytearray()
    r = await http.get("http://h/start", got.extend, ssl="CTX", bufsize=64)
    out["get"] = [r.status, bytes(got) == BODY, len(WRITERS), [w.closed for w in WRITERS]]
    out["req2"] = bytes(WRITERS[1].out).decode().split("\r\n")[:2]
    SCRIPT[("up", 80)] = lambda: Reader(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
    src = [BODY[:100], BODY[100:150]]
    def source(buf):
        if not src:
            return 0
        p = src.pop(0)
        buf[:len(p)] = p
        return len(p)
    r = await http.request("POST", "http://u:p@up/logs", source=source, bufsize=128)
    sent = bytes(WRITERS[-1].out).split(b"\r\n\r\n", 1)[1]
    want = b"64\r\n" + BODY[:100] + b"\r\n32\r\n" + BODY[100:150] + b"\r\n0\r\n\r\n"
    out["post"] = [r.status, sent == want]
    SCRIPT[("st", 80)] = lambda: Reader(b"", stall=True)
    SCRIPT[("nf", 80)] = lambda: Reader(b"HTTP/1.1 404 Not Found\r\n\r\n")
    for url, kw in (("http://st/", {"header_s": 0.05}), ("http://nf/", {}), ("https://h/", {})):
        try:
            await http.get(url, got.extend, **kw)
        except (OSError, ValueError) as e:
            out[url] = [type(e).__name__, str(e), getattr(e, "status", None)]
    asyncio.open_connection = slow_opener
    try:
        await http.get("http://x/", got.extend, connect_s=0.05)
    except OSError as e:
        out["connect"] = str(e)
    print(json.dumps(out))

await asyncio.create_task(main())
"""


def test_adapter_runs_under_micropython_asyncio():
    import mpvm
    out = mpvm.run(VM_ASYNC, timeout=30, run_async=True)
    lines = out.strip().splitlines()
    assert len(lines) == 1, out
    res = json.loads(lines[0])
    assert res["get"] == [200, True, 2, [True, True]]
    assert res["req2"] == ["GET /fw HTTP/1.1", "Host: [::1]:8443"]
    assert res["post"] == [201, True]
    assert res["http://st/"] == ["HttpError", "response timeout", 0]
    assert res["http://nf/"] == ["HttpError", "HTTP 404 Not Found", 404]
    assert res["https://h/"] == ["ValueError", "https needs an ssl context", None]
    assert res["connect"] == "connect timeout"
