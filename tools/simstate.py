"""The one place where the simulator tools read the station core's internals.

The terminal status, the web dashboard and the fleet runner all go through
`snapshot()`: when an attribute inside `Station` is renamed, fix it here.
"""
from __future__ import annotations

from typing import Any

try:  # the module's name moved during a refactor; either works
    from boards.pilotduty import duty_for_da
except ImportError:  # pragma: no cover
    from evse.pilot import duty_for_da  # type: ignore[no-redef]

SCHEDULE_S = 21600  # the dashboard plots the next six hours


def _get(obj: Any, name: str, default: Any = None) -> Any:
    return getattr(obj, name, default)


def _config(st: Any, key: str) -> Any:
    try:
        return st.config.get(key)
    except KeyError:
        return None


def composite(st: Any, cid: int, duration: int = SCHEDULE_S) -> dict[str, Any] | None:
    """GetCompositeSchedule, asked as the CSMS would ask it (None: no smart charging)."""
    fn = st.handlers.get("GetCompositeSchedule")
    if fn is None:
        return None
    try:
        return fn(st, {"connectorId": cid, "duration": duration})
    except Exception as e:  # a CallError or a bug: the dashboard shows it, never dies
        return {"status": "Error", "error": repr(e)}


def _limit_a(sched: dict[str, Any] | None, voltage: int, phases: int) -> float | None:
    """The composite schedule's limit now, in amps (W schedules converted)."""
    cs = (sched or {}).get("chargingSchedule")
    if not cs or not cs.get("chargingSchedulePeriod"):
        return None
    p = cs["chargingSchedulePeriod"][0]
    if cs.get("chargingRateUnit") == "W":
        return round(p["limit"] / (voltage * (p.get("numberPhases") or phases)), 1)
    return p["limit"]


def _connector(st: Any, board: Any, c: Any, schedule: bool) -> dict[str, Any]:
    row: dict[str, Any] = {"connectorId": c.id, "status": c.status, "errorCode": c.error}
    if not c.id:
        return row
    tx = c.tx
    wh, w, da, dv, soc = board.meter(c.id)
    offered = c.offered_da
    row.update({
        "transactionId": tx.tx_id if tx else None,
        "idTag": tx.id_tag if tx else None,
        "limitA": offered / 10,
        "energyWh": wh,
        "ev": board.ev_state(c.id),
        "powerW": w,
        "currentA": da / 10,
        "voltageV": dv / 10,
        "soc": soc,
        "sessionWh": wh - tx.meter_start if tx else None,
        "dutyPct": duty_for_da(offered) / 10 if offered else 0,
    })
    res = _get(c, "reservation")
    if res is not None:
        row["reservation"] = res
    if schedule:
        sched = composite(st, c.id)
        row["schedule"] = sched
        row["scheduleLimitA"] = _limit_a(sched, board.voltage, board.phases)
    return row


def _reservations(st: Any) -> list[dict[str, Any]]:
    """Every reservation held, station-wide ones included (the feature's own table)."""
    resv = _get(st, "resv")  # reservation.Reservations (older cores: a list in st.reservations)
    items = _get(resv, "items") if resv is not None else _get(st, "reservations")
    if items is None:  # feature absent or renamed: what the connectors show
        items = [c.reservation for c in st.connectors if _get(c, "reservation") is not None]
    return [dict(r) for r in items]


def security_profile(st: Any, url: str = "", password: str | None = None) -> int:
    """Configured SecurityProfile, or the one the link implies when it is 0."""
    sp = _config(st, "SecurityProfile") or 0
    if sp:
        return sp
    if url.startswith("wss://"):
        return 2 if password else 3
    return 1 if password else 0


def target(st: Any, url: str) -> str:
    """host:port the station connects to ("?" when its url is unusable)."""
    from evse.runtime import parse_url
    link = _get(st, "link")
    try:
        _, host, port, _ = parse_url((link.url if link is not None else None) or url)
    except ValueError:
        return "?"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def link_problem(st: Any, url: str) -> str | None:
    """Why the station cannot connect with its link as it stands (None: it
    may): the simulator stops on it rather than retry for ever. A ws:// url
    with SecurityProfile 2/3 is not one: the station connects with TLS."""
    from evse.runtime import parse_url
    link = _get(st, "link")
    if link is None:
        return None
    url = link.url or url
    try:
        secure = parse_url(url)[0]
    except ValueError as e:
        return f"url {url}: {e}"
    p = link.profile
    if (secure or p >= 2) and not link.ca:
        what = f"SecurityProfile {p}" if p >= 2 else "a wss:// url"
        return f"{what} needs the CSMS's root certificate to trust: give --ca FILE"
    if p == 3 and not (link.cert and link.key):
        return "SecurityProfile 3 needs the station's certificate: give --cert FILE --key FILE"
    if p in (1, 2) and not link.authkey:
        return f"SecurityProfile {p} needs the AuthorizationKey: give --password SECRET or --authorization-key HEX"
    return None


def snapshot(st: Any, board: Any, schedule: bool = True) -> dict[str, Any]:
    """Everything the tools show about one station, as plain JSON-able data.

    `schedule=False` skips the composite schedules (the fleet runner's cheap view).
    """
    out: dict[str, Any] = {
        "connected": bool(st is not None and st.online),
        "registration": st.registration if st is not None else None,
        "connectors": [],
    }
    if st is None:
        return out
    authlist = _get(st, "authlist")
    out["localListVersion"] = authlist.version if authlist is not None else None
    out["reservations"] = _reservations(st)
    out["heartbeatS"] = _config(st, "HeartbeatInterval")
    out["meterIntervalS"] = _config(st, "MeterValueSampleInterval")
    out["securityProfile"] = _config(st, "SecurityProfile")
    out["outbox"] = len(st.outbox)
    out["connectors"] = [_connector(st, board, c, schedule) for c in st.connectors]
    return out

