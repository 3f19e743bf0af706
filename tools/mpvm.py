"""Run code in the MicroPython WebAssembly VM (host-side helper).

The firmware (firmware/evse), the boards package and any extra files are
written into the VM's filesystem under /lib, so imports work as on a
device with the modules in /lib.
"""
from __future__ import annotations

import json
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _walk(src_dir: str, ext: str) -> list[tuple[str, str]]:
    """(path, path relative to src_dir with '/') of every file ending in ext."""
    out = []
    for base, _dirs, names in os.walk(src_dir):
        for n in names:
            if n.endswith(ext):
                p = os.path.join(base, n)
                out.append((p, os.path.relpath(p, src_dir).replace(os.sep, "/")))
    return out


def _tree(src_dir: str, dest: str) -> dict[str, str]:
    files = {}
    for p, rel in _walk(src_dir, ".py"):
        with open(p, encoding="utf-8") as f:
            files[dest + "/" + rel] = f.read()
    return files


def firmware_files() -> dict[str, str]:
    files = _tree(os.path.join(ROOT, "firmware"), "/lib")
    files.update(_tree(os.path.join(ROOT, "boards"), "/lib/boards"))
    return files


def scenario_files() -> dict[str, str]:
    """host_tests/scenarios (scripted CSMS, virtual clock, scenarios) and the
    register-level board fakes (host_tests/fakes.py) as VM files."""
    files = _tree(os.path.join(ROOT, "host_tests", "scenarios"), "/lib/scenarios")
    with open(os.path.join(ROOT, "host_tests", "fakes.py"), encoding="utf-8") as f:
        files["/lib/fakes.py"] = f.read()
    return files


def mpy_files(build_dir: str) -> dict[str, str]:
    """Compiled modules (tools/build.py output) as VM files, like a device
    that has .mpy files in /lib."""
    import base64
    files = {}
    for p, rel in _walk(build_dir, ".mpy"):
        with open(p, "rb") as f:
            files["/lib/" + rel] = "base64:" + base64.b64encode(f.read()).decode()
    return files


def run(code: str | list[str], extra: dict[str, str] | None = None, heap: int = 4 << 20,
        timeout: float = 120, source: bool = True, run_async: bool = False) -> str:
    """Run `code` (or a list of steps, each a separate VM call) in a fresh VM;
    returns its stdout. Raises on an exception."""
    files = firmware_files() if source else {}
    files.update(extra or {})
    job = json.dumps({"files": files, "code": code, "heap": heap, "async": run_async})
    p = subprocess.run(["node", os.path.join(ROOT, "tools", "mpvm.mjs")], input=job,
                       capture_output=True, text=True, cwd=ROOT, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError("MicroPython VM failed:\n" + p.stderr + p.stdout[-2000:])
    return p.stdout


def json_lines(out: str) -> list:
    return [json.loads(line) for line in out.splitlines() if line.startswith(("{", "["))]
