"""evse.config: the OCPP 1.6 configuration key registry (spec section 9,
Security Whitepaper ed.3 keys), with every GetConfiguration.conf and
ChangeConfiguration.conf checked against the official JSON schemas."""
import json
import os
import runpy

import ocpp.v16
import pytest
from evse import fwupdate, locallist, reservation, security, smartcharge
from evse.config import Config as _Config
from jsonschema import Draft4Validator

# Each feature declares its own keys (add_keys); these tests see the registry
# as a station with every feature installed has it.
FEATURE_KEYS = (locallist._KEYS, reservation._KEYS, smartcharge._KEYS, security._KEYS, fwupdate._KEYS)


def Config(**kw):  # noqa: N802 - stands in for the class in these tests
    c = _Config(**kw)
    for table in FEATURE_KEYS:
        c.add_keys(table)
    return c

_SCHEMAS = os.path.join(os.path.dirname(ocpp.v16.__file__), "schemas")


def _validator(name):
    with open(os.path.join(_SCHEMAS, name + ".json"), encoding="utf-8") as f:
        return Draft4Validator(json.load(f))


GET_REQ = _validator("GetConfiguration")
GET_CONF = _validator("GetConfigurationResponse")
CHANGE_REQ = _validator("ChangeConfiguration")
CHANGE_CONF = _validator("ChangeConfigurationResponse")


def getconf(c, keys=None):
    req = {} if keys is None else {"key": keys}
    GET_REQ.validate(req)
    res = c.get_configuration(req)
    GET_CONF.validate(res)
    return res


def values(c, keys=None):
    """{key: (readonly, value)} of a GetConfiguration.conf."""
    res = getconf(c, keys)
    out = {}
    for e in res.get("configurationKey", []):
        assert e["key"] not in out, "key reported twice"
        out[e["key"]] = (e["readonly"], e["value"])
    return out


def chg(c, key, value):
    req = {"key": key, "value": value}
    CHANGE_REQ.validate(req)
    res = c.change_configuration(req)
    CHANGE_CONF.validate(res)
    assert res["status"] == c.change(key, value)  # the same answer twice: change() is idempotent
    return res["status"]


class Persist:
    def __init__(self, data=None, fail=False):
        self.data = data
        self.saves = 0
        self.fail = fail

    def load(self):
        if isinstance(self.data, Exception):
            raise self.data
        return None if self.data is None else dict(self.data) if isinstance(self.data, dict) else self.data

    def save(self, d):
        if self.fail:
            raise OSError(28, "no space")
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in d.items())
        self.data = dict(d)
        self.saves += 1


# Defaults of the reference station (certificate ORS-x, brief) as reported.
DEFAULTS = {
    "AllowOfflineTxForUnknownId": (False, "false"),
    "AuthorizationCacheEnabled": (False, "true"),
    "AuthorizeRemoteTxRequests": (False, "false"),
    "ClockAlignedDataInterval": (False, "0"),
    "ConnectionTimeOut": (False, "60"),
    "ConnectorPhaseRotation": (False, "0.NotApplicable,1.NotApplicable"),
    "ConnectorPhaseRotationMaxLength": (True, "2"),
    "GetConfigurationMaxKeys": (True, "20"),
    "HeartbeatInterval": (False, "300"),
    "LocalAuthorizeOffline": (False, "true"),
    "LocalPreAuthorize": (False, "false"),
    "MeterValuesAlignedData": (False, "Energy.Active.Import.Register"),
    "MeterValuesAlignedDataMaxLength": (True, "5"),
    "MeterValuesSampledData": (False, "Energy.Active.Import.Register"),
    "MeterValuesSampledDataMaxLength": (True, "5"),
    "MeterValueSampleInterval": (False, "60"),
    "NumberOfConnectors": (True, "1"),
    "ResetRetries": (False, "3"),
    "StopTransactionMaxMeterValues": (True, "20"),
    "StopTransactionOnEVSideDisconnect": (False, "true"),
    "StopTransactionOnInvalidId": (False, "true"),
    "StopTxnAlignedData": (False, ""),
    "StopTxnAlignedDataMaxLength": (True, "5"),
    "StopTxnSampledData": (False, ""),
    "StopTxnSampledDataMaxLength": (True, "5"),
    "SupportedFeatureProfiles": (True, ("Core,FirmwareManagement,LocalAuthListManagement,Reservation,"
                                        "SmartCharging,RemoteTrigger")),
    "TransactionMessageAttempts": (False, "3"),
    "TransactionMessageRetryInterval": (False, "60"),
    "UnlockConnectorOnEVSideDisconnect": (False, "false"),
    "WebSocketPingInterval": (False, "120"),
    "LocalAuthListEnabled": (False, "true"),
    "LocalAuthListMaxLength": (True, "100"),
    "SendLocalListMaxLength": (True, "100"),
    "ReserveConnectorZeroSupported": (True, "true"),
    "ChargeProfileMaxStackLevel": (True, "3"),
    "ChargingScheduleAllowedChargingRateUnit": (True, "Current,Power"),
    "ChargingScheduleMaxPeriods": (True, "86400"),
    "MaxChargingProfilesInstalled": (True, "3"),
    "AdditionalRootCertificateCheck": (True, "true"),  # a new CSMS root signed by the installed one (WP 3.2.3)
    "CertificateSignedMaxChainSize": (True, "10000"),
    "CertificateStoreMaxLength": (True, "3"),
    "CpoName": (False, ""),
    "SecurityProfile": (False, "0"),
    "SupportedFileTransferProtocols": (True, "HTTP,HTTPS"),  # fwupdate (L01; ORS-16)
}
SAMPLED = ["Energy.Active.Import.Register", "Power.Active.Import", "Current.Import", "Voltage", "SoC"]


