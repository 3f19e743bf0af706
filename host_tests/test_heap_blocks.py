"""Fragmentation guard (issue 18): after boot, no allocation bigger than
about 1 KB outside the buffers made once, while a session and the big
messages (a 100-entry SendLocalList, SetChargingProfile at 192 periods)
run over real WebSockets against the real CSMS. A frame-sized block is
what fails first in a fragmented MCU heap; the link receives into one
kept buffer (ws.RxBuffer) and the big CALLs are read in place there.

CPython's tracemalloc sees every live block with the firmware line that
made it: a snapshot is taken inside every Station.receive (the frame and
whatever was made to hand it over are alive then) and at the end of each
step; blocks that already existed after boot do not count.

The real MCU figures (smallest heap per workload on 32-bit MicroPython):
tools/mcucheck.py, `make mcu-check MICROPY=...`."""
import os
import tracemalloc

from ocpp.v16 import call

from evse.station import Station
from live import CsmsThread, StationThread

import mcucheck  # tools/ is on the path (conftest)

FW = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "firmware", "evse")
# bytes; CPython's objects are 1.5-3x MicroPython's (the 100-entry list's
# dict: 3.3 KB here, about 1 KB there)
BOUND = 4096


def _blocks(snap, before):
    """(size, file:line) of firmware blocks not in `before`."""
    out = []
    for t in snap.filter_traces([tracemalloc.Filter(True, FW + os.sep + "*")]).traces:
        key = (tuple((f.filename, f.lineno) for f in t.traceback), t.size)
        if key in before:
            continue
        f = t.traceback[0]
        out.append((t.size, "%s:%d" % (f.filename, f.lineno)))
    return out


def _key_set(snap):
    return {(tuple((f.filename, f.lineno) for f in t.traceback), t.size) for t in snap.traces}


def _made_once(where):
    """The link's receive buffer (ws.RxBuffer.need), kept across messages."""
    import linecache
    path, line = where.rsplit(":", 1)
    return os.path.basename(path) == "ws.py" and "bytearray(n)" in linecache.getline(path, int(line))


def test_no_big_block_after_boot_in_a_session_and_the_big_messages(tmp_path, monkeypatch):
    tracemalloc.start(1)
    seen = []
    state = {"before": None}
    receive = Station.receive

    def spy(self, text, now):
        if state["before"] is not None:
            seen.extend(_blocks(tracemalloc.take_snapshot(), state["before"]))
        return receive(self, text, now)
    monkeypatch.setattr(Station, "receive", spy)
    c = CsmsThread(tags={"04A2B3C4": "Accepted"})
    s = StationThread(c.url, "HB1", str(tmp_path), seeds={"ChargingScheduleMaxPeriods": "192"})
    try:
        c.wait_call("StatusNotification", 2)
        state["before"] = _key_set(tracemalloc.take_snapshot())
        assert c.call("HB1", mcucheck.local_list(100)).status == "Accepted"
        seen.extend(_blocks(tracemalloc.take_snapshot(), state["before"]))
        for k in (1, 2, 3):
            assert c.call("HB1", mcucheck.profile(k)).status == "Accepted"
        s.command("plug")
        s.command("card", "04A2B3C4")
        c.wait_call("StartTransaction")
        s.command("card", "04A2B3C4")
        c.wait_call("StopTransaction")
        seen.extend(_blocks(tracemalloc.take_snapshot(), state["before"]))
        assert c.call("HB1", call.GetConfiguration()).configuration_key
    finally:
        s.stop()
        c.stop()
        tracemalloc.stop()
    assert len(seen) > 100  # the snapshots did see the firmware's blocks
    big = sorted({b for b in seen if b[0] > BOUND and not _made_once(b[1])}, reverse=True)
    assert not big, big[:5]
    assert any(_made_once(w) and n > 14000 for n, w in seen)  # the list was received into the kept buffer
