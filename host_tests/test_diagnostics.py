"""Diagnostics log, GetDiagnostics and GetLog (evse/diagnostics.py) on the
sans-IO rig, uploads to the loopback HTTP server run as jobs."""
from __future__ import annotations

import os

import pytest

from evse import diagnostics, timestamp
from fwkit import FEATURES, run_jobs
from httpserver import HttpServer
from rig import Rig


def make_rig(tmp_path) -> Rig:
    return Rig(str(tmp_path / "data"), features=FEATURES).connect()


def iso(t: int) -> str:
    return timestamp.format_utc(t)


def marks(rig: Rig) -> list[int]:
    """Log 'mark N' once a minute for 5 minutes; their unix times."""
    out = []
    for n in range(5):
        out.append(rig.clock.unix())
        rig.st.log("info", f"mark {n}")
        rig.run(60000)
    return out


def body(srv: HttpServer) -> tuple[str, str, dict[str, str]]:
    assert len(srv.uploads) == 1
    name, (method, headers, data) = next(iter(srv.uploads.items()))
    return name, data.decode(), dict(headers, method=method)


def test_log_rotates_within_its_cap(tmp_path):
    r = make_rig(tmp_path)
    for i in range(3000):
        r.st.log("info", f"line {i} " + "x" * 60)
    r.run(31000)  # the periodic flush
    d = r.st.diag.log
    files = d.files()
    assert len(files) == diagnostics._FILES
    assert sum(os.path.getsize(f) for f in files) <= diagnostics._FILES * (diagnostics._FILE_MAX + 1100)
    last = list(d.lines(None, None))[-1]
    assert "line 2999" in last and last.endswith("\n")


def test_get_diagnostics_uploads_the_window(tmp_path, srv):
    r = make_rig(tmp_path)
    t = marks(r)
    ans = r.call("GetDiagnostics", {"location": srv.url("/upload/"), "startTime": iso(t[1]),
                                    "stopTime": iso(t[3])})
    name = ans[2]["fileName"]
    r.run(0)
    assert run_jobs(r) == 1
    r.run(100)
    got, text, h = body(srv)
    assert got == name and h["method"] == "PUT" and int(h["content-length"]) == len(text.encode())
    assert [ln.split(" ", 3)[3] for ln in text.splitlines() if " mark " in ln] == ["1", "2", "3"]
    assert text.splitlines()[0].startswith(iso(t[1]))
    assert [p["status"] for p in r.sent("DiagnosticsStatusNotification")] == ["Uploading", "Uploaded"]


def test_get_log_diagnostics_and_security(tmp_path, srv):
    r = make_rig(tmp_path)
    t = marks(r)
    r.st.security_event("SettingSystemTime", "test")
    ans = r.call("GetLog", {"logType": "DiagnosticsLog", "requestId": 5,
                            "log": {"remoteLocation": srv.url("/upload"), "oldestTimestamp": iso(t[3])}})
    assert ans[2]["status"] == "Accepted" and ans[2]["filename"].startswith("diagnostics-")
    r.run(0)
    run_jobs(r)
    r.run(100)
    _, text, h = body(srv)
    assert "mark 2" not in text and "mark 3" in text and "mark 4" in text
    sent = r.sent("LogStatusNotification")
    assert sent == [{"status": "Uploading", "requestId": 5}, {"status": "Uploaded", "requestId": 5}]
    srv.uploads.clear()
    ans = r.call("GetLog", {"logType": "SecurityLog", "requestId": 6,
                            "log": {"remoteLocation": srv.url("/upload"), "oldestTimestamp": iso(t[4])}})
    assert ans[2]["filename"].startswith("security-")
    r.run(0)
    run_jobs(r)
    _, text, _ = body(srv)
    assert "SettingSystemTime" in text and "mark" not in text


@pytest.mark.parametrize("path,status", [("/status/403", "PermissionDenied"), ("/status/405", "NotSupportedOperation"),
                                         ("/status/500", "UploadFailure")])
def test_get_log_failures(tmp_path, srv, path, status):
    r = make_rig(tmp_path)
    r.call("GetLog", {"logType": "DiagnosticsLog", "requestId": 1, "retries": 1, "retryInterval": 20,
                      "log": {"remoteLocation": srv.url(path + "?to=")}})
    r.run(0)
    run_jobs(r)
    r.run(19000)
    assert r.st.jobs == []  # the retry waits retryInterval
    r.run(1000)
    run_jobs(r)
    r.run(100)
    assert [p["status"] for p in r.sent("LogStatusNotification")] == ["Uploading", status]
    assert len(srv.requests) == (4 if status == "NotSupportedOperation" else 2)  # PUT, then POST


def test_get_diagnostics_unreachable_fails(tmp_path):
    r = make_rig(tmp_path)
    r.call("GetDiagnostics", {"location": "http://127.0.0.1:9/up"})
    r.run(0)
    run_jobs(r)
    r.run(100)
    assert [p["status"] for p in r.sent("DiagnosticsStatusNotification")] == ["Uploading", "UploadFailed"]


