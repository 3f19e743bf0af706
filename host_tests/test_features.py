"""Feature modules attach through declared seams: any optional feature can be
left out, the install order does not matter, each key has one owner."""
import json
import random

import pytest
from evse.station import CORE, FEATURES
from rig import Rig

OPTIONAL = tuple(f for f in FEATURES if f not in CORE)


def FeatureRig(data, features, **kw):  # noqa: N802
    return Rig(data, features=features, **kw)


def session(r):
    """Boot, a card-first session with meter values, stop by card."""
    r.connect()
    r.call("ChangeConfiguration", {"key": "MeterValueSampleInterval", "value": "60"})
    r.cmd("card", "AA")
    r.run(2000)
    r.cmd("plug")
    r.run(5 * 60 * 1000)
    r.cmd("card", "AA")
    r.run(2000)
    r.cmd("unplug")
    r.run(2000)
    return r


def test_optional_features_are_optional():
    assert set(OPTIONAL) >= {"locallist", "reservation", "trigger", "smartcharge", "security", "certificates",
                             "diagnostics", "fwupdate"}


@pytest.mark.parametrize("left_out", OPTIONAL)
def test_station_works_without_each_optional_feature(tmp_path, left_out):
    features = tuple(f for f in FEATURES if f != left_out)
    r = session(FeatureRig(str(tmp_path), features, tags={"AA": "Accepted"}))
    assert r.sent("StartTransaction") and r.sent("StopTransaction")[0]["reason"] == "Local"
    assert r.statuses()[-1] == "Available"
    assert len(r.sent("MeterValues")) == 5
    profiles = r.st.config.get("SupportedFeatureProfiles").split(",")
    mod = __import__("evse." + left_out, None, None, ["install"])
    if getattr(mod, "PROFILE", None):
        assert mod.PROFILE not in profiles
        # Its CSMS calls answer NotSupported from the one dispatch place.
        action, payload = {
            "locallist": ("GetLocalListVersion", {}),
            "reservation": ("CancelReservation", {"reservationId": 1}),
            "trigger": ("TriggerMessage", {"requestedMessage": "Heartbeat"}),
            "smartcharge": ("ClearChargingProfile", {}),
            "fwupdate": ("UpdateFirmware", {"location": "http://x/fw.img", "retrieveDate": "2026-01-01T00:00:00Z"}),
        }[left_out]
        assert r.call(action, payload)[2] == "NotSupported"
    # The CALLs of a feature without a profile of its own answer NotSupported too.
    own = {"certificates": ("GetInstalledCertificateIds", {"certificateType": "CentralSystemRootCertificate"}),
           "diagnostics": ("GetDiagnostics", {"location": "http://x/up"})}.get(left_out)
    if own is not None:
        assert r.call(*own)[2] == "NotSupported"
    assert not [t for lvl, t in r.logs if lvl == "error"], r.logs


def test_core_only_station(tmp_path):
    r = session(FeatureRig(str(tmp_path), CORE, tags={"AA": "Accepted"}))
    assert r.st.config.get("SupportedFeatureProfiles") == "Core"
    assert r.sent("StopTransaction")
    assert r.call("GetConfiguration", {"key": ["LocalAuthListEnabled"]})[2] == {"unknownKey": ["LocalAuthListEnabled"]}


def test_install_order_does_not_matter(tmp_path):
    def transcript(features, sub):
        r = session(FeatureRig(str(tmp_path / sub), features, tags={"AA": "Accepted"}))
        r.call("GetConfiguration", {})
        # The transaction queue's own warnings (kept by TxQueue at install)
        # reach the log GetDiagnostics uploads, whatever the order.
        r.st.transactions.queue.log("warn", "txqueue full: oldest MeterValues dropped")
        diag = [line.split(" ", 1)[1] for line in r.st.diag.log.lines(None, None)]
        assert "warn txqueue full: oldest MeterValues dropped\n" in diag, features
        out = [diag]
        for e in r.transcript:
            m = e["msg"]
            if m[0] == 3 and isinstance(m[2], dict) and "configurationKey" in m[2]:
                m = [3, m[1], sorted(json.dumps(k, sort_keys=True) for k in m[2]["configurationKey"])]
            out.append(m)
        return out, r.st.config.get("SupportedFeatureProfiles").split(",")

    base, profiles = transcript(FEATURES, "a")
    shuffled = list(FEATURES)
    random.Random(8).shuffle(shuffled)
    for i, order in enumerate((tuple(reversed(FEATURES)), tuple(shuffled))):
        got, got_profiles = transcript(order, "o%d" % i)
        assert got == base, order
        assert sorted(got_profiles) == sorted(profiles)


