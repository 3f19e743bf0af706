"""Freeze manifests per optional feature (firmware/manifests/): every module
is frozen by exactly one, and an image frozen without some features runs
the device's entry point and a charging session with no code edit."""
import json
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import deploy  # noqa: E402


def modules_of(tmp_path, without=None):
    top = tmp_path / "top.py"
    kw = ', without="%s"' % without if without else ""
    top.write_text('include(%r, port_manifest=%r%s)\n' % (deploy.MANIFEST, str(tmp_path / "port.py"), kw))
    (tmp_path / "port.py").write_text("")
    return deploy.frozen_modules(str(top))[0]


def test_every_module_is_in_exactly_one_manifest():
    fw = os.path.join(ROOT, "firmware")
    listed = []
    for n in sorted(os.listdir(os.path.join(fw, "manifests"))):
        mods, _ = deploy.frozen_modules(os.path.join(fw, "manifests", n))
        listed += sorted(mods)
    present = set()
    for base, _d, names in os.walk(os.path.join(fw, "evse")):
        for n in names:
            if n.endswith(".py"):
                rel = os.path.relpath(os.path.join(base, n), fw)[:-3].replace(os.sep, ".")
                present.add(rel[:-9] if rel.endswith(".__init__") else rel)
    assert sorted(listed) == sorted(present)  # none missing, none twice
    assert len(listed) == len(set(listed))


SESSION = r"""
import json, sys
from boards.sim.board import SimBoard
from scenarios.scripted import ScriptedCsms
from scenarios.vclock import VirtualClock
import main
main.DATA = sys.argv[1]
clock = VirtualClock()
board = SimBoard()
st = main.make_station(board, {"url": "ws://127.0.0.1:9/ocpp", "id": "MF1"}, clock)
cs = ScriptedCsms(st, clock)
cs.tags = {"AA": "Accepted"}
st.connected(clock.ms())
cs.pump()
for cmd in ("card AA", "plug", "card AA"):
    name, *args = cmd.split()
    board.command(name, args)
    st.tick(clock.ms())
    cs.pump()
    cs.run_for(2000)
sent = [e["msg"][2] for e in cs.transcript if e["dir"] == "cs" and e["msg"][0] == 2]
absent = []
for m in ("evse.fwupdate", "evse.security", "evse.pki", "evse.smartcharge"):
    try:
        __import__(m)
    except ImportError:
        absent.append(m)
print(json.dumps({"profiles": st.config.get("SupportedFeatureProfiles"), "sent": sent, "absent": absent,
                  "link": st.link is not None}))
"""


@pytest.mark.parametrize("without", ["fwupdate,security,diagnostics", "smartcharge,locallist,reservation,trigger"])
def test_an_image_without_features_runs_a_session(tmp_path, without):
    mods = modules_of(tmp_path, without)
    assert mods < modules_of(tmp_path)
    lib = tmp_path / "lib"
    for m in mods:
        src = os.path.join(ROOT, "firmware", *m.split("."))
        src = os.path.join(src, "__init__.py") if os.path.isdir(src) else src + ".py"
        dst = lib / os.path.relpath(src, os.path.join(ROOT, "firmware"))
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
    shutil.copyfile(os.path.join(ROOT, "firmware", "main.py"), lib / "main.py")
    shutil.copytree(os.path.join(ROOT, "boards"), lib / "boards")
    shutil.copytree(os.path.join(ROOT, "host_tests", "scenarios"), lib / "scenarios")
    (tmp_path / "data").mkdir()
    env = dict(os.environ, PYTHONPATH=str(lib))
    p = subprocess.run([sys.executable, "-I", "-c", "import sys; sys.path.insert(0, %r)\n" % str(lib) + SESSION,
                        str(tmp_path / "data")], capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert "StartTransaction" in out["sent"] and "StopTransaction" in out["sent"]
    profiles = out["profiles"].split(",")
    if "fwupdate" in without:
        assert out["absent"] == ["evse.fwupdate", "evse.security", "evse.pki"] and not out["link"]
        assert "FirmwareManagement" not in profiles and "SmartCharging" in profiles
    else:
        assert out["absent"] == ["evse.smartcharge"] and out["link"]
        assert profiles == ["Core", "FirmwareManagement"]
