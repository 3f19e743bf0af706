"""CircuitPython stream transport: asyncio streams over `socketpool`.

Adafruit's asyncio library (CircuitPython's asyncio) opens streams with
`socket` and calls read/readinto/write on it; CircuitPython's sockets come
from socketpool and have recv_into/send instead. This module gives
wsconn what it uses of asyncio's streams: read(n), write(data), drain(),
close(), wait_closed() (reader and writer are one object).

The socket is non-blocking once connected: recv_into/send raise OSError
EAGAIN when they would block; the stream then waits with select.poll
(registered when the port's poll accepts the socket) and short asyncio
sleeps, so other tasks run meanwhile. The socket is always tried before
waiting: a TLS socket may hold decrypted bytes that poll cannot see.
send() may take part of the buffer: drain() goes on from where it stopped.

Connecting blocks (getaddrinfo, TCP connect and the TLS handshake, bounded
by `timeout_s`), as on MicroPython.
"""
import asyncio

from evse.compat import const

_EAGAIN = const(11)  # errno on CircuitPython (and Linux)
_STEP_MS = const(5)  # sleep between readiness checks
_BUF = const(1024)

_pool = None


def set_pool(pool):
    """Use `pool` (a socketpool.SocketPool or a test double)."""
    global _pool
    _pool = pool


def get_pool():
    """The socket pool; on the board socketpool.SocketPool(wifi.radio)."""
    if _pool is None:
        import socketpool  # CircuitPython only
        import wifi

        set_pool(socketpool.SocketPool(wifi.radio))
    return _pool


def _would_block(e):
    return e.args and e.args[0] == _EAGAIN or getattr(e, "errno", None) == _EAGAIN


class Stream:
    """A connected non-blocking socket as an asyncio stream pair."""

    def __init__(self, sock):
        self.s = sock
        self._buf = bytearray(_BUF)
        self._out = b""
        self._poll = None
        try:
            import select

            p = select.poll()
            p.register(sock, select.POLLIN)
            self._poll = p
            self._IN = select.POLLIN
            self._OUT = select.POLLOUT
        except Exception:  # noqa: BLE001 - a port whose poll cannot take the socket: sleep-poll
            self._poll = None

    async def _wait(self, out):
        """Until the socket looks ready (or a short step has passed)."""
        p = self._poll
        if p is not None and self.s is not None:
            p.modify(self.s, self._OUT if out else self._IN)
            if p.poll(0):
                await asyncio.sleep(0)  # ready: let others run, then retry
                return
        await asyncio.sleep(_STEP_MS / 1000)

    async def read(self, n=-1):
        """Up to `n` bytes (at most 1024); b"" at end of stream."""
        buf = self._buf
        mv = memoryview(buf)
        n = _BUF if n < 0 or n > _BUF else n
        while True:
            if self.s is None:
                return b""  # closed, maybe by another task while this one waited
            try:
                k = self.s.recv_into(buf, n)
            except OSError as e:
                if not _would_block(e):
                    raise
                await self._wait(False)
                continue
            return bytes(mv[:k])

    async def readexactly(self, n):
        out = b""
        while len(out) < n:
            d = await self.read(n - len(out))
            if not d:
                raise EOFError
            out += d
        return out

    def write(self, data):
        self._out += data

    async def drain(self):
        while self._out:
            if self.s is None:
                raise OSError("stream closed")
            try:
                k = self.s.send(self._out)
            except OSError as e:
                if not _would_block(e):
                    raise
                await self._wait(True)
                continue
            self._out = self._out[k:]

    def close(self):
        s, self.s = self.s, None
        self._out = b""
        if s is not None:
            if self._poll is not None:
                try:
                    self._poll.unregister(s)
                except Exception:  # noqa: BLE001 - closing anyway
                    pass
            s.close()

    async def wait_closed(self):
        self.close()


def _context(ssl):
    if ssl is True:
        from evse.link.tls import system_context

        return system_context()
    return ssl


async def open_connection(host, port, ssl=None, server_hostname=None, timeout_s=10):
    """(reader, writer) for host:port; `ssl`: an SSL context (its
    wrap_socket) or True for the platform's verifying default."""
    pool = get_pool()
    ai = pool.getaddrinfo(host, port, 0, pool.SOCK_STREAM)[0]
    sock = pool.socket(ai[0], pool.SOCK_STREAM)
    try:
        if ssl:
            sock = _context(ssl).wrap_socket(sock, server_hostname=server_hostname or host)
        sock.settimeout(timeout_s)
        sock.connect(ai[-1])  # TCP and the TLS handshake
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    s = Stream(sock)
    return s, s
