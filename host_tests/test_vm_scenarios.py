"""The sans-IO core under the real MicroPython VM: the same scenario runs
under CPython and in the VM, and the transcripts must be identical
(compared as parsed JSON, since key order differs between the two)."""
import json
import os
import sys

import pytest

from scenarios import boot, session

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tools"))
import mpvm  # noqa: E402


def scenario_files():
    return mpvm.scenario_files()


def run_in_vm(module):
    code = ("import json\nfrom scenarios import %s as s\n"
            "for e in s.run('/data'):\n    print(json.dumps(e))\n") % module
    return mpvm.json_lines(mpvm.run(code, scenario_files()))


@pytest.mark.parametrize("module", [boot, session])
def test_transcripts_match(tmp_path, module):
    host = json.loads(json.dumps(module.run(str(tmp_path))))
    vm = run_in_vm(module.__name__.split(".")[-1])
    assert len(host) > 10
    assert vm == host


def test_boot_scenario_content(tmp_path):
    t = boot.run(str(tmp_path))
    calls = [e["msg"][2] for e in t if e["dir"] == "cs" and e["msg"][0] == 2]
    assert calls[:2] == ["BootNotification", "BootNotification"]
    assert calls.count("StatusNotification") == 2 and calls.count("Heartbeat") >= 3
    answers = {e["msg"][1]: e["msg"] for e in t if e["dir"] == "cs" and e["msg"][0] in (3, 4)}
    assert any(m[0] == 4 and m[2] == "NotImplemented" for m in answers.values())
    statuses = [m[2].get("status") for m in answers.values() if m[0] == 3 and isinstance(m[2], dict)]
    assert "Accepted" in statuses and "Rejected" in statuses


def test_session_scenario_content(tmp_path):
    t = session.run(str(tmp_path))
    calls = [e["msg"] for e in t if e["dir"] == "cs" and e["msg"][0] == 2]
    acts = [m[2] for m in calls]
    assert acts.count("StartTransaction") == 1 and acts.count("StopTransaction") == 1
    stop = next(m[3] for m in calls if m[2] == "StopTransaction")
    start = next(m[3] for m in calls if m[2] == "StartTransaction")
    # 15.9 A (16 A through the PWM duty) x 230 V for 40 minutes ~ 2.44 kWh
    assert 2300 < stop["meterStop"] - start["meterStart"] < 2500
    sn = [m[3]["status"] for m in calls if m[2] == "StatusNotification" and m[3]["connectorId"] == 1]
    assert sn == ["Available", "Preparing", "Charging", "SuspendedEV", "Charging", "Finishing", "Available"]
    mv = [m[3] for m in calls if m[2] == "MeterValues"]
    contexts = {sv["context"] for m in mv for sv in m["meterValue"][0]["sampledValue"]}
    assert contexts == {"Sample.Periodic", "Sample.Clock"}