# ---- defaults, types ---------------------------------------------------
def test_all_keys_exactly_the_expected_set_with_defaults():
    assert values(Config()) == DEFAULTS


def test_unsupported_optional_keys_absent():
    c = Config()
    for k in ("MinimumStatusDuration", "MaxEnergyOnInvalidId", "BlinkRepeat", "LightIntensity",
              "ConnectorSwitch3to1PhaseSupported"):
        assert not c.has(k)
        assert chg(c, k, "1") == "NotSupported"
        assert getconf(c, [k]) == {"unknownKey": [k]}


def test_typed_values():
    c = Config()
    assert c.get("HeartbeatInterval") == 300 and type(c.get("HeartbeatInterval")) is int
    assert c.get("LocalAuthorizeOffline") is True
    assert c.get("LocalPreAuthorize") is False
    assert c.get("MeterValuesSampledData") == "Energy.Active.Import.Register"
    assert c.get_list("ChargingScheduleAllowedChargingRateUnit") == ["Current", "Power"]
    assert c.get_list("StopTxnSampledData") == []
    assert c.get("AuthorizationKey") == ""
    with pytest.raises(KeyError):
        c.get("NoSuchKey")


def test_round_trip_typed():
    c = Config()
    for key, text, typed in (("HeartbeatInterval", "10800", 10800), ("HeartbeatInterval", "1", 1),
                             ("LocalPreAuthorize", "TRUE", True), ("LocalPreAuthorize", "False", False),
                             ("AuthorizeRemoteTxRequests", "true", True),
                             ("MeterValueSampleInterval", "0", 0), ("MeterValueSampleInterval", "3600", 3600),
                             ("WebSocketPingInterval", "0", 0), ("ClockAlignedDataInterval", "900", 900),
                             ("CpoName", "ACME Charging", "ACME Charging"),
                             ("MeterValuesSampledData", "SoC,Voltage", "SoC,Voltage"),
                             ("MeterValuesSampledData", "", ""),
                             ("StopTxnAlignedData", "Energy.Active.Import.Register", "Energy.Active.Import.Register"),
                             ("UnlockConnectorOnEVSideDisconnect", "false", False),
                             ("ConnectorPhaseRotation", "0.RST,1.Unknown", "0.RST,1.Unknown")):
        assert chg(c, key, text) == "Accepted", (key, text)
        assert c.get(key) == typed and type(c.get(key)) is type(typed)
        expect = text.lower() if isinstance(typed, bool) else text
        assert values(c, [key]) == {key: (False, expect)}


