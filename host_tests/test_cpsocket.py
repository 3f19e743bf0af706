"""evse.link.cpsocket, the CircuitPython transport, over a fake socketpool that
behaves like CircuitPython's (EAGAIN, recv_into, partial sends) on real
loopback sockets: stream semantics, and whole charging sessions of the
station core + Runtime against the real CSMS peer, over ws:// and wss://."""
import asyncio
import socket
import ssl
import threading

import pytest
from fake_socketpool import FakeSocketPool, FakeSSLContext
from live import CsmsThread, StationThread, wait_for
from test_tls import make_pki, server_context

from evse import compat
from evse.link import cpsocket, tls, transport


@pytest.fixture
def pool(monkeypatch):
    p = FakeSocketPool()
    monkeypatch.setattr(cpsocket, "_pool", p)
    return p


class EchoServer:
    """Echoes what it gets; `close_after` bytes: then it hangs up."""

    def __init__(self, close_after=None):
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(1)
        self.port = self.srv.getsockname()[1]
        self.close_after = close_after
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        conn, _ = self.srv.accept()
        with conn:
            n = 0
            while self.close_after is None or n < self.close_after:
                d = conn.recv(4096)
                if not d:
                    break
                conn.sendall(d)
                n += len(d)

    def stop(self):
        self.t.join(5)
        self.srv.close()


async def _echo(port, data):
    r, w = await cpsocket.open_connection("127.0.0.1", port)
    w.write(data[:3000])
    w.write(data[3000:])
    await w.drain()
    got = b""
    while len(got) < len(data):
        chunk = await r.read(1024)
        assert chunk
        got += chunk
    w.close()
    await w.wait_closed()
    return got


def test_roundtrip_through_partial_sends_and_eagain(pool):
    srv = EchoServer()
    data = bytes(range(256)) * 20
    assert asyncio.run(_echo(srv.port, data)) == data
    srv.stop()
    assert pool.partial > 0 and pool.eagains > 0  # both would-block paths were taken
    assert all(s.closed for s in pool.sockets)


def test_without_poll_it_sleeps_and_retries(pool, monkeypatch):
    import select
    monkeypatch.delattr(select, "poll")
    srv = EchoServer()
    data = b"x" * 2000
    assert asyncio.run(_echo(srv.port, data)) == data
    srv.stop()


def test_end_of_stream_reads_empty_and_closed_stream_refuses_writes(pool):
    srv = EchoServer(close_after=5)

    async def go():
        r, w = await cpsocket.open_connection("127.0.0.1", srv.port)
        w.write(b"hello")
        await w.drain()
        assert await r.readexactly(5) == b"hello"
        assert await r.read(100) == b""  # the peer hung up
        w.close()
        assert await r.read(10) == b""
        w.write(b"more")
        with pytest.raises(OSError):
            await w.drain()
    asyncio.run(go())
    srv.stop()


def test_close_from_another_task_ends_a_waiting_read(pool):
    srv = EchoServer(close_after=1)

    async def go():
        r, w = await cpsocket.open_connection("127.0.0.1", srv.port)
        reading = asyncio.create_task(r.read(100))
        await asyncio.sleep(0.03)  # the read is waiting on EAGAIN
        w.close()
        assert await asyncio.wait_for(reading, 1) == b""
    asyncio.run(go())
    srv.stop()


def test_refused_connect_raises_and_closes_the_socket(pool):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nobody listens there

    async def go():
        await cpsocket.open_connection("127.0.0.1", port)
    with pytest.raises(OSError):
        asyncio.run(go())
    assert pool.sockets[0].closed


def test_compat_picks_the_transport_on_circuitpython(pool, monkeypatch):
    srv = EchoServer(close_after=0)
    monkeypatch.setattr(compat, "CIRCUITPYTHON", True)

    async def go():
        r, w = await transport.open_connection("127.0.0.1", srv.port)
        assert isinstance(r, cpsocket.Stream) and r is w
        await w.wait_closed()
    asyncio.run(go())
    srv.stop()
    monkeypatch.setattr(compat, "CIRCUITPYTHON", False)

    async def cpython():
        srv2 = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        r, w = await transport.open_connection("127.0.0.1", srv2.sockets[0].getsockname()[1])
        assert isinstance(w, asyncio.StreamWriter)
        w.close()
        srv2.close()
    asyncio.run(cpython())


# -- whole sessions: station core + Runtime over the transport ------------------------
def _session(csms, s):
    csms.wait_call("StatusNotification", 2, cp_id="CP1")
    s.command("card", "AA")
    s.command("plug")
    start = csms.wait_call("StartTransaction")[0]
    csms.wait_call("MeterValues", 1, timeout=5)
    s.command("card", "AA")
    stop = csms.wait_call("StopTransaction")[0]
    assert stop["reason"] == "Local" and stop["meterStop"] >= start["meterStart"]
    s.command("unplug")
    wait_for(lambda: [p["status"] for p in csms.calls("StatusNotification", "CP1")
                      if p["connectorId"] == 1][-1:] == ["Available"], 5, "Available")


def test_charging_session_over_the_transport(pool, monkeypatch, tmp_path):
    monkeypatch.setattr(compat, "CIRCUITPYTHON", True)
    csms = CsmsThread(tags={"AA": "Accepted"}, heartbeat=30)
    s = StationThread(csms.url, "CP1", str(tmp_path), seeds={"MeterValueSampleInterval": "1"})
    try:
        _session(csms, s)
    finally:
        s.stop()
        csms.stop()
    assert pool.sockets and pool.partial > 0 and pool.eagains > 0 and pool.received > 300


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("cppki"))


def test_charging_session_over_tls_with_a_client_certificate(pool, monkeypatch, tmp_path, pki):
    monkeypatch.setattr(compat, "CIRCUITPYTHON", True)
    csms = CsmsThread(ssl=server_context(pki, client_ca=True), tags={"AA": "Accepted"}, heartbeat=30)
    ctx = FakeSSLContext(tls.client_context(pki.ca, cert=pki.cli, key=pki.cli_key))
    s = StationThread(csms.url, "CP1", str(tmp_path), seeds={"MeterValueSampleInterval": "1"}, ssl=ctx)
    try:
        assert csms.url.startswith("wss://")
        _session(csms, s)
    finally:
        s.stop()
        csms.stop()
    assert isinstance(pool.sockets[0].raw, ssl.SSLSocket)


def test_untrusted_csms_is_refused_over_the_transport(pool, monkeypatch, tmp_path, pki):
    monkeypatch.setattr(compat, "CIRCUITPYTHON", True)
    csms = CsmsThread(ssl=server_context(pki), heartbeat=30)
    s = StationThread(csms.url, "CP1", str(tmp_path), ssl=FakeSSLContext(tls.client_context(pki.other)))
    try:
        wait_for(lambda: any("CERTIFICATE_VERIFY_FAILED" in t or "certificate" in t.lower()
                             for _lvl, t in s.logs), 5, "a refused certificate")
        assert not csms.calls("BootNotification")
    finally:
        s.stop()
        csms.stop()
