"""Local Authorization List (evse.locallist): SendLocalList rules, versions,
atomic persistence, garbage snapshots; plus both auth modules in the
MicroPython VM (same results as CPython, heap of a full list and cache)."""
import contextlib
import io
import json
import os
import shutil
import subprocess
from datetime import datetime

import ocpp.v16
import mpvm
import pytest
from evse.locallist import LocalList
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft4Validator
from mempersist import MemPersist

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCHEMAS = os.path.join(os.path.dirname(ocpp.v16.__file__), "schemas")


def _validator(name):
    with open(os.path.join(SCHEMAS, name + ".json")) as f:
        return Draft4Validator(json.load(f))


AUTH_RESPONSE = _validator("AuthorizeResponse")
SLL_REQ = _validator("SendLocalList")
SLL_CONF = _validator("SendLocalListResponse")
GLLV_CONF = _validator("GetLocalListVersionResponse")

NOW = 1_750_000_000  # 2025-06-15
EXP = "2026-01-01T00:00:00Z"
EXP_UNIX = 1_767_225_600
OK = {"status": "Accepted"}


def req(version, kind, entries=None, check=True):
    p = {"listVersion": version, "updateType": kind}
    if entries is not None:
        p["localAuthorizationList"] = [
            {"idTag": t} if i is None else {"idTag": t, "idTagInfo": i} for t, i in entries]
    if check:  # the test input itself is a schema-valid SendLocalList.req
        SLL_REQ.validate(p)
    return p


def send(ll, payload, enabled=True):
    status = ll.send_local_list(payload, enabled)
    SLL_CONF.validate({"status": status})
    return status


def version(ll, enabled=True):
    v = ll.get_version(enabled)
    GLLV_CONF.validate({"listVersion": v})
    return v


def info(ll, tag, now=NOW):
    i = ll.get(tag, now)
    if i is not None:
        AUTH_RESPONSE.validate({"idTagInfo": i})
        if "expiryDate" in i:
            datetime.fromisoformat(i["expiryDate"])
    return i


def tags(ll):
    return sorted(r[0] for r in ll.dump()["list"])


def test_fresh_list_is_empty_version_0_and_minus_1_when_disabled():
    ll = LocalList()
    assert len(ll) == 0 and ll.version == 0
    assert version(ll) == 0
    assert version(ll, enabled=False) == -1
    assert info(ll, "A") is None


def test_disabled_answers_not_supported_and_changes_nothing():
    ll = LocalList()
    assert send(ll, req(1, "Full", [("A", OK)]), enabled=False) == "NotSupported"
    assert len(ll) == 0 and ll.version == 0


def test_full_update_replaces_list():
    ll = LocalList()
    full = {"status": "Accepted", "expiryDate": EXP, "parentIdTag": "FLEET"}
    assert send(ll, req(3, "Full", [("A", full), ("B", {"status": "Blocked"})])) == "Accepted"
    assert version(ll) == 3 and ll.version == 3
    assert info(ll, "A") == full
    assert info(ll, "B") == {"status": "Blocked"}
    assert send(ll, req(4, "Full", [("C", OK)])) == "Accepted"
    assert tags(ll) == ["C"] and info(ll, "A") is None


@pytest.mark.parametrize("entries", [None, []])
def test_full_without_entries_empties_list_and_reports_0(entries):
    # OCTT TC_042_2_CS: Full, listVersion 1, no list -> GetLocalListVersion 0.
    ll = LocalList()
    assert send(ll, req(5, "Full", [("A", OK)])) == "Accepted"
    assert send(ll, req(1, "Full", entries)) == "Accepted"
    assert len(ll) == 0 and ll.version == 1
    assert version(ll) == 0  # section 5.10: 0 means the list is empty


