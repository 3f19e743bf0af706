"""tools/deploy.py: the board's files, the copy plan from device hashes
(the listing script runs in the MicroPython VM), the config snapshot, the
manifest check, mip's package.json and the make targets in dry-run mode."""
import hashlib
import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tools"))
import deploy  # noqa: E402
import mpvm  # noqa: E402

CFG = {"url": "wss://csms.example/ocpp", "id": "CP001", "password": "secret", "ssid": "lab"}


def test_board_modules_come_from_the_board_dirs_and_its_imports():
    index = deploy.module_index()
    mods = deploy.board_modules("esp32", index)
    assert {"boards", "boards.hal", "boards.esp32", "boards.esp32.board", "boards.drivers"} <= set(mods)
    assert all(m.startswith(("boards.esp32", "boards.drivers")) or m in ("boards", "boards.hal")
               or m in deploy.closure(["boards.esp32.board"], index)[0] for m in mods)
    assert not any(m.startswith(("boards.sim", "boards.picow", "fakes")) for m in mods)
    with pytest.raises(SystemExit):
        deploy.board_modules("nosuchboard", index)


def test_closure_follows_relative_and_dynamic_imports(tmp_path):
    pkg = tmp_path / "p"
    pkg.mkdir()
    files = {"p/__init__.py": "", "p/a.py": "from . import b\nimport os\n",
             "p/b.py": "def f():\n    from .c import x\n", "p/c.py": "x = __import__('p.d' + '')\n",
             "p/d.py": "", "p/plug/__init__.py": "", "p/plug/one.py": "", "p/plug/two.py": "",
             "p/e.py": "m = __import__('p.plug.' + name)\n"}
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(exist_ok=True)
        (tmp_path / rel).write_text(text)
    index = {}
    for rel in files:
        name = rel[:-3].replace("/", ".").removesuffix(".__init__")
        index[name] = (str(tmp_path / rel), rel)
    mods, other = deploy.closure(["p.a"], index)
    assert mods == {"p", "p.a", "p.b", "p.c"} and other == {"os"}
    assert deploy.closure(["p.e"], index)[0] == {"p", "p.e", "p.plug", "p.plug.one", "p.plug.two"}


def test_stage_compiles_the_board_and_writes_board_txt_and_config(tmp_path):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(CFG))
    out = tmp_path / "out"
    local = deploy.stage("esp32", False, str(cfg), str(out))
    assert local["/main.py"] == os.path.join(ROOT, "firmware", "main.py")
    mpys = [p for p in local if p.endswith(".mpy")]
    assert "/lib/boards/esp32/board.mpy" in mpys and not any(p.startswith("/lib/evse") for p in local)
    assert all(open(local[p], "rb").read(1) == b"M" for p in mpys)  # .mpy header
    assert open(local["/board.txt"]).read() == "esp32\n"
    assert os.stat(local["/config.json"]).st_mode & 0o077 == 0
    sys.path.insert(0, os.path.join(ROOT, "firmware"))
    import main
    assert main.load_config(local["/config.json"]) == CFG
    with_core = deploy.stage("esp32", True, None, str(tmp_path / "core"))
    assert "/lib/evse/station.mpy" in with_core and "/config.json" not in with_core
    cfg.write_text(json.dumps({"id": "CP001"}))
    with pytest.raises(SystemExit):
        deploy.stage("esp32", False, str(cfg), str(out))


def _sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def _local(tmp_path):
    files = {}
    for p, data in {"/main.py": b"main", "/board.txt": b"esp32\n", "/lib/boards/hal.mpy": b"M1",
                    "/lib/boards/esp32/board.mpy": b"M2"}.items():
        f = tmp_path / p.strip("/").replace("/", "_")
        f.write_bytes(data)
        files[p] = str(f)
    return files


def test_plan_for_an_empty_device_makes_dirs_copies_all_and_resets(tmp_path):
    local = _local(tmp_path)
    cmds = deploy.plan(local, {}, set(), ["/lib/boards"])
    assert [c for c in cmds if c[1:2] == ["mkdir"]] == [["fs", "mkdir", ":" + d] for d in
                                                         ("/lib", "/lib/boards", "/lib/boards/esp32")]
    assert sorted(c[-1] for c in cmds if c[1:2] == ["cp"]) == sorted(":" + p for p in local)
    assert cmds[-1] == ["reset"]
    mk = cmds.index(["fs", "mkdir", ":/lib/boards/esp32"])
    assert mk < next(i for i, c in enumerate(cmds) if c[-1] == ":/lib/boards/esp32/board.mpy")


