"""Terminal view of the simulator: one readable line per OCPP message.

    12:00:01.204 -> StartTransaction    #1 idTag=04A2B3C4 meterStart=0
    12:00:01.211 <- StartTransaction    Accepted transactionId=7  7 ms

`Pairing` matches answers to their CALLs (by message id) so an answer line
carries the round-trip time; `TermView` renders events, with ANSI colour on
a terminal and the full payloads with `verbose`.
"""
from __future__ import annotations

import json
import os
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


class TermView:
    """Renders simulator events as terminal lines."""

    def __init__(self, out: IO[str], color: bool | None = None, verbose: bool = False, ident: str = "") -> None:
        self.out = out
        if color is None:
            color = hasattr(out, "isatty") and out.isatty() and not os.environ.get("NO_COLOR")
        self.color = color
        self.verbose = verbose
        self.ident = ident

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
            line += "\n" + " " * 16 + json.dumps(ev.get("payload"), separators=(",", ":"))
        return line

    def status_lines(self, ev: dict[str, Any]) -> list[str]:
        link = "online" if ev.get("connected") else "offline"
        head = f"{self._stamp()} == {self.ident} {link}, boot {ev.get('registration')}"
        if ev.get("localListVersion") is not None:
            head += f", local list v{ev['localListVersion']}"
        lines = [head]
        for c in ev.get("connectors", []):
            if not c.get("connectorId"):
                continue
            st = c.get("status", "?")
            tx = c.get("transactionId")
            err = "" if c.get("errorCode") in (None, "NoError") else f" {c['errorCode']}"
            parts = [f"   #{c['connectorId']} {self.paint(f'{st:<13}', 'green' if st in _GOOD else 'yellow')}{err}",
                     f"tx {tx if tx is not None else '-':<6}", f"limit {c.get('limitA', 0):5.1f} A",
                     f"{c.get('powerW', 0):6d} W", f"{c.get('energyWh', 0):8d} Wh"]
            if c.get("reservation"):
                parts.append(f"reserved #{c['reservation'].get('reservationId')}")
            lines.append("  ".join(parts))
        return lines

    def lines(self, ev: dict[str, Any]) -> list[str]:
        kind = ev.get("event")
        if kind in ("sent", "received"):
            return [self.frame_line(ev)]
        if kind == "status":
            return self.status_lines(ev)
        if kind == "error":
            return [f"{self._stamp()} !! {ev.get('command')}: {self.paint(str(ev.get('error')), 'red')}"]
        if kind in ("connected", "disconnected", "reboot", "dashboard"):
            rest = " ".join(f"{k}={v}" for k, v in ev.items() if k not in ("event", "t"))
            style = "green" if kind == "connected" else "yellow"
            return [f"{self._stamp()} == {self.paint(kind, style)} {rest}".rstrip()]
        return [f"{self._stamp()} .. {json.dumps(ev)}"]

    def show(self, ev: dict[str, Any]) -> None:
        for line in self.lines(ev):
            self.out.write(line + "\n")
        self.out.flush()
