"""A small HTTP/1.1 test server on loopback (plain or TLS), one thread per
connection, written for misbehaving on purpose.

Routes (query parameters combine where it makes sense):
  GET  /files/NAME            serve server.files[NAME] with Content-Length
       ?chunked=1              chunked transfer coding instead
       ?eof=1                  no length at all: the body ends when the server closes
       ?piece=N&delay=S        write N bytes at a time, S seconds apart (slow mode)
       ?truncate=K             announce the whole file, send K body bytes, close
       ?stall=K                send K body bytes, then stall until the client gives up
  GET  /redirect/CODE?to=LOC  answer CODE with Location: LOC (relative or absolute)
  GET  /loop                  redirect to itself for ever
  GET  /status/CODE           answer CODE with a short body
  GET  /drop                  close without answering
  GET  /silent                accept, read the request, never answer
  GET  /auth/NAME             like /files/NAME but needs Basic user:pass (else 401)
  PUT|POST /upload/NAME       store the body (Content-Length or chunked) in uploads
Every request is recorded in `requests` as (method, target, headers).
"""
from __future__ import annotations

import base64
import socket
import ssl as _ssl
import threading
import time
from urllib.parse import parse_qs, urlsplit


class HttpServer:
    def __init__(self, ssl: _ssl.SSLContext | None = None, host: str = "127.0.0.1") -> None:
        self.files: dict[str, bytes] = {}
        self.uploads: dict[str, tuple[str, dict[str, str], bytes]] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.auth = ("user", "p@ss:w")
        self.ctx = ssl
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        h = f"[{host}]" if ":" in host else host
        self.base = f"{'https' if ssl else 'http'}://{h}:{self.port}"
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, path: str) -> str:
        return self.base + path

    def close(self) -> None:
        self._stop.set()
        self.sock.close()
        for c in list(self._conns):
            try:
                c.close()
            except OSError:
                pass

    def __enter__(self) -> HttpServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- connection handling ------------------------------------------------------

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self._conns.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c: socket.socket) -> None:
        c.settimeout(5)
        try:
            if self.ctx is not None:
                c = self.ctx.wrap_socket(c, server_side=True)
                self._conns.append(c)
            f = c.makefile("rb")
            method, target, headers = self._read_head(f)
            self.requests.append((method, target, headers))
            body = self._read_body(f, headers)
            self._route(c, method, target, headers, body)
        except (OSError, ValueError):
            pass
        finally:
            try:
                c.close()
            except OSError:
                pass

    @staticmethod
    def _read_head(f) -> tuple[str, str, dict[str, str]]:
        line = f.readline(4096).decode("latin-1").rstrip("\r\n")
        method, target, _ver = line.split(" ", 2)
        headers = {}
        while True:
            h = f.readline(4096).decode("latin-1").rstrip("\r\n")
            if not h:
                return method, target, headers
            k, v = h.split(":", 1)
            headers[k.strip().lower()] = v.strip()

    @staticmethod
    def _read_body(f, headers: dict[str, str]) -> bytes:
        if headers.get("transfer-encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(f.readline(100).split(b";")[0], 16)
                if not size:
                    while f.readline(4096) not in (b"\r\n", b""):
                        pass
                    return out
                out += f.read(size)
                f.read(2)
        return f.read(int(headers.get("content-length", "0")))

    # -- routes ------------------------------------------------------------------------

    def _route(self, c, method: str, target: str, headers: dict[str, str], body: bytes) -> None:
        u = urlsplit(target)
        q = {k: v[0] for k, v in parse_qs(u.query).items()}
        parts = u.path.split("/", 2)
        kind = parts[1] if len(parts) > 1 else ""
        arg = parts[2] if len(parts) > 2 else ""
        if method in ("PUT", "POST") and kind == "upload":
            self.uploads[arg] = (method, headers, body)
            self._answer(c, 201 if method == "PUT" else 200, b"stored")
        elif kind == "files" and arg in self.files:
            self._file(c, self.files[arg], q, method)
        elif kind == "auth" and arg in self.files:
            want = "Basic " + base64.b64encode(":".join(self.auth).encode()).decode()
            if headers.get("authorization") != want:
                self._answer(c, 401, b"who are you", [("WWW-Authenticate", 'Basic realm="fw"')])
            else:
                self._file(c, self.files[arg], q, method)
        elif kind == "redirect":
            self._answer(c, int(arg), b"moved", [("Location", q["to"])])
        elif kind == "loop":
            self._answer(c, 302, b"", [("Location", "/loop")])
        elif kind == "status":
            self._answer(c, int(arg), b"status body")
        elif kind == "silent":
            self._stop.wait(10)
        elif kind == "drop":
            return
        else:
            self._answer(c, 404, b"not found")

    @staticmethod
    def _answer(c, status: int, body: bytes, extra: list[tuple[str, str]] = ()) -> None:  # type: ignore[assignment]
        head = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", "Connection: close"]
        head += [f"{k}: {v}" for k, v in extra]
        c.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)

    def _file(self, c, data: bytes, q: dict[str, str], method: str) -> None:
        head = ["HTTP/1.1 200 OK", "Content-Type: application/octet-stream", "Connection: close"]
        chunked = q.get("chunked") == "1"
        if chunked:
            head.append("Transfer-Encoding: chunked")
        elif q.get("eof") != "1":
            head.append(f"Content-Length: {len(data)}")
        c.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        if method == "HEAD":
            return
        send = data
        if "truncate" in q:
            send = data[:int(q["truncate"])]
        if "stall" in q:
            send = data[:int(q["stall"])]
        piece = int(q.get("piece", "4096"))
        delay = float(q.get("delay", "0"))
        for i in range(0, len(send), piece):
            p = send[i:i + piece]
            c.sendall(b"%x\r\n%s\r\n" % (len(p), p) if chunked else p)
            if delay:
                time.sleep(delay)
        if "stall" in q:
            self._stop.wait(10)
            return
        if chunked and "truncate" not in q:
            c.sendall(b"0\r\nX-Trailer: yes\r\n\r\n")