def test_version_mismatch_sequence():
    # Shape of OCTT TC_043_2_CS: Full 2, Differential 5, then <= 5 refused.
    ll = LocalList()
    assert send(ll, req(2, "Full", [("A", OK)])) == "Accepted"
    assert version(ll) == 2
    assert send(ll, req(5, "Differential", [("B", OK)])) == "Accepted"
    assert version(ll) == 5
    assert send(ll, req(5, "Differential", [("C", OK)])) == "VersionMismatch"
    assert send(ll, req(4, "Differential", [("C", OK)])) == "VersionMismatch"
    assert version(ll) == 5 and tags(ll) == ["A", "B"]
    # A Full update is taken whatever its version.
    assert send(ll, req(3, "Full", [("C", OK)])) == "Accepted"
    assert version(ll) == 3 and tags(ll) == ["C"]


@pytest.mark.parametrize("v", [0, -1])
def test_differential_with_special_versions_mismatches(v):
    ll = LocalList()
    assert send(ll, req(v, "Differential", [("A", OK)])) == "VersionMismatch"


def test_differential_add_update_remove():
    ll = LocalList()
    assert send(ll, req(1, "Full", [("A", OK), ("B", OK), ("C", OK)])) == "Accepted"
    assert send(ll, req(2, "Differential", [
        ("A", None),                      # no idTagInfo: remove
        ("B", {"status": "Blocked"}),     # update
        ("D", {"status": "Accepted", "expiryDate": EXP}),  # add
        ("NOPE", None),                   # removing an absent idTag: no effect
    ])) == "Accepted"
    assert tags(ll) == ["B", "C", "D"] and version(ll) == 2
    assert info(ll, "A") is None
    assert info(ll, "B") == {"status": "Blocked"}
    assert info(ll, "D") == {"status": "Accepted", "expiryDate": EXP}


@pytest.mark.parametrize("entries", [None, []])
def test_empty_differential_changes_only_the_version(entries):
    ll = LocalList()
    send(ll, req(1, "Full", [("A", OK)]))
    assert send(ll, req(2, "Differential", entries)) == "Accepted"
    assert tags(ll) == ["A"] and version(ll) == 2


def test_differential_onto_empty_list_compares_with_reported_0():
    # The list was emptied at version 7; the CSMS is told 0, so version 1 is newer.
    ll = LocalList()
    send(ll, req(7, "Full"))
    assert version(ll) == 0
    assert send(ll, req(1, "Differential", [("A", OK)])) == "Accepted"
    assert version(ll) == 1


def test_too_many_entries_in_request_fails_and_keeps_old_list():
    ll = LocalList(max_length=100, max_send=3)
    send(ll, req(1, "Full", [("OLD", OK)]))
    assert send(ll, req(2, "Full", [(str(i), OK) for i in range(4)])) == "Failed"
    assert send(ll, req(2, "Differential", [(str(i), OK) for i in range(4)])) == "Failed"
    assert tags(ll) == ["OLD"] and version(ll) == 1
    assert send(ll, req(2, "Full", [(str(i), OK) for i in range(3)])) == "Accepted"
    assert len(ll) == 3


def test_resulting_list_too_long_fails_and_keeps_old_list():
    ll = LocalList(max_length=3, max_send=10)
    assert send(ll, req(1, "Full", [(str(i), OK) for i in range(4)])) == "Failed"
    assert len(ll) == 0 and ll.version == 0
    assert send(ll, req(1, "Full", [("A", OK), ("B", OK)])) == "Accepted"
    assert send(ll, req(2, "Differential", [("C", OK), ("D", OK)])) == "Failed"
    assert tags(ll) == ["A", "B"] and version(ll) == 1
    # Removals in the same request count: B goes, C and D fit.
    assert send(ll, req(2, "Differential", [("B", None), ("C", OK), ("D", OK)])) == "Accepted"
    assert tags(ll) == ["A", "C", "D"]


def test_full_length_limits_of_the_certified_product():
    # LocalAuthListMaxLength = SendLocalListMaxLength = 100.
    ll = LocalList()
    assert send(ll, req(1, "Full", [(f"{i:020d}", OK) for i in range(100)])) == "Accepted"
    assert len(ll) == 100
    assert send(ll, req(2, "Full", [(f"{i:020d}", OK) for i in range(101)])) == "Failed"
    assert send(ll, req(2, "Differential", [("X", OK)])) == "Failed"
    assert len(ll) == 100 and version(ll) == 1