def test_csl_members_are_normalised():
    c = Config()
    assert chg(c, "MeterValuesSampledData", " Voltage , SoC") == "Accepted"
    assert c.get("MeterValuesSampledData") == "Voltage,SoC"
    assert c.get_list("MeterValuesSampledData") == ["Voltage", "SoC"]
    assert chg(c, "MeterValuesSampledData", ",".join(SAMPLED)) == "Accepted"  # 5 = the MaxLength


def test_key_names_are_case_insensitive():
    c = Config()
    assert chg(c, "heartbeatinterval", "60") == "Accepted"
    assert c.get("HEARTBEATINTERVAL") == 60 and c.has("heartBeatInterval")
    assert getconf(c, ["heartbeatINTERVAL"]) == {
        "configurationKey": [{"key": "HeartbeatInterval", "readonly": False, "value": "60"}]}


# ---- every rejection path ------------------------------------------------
def test_unknown_key_not_supported():
    c = Config()
    assert chg(c, "NoSuchKey", "1") == "NotSupported"
    assert chg(c, "HeartbeatInterval ", "60") == "NotSupported"
    assert c.change("K" * 51, "1") == "NotSupported"
    assert c.change(None, "1") == "NotSupported"
    assert c.change("", "1") == "NotSupported"
    assert c.change_configuration({"value": "1"}) == {"status": "NotSupported"}
    assert c.change_configuration("junk") == {"status": "Rejected"}


@pytest.mark.parametrize("key", [k for k, (ro, _) in DEFAULTS.items() if ro])
def test_read_only_rejected(key):
    c = Config()
    cur = DEFAULTS[key][1]
    assert chg(c, key, cur) == "Rejected"
    assert chg(c, key, "7") == "Rejected"
    assert values(c, [key]) == {key: (True, cur)}


@pytest.mark.parametrize("text", ["1", "0", "yes", "on", " true", "true ", "", "tru", "truee"])
def test_bad_bool_rejected(text):
    c = Config()
    assert chg(c, "LocalPreAuthorize", text) == "Rejected"
    assert c.get("LocalPreAuthorize") is False


@pytest.mark.parametrize("text", ["", "-1", "+5", " 60", "60 ", "1e3", "0x10", "6.0", "sixty",
                                  "\u0663", "\uff16\uff10", "12345678901", "true"])
def test_bad_int_rejected(text):
    c = Config()
    assert chg(c, "HeartbeatInterval", text) == "Rejected"
    assert c.get("HeartbeatInterval") == 300


@pytest.mark.parametrize("key,bad,good", [
    ("HeartbeatInterval", ["0", "10801", "86400"], ["1", "10800", "007"]),
    ("MeterValueSampleInterval", ["3601"], ["0", "1", "3600"]),
    ("WebSocketPingInterval", ["3601"], ["0", "3600"]),
    ("ConnectionTimeOut", ["0", "3601"], ["1", "3600"]),
    ("TransactionMessageAttempts", ["0", "11"], ["1", "10"]),
    ("SecurityProfile", ["4", "9"], ["0"]),
    ("UnlockConnectorOnEVSideDisconnect", ["true"], ["false"]),  # fixed cable
])
def test_out_of_bounds(key, bad, good):
    c = Config()
    for t in bad:
        assert chg(c, key, t) == "Rejected", t
    for t in good:
        assert chg(c, key, t) == "Accepted", t


def test_too_many_csl_members_bounded_by_max_length_key():
    c = Config(overrides={"MeterValuesSampledDataMaxLength": "2", "StopTxnAlignedDataMaxLength": "0"})
    assert chg(c, "MeterValuesSampledData", "Voltage,SoC") == "Accepted"
    assert chg(c, "MeterValuesSampledData", "Voltage,SoC,Current.Import") == "Rejected"
    assert c.get("MeterValuesSampledData") == "Voltage,SoC"
    assert chg(c, "StopTxnAlignedData", "Energy.Active.Import.Register") == "Rejected"
    assert chg(c, "StopTxnAlignedData", "") == "Accepted"
    # The default 5 bounds the other list.
    assert chg(c, "StopTxnSampledData", ",".join(SAMPLED)) == "Accepted"