def test_second_get_log_cancels_and_ftp_is_rejected(tmp_path, srv):
    r = make_rig(tmp_path)
    loc = {"remoteLocation": srv.url("/upload")}
    r.call("GetLog", {"logType": "DiagnosticsLog", "requestId": 1, "log": loc})
    r.run(0)
    first = r.st.jobs[0]
    ans = r.call("GetLog", {"logType": "DiagnosticsLog", "requestId": 2, "log": loc})
    assert ans[2]["status"] == "AcceptedCanceled" and first.cancelled
    r.st.jobs.remove(first)
    r.run(0)
    run_jobs(r)
    # The replaced one got its final status (issue 19 item 20), the new one ran.
    assert r.sent("LogStatusNotification") == [{"status": "Uploading", "requestId": 1},
                                               {"status": "UploadFailure", "requestId": 1},
                                               {"status": "Uploading", "requestId": 2},
                                               {"status": "Uploaded", "requestId": 2}]
    ans = r.call("GetLog", {"logType": "DiagnosticsLog", "requestId": 3, "log": {"remoteLocation": "ftp://x/y"}})
    assert ans[2]["status"] == "Rejected"


def test_triggers(tmp_path):
    r = make_rig(tmp_path)
    r.call("TriggerMessage", {"requestedMessage": "DiagnosticsStatusNotification"})
    r.call("ExtendedTriggerMessage", {"requestedMessage": "LogStatusNotification"})
    assert r.sent("DiagnosticsStatusNotification") == [{"status": "Idle"}]
    assert r.sent("LogStatusNotification") == [{"status": "Idle"}]


def test_triggers_during_a_retry_wait_say_uploading(tmp_path):
    # N01.FR.12 (issue 19 item 19): an upload still to be retried is ongoing.
    r = make_rig(tmp_path)
    r.call("GetLog", {"logType": "DiagnosticsLog", "requestId": 9, "retries": 1, "retryInterval": 600,
                      "log": {"remoteLocation": "http://127.0.0.1:9/up"}})
    r.run(0)
    run_jobs(r)  # the first attempt fails: the retry waits 600 s
    assert r.st.jobs == [] and r.sent("LogStatusNotification") == [{"status": "Uploading", "requestId": 9}]
    r.call("ExtendedTriggerMessage", {"requestedMessage": "LogStatusNotification"})
    assert r.sent("LogStatusNotification")[-1] == {"status": "Uploading", "requestId": 9}
    r.call("GetDiagnostics", {"location": "http://127.0.0.1:9/up", "retries": 1, "retryInterval": 600})
    r.run(0)
    run_jobs(r)
    r.call("TriggerMessage", {"requestedMessage": "DiagnosticsStatusNotification"})
    assert r.sent("DiagnosticsStatusNotification")[-1] == {"status": "Uploading"}
    r.call("ExtendedTriggerMessage", {"requestedMessage": "LogStatusNotification"})
    assert r.sent("LogStatusNotification")[-1] == {"status": "Idle"}


def test_each_kind_replacing_the_other_gives_it_a_final_status(tmp_path, srv):
    # Issue 19 item 20: a GetLog ends a running GetDiagnostics with
    # UploadFailed (answered Accepted, not AcceptedCanceled), and the reverse.
    r = make_rig(tmp_path)
    r.call("GetDiagnostics", {"location": srv.url("/upload")})
    r.run(0)
    ans = r.call("GetLog", {"logType": "DiagnosticsLog", "requestId": 4, "log": {"remoteLocation": srv.url("/upload")}})
    assert ans[2]["status"] == "Accepted"
    assert r.sent("DiagnosticsStatusNotification") == [{"status": "Uploading"}, {"status": "UploadFailed"}]
    r.st.jobs.pop(0)  # the cancelled upload
    r.run(0)
    r.call("GetDiagnostics", {"location": srv.url("/upload")})
    assert r.sent("LogStatusNotification")[-1] == {"status": "UploadFailure", "requestId": 4}
    r.st.jobs.clear()
    r.run(0)
    run_jobs(r)
    assert r.sent("DiagnosticsStatusNotification")[-1] == {"status": "Uploaded"}


def test_get_diagnostics_ftp_is_not_supported(tmp_path):
    r = make_rig(tmp_path)
    ans = r.call("GetDiagnostics", {"location": "ftp://x/y"})
    assert ans[0] == 4 and ans[2] == "NotSupported"


def test_lines_logged_during_an_upload_keep_its_length_true(tmp_path, srv, monkeypatch):
    from evse import logrequests
    r = make_rig(tmp_path)
    marks(r)
    real, calls = logrequests.source_lines, []

    def source_lines(st, req):
        calls.append(1)
        if len(calls) == 2:  # after the length pass, before the body
            st.log("info", "logged while uploading")
        return real(st, req)

    monkeypatch.setattr(logrequests, "source_lines", source_lines)
    r.call("GetDiagnostics", {"location": srv.url("/upload")})
    r.run(0)
    run_jobs(r)
    _, text, h = body(srv)
    assert int(h["content-length"]) == len(text.encode()) and "mark 4" in text
    assert "logged while uploading" not in text
    assert [p["status"] for p in r.sent("DiagnosticsStatusNotification")][-1] == "Uploaded"
    assert "logged while uploading" in "".join(r.st.diag.log.lines(None, None))  # kept for the next one
