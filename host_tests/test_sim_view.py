"""The simulator's terminal view, its state snapshot, --help, and make sim's CSMS log file."""
from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import time

from boards.sim.board import SimBoard
from evse.clock import SystemClock
from evse.station import Station
from evse.store.storage import FileStorage

import devsim
import simstate
from live import ROOT, CsmsThread, StationThread, wait_for
from simview import Pairing, TermView, connect_failure, plain, summary

SIM = os.path.join(ROOT, "tools", "sim.py")
# The one shape of a human line: time to the ms, a mark, words; or a
# continuation indented under the words.
LINE = re.compile(r"^(\d\d:\d\d:\d\d\.\d{3} (->|<-|==|\.\.|!!|\*\*) \S| {16} *\S)")


def _check_lines(text):
    lines = text.splitlines()
    assert lines
    for line in lines:
        assert LINE.match(line), line
        assert not re.search(r"[A-Za-z]+Error\(|\{\"", line), line  # no reprs, no JSON
    return lines


def _ev(event, typ, action, uid, payload):
    return {"event": event, "type": typ, "action": action, "id": uid, "payload": payload}


def test_pairing_gives_round_trip_times_both_ways():
    p = Pairing()
    p.annotate(_ev("sent", "CALL", "Heartbeat", "a1", {}), now=10.0)
    p.annotate(_ev("received", "CALL", "Reset", "c9", {"type": "Soft"}), now=10.5)
    ans = p.annotate(_ev("received", "CALLRESULT", "Heartbeat", "a1", {}), now=10.012)
    assert ans["rttMs"] == 12.0 and ans["t"] == 10.012
    mine = p.annotate(_ev("sent", "CALLRESULT", "Reset", "c9", {"status": "Accepted"}), now=10.501)
    assert mine["rttMs"] == 1.0
    stray = p.annotate(_ev("received", "CALLRESULT", None, "zz", {}), now=11)
    assert "rttMs" not in stray and p.annotate({"event": "connected"}, now=12)["t"] == 12
    for i in range(500):  # unanswered CALLs do not pile up
        p.annotate(_ev("sent", "CALL", "Heartbeat", str(i), {}), now=1)
    assert len(p.pending) <= 64


def test_summary_shows_the_fields_that_matter():
    assert summary(_ev("sent", "CALL", "StartTransaction", "1", {
        "connectorId": 1, "idTag": "AA", "meterStart": 5, "timestamp": "x"})) == "connectorId=1 idTag=AA meterStart=5"
    assert summary(_ev("received", "CALLRESULT", "StartTransaction", "1", {
        "transactionId": 7, "idTagInfo": {"status": "Accepted"}})) == "Accepted transactionId=7"
    mv = {"connectorId": 1, "transactionId": 7, "meterValue": [{"timestamp": "t", "sampledValue": [
        {"value": "120", "unit": "Wh"}, {"value": "7360", "measurand": "Power.Active.Import", "unit": "W"}]}]}
    assert summary(_ev("sent", "CALL", "MeterValues", "2", mv)) == "connectorId=1 transactionId=7 E=120Wh P=7360W"
    assert summary(_ev("sent", "CALLERROR", None, "3", {"errorCode": "NotImplemented",
                                                         "errorDescription": "Foo"})) == "NotImplemented Foo"
    assert summary(_ev("received", "CALL", "ChangeConfiguration", "4",
                       {"key": "HeartbeatInterval", "value": "30"})) == "HeartbeatInterval=30"
    assert summary(_ev("received", "CALL", "SomethingNew", "5", {"a": 1, "b": {"x": 1}})) == "a=1"


def test_term_view_lines_plain_colour_and_verbose():
    out = io.StringIO()
    v = TermView(out)  # not a terminal: no colour
    ev = _ev("received", "CALLRESULT", "BootNotification", "1", {"status": "Accepted", "interval": 30,
                                                                   "currentTime": "x"})
    ev["rttMs"] = 4.5
    v.show(ev)
    line = out.getvalue()
    assert line.count("\n") == 1 and "\x1b" not in line
    assert "<- BootNotification" in line and "Accepted interval=30  4.5 ms" in line
    colour = TermView(io.StringIO(), color=True).frame_line(ev)
    assert "\x1b[32mAccepted\x1b[0m" in colour
    bad = TermView(io.StringIO(), color=True).frame_line(_ev("sent", "CALLERROR", "X", "1", {"errorCode": "E"}))
    assert "\x1b[31m" in bad
    verbose = TermView(io.StringIO(), verbose=True).lines(ev)[0]
    assert '"currentTime":"x"' in verbose.splitlines()[1]