@pytest.mark.parametrize("key,text", [
    ("MeterValuesSampledData", "Temperature"),
    ("MeterValuesSampledData", "Energy.Active.Export.Register"),
    ("MeterValuesSampledData", "energy.active.import.register"),
    ("MeterValuesSampledData", "Voltage.L1"),
    ("StopTxnSampledData", "Frequency"),
    ("MeterValuesAlignedData", "SoC"),  # sampled only (C-09.2)
    ("MeterValuesAlignedData", "Voltage"),
    ("StopTxnAlignedData", "Power.Active.Import"),
    ("MeterValuesSampledData", "Voltage,Voltage"),  # repeated
    ("MeterValuesSampledData", "Voltage,,SoC"),  # empty member
    ("MeterValuesSampledData", "Voltage,"),
])
def test_unsupported_or_malformed_measurand_rejected(key, text):
    c = Config()
    before = c.get(key)
    assert chg(c, key, text) == "Rejected"
    assert c.get(key) == before


@pytest.mark.parametrize("text", ["1.XYZ", "2.RST", "1.RST,1.RTS", "RST", ".RST", "a.RST", "1.",
                                  "-1.RST", "0.RST,1.RST,1.RST"])
def test_bad_phase_rotation_rejected(text):
    assert chg(Config(), "ConnectorPhaseRotation", text) == "Rejected"


def test_too_long_values():
    c = Config()
    assert chg(c, "CpoName", "x" * 500) == "Accepted"
    assert c.change("CpoName", "y" * 501) == "Rejected"
    assert c.get("CpoName") == "x" * 500
    assert c.change("MeterValuesSampledData", "Voltage," * 70) == "Rejected"
    for v in (None, 60, True, ["60"], b"60"):
        assert c.change("HeartbeatInterval", v) == "Rejected"
        assert c.change("CpoName", v) == "Rejected"


def test_authorization_key_write_only():
    c = Config()
    assert chg(c, "AuthorizationKey", "x" * 15) == "Rejected"
    assert chg(c, "AuthorizationKey", "x" * 41) == "Rejected"
    # Hex text (the security feature checks the digits): 32..40 characters, 16..20 bytes.
    assert chg(c, "AuthorizationKey", "0123456789abcdef") == "Rejected"
    assert chg(c, "AuthorizationKey", "0123456789abcdef" * 2) == "Accepted"
    key40 = "00112233445566778899AABBCCDDEEFF00112233"  # 20 bytes as hex
    assert chg(c, "AuthorizationKey", key40) == "Accepted"
    assert c.get("AuthorizationKey") == key40  # the transport reads it
    assert "AuthorizationKey" not in values(c)
    assert getconf(c, ["AuthorizationKey"]) == {}
    assert getconf(c, ["authorizationkey", "HeartbeatInterval"]) == {
        "configurationKey": [{"key": "HeartbeatInterval", "readonly": False, "value": "300"}]}
    assert key40 not in json.dumps(getconf(c))


def test_security_profile_only_current_value_without_check():
    c = Config()
    assert chg(c, "SecurityProfile", "0") == "Accepted"
    assert chg(c, "SecurityProfile", "1") == "Rejected"
    assert c.get("SecurityProfile") == 0
    c = Config(overrides={"SecurityProfile": "2"})
    assert chg(c, "SecurityProfile", "1") == "Rejected"  # never lowered
    assert chg(c, "SecurityProfile", "2") == "Accepted"


# ---- GetConfiguration ----------------------------------------------------
def test_get_all_keys_with_empty_list():
    c = Config()
    assert getconf(c, []) == getconf(c)
    assert len(getconf(c)["configurationKey"]) == len(DEFAULTS) > 20  # MaxKeys limits requests only
    assert "unknownKey" not in getconf(c)


def test_get_listed_and_unknown():
    c = Config()
    assert getconf(c, ["HeartbeatInterval", "Nope", "NumberOfConnectors"]) == {
        "configurationKey": [{"key": "HeartbeatInterval", "readonly": False, "value": "300"},
                             {"key": "NumberOfConnectors", "readonly": True, "value": "1"}],
        "unknownKey": ["Nope"]}
    assert getconf(c, ["Nope", "Nope"]) == {"unknownKey": ["Nope"]}
    assert getconf(c, ["HeartbeatInterval", "heartbeatinterval"]) == {
        "configurationKey": [{"key": "HeartbeatInterval", "readonly": False, "value": "300"}]}