def test_a_feature_states_what_it_needs(tmp_path):
    with pytest.raises(ValueError, match="smartcharge needs transaction"):
        FeatureRig(str(tmp_path), ("boot", "connector", "smartcharge"))


def test_no_feature_sets_an_undeclared_station_attribute(tmp_path):
    # Every attribute a feature uses is declared by Station.__init__ before
    # the features install: installing them adds no new attribute.
    declared = set(vars(FeatureRig(str(tmp_path / "none"), ()).st))
    full = set(vars(FeatureRig(str(tmp_path / "all"), FEATURES).st))
    assert full - declared == set()


def test_every_key_has_one_owner():
    # A key is declared by exactly one table: the core's or one feature's.
    from evse import config
    tables = [config._T] + [__import__("evse." + f, None, None, ["install"])._KEYS
                            for f in FEATURES if hasattr(__import__("evse." + f, None, None, ["x"]), "_KEYS")]
    names = [line.split(" ")[0] for t in tables for line in t.strip().splitlines()]
    assert len(names) == len(set(names))


def test_no_import_circle_between_firmware_modules():
    # Imports inside functions count too: a circle hidden there is still one.
    import ast
    import os
    root = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "firmware", "evse")
    graph = {}
    for base, _dirs, names in os.walk(root):
        for n in names:
            if not n.endswith(".py"):
                continue
            rel = os.path.relpath(os.path.join(base, n), root)[:-3].replace(os.sep, ".")
            mod = "evse." + rel.replace(".__init__", "") if rel != "__init__" else "evse"
            with open(os.path.join(base, n)) as f:
                tree = ast.parse(f.read())
            deps = set()
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("evse"):
                    deps.add(node.module)
                    deps.update(node.module + "." + a.name for a in node.names)
                elif isinstance(node, ast.Import):
                    deps.update(a.name for a in node.names if a.name.startswith("evse"))
            graph[mod] = deps
    for mod in graph:
        graph[mod] = {d for d in graph[mod] if d in graph and d != mod and not mod.startswith(d + ".")}
    state = {}

    def visit(m, path):
        state[m] = 1
        for d in graph[m]:
            assert state.get(d) != 1, "import circle: " + " -> ".join(path + [d])
            if d not in state:
                visit(d, path + [d])
        state[m] = 2
    for m in sorted(graph):
        if m not in state:
            visit(m, [m])


@pytest.mark.parametrize("absent", ["fwupdate", "smartcharge", "diagnostics"])
def test_a_build_without_an_optional_module_runs_with_no_code_edit(tmp_path, monkeypatch, absent):
    """A firmware image frozen without a feature's modules (its manifest left
    out) still builds the default station: the feature is simply absent."""
    import sys
    monkeypatch.setitem(sys.modules, "evse." + absent, None)  # import fails as if not frozen
    r = session(Rig(str(tmp_path), tags={"AA": "Accepted"}))
    assert r.sent("StopTransaction")[0]["reason"] == "Local"
    mod = {"fwupdate": "FirmwareManagement", "smartcharge": "SmartCharging"}.get(absent)
    if mod:
        assert mod not in r.st.config.get("SupportedFeatureProfiles").split(",")
    monkeypatch.setitem(sys.modules, "evse.boot", None)
    with pytest.raises(ImportError):  # a core feature is never optional
        Rig(str(tmp_path / "x"))
