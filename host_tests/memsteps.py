"""Heap of code paths in the MicroPython VM, step by step.

The VM's gc reclaims nothing inside one runPython call (its heap grows
instead), so a path is cut into steps, each its own call: after a step the
heap is read before collecting (live + all the step allocated: an upper
bound of the step's peak) and after collecting (what stays live). Figures
are bytes above the baseline taken after `setup`.
"""
from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tools"))
import mpvm  # noqa: E402

_AFTER = "print('A', gc.mem_alloc())"
_LIVE = "gc.collect()\nprint('M', gc.mem_alloc())"

# A 100-entry SendLocalList as a CSMS sends it at the certificate's limit:
# 20-character tags, expiry and parent on every entry.
LIST_SETUP = """
import gc, json, os
try:
    os.mkdir('/data')
except OSError:
    pass
from evse.wire import rpc, schema, jsonstream  # bytecode: in flash when frozen
from evse.locallist import LocalList
from evse.store.storage import FileStorage
ll = LocalList(100, 100, persist=FileStorage('/data').persist('locallist'))
text = json.dumps([2, "u1", "SendLocalList", {"listVersion": 1, "updateType": "Full",
    "localAuthorizationList": [{"idTag": "TAG%017d" % i, "idTagInfo": {"status": "Accepted",
        "expiryDate": "2030-01-01T00:00:00Z", "parentIdTag": "GROUP%015d" % (i % 5)}} for i in range(%d)]}])
"""

# The streamed path, cut where locallist._send_stream loops: the same calls.
STREAM_STEPS = [
    "head, at, h = rpc.decode_head(text), None, {}\nr = head[2]\n"
    "for key in r.keys():\n"
    "    if key == 'localAuthorizationList':\n        at = r.pos\n"
    "    else:\n        h[key] = r.value(max_size=64)\n"
    "r.frame_end()\nassert schema.check_call('SendLocalList', h) is None\n"
    "r.pos = at\nbox = [None]\n"
    "one = {'listVersion': 1, 'updateType': 'Full', 'localAuthorizationList': box}\n"
    "new, seen, parents = {}, {}, {}\nitems = r.items()",
]
STREAM_ENTRY = ("next(items)\ne = r.value(max_depth=2, max_size=256)\nbox[0] = e\n"
                "assert schema.check_call('SendLocalList', one) is None\n"
                "assert ll._put(new, seen, parents, e, True)\ne = None")
STREAM_END = ["next(items, None)\nr = items = head = None\nbox[0] = None",
              "assert ll._commit(1, new, True) == 'Accepted'\nnew = seen = parents = None"]

TREE_STEPS = ["m = rpc.decode(text)",
              "assert ll.send_local_list(m[3]) == 'Accepted'\nm = None"]


def run_steps(setup: str, steps: list[str]) -> dict[str, int]:
    code = [setup, _LIVE]
    for s in steps:
        code += [s + "\n" + _AFTER, _LIVE]
    out = mpvm.run(code, timeout=300)
    live = [int(x.split()[1]) for x in out.splitlines() if x.startswith("M ")]
    after = [int(x.split()[1]) for x in out.splitlines() if x.startswith("A ")]
    base = live[0]
    return {"live max": max(live) - base, "step peak max (upper bound)": max(after) - base,
            "live at end": live[-1] - base}


def send_local_list(n: int = 100, streamed: bool = True) -> dict[str, int]:
    setup = LIST_SETUP.replace("range(%d)", "range(%d)" % n)
    steps = STREAM_STEPS + [STREAM_ENTRY] * n + STREAM_END if streamed else TREE_STEPS
    return run_steps(setup, steps)


def frame_bytes(n: int = 100) -> int:
    out = mpvm.run(LIST_SETUP.replace("range(%d)", "range(%d)" % n) + "\nprint('L', len(text))")
    return int(out.split("L ")[1].split()[0])


# The whole station path in one VM call: live before and after, and the
# heap before collecting (an upper bound of the peak: every allocation of
# the call counts, garbage included).
STATION_SETUP = """
import gc, json, os
try:
    os.mkdir('/data')
except OSError:
    pass
from evse.station import Station
from evse.store.storage import FileStorage
from evse.wire import jsonstream  # bytecode: in flash when frozen
from boards.sim.board import SimBoard
from scenarios.vclock import VirtualClock
st = Station(board=SimBoard(overrides={'ChargingScheduleMaxPeriods': '%(max)d'}), clock=VirtualClock(),
             storage=FileStorage('/data'))
%(tree)s
text = json.dumps([2, "u1", "%(action)s", %(payload)s])
"""
LIST_PAYLOAD = ("{'listVersion': 1, 'updateType': 'Full', 'localAuthorizationList': [{'idTag': 'TAG%%017d' %% i,"
                " 'idTagInfo': {'status': 'Accepted', 'expiryDate': '2030-01-01T00:00:00Z',"
                " 'parentIdTag': 'GROUP%%015d' %% (i %% 5)}} for i in range(%d)]}")
PROFILE_PAYLOAD = ("{'connectorId': 1, 'csChargingProfiles': {'chargingProfileId': 1, 'stackLevel': 0,"
                   " 'chargingProfilePurpose': 'TxDefaultProfile', 'chargingProfileKind': 'Relative',"
                   " 'chargingSchedule': {'chargingRateUnit': 'A', 'chargingSchedulePeriod':"
                   " [{'startPeriod': i * 60, 'limit': 6 + i %% 20} for i in range(%d)]}}}")


def station_receive(action: str, payload: str, streamed: bool, max_periods: int = 86400) -> dict[str, int]:
    setup = STATION_SETUP % {"max": max_periods, "action": action, "payload": payload,
                             "tree": "" if streamed else "st.stream_handlers = {}"}
    code = [setup, _LIVE, "st.receive(text, 0)\n" + _AFTER + "\nf = st.take_frames()\nprint('F', len(f[0]))"
            "\nassert 'Accepted' in f[0], f[0][:200]\nf = None", _LIVE]
    out = mpvm.run(code, scenario_files(), timeout=300)
    live = [int(x.split()[1]) for x in out.splitlines() if x.startswith("M ")]
    after = [int(x.split()[1]) for x in out.splitlines() if x.startswith("A ")]
    return {"all allocations (upper bound)": after[0] - live[0], "live after": live[1] - live[0]}


def scenario_files() -> dict[str, str]:
    return mpvm.scenario_files()