def test_get_respects_max_keys():
    c = Config()
    names = list(DEFAULTS)[:15] + ["Unknown" + str(i) for i in range(10)]
    res = getconf(c, names)
    assert [e["key"] for e in res["configurationKey"]] == names[:15]
    assert res["unknownKey"] == names[15:20]
    c = Config(overrides={"GetConfigurationMaxKeys": "2"})
    assert values(c, ["NoKey", "HeartbeatInterval", "ResetRetries"]) == {"HeartbeatInterval": (False, "300")}
    assert getconf(c, ["NoKey", "HeartbeatInterval", "ResetRetries"])["unknownKey"] == ["NoKey"]


def test_get_defensive_payloads():
    c = Config()
    assert c.get_configuration({"key": [5, None, "HeartbeatInterval"]})["configurationKey"][0]["value"] == "300"
    long_key = "k" * 80
    res = c.get_configuration({"key": [long_key]})
    GET_CONF.validate(res)
    assert res == {"unknownKey": ["k" * 50]}
    assert c.get_configuration(None) == getconf(c)
    assert c.get_configuration({"key": "HeartbeatInterval"}) == getconf(c)


# ---- persistence ---------------------------------------------------------
def test_persisted_changes_survive_and_only_differences_are_stored():
    p = Persist()
    c = Config(persist=p)
    assert chg(c, "HeartbeatInterval", "60") == "Accepted"
    assert chg(c, "LocalPreAuthorize", "true") == "Accepted"
    assert chg(c, "MeterValuesSampledData", "Voltage, SoC") == "Accepted"
    assert p.data == {"HeartbeatInterval": "60", "LocalPreAuthorize": "true",
                      "MeterValuesSampledData": "Voltage,SoC"}
    c2 = Config(persist=p)
    assert c2.get("HeartbeatInterval") == 60 and c2.get("LocalPreAuthorize") is True
    assert values(c2) == values(c)
    # Back to the default: dropped from the snapshot.
    assert chg(c2, "HeartbeatInterval", "300") == "Accepted"
    assert "HeartbeatInterval" not in p.data
    n = p.saves
    assert chg(c2, "LocalPreAuthorize", "true") == "Accepted"  # unchanged: no flash write
    assert p.saves == n


@pytest.mark.parametrize("data", [
    None, [], "garbage", 42, 3.5, b"\x00", {1: "60"}, {"HeartbeatInterval": 60},
    {"HeartbeatInterval": None}, {"HeartbeatInterval": "abc"}, {"HeartbeatInterval": "0"},
    {"HeartbeatInterval": ["60"]}, {"LocalPreAuthorize": "1"}, {"NumberOfConnectors": "5"},
    {"MeterValuesSampledData": "Temperature"}, {"SecurityProfile": "7"}, {("a",): "b"},
    ValueError("corrupt"), OSError(5, "EIO"),
])
def test_garbage_snapshot_degrades_to_defaults(data):
    c = Config(persist=Persist(data))
    assert values(c) == DEFAULTS


def test_good_entries_survive_among_garbage():
    c = Config(persist=Persist({"HeartbeatInterval": "60", "Bogus": "1", 7: "x", "LocalPreAuthorize": "maybe"}))
    assert c.get("HeartbeatInterval") == 60 and c.get("LocalPreAuthorize") is False


def test_save_failure_rejects_and_keeps_old_value():
    p = Persist(fail=True)
    c = Config(persist=p)
    seen = []
    c.on_change(lambda k, v: seen.append(k))
    assert chg(c, "HeartbeatInterval", "60") == "Rejected"
    assert c.get("HeartbeatInterval") == 300 and seen == []
    p.fail = False
    assert chg(c, "HeartbeatInterval", "60") == "Accepted"
    p.fail = True
    assert chg(c, "HeartbeatInterval", "90") == "Rejected"
    assert c.get("HeartbeatInterval") == 60


# ---- listeners -----------------------------------------------------------
def test_listeners_fire_after_accepted_changes_only():
    c = Config()
    a, b = [], []
    c.on_change(lambda k, v: a.append((k, v)))
    c.on_change(lambda k, v: b.append((k, c.get(k))))  # the new value is already visible
    chg(c, "heartbeatinterval", "60")
    chg(c, "HeartbeatInterval", "0")  # rejected
    chg(c, "HeartbeatInterval", "60")  # unchanged
    chg(c, "NumberOfConnectors", "2")  # read-only
    chg(c, "Nope", "1")
    chg(c, "LocalPreAuthorize", "TRUE")
    assert a == [("HeartbeatInterval", 60), ("LocalPreAuthorize", True)]
    assert b == a


