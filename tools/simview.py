"""Terminal view of the simulator: every line is a time, a mark and words.

    12:00:01.204 -> StartTransaction       connectorId=1 idTag=04A2B3C4 meterStart=0
    12:00:01.211 <- StartTransaction       Accepted transactionId=7  7 ms
    12:00:03.002 !! connection refused by 127.0.0.1:9, next try in 4 s

Marks: -> / <- an OCPP message sent / received, == the link and the
station, .. information, !! a problem, ** a security event. `Pairing`
matches answers to their CALLs (by message id) so an answer line carries
the round-trip time; `TermView` renders events and log lines, with ANSI
colour on a terminal; with `verbose` the full payloads and the raw errors
follow on indented lines (JSON only there, or with --json).
"""
from __future__ import annotations

import ast
import errno as errnos
import json
import os
import re
import time
from typing import IO, Any

# The fields worth a glance, per action: (in the CALL, in its answer).
FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "BootNotification": (("chargePointModel", "chargePointSerialNumber"), ("interval",)),
    "StatusNotification": (("connectorId", "status", "errorCode"), ()),
    "Authorize": (("idTag",), ()),
    "StartTransaction": (("connectorId", "idTag", "meterStart", "reservationId"), ("transactionId",)),
    "StopTransaction": (("transactionId", "meterStop", "reason", "idTag"), ()),
    "MeterValues": (("connectorId", "transactionId"), ()),
    "Heartbeat": ((), ()),
    "RemoteStartTransaction": (("connectorId", "idTag"), ()),
    "RemoteStopTransaction": (("transactionId",), ()),
    "ChangeConfiguration": (("key", "value"), ()),
    "GetConfiguration": (("key",), ()),
    "ReserveNow": (("connectorId", "idTag", "reservationId", "expiryDate"), ()),
    "SetChargingProfile": (("connectorId",), ()),
    "GetCompositeSchedule": (("connectorId", "duration"), ()),
    "TriggerMessage": (("requestedMessage", "connectorId"), ()),
    "SendLocalList": (("listVersion", "updateType"), ()),
    "GetLocalListVersion": ((), ("listVersion",)),
}
_MEASURANDS = {"Energy.Active.Import.Register": "E", "Power.Active.Import": "P",
               "Current.Import": "I", "Current.Offered": "Imax", "SoC": "SoC", "Voltage": "U"}
_GOOD = ("Accepted", "Available", "Charging", "Unlocked")
_BAD = ("Rejected", "Invalid", "Blocked", "Expired", "Faulted", "NotSupported", "ConcurrentTx")
_ANSI = {"dim": "2", "red": "31", "green": "32", "yellow": "33", "blue": "34", "cyan": "36", "bold": "1"}
_PENDING_MAX = 64  # unanswered CALLs remembered for the round-trip time


class Pairing:
    """Adds `t` (unix seconds) to every event and `rttMs` to answers."""

    def __init__(self) -> None:
        self.pending: dict[tuple[str, str], float] = {}

    def annotate(self, ev: dict[str, Any], now: float | None = None) -> dict[str, Any]:
        t = time.time() if now is None else now
        ev["t"] = round(t, 3)
        if ev.get("event") not in ("sent", "received"):
            return ev
        uid = str(ev.get("id"))
        if ev.get("type") == "CALL":
            if len(self.pending) >= _PENDING_MAX:
                self.pending.pop(next(iter(self.pending)))
            self.pending[(ev["event"], uid)] = t
        else:  # an answer travels the other way from its CALL
            other = "received" if ev["event"] == "sent" else "sent"
            t0 = self.pending.pop((other, uid), None)
            if t0 is not None:
                ev["rttMs"] = round((t - t0) * 1000, 1)
        return ev


def _short(v: Any, n: int = 40) -> str:
    s = v if isinstance(v, str) else json.dumps(v, separators=(",", ":"))
    return s if len(s) <= n else s[:n - 3] + "..."


def _meter_summary(p: dict[str, Any]) -> str:
    out = []
    for mv in (p.get("meterValue") or [])[:1]:
        for s in mv.get("sampledValue") or []:
            name = _MEASURANDS.get(s.get("measurand", "Energy.Active.Import.Register"))
            if name and (s.get("phase") is None):
                out.append(f"{name}={s.get('value')}{s.get('unit', '')}")
    return " ".join(out)


def summary(ev: dict[str, Any]) -> str:
    """The few fields that matter for one frame event."""
    p = ev.get("payload")
    if not isinstance(p, dict):
        return ""
    action, typ = ev.get("action") or "", ev.get("type")
    if typ == "CALLERROR":
        return f"{p.get('errorCode')} {_short(p.get('errorDescription', ''))}"
    call_f, res_f = FIELDS.get(action, (None, None))
    parts = []
    if typ == "CALL":
        keys = call_f if call_f is not None else [k for k, v in p.items() if not isinstance(v, (dict, list))][:4]
        parts = [f"{k}={_short(p[k])}" for k in keys if p.get(k) not in (None, "", "NoError")]
        if action == "MeterValues":
            parts.append(_meter_summary(p))
        if action == "ChangeConfiguration" and parts:
            parts = [f"{p.get('key')}={_short(p.get('value'))}"]
    else:
        status = p.get("status") or (p.get("idTagInfo") or {}).get("status")
        if status:
            parts.append(str(status))
        parts += [f"{k}={_short(p[k])}" for k in (res_f or ()) if p.get(k) is not None]
    return " ".join(x for x in parts if x)


