"""Fault injection against the real CSMS peer over WebSockets: a MemoryError
(or any exception) at each site of the runtime (framing, reads, JSON,
timer, handlers, storage) never stops the station; it stays charging-safe
and recovers through reconnect and the durable queue (issue 13)."""
import asyncio

import pytest
from faults import Inject
from ocpp.v16 import call

from evse import runtime
from evse.link import ws, wsconn
from evse.wire import rpc
from evse.link.ws import WsClient
from live import CsmsThread, StationThread, wait_for

TAGS = {"AA": "Accepted"}


@pytest.fixture
def csms():
    c = CsmsThread(tags=TAGS, heartbeat=1)
    yield c
    c.stop()


@pytest.fixture
def station(csms, tmp_path):
    s = StationThread(csms.url, "CP1", str(tmp_path))
    csms.wait_call("StatusNotification", 2)
    yield s
    s.stop()


def charging(s, csms):
    s.command("card", "AA")
    s.command("plug")
    csms.wait_call("StartTransaction")
    wait_for(lambda: s.board.ports[0].relay, 5, "relay closed")


def call_error(csms, cp="CP1"):
    """The last CALLERROR the station sent (the ocpp package returns None for one)."""
    errs = [e["msg"] for e in csms.csms.log if e["dir"] == "in" and e["msg"][0] == 4]
    return errs[-1] if errs else None


def errors(s):
    return [t for lvl, t in s.logs if lvl == "error"]


def test_frame_memoryerror_while_charging_stop_card_still_ends(csms, station):
    """The issue's failure: MemoryError in ws._frame killed the timer task
    with the link up; the stop card was ignored and the relay left on."""
    charging(station, csms)
    with Inject(ws, "_frame") as f:  # the next frame (a heartbeat) fails to build
        wait_for(lambda: f.hits == 1, 5, "fault hit")
    station.command("card", "AA")  # the stop card, after the fault
    wait_for(lambda: not station.board.ports[0].relay, 5, "relay open")
    stop = csms.wait_call("StopTransaction", timeout=10)[0]  # re-sent after the reconnect
    assert stop["reason"] == "Local"
    assert any("send: MemoryError" in e for e in errors(station))
    n = len(csms.calls("Heartbeat"))
    csms.wait_call("Heartbeat", n + 1, timeout=4)  # the timer loop lives on


def test_timer_round_fault_is_survived(csms, station):
    st = station.station
    link = station.runtime.conn
    with Inject(st, "tick", times=3) as f:
        wait_for(lambda: f.hits == 3, 5, "three faults")
    assert station.runtime.conn is link  # a failing tick does not make the link flap
    n = len(csms.calls("Heartbeat"))
    csms.wait_call("Heartbeat", n + 2, timeout=5)
    assert station.runtime.faults >= 3
    assert sum("timer: MemoryError" in e for e in errors(station)) == 3


def new_link(s, old):
    wait_for(lambda: s.runtime.conn is not None and s.runtime.conn is not old, 5, "a new link")


@pytest.mark.parametrize("exc", [MemoryError, ValueError("bug")])
def test_reader_fault_reconnects(csms, station, exc):
    old = station.runtime.conn
    with Inject(WsClient, "receive_data", exc=exc,
                when=lambda self, data: self.state == "open" and len(data) > 0) as f:
        wait_for(lambda: f.hits == 1, 5, "fault hit")  # the next heartbeat answer
    new_link(station, old)
    assert isinstance(old.error, type(exc) if isinstance(exc, BaseException) else exc)
    name = (type(exc) if isinstance(exc, BaseException) else exc).__name__
    assert any(e.startswith("reader: " + name) for e in errors(station))  # logged, not silent
    r = csms.call("CP1", call.GetLocalListVersion())
    assert r.list_version == 0


def test_json_memoryerror_answers_callerror_and_keeps_the_link(csms, station):
    old = station.runtime.conn
    with Inject(rpc, "decode", when=lambda text: '"ChangeConfiguration"' in text):
        r = csms.call("CP1", call.ChangeConfiguration(key="MeterValueSampleInterval", value="30"), timeout=3)
    assert r is None and call_error(csms)[2:4] == ["InternalError", "out of memory"]
    assert station.runtime.conn is old
    r = csms.call("CP1", call.GetConfiguration(key=["MeterValueSampleInterval"]))
    assert r.configuration_key[0]["value"] != "30"  # the old state


def test_handler_and_storage_faults_keep_the_old_state(csms, station):
    st = station.station
    lst = [{"idTag": "T%03d" % i, "idTagInfo": {"status": "Accepted"}} for i in range(100)]
    assert csms.call("CP1", call.SendLocalList(list_version=1, update_type="Full",
                                               local_authorization_list=lst[:3])).status == "Accepted"
    # storage: the snapshot write runs out of memory -> Failed, old list
    with Inject(st.authlist._persist, "save_pieces"):
        r = csms.call("CP1", call.SendLocalList(list_version=2, update_type="Full", local_authorization_list=lst))
    assert r.status == "Failed" and st.authlist.version == 1 and len(st.authlist) == 3
    # streamed read: MemoryError at the 50th entry -> CALLERROR, old list
    from evse.wire import jsonstream
    k = {"n": 0}

    def at_50(self, **kw):
        k["n"] += kw.get("max_size") == 256
        return k["n"] == 50

    with Inject(jsonstream.Reader, "value", when=at_50) as g:
        r = csms.call("CP1", call.SendLocalList(list_version=3, update_type="Full",
                                                local_authorization_list=lst), timeout=3)
        assert g.hits == 1
    assert r is None and call_error(csms)[2:4] == ["InternalError", "SendLocalList"]
    assert st.authlist.version == 1 and len(st.authlist) == 3
    # a plain handler raising: CALLERROR, the link and the station stay
    with Inject(st.config, "get_configuration", exc=KeyError("bug")):
        assert csms.call("CP1", call.GetConfiguration(), timeout=3) is None
    assert call_error(csms)[2:4] == ["InternalError", "GetConfiguration"]
    assert csms.call("CP1", call.SendLocalList(list_version=4, update_type="Full",
                                               local_authorization_list=lst)).status == "Accepted"
    assert len(st.authlist) == 100