# ---- overrides and seed --------------------------------------------------
def test_overrides_and_seed():
    c = Config(overrides={"NumberOfConnectors": "2", "ConnectorPhaseRotation": "0.RST,1.RST,2.RST",
                          "ConnectorPhaseRotationMaxLength": "3", "HeartbeatInterval": "86400"})
    assert c.get("NumberOfConnectors") == 2 and c.get("HeartbeatInterval") == 86400  # seeds skip bounds
    assert values(c, ["NumberOfConnectors"]) == {"NumberOfConnectors": (True, "2")}
    assert chg(c, "ConnectorPhaseRotation", "1.RTS,2.STR,0.RST") == "Accepted"
    assert chg(c, "ConnectorPhaseRotation", "3.RST") == "Rejected"
    c.seed("HeartbeatInterval", "120")
    assert c.get("HeartbeatInterval") == 120
    for key, text in (("Nope", "1"), ("HeartbeatInterval", "-5"), ("LocalPreAuthorize", "yes"),
                      ("MeterValuesSampledData", "Temperature"), ("CpoName", "x" * 501),
                      ("HeartbeatInterval", 60)):
        with pytest.raises(ValueError):
            c.seed(key, text)
    with pytest.raises(ValueError):
        Config(overrides={"HeartbeatInterval": "soon"})
    assert Config(overrides={"NoSuchKey": "1"}).unclaimed == {"NoSuchKey": "1"}  # no feature declared it
    with pytest.raises(ValueError, match="ChargingScheduleMaxPeriods"):
        Config(overrides={"ChargingScheduleMaxPeriods": "many"})  # refused when its feature declares it


def test_measurand_override_for_a_meter_without_soc():
    c = Config(overrides={"sampled": "Energy.Active.Import.Register, Power.Active.Import,Current.Import,Voltage"})
    assert chg(c, "MeterValuesSampledData", "SoC") == "Rejected"
    assert chg(c, "StopTxnSampledData", "Voltage,Power.Active.Import") == "Accepted"
    assert not c.has("sampled")
    # A value stored before the meter changed is dropped at load.
    p = Persist({"MeterValuesSampledData": "SoC"})
    c = Config(persist=p, overrides={"sampled": "Voltage"})
    assert c.get("MeterValuesSampledData") == "Energy.Active.Import.Register"


def test_seed_wins_over_persisted_change_and_is_not_persisted():
    p = Persist()
    c = Config(persist=p)
    chg(c, "HeartbeatInterval", "60")
    assert p.data == {"HeartbeatInterval": "60"}
    c.seed("HeartbeatInterval", "900")  # e.g. BootNotification.conf interval
    assert c.get("HeartbeatInterval") == 900 and p.data == {}
    c.seed("AuthorizationKey", "short")  # simulator --password: length is a bound
    assert c.get("AuthorizationKey") == "short"
    assert Config(persist=p).get("HeartbeatInterval") == 300


# ---- keys added by features ---------------------------------------------
def test_add_key():
    p = Persist({"CertSigningRepeatTimes": "4", "Later": "x"})
    c = Config(persist=p)
    c.add_key("CertSigningRepeatTimes", "int", 3, lo=0, hi=10)
    assert c.get("CertSigningRepeatTimes") == 4  # a stored value waited for its key
    assert values(c, ["CertSigningRepeatTimes"]) == {"CertSigningRepeatTimes": (False, "4")}
    assert chg(c, "CertSigningRepeatTimes", "11") == "Rejected"
    assert chg(c, "CertSigningRepeatTimes", "5") == "Accepted"
    assert p.data == {"CertSigningRepeatTimes": "5", "Later": "x"}  # unknown stored keys kept
    c.add_key("UploadProtocols", "csl", "HTTP,HTTPS", readonly=True)
    assert values(c)["UploadProtocols"] == (True, "HTTP,HTTPS")
    c.add_key("Mode", "csl", "A", members="A,B,C", hi=2, reboot=True)
    assert chg(c, "Mode", "A,D") == "Rejected"
    assert chg(c, "Mode", "A,B,C") == "Rejected"
    assert chg(c, "Mode", "B,C") == "RebootRequired"
    c.add_key("Secret", "string", "", lo=8, hi=16, hidden=True)
    assert chg(c, "Secret", "12345678") == "Accepted" and "Secret" not in values(c)
    c.add_key("Flag", "bool", "true")
    assert c.get("Flag") is True
    assert len(getconf(c)["configurationKey"]) == len(DEFAULTS) + 4
    with pytest.raises(ValueError):
        c.add_key("X" * 51, "int", 0)