def test_connect_failures_in_words():
    t = "127.0.0.1:9"
    cases = [
        ('ConnectionRefusedError(111, "Connect call failed (\'127.0.0.1\', 9)")', "connection refused by 127.0.0.1:9"),
        ("OSError(\"Multiple exceptions: [Errno 111] Connect call failed ('::1', 9, 0, 0), "
         "[Errno 111] Connect call failed ('127.0.0.1', 9)\")", "connection refused by 127.0.0.1:9"),
        ("WsError('http 401')",
         "127.0.0.1:9 refused the WebSocket with HTTP 401 (wrong AuthorizationKey or station id?)"),
        ("WsError('connect timeout')", "no answer from 127.0.0.1:9 (connect timed out)"),
        ("SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: "
         "self-signed certificate (_ssl.c:1000)')",
         "TLS with 127.0.0.1:9 failed: certificate verify failed: self-signed certificate"),
        ("gaierror(-2, 'Name or service not known')", "cannot find host 127.0.0.1 (name or service not known)"),
        ("OSError(113, 'No route to host')", "no route to host (127.0.0.1:9)"),
        ("ConnectionResetError(104, 'Connection reset by peer')", "connection reset by 127.0.0.1:9"),
        ("ValueError('security profile 2 needs a wss:// url')",
         "cannot connect to 127.0.0.1:9: security profile 2 needs a wss:// url"),
        ("not a repr", "connect to 127.0.0.1:9 failed: not a repr"),
    ]
    for error, words in cases:
        assert connect_failure(error, t) == words, error
    assert plain("job GetDiagnostics: ValueError('no url')") == "job GetDiagnostics: no url (ValueError)"
    assert plain("session: MemoryError()") == "session: MemoryError" and plain("txqueue: x(1)") == "txqueue: x(1)"


def test_one_line_format_for_events_and_logs():
    v = TermView(io.StringIO())
    v.target = "127.0.0.1:9"
    ev = {"event": "connect_failed", "error": 'ConnectionRefusedError(111, "Connect call failed")',
          "retryMs": 4012, "t": 1.5}
    (line,) = v.lines(ev)
    assert line.endswith(" !! connection refused by 127.0.0.1:9, next try in 4 s") and LINE.match(line)
    assert v.lines(dict(ev, retryMs=640))[0].endswith("next try in 0.6 s")
    verbose = TermView(io.StringIO(), verbose=True).lines(dict(ev, target="h:1"))
    assert verbose[0].endswith("refused by h:1, next try in 4 s") and verbose[1].strip() == ev["error"]
    assert v.lines({"event": "connected"})[0].endswith(" == connected to 127.0.0.1:9")
    assert v.lines({"event": "dashboard", "url": "http://x/"})[0].endswith(" == dashboard at http://x/")
    assert v.lines({"event": "reboot", "kind": "Soft"})[0].endswith(" == the core restarts (Soft reset)")
    assert v.lines({"event": "error", "command": "plug", "error": "unknown connector 7"})[0].endswith(
        " !! plug: unknown connector 7")
    assert v.lines({"event": "newthing", "a": {"b": 1}, "t": 3})[0].endswith(' .. newthing a={"b":1}')
    assert v.log_lines("security", "StartupOfTheDevice")[0].endswith(" ** security event StartupOfTheDevice")
    assert v.log_lines("warn", "job x: OSError(5, 'EIO')")[0].endswith(" !! job x: EIO (OSError)")
    assert v.log_lines("error", "hook f: KeyError('k')")[0].endswith(" !! error: hook f: k (KeyError)")
    assert v.log_lines("info", "local list version 3, 2 entries")[0].endswith(" .. local list version 3, 2 entries")
    assert v.log_lines("warn", "connect failed: OSError()") == []  # the event says it in words
    lines = v.log_lines("info", "commands:\n  plug [C]")
    assert lines[1] == " " * 16 + "  plug [C]"
    for x in [line, *lines, *v.log_lines("security", "X: y")]:
        assert LINE.match(x), x


