"""GetDiagnostics and GetLog end to end: the station and its runtime (jobs
as asyncio tasks) against the dev CSMS over WebSockets, uploads to the
loopback HTTP server; and the log and upload code in the MicroPython VM."""
from __future__ import annotations

import json
import time

from ocpp.v16 import call

from evse import timestamp
from httpserver import HttpServer
from live import CsmsThread, StationThread, wait_for
from test_conformance_harness import case

CP = "DG1"


@case("TC_045_1_CS, TC_079_CS", "Get Diagnostics; Get Security Log", "Firmware Management")
def test_get_diagnostics_and_get_log_over_the_wire(tmp_path):
    csms = CsmsThread()
    srv = HttpServer()
    sta = StationThread(csms.url, CP, str(tmp_path / "d"))
    try:
        csms.wait_call("BootNotification", cp_id=CP)
        wait_for(lambda: sta.station.registration == "Accepted", 5, "boot accepted")
        t0 = int(time.time())
        sta.do(lambda: sta.station.log("info", "old line"))
        sta.do(lambda: sta.station.diag.log.flush())
        # Lines stamped an hour ago fall outside the window asked for below.
        import os
        for path in sta.do(lambda: sta.station.diag.log.files()):
            with open(path) as f:
                lines = f.read().splitlines()
            with open(path, "w") as f:
                f.writelines(ln.replace(ln.split(" ")[0], str(t0 - 3600), 1) + "\n" for ln in lines)
            assert os.path.getsize(path) > 0
        sta.do(lambda: sta.station.log("info", "new line"))
        res = csms.call(CP, call.GetDiagnostics(location=srv.url("/upload"),
                                                start_time=timestamp.format_utc(t0 - 60)))
        assert res.file_name.startswith("diagnostics-DG1-")
        csms.wait_call("DiagnosticsStatusNotification", 2, cp_id=CP)
        assert [p["status"] for p in csms.calls("DiagnosticsStatusNotification", CP)] == ["Uploading", "Uploaded"]
        method, _, body = srv.uploads[res.file_name]
        assert method == "PUT" and b"new line" in body and b"old line" not in body
        res = csms.call(CP, call.GetLog(log={"remote_location": srv.url("/upload"),
                                             "oldest_timestamp": timestamp.format_utc(t0 - 7200)},
                                        log_type="DiagnosticsLog", request_id=4))
        assert res.status == "Accepted"
        csms.wait_call("LogStatusNotification", 2, cp_id=CP)
        assert [p["status"] for p in csms.calls("LogStatusNotification", CP)] == ["Uploading", "Uploaded"]
        body = srv.uploads[res.filename][2]
        assert b"old line" in body and b"new line" in body
    finally:
        sta.stop()
        srv.close()
        csms.stop()


VM = r"""
import asyncio, json
from boards.sim.board import SimBoard
from evse.station import Station
from evse.store.storage import FileStorage
from evse import jobs
from scenarios.vclock import VirtualClock

SENT = []

class Reader:
    def __init__(self):
        self.data = b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"
    async def readinto(self, buf):
        k = len(self.data)
        buf[:k] = self.data
        self.data = b""
        return k

class Writer:
    def write(self, b):
        SENT.append(bytes(b))
    async def drain(self):
        pass
    def close(self):
        pass
    async def wait_closed(self):
        pass

async def opener(host, port, ssl=None, server_hostname=None):
    return Reader(), Writer()

async def main():
    asyncio.open_connection = opener
    clk = VirtualClock()
    st = Station(board=SimBoard(), clock=clk, storage=FileStorage("/data"))
    d = st.diag.log
    for i in range(400):  # several files: rotation in the VM's file system
        st.log("info", "line %d %s" % (i, "y" * 60))
        clk.advance(1000)
    d.flush()
    t0 = clk.unix() - 100
    from evse import logrequests, timestamp
    out = logrequests.get_log(st, {"logType": "DiagnosticsLog", "requestId": 1,
                                    "log": {"remoteLocation": "http://up/logs",
                                            "oldestTimestamp": timestamp.format_utc(t0)}})
    st.tick(clk.ms())
    job = st.jobs.pop(0)
    await jobs.run(st, job)
    raw = b"".join(SENT)
    head, body = raw.split(b"\r\n\r\n", 1)
    lines = body.decode().splitlines()
    print(json.dumps({"conf": out, "files": len(d.files()), "head": head.decode().split("\r\n")[0],
                      "n": len(lines), "first": lines[0], "last": lines[-1],
                      "status": st.diag.status}))

await asyncio.create_task(main())
"""


def test_log_and_upload_in_the_vm(tmp_path):
    import os

    import mpvm
    here = os.path.dirname(os.path.abspath(__file__))
    files = {}
    for n in ("vclock.py", "__init__.py"):
        with open(os.path.join(here, "scenarios", n)) as f:
            files["/lib/scenarios/" + n] = f.read()
    out = mpvm.run(VM, extra=files, timeout=60, run_async=True)
    res = json.loads(out.strip().splitlines()[-1])
    assert res["conf"]["status"] == "Accepted"
    assert res["head"].startswith("PUT /logs/diagnostics-cp-")
    assert 2 <= res["files"] <= 4
    assert res["n"] == 100 and "line 300 " in res["first"] and "line 399 " in res["last"]
    assert res["status"] == "Uploaded"
