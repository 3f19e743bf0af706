"""CSMS-initiated Core operations (OCPP 1.6 section 5): remote start and
stop, configuration, availability, reset, unlock, cache, data transfer."""
from evse import authorize, connector, transaction
from evse.compat import const

_RESET_GRACE_MS = const(5000)  # time to deliver StopTransactions (and security events) before rebooting


def install(st):
    h = st.handlers
    h["RemoteStartTransaction"] = _remote_start
    h["RemoteStopTransaction"] = _remote_stop
    h["GetConfiguration"] = lambda st, p: st.config.get_configuration(p)
    h["ChangeConfiguration"] = lambda st, p: st.config.change_configuration(p)
    h["ChangeAvailability"] = _change_availability
    h["Reset"] = _reset
    h["UnlockConnector"] = _unlock
    h["ClearCache"] = _clear_cache
    h["DataTransfer"] = _data_transfer
    st.on_result["DataTransfer"] = _data_result
    st.on_fail["DataTransfer"] = _data_failed
    st.on_tx.append(_tx_changed)
    st.on_timer["reset"] = _reboot_now
    st.add_answer_hook(lambda st, now: reset_progress(st))


# ---- remote start / stop --------------------------------------------------
def _remote_start(st, p):
    if st.registration != "Accepted":
        return {"status": "Rejected"}  # 4.2: not allowed while Pending
    cid = p.get("connectorId")
    tag = p["idTag"]
    info = authorize.lookup(st, tag)
    parent = info and info.get("parentIdTag")
    # 5.13: a tag whose parentIdTag is not known here may belong to the group
    # holding a reservation: Authorize.req resolves it before deciding.
    ask = info is None

    def usable(c):
        return ask or st.reservation_for(st, c, tag, parent) is not False
    if cid is None:  # the first connector this tag may use now
        cid = next((c.id for c in st.connectors[1:] if transaction.can_start(st, c) and usable(c)), 0)
    if cid < 1 or cid > st.ncon or not transaction.can_start(st, st.connectors[cid]):
        return {"status": "Rejected"}
    prof = p.get("chargingProfile")
    if prof is not None and prof.get("chargingProfilePurpose") != "TxProfile":
        return {"status": "Rejected"}  # 5.11: only a TxProfile may come with it
    c = st.connectors[cid]
    if not usable(c):
        return {"status": "Rejected"}
    if prof is not None and st.remote_profile is not None:
        if st.remote_profile(st, cid, prof) is False:
            return {"status": "Rejected"}
    if st.config.get("AuthorizeRemoteTxRequests") or (
            ask and st.reservation_for(st, c, tag, None) is False):
        authorize.authorize(st, cid, tag, "remote")
    else:
        transaction.decided(st, cid, tag, {"status": "Accepted"}, "remote")
    return {"status": "Accepted"}


def _remote_stop(st, p):
    for c in st.connectors[1:]:
        if c.tx is not None and c.tx.tx_id == p["transactionId"]:
            transaction.stop(st, c, "Remote")
            return {"status": "Accepted"}
    return {"status": "Rejected"}


# ---- availability ----------------------------------------------------------
def _change_availability(st, p):
    cid, op = p["connectorId"], p["type"] == "Operative"
    if cid > st.ncon:
        return {"status": "Rejected"}
    targets = st.connectors if cid == 0 else [st.connectors[cid]]
    busy = [c for c in targets if c.tx is not None]
    status = "Accepted"
    for c in targets:
        if c.operative == op:
            c.scheduled = None
        elif busy and not op:
            # 5.2: with a transaction running the change waits for its end.
            c.scheduled = "Inoperative"
            status = "Scheduled"
        else:
            c.operative = op
            c.scheduled = None
    connector.save_availability(st)
    connector.refresh(st, 0)
    for c in st.connectors[1:]:
        transaction.apply(st, c)
    return {"status": status}


def _tx_changed(st, c, started):
    if started:
        return
    changed = False
    for k in (c, st.connectors[0]):
        if k.scheduled is not None and not any(x.tx for x in st.connectors[1:] if k.id == 0 or x is k):
            k.operative = k.scheduled == "Operative"
            k.scheduled = None
            changed = True
    if changed:
        connector.save_availability(st)
        connector.refresh_all(st)


# ---- reset -------------------------------------------------------------------
def _reset(st, p):
    reboot(st, p["type"], p["type"] + "Reset")
    return {"status": "Accepted"}


def reboot(st, kind, reason="Reboot"):
    """Stop transactions (reason), then reboot once the StopTransactions are
    out or after a grace period (5.14; they are journalled either way)."""
    transaction.stop_all(st, reason)
    st.security_event("ResetOrReboot", kind + " reset, reason " + reason)  # Security WP, critical
    st.reset_kind = kind
    st.timers.start("reset", st.now, 0 if _delivered(st) else _RESET_GRACE_MS)


def _delivered(st):
    """Nothing durable waits (the journals would resend it after the
    reboot anyway, but once delivered it is not sent twice)."""
    # Security events waiting to retry (seclog.py) would not go within the
    # grace anyway: they do not hold the reset (each queue says, pending()).
    for q in st.queues:
        if q.pending(st):
            return False
    return True


def _reboot_now(st, now):
    st.reboot = st.reset_kind


def reset_progress(st):
    """Reboot early once the queues are empty (called after answers)."""
    if st.timers.active("reset") and _delivered(st):
        st.timers.start("reset", st.now, 0)


# ---- unlock, cache, data transfer -------------------------------------------
def _unlock(st, p):
    cid = p["connectorId"]
    if not getattr(st.board, "has_lock", False) or cid < 1 or cid > st.ncon:
        return {"status": "NotSupported"}  # fixed cable (HFS-2, C-10.2)
    c = st.connectors[cid]
    if c.tx is not None:
        transaction.stop(st, c, "UnlockCommand")
    return {"status": "Unlocked" if st.board.unlock(cid) else "UnlockFailed"}


def _clear_cache(st, p):
    st.cache.clear()
    st.cache.save()
    return {"status": "Accepted"}


def send_data(st, vendor_id, message_id=None, data=None, done=None):
    """DataTransfer to the CSMS; done(status, data) gets the answer
    (status None if it failed)."""
    p = {"vendorId": vendor_id}
    if message_id is not None:
        p["messageId"] = message_id
    if data is not None:
        p["data"] = data
    st.send("DataTransfer", p, ctx=done)


def _data_result(st, payload, done):
    if done is not None:
        done(payload["status"], payload.get("data"))


def _data_failed(st, done, reason):
    if done is not None:
        done(None, reason)


def _data_transfer(st, p):
    fn = st.vendors.get(p["vendorId"])
    if fn is None:
        return {"status": "UnknownVendorId"}
    status, data = fn(st, p.get("messageId"), p.get("data"))
    out = {"status": status}
    if data is not None:
        out["data"] = data
    return out
