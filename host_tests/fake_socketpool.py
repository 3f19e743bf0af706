"""A host stand-in for CircuitPython's `socketpool` over real loopback sockets.

It behaves as CircuitPython's sockets do where evse.link.cpsocket depends on it:
no read/readinto/write (only recv_into/send/sendall), a non-blocking call
that would block raises a plain OSError(EAGAIN) (CircuitPython has no
BlockingIOError), send() may take only part of the buffer (`max_send`
bytes, and every `eagain_every`-th send refuses with EAGAIN), recv_into
returns at most `max_recv` bytes. TLS: FakeSSLContext wraps a CPython
ssl.SSLContext with CircuitPython's wrap_socket(sock, server_hostname=);
SSLWantRead/WriteError become EAGAIN too. fileno() exists only so the
host's select.poll can take the socket.
"""
from __future__ import annotations

import errno
import socket
import ssl
from typing import Any

EAGAIN = errno.EAGAIN


class FakeSocket:
    def __init__(self, raw: socket.socket, pool: FakeSocketPool) -> None:
        self.raw = raw
        self.pool = pool
        self.sends = 0
        self.closed = False
        pool.sockets.append(self)

    # -- CircuitPython's Socket API --------------------------------------
    def settimeout(self, t: float | None) -> None:
        self.raw.settimeout(t)

    def setblocking(self, flag: bool) -> None:
        self.raw.setblocking(flag)

    def connect(self, addr: tuple[str, int]) -> None:
        self.raw.connect(addr)

    def recv_into(self, buf: Any, nbytes: int = 0) -> int:
        n = min(nbytes or len(buf), len(buf), self.pool.max_recv)
        try:
            k = self.raw.recv_into(memoryview(buf)[:n], n)
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            self.pool.eagains += 1
            raise OSError(EAGAIN) from None
        self.pool.received += k
        return k

    def send(self, data: Any) -> int:
        self.sends += 1
        every = self.pool.eagain_every
        if every and self.sends % every == 0:
            self.pool.eagains += 1
            raise OSError(EAGAIN)
        try:
            k = self.raw.send(bytes(data[: self.pool.max_send]))
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            self.pool.eagains += 1
            raise OSError(EAGAIN) from None
        self.pool.partial += k < len(data)
        return k

    def sendall(self, data: Any) -> None:
        self.raw.sendall(data)

    def close(self) -> None:
        self.closed = True
        self.raw.close()

    def fileno(self) -> int:  # host only: CPython's select.poll needs it
        return self.raw.fileno()


class FakeSocketPool:
    AF_INET = socket.AF_INET
    SOCK_STREAM = socket.SOCK_STREAM

    def __init__(self, max_send: int = 7, max_recv: int = 64, eagain_every: int = 3) -> None:
        self.max_send = max_send
        self.max_recv = max_recv
        self.eagain_every = eagain_every
        self.sockets: list[FakeSocket] = []
        self.eagains = 0
        self.partial = 0
        self.received = 0

    def getaddrinfo(self, host: str, port: int, family: int = 0, type: int = 0, proto: int = 0,
                    flags: int = 0) -> list[tuple[Any, ...]]:
        return [(self.AF_INET, self.SOCK_STREAM, 0, "", (socket.gethostbyname(host), port))]

    def socket(self, family: int = socket.AF_INET, type: int = socket.SOCK_STREAM, proto: int = 0) -> FakeSocket:
        return FakeSocket(socket.socket(family, type, proto), self)


class FakeSSLContext:
    """CircuitPython's SSLContext shape over a CPython client context."""

    def __init__(self, ctx: ssl.SSLContext) -> None:
        self.ctx = ctx

    def wrap_socket(self, sock: FakeSocket, server_side: bool = False,
                    server_hostname: str | None = None) -> FakeSocket:
        raw = self.ctx.wrap_socket(sock.raw, server_hostname=server_hostname)
        sock.pool.sockets.remove(sock)
        return FakeSocket(raw, sock.pool)