@pytest.mark.parametrize("entries", [
    [("A", OK), ("B", OK), ("A", {"status": "Blocked"})],
    [("abc", OK), ("ABC", OK)],  # IdToken is case insensitive
    [("A", OK), ("A", None)],
])
def test_duplicate_idtags_fail(entries):
    # Section 5.15: all idTags in the list MUST be unique.
    ll = LocalList()
    send(ll, req(1, "Full", [("OLD", OK)]))
    kind = "Differential" if any(i is None for _, i in entries) else "Full"
    assert send(ll, req(2, kind, entries)) == "Failed"
    assert tags(ll) == ["OLD"] and version(ll) == 1


def test_full_entry_without_idtaginfo_fails():
    ll = LocalList()
    assert send(ll, req(1, "Full", [("A", OK), ("B", None)])) == "Failed"
    assert len(ll) == 0


@pytest.mark.parametrize("entry", [
    {"idTag": "T" * 21, "idTagInfo": OK},
    {"idTag": 42, "idTagInfo": OK},
    {"idTagInfo": OK},
    {"idTag": "A", "idTagInfo": {"status": "Unknown"}},
    {"idTag": "A", "idTagInfo": {}},
    {"idTag": "A", "idTagInfo": "Accepted"},
    {"idTag": "A", "idTagInfo": {"status": "Accepted", "expiryDate": "31/12/2026"}},
    {"idTag": "A", "idTagInfo": {"status": "Accepted", "parentIdTag": "P" * 21}},
    "A",
])
@pytest.mark.parametrize("kind", ["Full", "Differential"])
def test_invalid_entry_fails_whole_request(entry, kind):
    ll = LocalList()
    send(ll, req(1, "Full", [("OLD", OK)]))
    p = {"listVersion": 2, "updateType": kind,
         "localAuthorizationList": [{"idTag": "NEW", "idTagInfo": OK}, entry]}
    assert send(ll, p) == "Failed"
    assert tags(ll) == ["OLD"] and version(ll) == 1


@pytest.mark.parametrize("payload", [
    None, [], "Full", {},
    {"updateType": "Full"},
    {"listVersion": 2},
    {"listVersion": "2", "updateType": "Full"},
    {"listVersion": 2.0, "updateType": "Full"},
    {"listVersion": True, "updateType": "Full"},
    {"listVersion": 2, "updateType": "full"},
    {"listVersion": 2, "updateType": "Full", "localAuthorizationList": {"idTag": "A"}},
    {"listVersion": -1, "updateType": "Full"},
    {"listVersion": 0, "updateType": "Full", "localAuthorizationList": [{"idTag": "A", "idTagInfo": OK}]},
])
def test_malformed_or_reserved_requests_fail(payload):
    ll = LocalList()
    send(ll, req(1, "Full", [("OLD", OK)]))
    assert send(ll, payload) == "Failed"
    assert tags(ll) == ["OLD"] and version(ll) == 1


def test_full_version_0_without_entries_clears():
    ll = LocalList()
    send(ll, req(4, "Full", [("OLD", OK)]))
    assert send(ll, req(0, "Full")) == "Accepted"
    assert len(ll) == 0 and version(ll) == 0


def test_lookup_is_case_insensitive_and_length_checked():
    ll = LocalList()
    send(ll, req(1, "Full", [("04a1b2c3d4e5f6", OK)]))
    assert info(ll, "04A1B2C3D4E5F6") == OK
    assert info(ll, "x" * 21) is None
    assert info(ll, None) is None


def test_expired_entries_read_expired_after_expiry_date():
    ll = LocalList()
    send(ll, req(1, "Full", [("A", {"status": "Accepted", "expiryDate": EXP, "parentIdTag": "P"}),
                             ("B", {"status": "Blocked", "expiryDate": EXP})]))
    assert info(ll, "A", EXP_UNIX)["status"] == "Accepted"
    assert info(ll, "A", EXP_UNIX + 1) == {"status": "Expired", "expiryDate": EXP, "parentIdTag": "P"}
    assert info(ll, "B", EXP_UNIX + 1)["status"] == "Expired"
    # The list itself is the CSMS's: only the report changes, not the entry.
    assert info(ll, "A", NOW)["status"] == "Accepted"