_REPR = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|error|timeout|Exit|Interrupt))\((.*)\)$", re.S)
_ERRNO = re.compile(r"\[Errno (-?\d+)\]")
_SSL = re.compile(r"^\[SSL: \w+\] | \(_ssl\.c:\d+\)$")
_INDENT = " " * 16  # under the words of a line, past its time and mark


def parse_repr(text: str) -> tuple[str, tuple[Any, ...]] | None:
    """("ConnectionRefusedError", (111, "...")) from an exception's repr, or None."""
    m = _REPR.match(text.strip())
    if not m:
        return None
    try:
        args = ast.literal_eval("(" + m.group(2) + ",)") if m.group(2) else ()
    except (ValueError, SyntaxError):
        args = (m.group(2),)
    return m.group(1).rsplit(".", 1)[-1], tuple(args)


def _message(args: tuple[Any, ...]) -> str:
    return " ".join(str(a) for a in args if isinstance(a, str)).strip()


def plain(text: str) -> str:
    """A log text with its trailing exception repr put in words:
    "job x: ValueError('bad')" -> "job x: bad (ValueError)"."""
    head, sep, tail = text.rpartition(": ")
    r = parse_repr(tail if sep else text)
    if r is None:
        return text
    words = _message(r[1]) or ", ".join(str(a) for a in r[1])
    return (head + sep if sep else "") + (f"{words} ({r[0]})" if words else r[0])


def seconds(ms: float) -> str:
    """4000 -> "4 s", 700 -> "0.7 s", 38400 -> "38 s"."""
    s = ms / 1000
    return (f"{s:.1f}".rstrip("0").rstrip(".") if s < 10 else f"{s:.0f}") + " s"


def connect_failure(error: str, target: str) -> str:
    """Words for a failed connect (the event carries the exception's repr)."""
    r = parse_repr(error)
    if r is None:
        return f"connect to {target} failed: {error}"
    name, args = r
    msg = _message(args)
    code = args[0] if args and isinstance(args[0], int) else None
    m = _ERRNO.search(msg)
    if code is None and m:
        code = int(m.group(1))
    host = target.rsplit(":", 1)[0].strip("[]")
    if name == "ConnectionRefusedError" or code == errnos.ECONNREFUSED:
        return f"connection refused by {target}"
    if name == "ConnectionResetError" or code == errnos.ECONNRESET:
        return f"connection reset by {target}"
    if name == "gaierror":
        return f"cannot find host {host} ({msg.lower() or 'name lookup failed'})"
    if name == "WsError":
        if msg.startswith("http "):
            hint = " (wrong AuthorizationKey or station id?)" if msg in ("http 401", "http 403") else ""
            return f"{target} refused the WebSocket with HTTP {msg[5:]}{hint}"
        if msg == "connect timeout":
            return f"no answer from {target} (connect timed out)"
        if msg == "handshake timeout":
            return f"{target} took the connection but did not answer the WebSocket handshake"
        return f"WebSocket handshake with {target} failed: {msg}"
    if name.startswith("SSL") or name.endswith("SSLError"):
        return f"TLS with {target} failed: {_SSL.sub('', msg) or name}"
    if name == "TimeoutError" or code == errnos.ETIMEDOUT:
        return f"no answer from {target} (timed out)"
    if isinstance(code, int) and code > 0:
        return f"{os.strerror(code).lower()} ({target})"
    return f"cannot connect to {target}: {msg or name}"