def test_plan_copies_only_changed_files_and_removes_stale_ones(tmp_path):
    local = _local(tmp_path)
    device = {p: _sha(f) for p, f in local.items()}
    assert deploy.plan(local, device, {"/lib/boards/esp32"}, ["/lib/boards"]) == []
    device["/lib/boards/hal.mpy"] = "0" * 64
    device["/lib/boards/esp32/board.py"] = "1" * 64  # a stale .py would shadow board.mpy
    device["/lib/other/keep.mpy"] = "2" * 64  # not ours
    cmds = deploy.plan(local, device, {"/lib/boards/esp32"}, ["/lib/boards"])
    assert cmds == [["fs", "cp", "-f", os.path.relpath(local["/lib/boards/hal.mpy"]), ":/lib/boards/hal.mpy"],
                    ["fs", "rm", ":/lib/boards/esp32/board.py"], ["reset"]]


def test_listing_script_runs_in_micropython_and_matches_host_hashes(tmp_path):
    files = {"/lib/boards/hal.mpy": "hal", "/lib/boards/esp32/board.mpy": "x" * 3000, "/board.txt": "esp32\n"}
    script = deploy.listing_script(["/lib/boards", "/lib/evse"], ["/board.txt", "/main.py"],
                                   ["/lib", "/lib/boards/esp32", "/lib/nothing"])
    got_files, got_dirs = deploy.parse_listing(mpvm.run(script, files, source=False))
    assert got_files == {p: hashlib.sha256(t.encode()).hexdigest() for p, t in files.items()}
    assert got_dirs == {"/lib", "/lib/boards", "/lib/boards/esp32"}


def test_deploy_with_a_device_listing_copies_nothing_when_up_to_date(tmp_path, capsys):
    out = str(tmp_path / "out")
    deploy.deploy("esp32", "/dev/ttyX", dry_run=True, out=out)
    first = capsys.readouterr().out.splitlines()
    assert first[1].endswith("connect /dev/ttyX run " + os.path.relpath(os.path.join(out, "listing.py")))
    assert " fs cp -f " in first[-1] and first[-1].endswith(" + reset")
    local = deploy.stage("esp32", False, None, out)
    listing = tmp_path / "listing.txt"
    listing.write_text("".join(f"F {p} {_sha(f)}\n" for p, f in local.items()) + "D /lib/boards/esp32\n")
    assert deploy.deploy("esp32", "/dev/ttyX", dry_run=True, listing=str(listing), out=out) == 0
    assert "up to date" in capsys.readouterr().out


def test_image_checks_the_manifest(tmp_path, capsys):
    assert deploy.image("esp32") == 0
    out = capsys.readouterr().out
    assert "FROZEN_MANIFEST=" + deploy.MANIFEST in out and "ports/esp32 BOARD=ESP32_GENERIC" in out
    frozen, port = deploy.frozen_modules()
    assert {"evse", "evse.station", "evse.wire.rpc", "evse.wire.jsonstream"} <= frozen
    assert port == ["$(PORT_DIR)/boards/manifest.py"]
    partial = tmp_path / "manifest.py"
    partial.write_text('metadata(version="0")\npackage("evse", files=["__init__.py", "wire/rpc.py"], base_path=%r)\n'
                       % os.path.join(ROOT, "firmware"))
    assert deploy.frozen_modules(str(partial))[0] == {"evse", "evse.wire.rpc"}
    assert deploy.image("esp32", str(partial)) == 1
    assert "NOT FROZEN" in capsys.readouterr().out


def test_package_json_for_mip_lists_the_core():
    with open(os.path.join(ROOT, "firmware", "package.json")) as f:
        pkg = json.load(f)
    assert pkg["version"] and pkg["deps"] == []
    listed = {dest for dest, url in pkg["urls"]}
    assert all(dest == url and os.path.exists(os.path.join(ROOT, "firmware", url)) for dest, url in pkg["urls"])
    index = deploy.module_index()
    needed = {index[m][1] for m in deploy.closure(["main", "boards.esp32.board"], index)[0]
              if m.split(".")[0] == "evse"}
    assert needed <= listed, "run `make package-json`: " + ", ".join(sorted(needed - listed))


def _make(*args):
    p = subprocess.run(["make", "-s", "-o", ".venv/.stamp-deps", *args], cwd=ROOT, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_make_targets_dry_run():
    out = _make("deploy", "BOARD=esp32", "PORT=/dev/ttyUSB7", "DRY_RUN=1").splitlines()
    assert out[-1].startswith(".venv/bin/mpremote connect /dev/ttyUSB7 ")
    assert ":/lib/boards/esp32/board.mpy" in out[-1] and ":/board.txt" in out[-1]
    assert _make("repl", "PORT=/dev/ttyUSB7", "DRY_RUN=1").strip() == ".venv/bin/mpremote connect /dev/ttyUSB7 repl"
    assert "FROZEN_MANIFEST=" in _make("image", "BOARD=picow")