def test_security_feature_redefines_security_profile():
    c = Config()
    ok = {"installed": False}
    c.add_key("SecurityProfile", "int", 0, lo=0, hi=3,
              check=lambda v: None if ok["installed"] or v < 2 else "Rejected")
    assert chg(c, "SecurityProfile", "1") == "Accepted"
    assert chg(c, "SecurityProfile", "2") == "Rejected"
    ok["installed"] = True
    assert chg(c, "SecurityProfile", "2") == "Accepted"
    assert [e["key"] for e in getconf(c)["configurationKey"]].count("SecurityProfile") == 1


# ---- the MicroPython VM gives the same answers -------------------------
VM_SCRIPT = r"""
import json
from evse import fwupdate, locallist, reservation, security, smartcharge
from evse.config import Config as _Config


def Config(**kw):
    c = _Config(**kw)
    for table in (locallist._KEYS, reservation._KEYS, smartcharge._KEYS, security._KEYS):
        c.add_keys(table)
    return c
class P:
    def __init__(self):
        self.data = None
    def load(self):
        return self.data
    def save(self, d):
        self.data = d
p = P()
c = Config(persist=p, overrides={"sampled": "Energy.Active.Import.Register,Voltage,SoC"})
out = [c.get_configuration({})]
for k, v in (("HeartbeatInterval", "60"), ("heartbeatinterval", "0"), ("LocalPreAuthorize", "TRUE"),
             ("MeterValuesSampledData", "Voltage , SoC"), ("MeterValuesSampledData", "Current.Import"),
             ("NumberOfConnectors", "2"), ("Nope", "1"), ("ConnectorPhaseRotation", "0.RST,1.RST"),
             ("HeartbeatInterval", "\u0663"), ("AuthorizationKey", "0123456789abcdef0123456789abcdef")):
    out.append(c.change_configuration({"key": k, "value": v}))
out.append(c.get_configuration({"key": ["HeartbeatInterval", "X", "AuthorizationKey", "MeterValuesSampledData"]}))
out.append(p.data)
out.append(Config(persist=p).get_configuration({}))
print(json.dumps(out))
"""


def _norm(res):
    if isinstance(res, dict) and "configurationKey" in res:
        res = dict(res, configurationKey=sorted(res["configurationKey"], key=lambda e: e["key"]))
    return res


def test_micropython_vm_matches_cpython(capsys, tmp_path):
    import mpvm
    vm = [json.loads(line) for line in mpvm.run(VM_SCRIPT).splitlines() if line.startswith("[")]
    script = tmp_path / "vm_script.py"
    script.write_text(VM_SCRIPT, encoding="utf-8")
    runpy.run_path(str(script))
    host = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("[")]
    assert len(vm) == len(host) == 1
    assert [_norm(x) for x in vm[0]] == [_norm(x) for x in host[0]]
    statuses = [x["status"] for x in host[0][1:11]]
    assert statuses == ["Accepted", "Rejected", "Accepted", "Accepted", "Rejected", "Rejected",
                        "NotSupported", "Accepted", "Rejected", "Accepted"]
    for res in (host[0][0], host[0][11], host[0][13]):
        GET_CONF.validate(res)
    for res in host[0][1:11]:
        CHANGE_CONF.validate(res)
    assert host[0][12] == {"HeartbeatInterval": "60", "LocalPreAuthorize": "true",
                           "MeterValuesSampledData": "Voltage,SoC", "ConnectorPhaseRotation": "0.RST,1.RST",
                           "AuthorizationKey": "0123456789abcdef0123456789abcdef"}
