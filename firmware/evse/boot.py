"""Registration and liveness: BootNotification, Heartbeat, the wall clock.

OCPP 1.6 section 4.2 (BootNotification), 4.6 (Heartbeat). Until the CSMS
accepts the boot nothing else is sent (station._may_send), but CSMS CALLs
are answered while Pending.
"""
from evse import timestamp
from evse.compat import const

_RETRY_S = const(30)  # BootNotification retry when the CSMS gave no interval
_CLOCK_SLACK_S = const(60)  # a clock step beyond this is a SettingSystemTime event

# BootNotification field -> maximum length (OCPP 1.6 6.2 CiStringNType).
_FIELDS = (
    ("chargePointVendor", 20), ("chargePointModel", 20),
    ("chargePointSerialNumber", 25), ("chargeBoxSerialNumber", 25),
    ("firmwareVersion", 50), ("iccid", 20), ("imsi", 20),
    ("meterType", 25), ("meterSerialNumber", 25),
)


def install(st):
    st.on_result["BootNotification"] = _boot_result
    st.on_fail["BootNotification"] = _boot_failed
    st.on_result["Heartbeat"] = _time_result
    st.on_timer["boot"] = _boot_timer
    st.on_timer["hb"] = _heartbeat_due
    st.add_link_hook(_link)
    st.add_answer_hook(_traffic)
    st.config.on_change(lambda key, value: _config_changed(st, key))


def boot_payload(board):
    ident = board.identity()
    out = {}
    for name, n in _FIELDS:
        v = ident.get(name)
        if v:
            out[name] = str(v)[:n]
    return out


def queue_boot(st, front=True):
    if st.queued("BootNotification") is None and not st.rpc_pending("BootNotification"):
        st.send("BootNotification", boot_payload(st.board), front=front)


def _link(st, now, up):
    if up:
        if st.registration != "Accepted" and not st.timers.active("boot"):
            queue_boot(st)
    else:
        st.unqueue("Heartbeat")


def _set_clock(st, payload):
    t = timestamp.parse(payload.get("currentTime", ""))
    if t is not None:
        moved = t - st.clock.unix()
        st.clock.set_unix(t)
        if moved > _CLOCK_SLACK_S or moved < -_CLOCK_SLACK_S:
            # Security WP: SettingSystemTime (critical); small corrections
            # at each heartbeat are not worth an event.
            st.security_event("SettingSystemTime", "clock moved %+d s by the CSMS" % moved)


def _boot_result(st, payload, ctx):
    status = payload["status"]
    _set_clock(st, payload)
    interval = payload.get("interval", 0)
    was = st.registration
    st.registration = status
    if status == "Accepted":
        st.timers.cancel("boot")
        if interval > 0:
            # 4.2: the interval is the heartbeat interval once accepted.
            st.config.seed("HeartbeatInterval", str(interval))
        _restart_heartbeat(st)
        if was != "Accepted":  # a triggered BootNotification changes nothing
            for fn in st.on_accepted:
                fn(st)
    else:
        # Pending/Rejected: boot again after `interval` seconds.
        st.timers.start("boot", st.now, 1000 * (interval if interval > 0 else _RETRY_S))


def _boot_failed(st, ctx, reason):
    if st.online:
        st.timers.start("boot", st.now, 1000 * _RETRY_S)
    # Link lost: the connect hook sends it again.


def _boot_timer(st, now):
    if st.online and st.registration != "Accepted":
        queue_boot(st)


def _time_result(st, payload, ctx):
    _set_clock(st, payload)


def _restart_heartbeat(st):
    iv = st.config.get("HeartbeatInterval")
    if iv > 0 and st.registration == "Accepted":
        st.timers.start("hb", st.now, 1000 * iv)
    else:
        st.timers.cancel("hb")


def _heartbeat_due(st, now):
    if st.online and st.queued("Heartbeat") is None:
        st.send("Heartbeat", {})
    _restart_heartbeat(st)


def _traffic(st, now):
    # 4.6: any answered message proves liveness; postpone the heartbeat.
    if st.timers.active("hb"):
        _restart_heartbeat(st)


def _config_changed(st, key):
    if key == "HeartbeatInterval":
        _restart_heartbeat(st)
