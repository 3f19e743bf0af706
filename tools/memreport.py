"""Heap and flash figures of the firmware, measured in the MicroPython VM
(32-bit, like ESP32/RP2040).

Prints: bytes allocated after importing each firmware module (cumulative
and per module), after building the station and after boot, the peak
during each scenario, and the size of each .mpy file with their total.

The VM's gc only reclaims garbage between separate runPython calls, so
each figure is taken in a step of its own after a collecting step. The
peak is sampled inside the scenario (gc.collect() at every step); it is an
upper bound, since stale references on the VM's stack are counted too.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import build  # noqa: E402
import mpvm  # noqa: E402

# Import order = dependency order, so each delta is that module's own cost.
MODULES = ["compat", "timestamp", "wire.rpc", "wire.schema", "timers", "config", "store.files",
           "store.snapshot", "store.journal", "store.storage", "idtag", "authcache", "authorize",
           "connector", "boot", "measurands", "txqueue", "transaction", "metervalues", "remote", "station",
           "locallist", "reservation", "trigger", "chargingprofile", "profilestack", "smartcharge", "seclog",
           "security", "certificates", "jobs", "diagnostics", "fwupdate", "link.ws", "link.transport",
           "link.tls", "link.wsconn", "runtime"]

MEASURE = "gc.collect()\nprint('M', gc.mem_alloc())"

SCENARIO_SETUP = """
import gc
from evse.station import Station, FEATURES
from evse.store.storage import FileStorage
from boards.sim.board import SimBoard
for f in FEATURES:
    __import__('evse.' + f)
from scenarios.scripted import ScriptedCsms
from scenarios.vclock import VirtualClock
from scenarios import %s as sc
"""
def scenario_files() -> dict[str, str]:
    return mpvm.scenario_files()


def measures(out: str) -> list[int]:
    return [int(line.split()[1]) for line in out.splitlines() if line.startswith("M ")]


def module_costs(mpy: bool) -> list[tuple[str, int]]:
    """Heap per imported module, from source or from .mpy files."""
    present = [m for m in MODULES if os.path.exists(os.path.join(ROOT, "firmware", "evse", *m.split(".")) + ".py")]
    steps = ["import gc", "gc.collect()", MEASURE]
    for m in present:
        steps += ["import evse.%s" % m, "gc.collect()", MEASURE]
    if mpy:
        with tempfile.TemporaryDirectory() as d:
            build.compile_all(d, quiet=True)
            vals = measures(mpvm.run(steps, mpvm.mpy_files(d), source=False))
    else:
        vals = measures(mpvm.run(steps))
    return [(m, vals[i + 1] - vals[i]) for i, m in enumerate(present)] + [("(baseline)", vals[0])]


def count_steps(module: str) -> int:
    """Steps of the scenario (run on CPython to size the VM driver)."""
    sys.path[:0] = [os.path.join(ROOT, "firmware"), ROOT, os.path.join(ROOT, "host_tests")]
    mod = __import__("scenarios." + module, None, None, ["steps"])
    with tempfile.TemporaryDirectory() as d:
        return sum(1 for _ in mod.steps(d, [], True))


def scenario(module: str) -> dict[str, int]:
    """Heap of the station (not the test harness) through a scenario.

    Each scenario step is its own VM call; after it, the heap is read
    before collecting (live + everything the step allocated: an upper
    bound of the step's peak) and after collecting (live)."""
    steps = [SCENARIO_SETUP % module, "gc.collect()", MEASURE,
             "out = []\ng = sc.steps('/data', out, True)\nnext(g)", "gc.collect()", MEASURE]
    for _ in range(count_steps(module) - 1):
        steps += ["next(g, None)\nprint('A', gc.mem_alloc())", "gc.collect()", MEASURE]
    out = mpvm.run(steps, scenario_files(), timeout=600)
    live = measures(out)
    during = [int(line.split()[1]) for line in out.splitlines() if line.startswith("A ")]
    base = live[0]
    return {"after boot (first step)": live[1] - base,
            "peak during a step (upper bound)": max(during) - base,
            "peak live between steps": max(live[1:]) - base,
            "after scenario": live[-1] - base}


AUTH_TABLES = [
    "import gc\nfrom evse.locallist import LocalList\nfrom evse.authcache import AuthCache",
    "gc.collect()", MEASURE,
    "ll = LocalList(max_length=100, max_send=100)\n"
    "ll.send_local_list({'listVersion': 1, 'updateType': 'Full', 'localAuthorizationList': ["
    "{'idTag': 'TAG%016d' % i, 'idTagInfo': {'status': 'Accepted', 'expiryDate': '2030-01-01T00:00:00Z',"
    " 'parentIdTag': 'GROUP%015d' % (i % 5)}} for i in range(100)]})",
    "gc.collect()", MEASURE,
    "c = AuthCache(capacity=64)\nfor i in range(64):\n"
    "    c.update('CARD%016d' % i, {'status': 'Accepted', 'expiryDate': '2030-01-01T00:00:00Z',"
    " 'parentIdTag': 'GROUP%015d' % i}, 1767225600)",
    "gc.collect()", MEASURE,
]


def auth_tables() -> tuple[int, int]:
    base, with_list, with_cache = measures(mpvm.run(AUTH_TABLES))
    return with_list - base, with_cache - with_list


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenarios", default="boot,session", help="comma separated scenario modules")
    a = ap.parse_args()
    print("Heap after importing each firmware module (MicroPython VM, bytes; per module and")
    print("cumulative, from .mpy files as on a device with /lib, then from source):")
    src = dict(module_costs(False))
    total = total_src = 0
    for name, n in module_costs(True):
        if name == "(baseline)":
            continue
        total += n
        total_src += src[name]
        print(f"  {n:7d}  {total:7d}    {src[name]:7d}  {total_src:7d}  evse.{name}")
    print("  (modules frozen into the firmware image run from flash instead; the VM cannot show that)")
    for sc in a.scenarios.split(","):
        if not os.path.exists(os.path.join(ROOT, "host_tests", "scenarios", sc + ".py")):
            continue
        print(f"Scenario '{sc}' (heap above the imported modules' baseline, bytes):")
        for k, v in scenario(sc).items():
            print(f"  {v:7d}  {k}")
    ll, cache = auth_tables()
    print("Authorization tables, 20-character tags with expiry and parent (bytes):")
    print(f"  {ll:7d}  local list, 100 entries (LocalAuthListMaxLength)")
    print(f"  {cache:7d}  authorization cache, 64 entries (full)")
    print(".mpy sizes (mpy-cross, bytes):")
    with tempfile.TemporaryDirectory() as d:
        build.compile_all(d)
    import memboard  # per board, and the 100-entry list streamed vs parsed whole (issue 13)

    memboard.main()
    memboard.list_report()


if __name__ == "__main__":
    main()
