"""Benchmark the Smart Charging engine on CPython and in the MicroPython VM.

Measures, for ChargingScheduleMaxPeriods = 86400 (certificate HS31007D):
- json.loads + set_profile (validate, convert, install) of an 86400-period profile;
- composite() over 24 h with 3 such profiles installed (CPMax, TxDefault, TxProfile);
- one limit_da() call with those profiles; dump()/load() of the table;
- in the VM: heap bytes held per installed profile (24 and 86400 periods).

The VM's garbage collector reclaims nothing while one runPython() call is
running (seen with micropython-webassembly-pyscript 1.27), so the benchmark
is a list of steps, each run by its own runPython() call, and heap figures
are taken at step boundaries.

Usage: .venv/bin/python tools/bench_smart.py [--no-vm]
"""
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N = 86400

# Each step runs unchanged on CPython and MicroPython; clock() returns ms.
STEPS = [r"""
import gc, json
from evse.profilestack import ProfileStack
T0 = 1795611600
N = __N__
res = {}
sc = ProfileStack()

def text(pid, purpose, n, mod):
    # JSON as the CSMS would send it: n one-second periods.
    per = ",".join(['{"startPeriod":%d,"limit":%d.%d}' % (i, 6 + i % mod, i % 10)
                    for i in range(n)])
    return ('{"chargingProfileId":%d,"stackLevel":1,"chargingProfilePurpose":"%s",'
            '"chargingProfileKind":"Absolute","chargingSchedule":{"startSchedule":'
            '"2026-11-25T13:00:00Z","chargingRateUnit":"A","chargingSchedulePeriod":[%s]}}'
            % (pid, purpose, per))

def heap():
    gc.collect()
    return gc.mem_alloc()
"""]
for _n in (24, N):
    STEPS += [
        "a = heap()",
        "src = text(9, 'TxDefaultProfile', %d, 7)" % _n,
        "t = clock()\nd = json.loads(src)\nres['json_ms_%d'] = clock() - t" % _n,
        "m0 = heap()\nt = clock()\nr = sc.set_profile(0, d, T0)\n"
        "res['install_ms_%d'] = clock() - t\nres['alloc_%d'] = gc.mem_alloc() - m0\n"
        "assert r == 'Accepted', r\ndel d, src" % (_n, _n),
        "res['heap_%d'] = heap() - a\nsc.clear()" % _n,
    ]
STEPS += [
    "d = json.loads(text(1, 'ChargePointMaxProfile', N, 26))",
    "assert sc.set_profile(0, d, T0) == 'Accepted'\ndel d",
    "d = json.loads(text(2, 'TxDefaultProfile', N, 20))",
    "assert sc.set_profile(0, d, T0) == 'Accepted'\ndel d",
    "d = json.loads(text(3, 'TxProfile', N, 13))",
    "assert sc.set_profile(1, d, T0, tx_id=1, tx_start=T0) == 'Accepted'\ndel d",
    "a = heap()\nt = clock()\nc = sc.composite(1, 86400, 'A', T0, T0)\n"
    "res['composite_ms'] = clock() - t\n"
    "res['composite_periods'] = len(c['chargingSchedule']['chargingSchedulePeriod'])",
    "res['composite_heap'] = heap() - a\ndel c",
    "t = clock()\nfor i in range(100):\n    sc.limit_da(1, T0 + 1000 * i + 7, T0)\n"
    "res['limit_da_us'] = (clock() - t) * 10",
    "t = clock()\ndump = sc.dump()\nres['dump_ms'] = clock() - t\n"
    "res['dump_bytes'] = sum([len(r) for r in dump])",
    "t = clock()\nsc.load(dump)\nres['load_ms'] = clock() - t\nassert sc.count == 3",
    "print(json.dumps(res))",
]
STEPS = [s.replace("__N__", str(N)) for s in STEPS]

# Node side: write the firmware into the VM, run each step in its own call.
_RUNNER = r"""
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";
const chunks = [];
for await (const c of process.stdin) chunks.push(c);
const job = JSON.parse(Buffer.concat(chunks).toString("utf8"));
let out = "";
const mp = await loadMicroPython({heapsize: job.heap, linebuffer: true,
  stdout: (s) => { out += s + "\n"; }, stderr: (s) => { process.stderr.write(s + "\n"); }});
for (const [path, src] of Object.entries(job.files)) {
  mp.FS.mkdirTree(path.slice(0, path.lastIndexOf("/")));
  mp.FS.writeFile(path, src);
}
mp.runPython("import sys, time\nsys.path.append('/lib')\nclock = time.ticks_ms");
for (const step of job.steps) mp.runPython(step);
process.stdout.write(out);
"""


def _cpython():
    sys.path.insert(0, os.path.join(ROOT, "firmware"))
    out = {}
    g = {"clock": lambda: time.perf_counter() * 1000,
         "print": lambda s: out.update(json.loads(s))}
    for step in STEPS:
        # CPython has no gc.mem_alloc(): heap figures are VM-only.
        exec(step.replace("gc.mem_alloc()", "0"), g)  # noqa: S102 - our own text
    return out


def _vm():
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import mpvm
    job = json.dumps({"files": mpvm.firmware_files(), "steps": STEPS, "heap": 512 << 20})
    p = subprocess.run(["node", "--input-type=module", "-e", _RUNNER], input=job,
                       capture_output=True, text=True, cwd=ROOT, timeout=900)
    if p.returncode != 0:
        raise RuntimeError("VM failed:\n" + p.stderr[-3000:])
    return json.loads(p.stdout.strip().splitlines()[-1])


ROWS = [
    ("json_ms_%d" % N, "json.loads of a %d-period profile (ms)" % N),
    ("install_ms_%d" % N, "set_profile %d periods: validate+install (ms)" % N),
    ("alloc_%d" % N, "  bytes allocated by it (garbage included)"),
    ("install_ms_24", "set_profile 24 periods (ms)"),
    ("composite_ms", "composite 24 h, 3 x %d-period profiles (ms)" % N),
    ("composite_periods", "  periods in that composite"),
    ("composite_heap", "  heap held by that payload (bytes)"),
    ("limit_da_us", "limit_da(), same 3 profiles (us/call)"),
    ("dump_ms", "dump() of the 3 profiles (ms)"),
    ("dump_bytes", "  record text (bytes)"),
    ("load_ms", "load() of those records (ms)"),
    ("heap_24", "heap held per installed 24-period profile (B)"),
    ("heap_%d" % N, "heap held per installed %d-period profile (B)" % N),
]


def main():
    cols = [("CPython " + sys.version.split()[0], _cpython())]
    if "--no-vm" not in sys.argv:
        cols.append(("MicroPython VM", _vm()))
    print(" " * 48 + "".join(name.rjust(18) for name, _ in cols))
    for key, label in ROWS:
        line = label.ljust(48)
        for name, res in cols:
            v = res.get(key)
            if v is None or (name.startswith("CPython") and ("heap" in key or "alloc" in key)):
                v = "-"
            elif isinstance(v, float):
                v = "%.1f" % v
            line += str(v).rjust(18)
        print(line)


if __name__ == "__main__":
    main()