class TermView:
    """Renders simulator events as terminal lines."""

    def __init__(self, out: IO[str], color: bool | None = None, verbose: bool = False, ident: str = "") -> None:
        self.out = out
        if color is None:
            color = hasattr(out, "isatty") and out.isatty() and not os.environ.get("NO_COLOR")
        self.color = color
        self.verbose = verbose
        self.ident = ident
        self.target = "?"  # host:port the station connects to (the simulator keeps it current)

    def paint(self, text: str, style: str) -> str:
        return f"\x1b[{_ANSI[style]}m{text}\x1b[0m" if self.color and text else text

    def _stamp(self, t: float | None = None) -> str:
        t = time.time() if t is None else t
        return time.strftime("%H:%M:%S", time.localtime(t)) + f".{int(t * 1000) % 1000:03d}"

    def frame_line(self, ev: dict[str, Any]) -> str:
        sent = ev.get("event") == "sent"
        arrow = self.paint("->" if sent else "<-", "cyan" if sent else "blue")
        typ = ev.get("type")
        action = ev.get("action") or "?"
        name = self.paint(f"{action:<22}", {"CALL": "bold", "CALLERROR": "red"}.get(str(typ), "dim"))
        text = summary(ev)
        word = text.split(" ", 1)[0] if text else ""
        if typ == "CALLERROR" or word in _BAD:
            text = self.paint(text, "red")
        elif word in _GOOD:
            text = self.paint(word, "green") + text[len(word):]
        rtt = ev.get("rttMs")
        tail = self.paint(f"  {rtt:g} ms", "dim") if rtt is not None else ""
        line = f"{self._stamp(ev.get('t'))} {arrow} {name} {text}{tail}"
        if self.verbose:
            line += "\n" + _INDENT + json.dumps(ev.get("payload"), separators=(",", ":"))
        return line

    def status_lines(self, ev: dict[str, Any]) -> list[str]:
        link = "online" if ev.get("connected") else "offline"
        head = f"{self._stamp()} == {self.ident} {link}, boot {ev.get('registration') or 'not sent yet'}"
        if ev.get("localListVersion") is not None:
            head += f", local list v{ev['localListVersion']}"
        lines = [head]
        for c in ev.get("connectors", []):
            if not c.get("connectorId"):
                continue
            st = c.get("status", "?")
            tx = c.get("transactionId")
            err = "" if c.get("errorCode") in (None, "NoError") else f" {c['errorCode']}"
            status = self.paint(f"{st:<13}", "green" if st in _GOOD else "yellow")
            parts = [f"{_INDENT}#{c['connectorId']} {status}{err}",
                     f"tx {tx if tx is not None else '-':<6}", f"limit {c.get('limitA', 0):5.1f} A",
                     f"{c.get('powerW', 0):6d} W", f"{c.get('energyWh', 0):8d} Wh"]
            if c.get("reservation"):
                parts.append(f"reserved #{c['reservation'].get('reservationId')}")
            lines.append("  ".join(parts))
        return lines

    def line(self, mark: str, text: str, t: float | None = None, style: str | None = None) -> str:
        """The one shape of every line: time, mark, words."""
        return f"{self._stamp(t)} {mark} {self.paint(text, style) if style else text}"

    def words(self, ev: dict[str, Any]) -> tuple[str, str, str | None]:
        """(mark, words, colour) of one of the simulator's or the link's own
        events (not a message, not status); the dashboard shows the words too."""
        kind = ev.get("event")
        where = ev.get("target") or self.target
        if kind == "connect_failed":
            text = connect_failure(str(ev.get("error")), where)
            if ev.get("retryMs") is not None:
                text += ", next try in " + seconds(ev["retryMs"])
            return "!!", text, "yellow"
        if kind in ("connected", "disconnected"):
            return "==", f"{kind} {'to' if kind == 'connected' else 'from'} {where}", (
                "green" if kind == "connected" else "yellow")
        if kind == "reboot":
            return "==", f"the core restarts ({ev.get('kind')} reset)", "yellow"
        if kind == "dashboard":
            return "==", f"dashboard at {ev.get('url')}", None
        if kind == "error":
            return "!!", f"{ev.get('command')}: {ev.get('error')}", "red"
        if kind == "received" and ev.get("type") == "invalid":
            return "<-", "not an OCPP message: " + _short(str(ev.get("text")), 60), "red"
        rest = " ".join(f"{k}={_short(v)}" for k, v in ev.items() if k not in ("event", "t"))
        return "..", f"{kind} {rest}".rstrip(), None

    def event_lines(self, ev: dict[str, Any]) -> list[str]:
        mark, text, style = self.words(ev)
        out = [self.line(mark, text, ev.get("t"), style)]
        if self.verbose and ev.get("event") == "connect_failed":
            out.append(_INDENT + str(ev.get("error")))
        return out

    def lines(self, ev: dict[str, Any]) -> list[str]:
        kind = ev.get("event")
        if kind in ("sent", "received") and ev.get("type") != "invalid":
            return [self.frame_line(ev)]
        if kind == "status":
            return self.status_lines(ev)
        return self.event_lines(ev)

    def log_lines(self, level: str, text: str) -> list[str]:
        """A log line of the core or the simulator: level as a mark, reprs in words."""
        if text.startswith("connect failed: "):
            return []  # the connect_failed event says it, in words
        first, *more = text.split("\n")
        if level == "security":
            kind, _, info = first.partition(": ")
            out = [self.line("**", "security event " + kind + (": " + info if info else ""), style="yellow")]
        elif level in ("warn", "error"):
            words = ("error: " if level == "error" else "") + (first if self.verbose else plain(first))
            out = [self.line("!!", words, style="red" if level == "error" else "yellow")]
        else:
            out = [self.line("..", first)]
        return out + [_INDENT + x for x in more]

    def log(self, level: str, text: str) -> None:
        self._write(self.log_lines(level, text))

    def say(self, text: str, mark: str = "..") -> None:
        """A line of the tools around the simulator (make sim's banner)."""
        self._write([self.line(mark, text)])

    def show(self, ev: dict[str, Any]) -> None:
        self._write(self.lines(ev))

    def _write(self, lines: list[str]) -> None:
        for line in lines:
            self.out.write(line + "\n")
        self.out.flush()
