"""Hostile input: random frames and random payloads for every CSMS action
never crash the station, every CALL gets exactly one answer with its id,
and no handler fails with InternalError (that would be a bug of ours).

FUZZ_EXAMPLES raises the count for `make fuzz` (tools/fuzz.py quick); the
time limit grows with it, as pytest-timeout's alarm in the middle of an
example is what made hypothesis report a flaky data generation.
"""
import json
import os

import ocpp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as s

from rig import Rig

ACTIONS = ["CancelReservation", "ChangeAvailability", "ChangeConfiguration", "ClearCache",
           "ClearChargingProfile", "DataTransfer", "GetCompositeSchedule", "GetConfiguration",
           "GetDiagnostics", "GetLocalListVersion", "RemoteStartTransaction", "RemoteStopTransaction",
           "ReserveNow", "Reset", "SendLocalList", "SetChargingProfile", "TriggerMessage",
           "UnlockConnector", "UpdateFirmware", "CertificateSigned", "DeleteCertificate",
           "ExtendedTriggerMessage", "GetInstalledCertificateIds", "GetLog", "InstallCertificate",
           "SignedUpdateFirmware", "Nonsense"]
FIELDS = ["connectorId", "type", "key", "value", "idTag", "transactionId", "reservationId",
          "expiryDate", "listVersion", "updateType", "localAuthorizationList", "requestedMessage",
          "csChargingProfiles", "duration", "chargingRateUnit", "id", "stackLevel", "vendorId",
          "chargingProfilePurpose", "chargingProfile", "data", "messageId"]
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "300"))

scalars = s.one_of(s.none(), s.booleans(), s.integers(-2**40, 2**40), s.floats(allow_nan=False),
                   s.text(max_size=30), s.sampled_from(["Soft", "Hard", "Operative", "Inoperative",
                                                        "Full", "Differential", "A", "W", "TxProfile",
                                                        "TxDefaultProfile", "ChargePointMaxProfile",
                                                        "Heartbeat", "MeterValues", "StatusNotification",
                                                        "2026-01-01T00:10:00Z", "Accepted", "HeartbeatInterval"]))
values = s.recursive(scalars, lambda kids: s.one_of(
    s.lists(kids, max_size=4), s.dictionaries(s.sampled_from(FIELDS + ["x"]), kids, max_size=5)), max_leaves=12)
payloads = s.dictionaries(s.sampled_from(FIELDS), values, max_size=6)
SCHEMAS = os.path.join(os.path.dirname(ocpp.__file__), "v16", "schemas")


def _schema(action):
    with open(os.path.join(SCHEMAS, action + ".json")) as f:
        return json.load(f)


def from_schema(node):
    """A strategy for values valid under the subset of JSON Schema the OCPP
    1.6 schemas use (hypothesis-jsonschema does not run on this hypothesis)."""
    if "enum" in node:
        return s.sampled_from(node["enum"])
    t = node.get("type")
    if t == "object":
        props = node.get("properties", {})
        req = set(node.get("required", ()))
        fixed = {k: from_schema(v) for k, v in props.items() if k in req}
        opt = {k: from_schema(v) for k, v in props.items() if k not in req}
        return s.fixed_dictionaries(fixed, optional=opt)
    if t == "array":
        return s.lists(from_schema(node.get("items", {})), max_size=4)
    if t == "string":
        if node.get("format") == "date-time":
            return s.integers(1700000000, 1900000000).map(
                lambda x: "%04d-%02d-%02dT%02d:%02d:%02dZ" % __import__("time").gmtime(x)[:6])
        return s.text(s.characters(codec="ascii"), max_size=node.get("maxLength", 40))
    if t == "integer":
        return s.integers(-5, 200)
    if t == "number":
        return s.integers(-10, 800).map(lambda x: x / 10)
    if t == "boolean":
        return s.booleans()
    return scalars


# Schema-valid payloads reach the handlers themselves, not just the validator.
valid = s.one_of([from_schema(_schema(a)).map(lambda p, a=a: json.dumps([2, "f", a, p]))
                  for a in ACTIONS if a != "Nonsense"])
frames = s.one_of(
    valid, valid,
    s.tuples(s.sampled_from(ACTIONS), payloads).map(lambda t: json.dumps([2, "f", t[0], t[1]])),
    s.tuples(s.sampled_from(ACTIONS), values).map(lambda t: json.dumps([2, "f", t[0], t[1]])),
    values.map(json.dumps),
    s.text(max_size=60),
)


@pytest.mark.timeout(120 + EXAMPLES // 10)  # 0.1 s an example: 4x what a loaded machine takes
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(s.lists(frames, min_size=1, max_size=8))
def test_random_frames_never_crash(tmp_path_factory, batch):
    rig = Rig(str(tmp_path_factory.mktemp("fz")), tags={"AA": "Accepted"}).connect()
    rig.cmd("plug")
    for text in batch:
        rig.st.receive(text, rig.clock.ms())
        out = [json.loads(f) for f in rig.st.take_frames()]
        answers = [m for m in out if m[0] in (3, 4) and m[1] == "f"]
        try:
            is_call = json.loads(text)[:1] == [2] and json.loads(text)[1] == "f"
        except Exception:
            is_call = False
        if is_call:
            assert len(answers) <= 1
        for m in answers:
            assert not (m[0] == 4 and m[2] == "InternalError"), (text, m)
        rig.st.frames[:0] = [json.dumps(m) for m in out if m not in answers]
        rig.cs.pump()
        rig.run(1000)
    assert not any(lvl == "error" and "hook" in t for lvl, t in rig.logs), rig.logs