def test_accepted_updates_are_saved_before_they_take_effect():
    p = MemPersist()
    ll = LocalList(persist=p)
    assert send(ll, req(1, "Full", [("A", {"status": "Accepted", "expiryDate": EXP, "parentIdTag": "P"}),
                                    ("B", OK)])) == "Accepted"
    assert send(ll, req(2, "Differential", [("B", None), ("C", {"status": "Invalid"})])) == "Accepted"
    assert p.saves == 2
    send(ll, req(2, "Differential", [("D", OK)]))          # VersionMismatch
    send(ll, req(3, "Full", [("D", OK), ("D", OK)]))       # Failed
    send(ll, req(3, "Full", [("E", OK)]), enabled=False)   # NotSupported
    assert p.saves == 2
    again = LocalList(persist=p)
    assert version(again) == 2 and tags(again) == ["A", "C"]
    assert info(again, "A") == {"status": "Accepted", "expiryDate": EXP, "parentIdTag": "P"}
    assert info(again, "C") == {"status": "Invalid"}
    assert again.dump() == json.loads(json.dumps(ll.dump()))


def test_empty_list_version_survives_reload():
    p = MemPersist()
    send(LocalList(persist=p), req(9, "Full"))
    again = LocalList(persist=p)
    assert again.version == 9 and version(again) == 0


def test_save_failure_answers_failed_and_keeps_old_list():
    p = MemPersist()
    ll = LocalList(persist=p)
    send(ll, req(1, "Full", [("A", OK)]))
    p.fail = True
    assert send(ll, req(2, "Full", [("B", OK)])) == "Failed"
    assert send(ll, req(2, "Differential", [("B", OK)])) == "Failed"
    assert tags(ll) == ["A"] and version(ll) == 1
    p.fail = False
    assert tags(LocalList(persist=p)) == ["A"]


GOOD = {"v": 1, "version": 3, "list": [["A", "Accepted", None, None], ["B", "Blocked", EXP_UNIX, "P"]]}


def test_good_snapshot_loads():
    ll = LocalList(persist=MemPersist(GOOD))
    assert version(ll) == 3 and tags(ll) == ["A", "B"]
    assert info(ll, "B") == {"status": "Blocked", "expiryDate": EXP, "parentIdTag": "P"}


@pytest.mark.parametrize("obj", [
    None, [], "x", 7, {}, {"v": 2, "version": 3, "list": []},
    {"v": 1, "version": "3", "list": []},
    {"v": 1, "version": 3, "list": "AB"},
    {"v": 1, "version": 3, "list": 5},
    {"v": 1, "version": 3, "list": GOOD["list"] + [["C", "Nope", None, None]]},
    {"v": 1, "version": 3, "list": GOOD["list"] + [["C", "Accepted", "2026", None]]},
    {"v": 1, "version": 3, "list": GOOD["list"] + [["C", "Accepted", None]]},
    {"v": 1, "version": 3, "list": GOOD["list"] + [["c" * 21, "Accepted", None, None]]},
    {"v": 1, "version": 3, "list": GOOD["list"] + [["a", "Accepted", None, None]]},  # duplicate of A
    {"v": 1, "version": 3, "list": [[str(i), "Accepted", None, None] for i in range(4)]},  # > max_length
])
def test_garbage_snapshot_loads_empty_version_0(obj):
    ll = LocalList(max_length=3, persist=MemPersist(obj))
    assert len(ll) == 0 and ll.version == 0 and version(ll) == 0
    assert ll.load(obj) is False


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=22),
    lambda ch: st.lists(ch, max_size=5)
    | st.dictionaries(st.sampled_from(["v", "version", "list", "idTag", "idTagInfo", "status",
                                       "listVersion", "updateType", "localAuthorizationList"]),
                      ch, max_size=4),
    max_leaves=30)


