"""Remote Trigger: TriggerMessage (OCPP 1.6 5.17), ExtendedTriggerMessage."""
# ExtendedTriggerMessage comes from the Security Whitepaper ed.3; one code
# path serves both. An extended FirmwareStatusNotification asks for the
# whitepaper's SignedFirmwareStatusNotification (6.16): _EXTENDED maps it to
# that target.
#
# Each target is `st.triggers[requestedMessage] = fn(st, cid)`, cid being the
# requested connectorId or None; fn queues the message with st.send. The
# station emits the TriggerMessage.conf before anything a handler queued, so
# the message follows its answer. Other features add or replace targets,
# e.g. the firmware feature its real FirmwareStatusNotification status, the
# diagnostics feature LogStatusNotification and the certificates feature
# SignChargePointCertificate; a build without them answers NotImplemented.
#
# Answers: NotImplemented for a requestedMessage without a target (the schema
# already refuses names outside the enum of each message); Rejected for a
# connectorId that does not exist (TC_055: NumberOfConnectors + 1), for
# MeterValues of connector 0 (no main meter here). While the boot is Pending
# a trigger is Accepted and its message goes out (4.2: the station "SHALL NOT
# send request messages ... unless it has been instructed by the Central
# System to do so with a TriggerMessage.req"): the message is queued while
# unsolicited messages stay gated. (While Rejected no CSMS call is answered.) What
# a target queues is sent as triggered (st.triggering), which
# station._may_send honours. A connectorId the message does
# not use is ignored (5.17: "the requested message is leading"); without one,
# StatusNotification goes for the Charge Point and every connector and
# MeterValues for every connector.
from evse import boot, connector, metervalues

PROFILE = "RemoteTrigger"  # reported in SupportedFeatureProfiles


def install(st):
    t = st.triggers
    # setdefault: a feature (installed before or after) may have its own target.
    t.setdefault("BootNotification", _boot)
    t.setdefault("DiagnosticsStatusNotification", _diagnostics)
    t.setdefault("FirmwareStatusNotification", _firmware)
    t.setdefault("SignedFirmwareStatusNotification", _signed_firmware)
    t.setdefault("Heartbeat", _heartbeat)
    t.setdefault("MeterValues", _meter_values)
    t.setdefault("StatusNotification", _status)
    st.handlers["TriggerMessage"] = trigger
    st.handlers["ExtendedTriggerMessage"] = extended


# ExtendedTriggerMessage names a message by its 1.6 name where the whitepaper
# sends another (6.16: FirmwareStatusNotification triggers
# SignedFirmwareStatusNotification); its target is st.triggers[that name].
_EXTENDED = {"FirmwareStatusNotification": "SignedFirmwareStatusNotification"}


def trigger(st, p):
    """TriggerMessage.req -> .conf payload."""
    return _trigger(st, p["requestedMessage"], p.get("connectorId"))


def extended(st, p):
    """ExtendedTriggerMessage.req -> .conf payload."""
    name = p["requestedMessage"]
    return _trigger(st, _EXTENDED.get(name, name), p.get("connectorId"))


def _trigger(st, name, cid):
    fn = st.triggers.get(name)
    if fn is None:
        return {"status": "NotImplemented"}
    if cid is not None and (cid < 0 or cid > st.ncon):
        return {"status": "Rejected"}
    st.triggering = True  # what the target queues was asked for (station.send)
    try:
        refused = fn(st, cid) is False
    finally:
        st.triggering = False
    return {"status": "Rejected" if refused else "Accepted"}


def _boot(st, cid):
    boot.queue_boot(st, front=False)


def _diagnostics(st, cid):
    # 4.4: Idle is sent only when triggered and no upload is going on; there
    # is no diagnostics upload in this build.
    st.send("DiagnosticsStatusNotification", {"status": "Idle"})


def _firmware(st, cid):
    # 4.5: the same for firmware; a firmware feature replaces this target.
    st.send("FirmwareStatusNotification", {"status": "Idle"})


def _signed_firmware(st, cid):
    # ExtendedTriggerMessage: the whitepaper's message, Idle without a firmware feature.
    st.send("SignedFirmwareStatusNotification", {"status": "Idle"})


def _heartbeat(st, cid):
    if st.queued("Heartbeat") is None:
        st.send("Heartbeat", {})


def _meter_values(st, cid):
    if cid == 0:
        return False
    metervalues.triggered(st, cid)
    return None


def _status(st, cid):
    for c in st.connectors:
        if cid is None or c.id == cid:
            connector.report(st, c.id)