def test_readinto_transport_reuses_one_buffer(csms, tmp_path, monkeypatch):
    """MicroPython's Stream.readinto path (CPython's StreamReader has none):
    one buffer for the link, None (a TLS record not complete) tolerated."""
    buffers = set()
    real = wsconn.open_connection

    class Into:
        def __init__(self, r):
            self.r, self.flip = r, False

        async def read(self, n):
            return await self.r.read(n)

        async def readinto(self, buf):
            self.flip = not self.flip
            if self.flip:
                await asyncio.sleep(0)
                return None
            buffers.add(id(buf))
            d = await self.r.read(len(buf))
            buf[:len(d)] = d
            return len(d)

    async def opener(*a, **kw):
        r, w = await real(*a, **kw)
        return Into(r), w

    monkeypatch.setattr(wsconn, "open_connection", opener)
    s = StationThread(csms.url, "CP9", str(tmp_path))
    try:
        csms.wait_call("Heartbeat", 2, cp_id="CP9", timeout=5)
        r = csms.call("CP9", call.GetConfiguration(key=["HeartbeatInterval"]))
        assert r.configuration_key[0]["value"] == "1"
        assert len(buffers) == 1
    finally:
        s.stop()


def test_runtime_fault_counts_and_closes(monkeypatch):
    """Runtime.fault logs even when logging itself fails, and closes the link."""
    closed = []

    class Conn:
        closed = False

        async def close(self):
            closed.append(1)

    class St:
        link = None
        clock = type("C", (), {"ms": staticmethod(lambda: 0)})()

        @staticmethod
        def log(level, text):
            raise MemoryError

    async def go():
        rt = runtime.Runtime(St(), "ws://x/ocpp", "CP")
        rt.conn = Conn()
        rt.fault("x", MemoryError())
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return rt

    rt = asyncio.run(go())
    assert rt.faults == 1 and closed == [1]
    assert rt.alive(1000, 2000) and not rt.alive(5000, 2000)


def test_journal_memoryerror_at_transaction_start_stays_safe(tmp_path):
    """Storage: the StartTransaction record cannot be written. No charging
    without a durable record: the relay stays open, nothing half-started is
    reported, and the next session works."""
    from rig import Rig
    r = Rig(str(tmp_path), tags={"AA": "Accepted"}).connect()
    with Inject(type(r.st.transactions.queue), "_append") as f:
        r.cmd("card", "AA")
        r.cmd("plug")
        r.run(2000)
    assert f.hits == 1 and not r.board.ports[0].relay and "StartTransaction" not in r.actions()
    assert any("MemoryError" in t for lvl, t in r.logs if lvl == "error")
    r.cmd("card", "AA")  # the driver gives up: card again, unplug
    r.run(3000)
    r.cmd("unplug")
    r.run(1000)
    assert r.status() == "Available"
    r.cmd("card", "AA")
    r.cmd("plug")
    r.run(2000)
    assert r.status() == "Charging" and r.board.ports[0].relay and r.actions().count("StartTransaction") == 1


@pytest.mark.parametrize("site", ["journal", "reading"])
def test_stop_card_memoryerror_still_stops(csms, station, site):
    """Issue 18: a MemoryError in the stop card's handler left the
    transaction running (relay closed, energy flowing, the card ignored).
    The relay opens before any bookkeeping, and the card event is retried."""
    from evse import transaction
    st = station.station
    assert csms.call("CP1", call.ChangeConfiguration(key="StopTxnSampledData",
                                                     value="Energy.Active.Import.Register")).status == "Accepted"
    charging(station, csms)
    obj, name = (st.transactions.queue, "stop") if site == "journal" else (transaction, "_reading")
    with Inject(obj, name) as f:
        station.command("card", "AA")
        wait_for(lambda: f.hits == 1, 5, "fault hit")
        wait_for(lambda: not station.board.ports[0].relay, 5, "relay open")
    stop = csms.wait_call("StopTransaction", timeout=10)[0]
    assert stop["reason"] == "Local" and stop["idTag"] == "AA"
    ends = [v for mv in stop.get("transactionData", []) for v in mv["sampledValue"]
            if v.get("context") == "Transaction.End"]
    assert len(ends) == 1 and st.connectors[1].tx is None


def test_authorize_answer_lost_to_memoryerror_asks_again(csms, station):
    """Issue 18: a MemoryError while the Authorize was in flight (the reader
    died on its answer, the link dropped) refused the card as Invalid by the
    offline rules. A transient fault must not cost the user the swipe: the
    station asks again once the link is back, within ConnectionTimeOut."""
    old = station.runtime.conn
    with Inject(WsClient, "receive_data", when=lambda self, data: b"idTagInfo" in bytes(data)) as f:
        station.command("card", "AA")
        wait_for(lambda: f.hits == 1, 5, "fault hit")
    new_link(station, old)
    csms.wait_call("Authorize", n=2, timeout=10)
    station.command("plug")
    start = csms.wait_call("StartTransaction", timeout=10)[0]
    assert start["idTag"] == "AA"
    assert not any("not authorized" in t for _, t in station.logs)