def test_refused_connects_read_as_words(tmp_path):
    p = subprocess.Popen([sys.executable, SIM, "--url", "ws://127.0.0.1:9/ocpp", "--id", "REF1",
                          "--data", str(tmp_path), "--http", "0"], stdin=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    assert p.stdin is not None and p.stderr is not None
    seen = []
    while len([x for x in seen if "connection refused" in x]) < 2:  # the second one came after a pause
        seen.append(p.stderr.readline())
        assert seen[-1], "".join(seen)
    p.stdin.write("plug 7\nstatus\nquit\n")
    _, err = p.communicate(timeout=20)
    lines = _check_lines("".join(seen) + err)
    text = "\n".join(lines)
    assert re.search(r" !! connection refused by 127\.0\.0\.1:9, next try in [\d.]+ s\n", text), text
    assert " ** security event StartupOfTheDevice" in text and " == dashboard at http://127.0.0.1:" in text
    assert " !! plug: unknown connector 7" in text and " == REF1 offline, boot not sent yet" in text
    assert "connect failed" not in text and "Connect call failed" not in text


def test_stdin_after_the_loop_ended_is_quiet(monkeypatch):
    # `quit` then the end of stdin: the loop is gone when the reader thread
    # hands over the last line (it printed a traceback at exit).
    import asyncio

    import sim
    loop = asyncio.new_event_loop()
    loop.close()
    monkeypatch.setattr(sys, "stdin", io.StringIO("status\n"))
    me = type("Me", (), {"command": lambda self, line: None})()
    sim.Sim._stdin(me, loop)  # type: ignore[arg-type]


def test_snapshot_of_a_real_core_and_status_lines(tmp_path):
    board = SimBoard(serial="SNAP")
    st = Station(board=board, clock=SystemClock(), storage=FileStorage(str(tmp_path)))
    snap = simstate.snapshot(st, board)
    assert not snap["connected"] and snap["registration"] is None
    assert snap["localListVersion"] == 0 and snap["reservations"] == [] and snap["outbox"] >= 0
    c1 = snap["connectors"][1]
    assert c1["status"] == "Available" and c1["transactionId"] is None and c1["powerW"] == 0
    assert c1["schedule"]["status"] in ("Accepted", "Rejected") and "reservation" not in c1
    assert "schedule" not in simstate.snapshot(st, board, schedule=False)["connectors"][1]
    assert simstate.snapshot(None, board)["connectors"] == []
    assert simstate.security_profile(st, "wss://h/p", "pw") == 2 and simstate.security_profile(st, "ws://h", None) == 0
    lines = TermView(io.StringIO()).status_lines(dict(snap, event="status"))
    assert "offline" in lines[0] and "#1 Available" in lines[1] and "limit" in lines[1] and "Wh" in lines[1]


def test_help_lists_every_command_and_flag():
    r = subprocess.run([sys.executable, SIM, "--help"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0
    for word in ("--url", "--id", "--data", "--set", "--password", "--json", "--quiet", "--verbose", "--no-color",
                 "--http", "--fleet", "--scenario", "--csv", "plug [C]", "unplug [C]", "card IDTAG", "ev-suspend",
                 "ev-resume", "fault [C] ERRORCODE", "clear [C]", "status", "reboot", "quit"):
        assert word in r.stdout, word
    r = subprocess.run([sys.executable, SIM], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "--url is required" in r.stderr


def test_terminal_session_one_line_per_message(tmp_path):
    csms = CsmsThread(tags={"AA": "Accepted"})
    try:
        p = subprocess.Popen([sys.executable, SIM, "--url", csms.url, "--id", "TERM1", "--data", str(tmp_path)],
                             stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert p.stdin is not None
        csms.wait_call("StatusNotification", 2, cp_id="TERM1", timeout=10)
        p.stdin.write("plug\ncard AA\n")
        p.stdin.flush()
        csms.wait_call("StartTransaction", cp_id="TERM1")
        time.sleep(0.2)
        _, err = p.communicate("status\nquit\n", timeout=10)
    finally:
        csms.stop()
    assert "-> StartTransaction       connectorId=1 idTag=AA meterStart=0" in err
    assert "<- StartTransaction       Accepted transactionId=" in err and " ms\n" in err
    assert "#1 Charging" in err and '"payload"' not in err  # readable, not raw JSON
    _check_lines(err)


def test_make_sim_csms_log_goes_to_a_file(tmp_path):
    log = tmp_path / "csms.log"
    port = devsim.start_csms(log_path=str(log))
    s = StationThread(f"ws://127.0.0.1:{port}/ocpp", "LOG1", str(tmp_path / "st"))
    try:
        wait_for(lambda: log.exists() and "BootNotification" in log.read_text(), 5, "CSMS log file")
    finally:
        s.stop()
    assert "LOG1 ->" in log.read_text()
    args = devsim.parse_args([])
    assert args.csms_log.endswith(os.path.join(".sim", "csms.log")) and args.http == 8180