@settings(derandomize=True, max_examples=300, deadline=None)
@given(JSON)
def test_load_and_send_never_raise(obj):
    ll = LocalList(max_length=5, max_send=5)
    ll.load(obj)
    assert send(ll, obj) in ("Failed", "VersionMismatch", "Accepted")
    assert len(ll) <= 5


# ---- MicroPython VM ---------------------------------------------------------

NODE = shutil.which("node")
needs_vm = pytest.mark.skipif(
    NODE is None or not os.path.isdir(os.path.join(ROOT, "node_modules", "@micropython")),
    reason="MicroPython WebAssembly VM not installed")

# Both modules through one scenario; printed as JSON lines and compared parsed
# (dict and snapshot row order differ between the two Pythons).
SCENARIO = r'''
import json
from evse.authcache import AuthCache
from evse.locallist import LocalList
class P:
    def __init__(self):
        self.obj = None
        self.fail = False
    def load(self):
        return self.obj
    def save(self, o):
        if self.fail:
            raise OSError(5)
        self.obj = json.loads(json.dumps(o))
def out(*a):
    print(json.dumps(list(a)))
N = 1750000000
E = "2026-01-01T00:00:00Z"
c = AuthCache(capacity=3, persist=P())
c.update("aabb", {"status": "Accepted", "expiryDate": E, "parentIdTag": "Fleet"}, N)
c.update("B", {"status": "Blocked"}, N)
c.update("C", {"status": "Accepted", "expiryDate": "2099-12-31T23:59:59Z"}, N)
out("hit", c.get("AABB", N), c.dirty)
c.update("D", {"status": "Invalid"}, N)
out("evicted B", c.get("B", N), len(c))
out("expired", c.get("aabb", 1767225601))
out("save", c.save(), c.dirty)
c2 = AuthCache(capacity=3, persist=c._persist)
out("reload", sorted(c2.dump()["e"]), c2.get("C", N))
out("garbage", c2.load({"v": 1, "e": [5, ["X", "Nope", None, None, 1], ["Y", "Accepted", None, None, 2]]}), len(c2))
c2.clear()
out("clear", len(c2), c2.dirty)
p = P()
ll = LocalList(max_length=4, max_send=3, persist=p)
def sll(v, kind, ents):
    r = {"listVersion": v, "updateType": kind}
    if ents is not None:
        r["localAuthorizationList"] = ents
    return ll.send_local_list(r)
A = {"status": "Accepted"}
out("full", sll(2, "Full", [{"idTag": "a", "idTagInfo": A},
                            {"idTag": "b", "idTagInfo": {"status": "Accepted", "expiryDate": E, "parentIdTag": "P"}}]),
    ll.get_version(), ll.get_version(False))
out("diff", sll(5, "Differential", [{"idTag": "A"}, {"idTag": "c", "idTagInfo": A}]), ll.get_version())
out("mismatch", sll(5, "Differential", []), sll(4, "Differential", None))
out("too many", sll(6, "Full", [{"idTag": str(i), "idTagInfo": A} for i in range(4)]))
out("too long", sll(6, "Differential", [{"idTag": str(i), "idTagInfo": A} for i in range(3)]))
out("dup", sll(6, "Full", [{"idTag": "x", "idTagInfo": A}, {"idTag": "X", "idTagInfo": A}]))
out("get", ll.get("B", 1767225600), ll.get("B", 1767225601), ll.get("C", 0), ll.get("A", 0))
p.fail = True
out("save fails", sll(6, "Full", []), ll.get_version(), len(ll))
p.fail = False
out("reload", sorted(LocalList(persist=p).dump()["list"]), LocalList(persist=p).version)
out("empty", sll(7, "Full", None), ll.get_version(), ll.version)
out("garbage", LocalList(persist=P()).load({"v": 1, "version": 3, "list": [["A", "Accepted", None]]}))
out("disabled", ll.send_local_list({"listVersion": 9, "updateType": "Full"}, False))
'''


def _vm(steps):
    """Run code steps in one fresh VM, one runPython call each (the VM's GC
    only reclaims between calls); returns stdout."""
    files = {k: v for k, v in mpvm.firmware_files().items() if k.startswith("/lib/evse/")}
    js = r'''
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";
const chunks = [];
for await (const c of process.stdin) chunks.push(c);
const job = JSON.parse(Buffer.concat(chunks).toString("utf8"));
let out = "";
const mp = await loadMicroPython({stdout: (s) => { out += s + "\n"; }, stderr: (s) => { out += s + "\n"; },
                                  linebuffer: true});
mp.FS.mkdirTree("/lib/evse");
for (const [p, src] of Object.entries(job.files)) {
  mp.FS.mkdirTree(p.slice(0, p.lastIndexOf("/")));
  mp.FS.writeFile(p, src);
}
mp.runPython("import sys\nsys.path.append('/lib')");
try { for (const s of job.steps) mp.runPython(s); }
catch (e) { process.stdout.write(out); console.error(e.message); process.exit(1); }
process.stdout.write(out);
'''
    p = subprocess.run([NODE, "--input-type=module", "-e", js], check=False, cwd=ROOT, capture_output=True,
                       text=True, timeout=60, input=json.dumps({"files": files, "steps": steps}))
    assert p.returncode == 0, p.stderr + p.stdout
    return p.stdout


def _lines(text):
    return [json.loads(x) for x in text.splitlines() if x.startswith("[")]


@needs_vm
def test_micropython_vm_gives_cpython_results():
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(SCENARIO, {"__name__": "scenario"})  # noqa: S102 - our own script, run on both Pythons
    host = _lines(buf.getvalue())
    assert len(host) == 19
    assert host[1] == ["evicted B", None, 3]
    assert host[2][1]["status"] == "Expired"
    assert _lines(_vm([SCENARIO])) == host


MEASURE = r'''
import gc
from evse.locallist import LocalList
from evse.authcache import AuthCache
def entries(n, tag_len, exp, parent):
    r = []
    for i in range(n):
        info = {"status": "Accepted"}
        if exp:
            info["expiryDate"] = "2030-01-01T00:00:00Z"
        if parent:
            info["parentIdTag"] = "PARENT%014d" % (i % 5)
        r.append({"idTag": ("%0" + str(tag_len) + "X") % (0xA0000000 + i), "idTagInfo": info})
    return r
OBJ = None
'''


def _heap(build):
    # Growth includes interned-name pools the VM extends when the code it runs
    # interns new names, so the bounds have ~0.5 KB of room above the tables.
    out = _vm([MEASURE, "gc.collect(); BASE = gc.mem_alloc()", build,
               "gc.collect(); print(gc.mem_alloc() - BASE, len(OBJ))"])
    used, n = (int(x) for x in out.split())
    return used, n


@needs_vm
@pytest.mark.parametrize("tag_len, exp, parent, limit", [
    (20, True, True, 11_000),    # worst case: CiString20 idTags, expiry and parent on all
    (8, False, False, 5_000),    # 4-byte UIDs, status only
])
def test_heap_of_full_local_list(tag_len, exp, parent, limit):
    used, n = _heap("OBJ = LocalList()\nassert OBJ.send_local_list({'listVersion': 1, 'updateType': 'Full', "
                    f"'localAuthorizationList': entries(100, {tag_len}, {exp}, {parent})}}) == 'Accepted'")
    print(f"LocalList 100 entries (tag {tag_len}, expiry {exp}, parent {parent}): {used} bytes")
    assert n == 100 and used < limit


@needs_vm
@pytest.mark.parametrize("tag_len, exp, parent, limit", [
    (20, True, True, 10_500),
    (8, False, False, 5_500),
])
def test_heap_of_full_cache(tag_len, exp, parent, limit):
    used, n = _heap(f"OBJ = AuthCache()\nfor e in entries(64, {tag_len}, {exp}, {parent}):\n"
                    "    OBJ.update(e['idTag'], e['idTagInfo'], 1750000000)\ne = None")
    print(f"AuthCache 64 entries (tag {tag_len}, expiry {exp}, parent {parent}): {used} bytes")
    assert n == 64 and used < limit
