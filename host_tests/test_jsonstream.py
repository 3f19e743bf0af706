"""evse.wire.jsonstream: the pull reader agrees with json.loads on valid and
invalid JSON, walks OCPP-J frames without an object tree, and keeps the
live heap small in the MicroPython VM (figures printed with -s)."""
import json
import math
import os
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evse.wire.jsonstream import JsonError, Reader

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tools"))
import mpvm  # noqa: E402

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "300"))


def _no_constants(name):
    raise ValueError("not JSON: " + name)


def loads(data, max_depth=64, max_size=None, max_number=None):
    """The whole document through the reader (json.loads with its strictness)."""
    return Reader(data, max_depth=max_depth, max_size=max_size, max_number=max_number).document()


def strict_loads(text):
    """CPython's json.loads without its NaN/Infinity extension."""
    return json.loads(text, parse_constant=_no_constants)


def same(a, b):
    """Equal, with NaN-free floats compared by value and type kept."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def outcome(fn, text):
    try:
        return ("ok", fn(text))
    except ValueError:  # JsonError and json.JSONDecodeError are ValueErrors
        return ("error", None)


def agree(text):
    ours, theirs = outcome(loads, text), outcome(strict_loads, text)
    assert ours[0] == theirs[0], (text, ours, theirs)
    assert same(ours[1], theirs[1]), text


scalars = (st.none() | st.booleans() | st.integers() | st.text(max_size=20)
           | st.floats(allow_nan=False, allow_infinity=False))
values = st.recursive(scalars, lambda kids: st.lists(kids, max_size=5)
                      | st.dictionaries(st.text(max_size=8), kids, max_size=5), max_leaves=30)
layouts = st.sampled_from([{}, {"separators": (",", ":")}, {"indent": 1}, {"ensure_ascii": False},
                           {"indent": "\t", "ensure_ascii": False}])


@settings(max_examples=EXAMPLES, deadline=None)
@given(values, layouts)
def test_valid_json_reads_as_json_loads(value, layout):
    text = json.dumps(value, **layout)
    assert same(loads(text), json.loads(text))
    assert same(loads(text.encode()), json.loads(text))
    # value() leaves texts without a \u escape to the C parser: the
    # builder used for the others must read everything alike
    r = Reader(text, max_depth=None, max_number=None)
    assert same(r._build(), json.loads(text))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values, st.data())
def test_mutated_json_refused_or_read_as_json_loads(value, data):
    text = json.dumps(value, ensure_ascii=data.draw(st.booleans()))
    i = data.draw(st.integers(0, len(text)))
    junk = data.draw(st.sampled_from(list('{}[],:"\\ -+.eE0u\t\n\x00\x1f\x7ftnf') + ["\\u", "\\ud800", "01"]))
    op = data.draw(st.sampled_from(["insert", "replace", "delete"]))
    if op == "insert":
        text = text[:i] + junk + text[i:]
    elif op == "replace":
        text = text[:i] + junk + text[i + 1:]
    else:
        text = text[:i] + text[i + 1:]
    agree(text)


ODD = [
    r'"\/\\\"\b\f\n\r\t"', r'"\u0000\u001f\u007f"', r'"\uD83D\uDE00"', r'"\ud83d\ude00x"',
    r'"\uDE00\uD83D"', r'"\ud83dx"', r'"\ud83d\u0041"', r'"\ud83d\ud83d\ude00"', r'"\uabcd\uABCD"',
    r'"\u00e9é"', '"\U0001f600"', r'"\u12G4"', r'"\U1234"', r'"\x41"', r'"\u123"', r'"\"', '"\\',
    r'"\u', r'"\ud83d\u', '"a\tb"', '"a\nb"', '"\x00"', '"\x7f"', "\t[\r\n1 ]\n", "[1]\x00", "\x0b1",
    "1", "-0", "-0.0", "0e0", "1E+2", "1e-2", "-", "--1", "+1", "01", "1.", ".1", "1e", "1e+", "0x10",
    "1.5e308", "1e400", "-1e400", "1" * 40, "9" * 4000, "[]", "{}", "[,]", "[1,]", '{"a":1,}', '{"a"}',
    '{"a":}', '{1:2}', '{"a":1 "b":2}', '{"a":1,"a":2}', "[1 2]", "true", "tRue", "nul", "nulll",
    "NaN", "Infinity", "-Infinity", "", " ", "[", "]", '{"a":[1,{"b":null}],"c":"d"}', "[1]]", "[[]",
]


@pytest.mark.parametrize("text", ODD)
def test_odd_texts_agree_with_json_loads(text):
    agree(text)


def test_error_positions_are_byte_offsets():
    cases = {'[1,]': 3, '{"a":1,}': 7, '"\u00e9\\x"': 3, "[1 2]": 3, '{"a"}': 4, "[1]  x": 5,
             '"ab': 0, "\x01": 0, '[tru]': 1}
    for text, pos in cases.items():
        with pytest.raises(JsonError) as e:
            loads(text)
        assert e.value.pos == pos, text


def test_limits_depth_size_and_number_length():
    deep = "[" * 9 + "]" * 9
    with pytest.raises(JsonError, match="deep"):
        Reader(deep).value()  # default max_depth 8
    assert Reader(deep, max_depth=9).value() == json.loads(deep)
    with pytest.raises(JsonError, match="big"):
        Reader(json.dumps(["x" * 2000])).value()
    assert Reader(json.dumps(["x" * 2000])).value(max_size=3000) == ["x" * 2000]
    with pytest.raises(JsonError, match="long"):
        Reader("1" * 41).scalar()
    assert Reader("1" * 40).scalar() == int("1" * 40)
    # skip() is iterative: 100,000 levels need no recursion
    very = "[" * 100000 + "]" * 100000
    r = Reader(very, max_depth=None)
    r.skip()
    r.finish()
    with pytest.raises(JsonError, match="deep"):
        Reader(very).skip()


def test_inputs_str_bytes_bytearray_memoryview():
    text = '{"k":["\u00e9",1]}'
    for data in (text, text.encode(), bytearray(text.encode()), memoryview(text.encode())):
        assert loads(data) == {"k": ["\u00e9", 1]}


LIST = {"listVersion": 7, "updateType": "Full", "localAuthorizationList": [
    {"idTag": "TAG%017d" % i, "idTagInfo": {"status": "Accepted", "expiryDate": "2030-01-01T00:00:00Z",
                                            "parentIdTag": "GROUP%015d" % (i % 5)}} for i in range(5)]}


def test_cursor_walks_a_frame_entry_by_entry():
    text = json.dumps([2, "uid-1", "SendLocalList", LIST])
    r = Reader(text)
    assert r.frame() == (2, "uid-1", "SendLocalList")
    got, version = [], None
    for key in r.keys():
        if key == "localAuthorizationList":
            assert r.kind() == "array"
            for _ in r.items():
                assert r.kind() == "object"
                got.append(r.value())
        elif key == "listVersion":
            version = r.scalar()
        # updateType left unread: skipped
    r.frame_end()
    assert got == LIST["localAuthorizationList"] and version == 7


def send_local_list_handler(text, max_send=100):
    """How a streaming SendLocalList handler reads: the small fields first
    (the list may come before them), then the list, entry by entry."""
    r = Reader(text)
    assert r.frame()[2] == "SendLocalList"
    head, at = {}, None
    for key in r.keys():
        if key == "localAuthorizationList":
            at = r.pos  # skipped (and checked) now, walked below
        else:
            head[key] = r.value(max_size=64)
    end = r.pos
    r.frame_end()  # the whole frame is valid before anything is applied
    entries = []
    if at is not None:
        r.pos = at
        for i in r.items():
            if i == max_send:
                raise ValueError("too many entries")
            entries.append(r.value(max_depth=2, max_size=256))
        r.pos = end
    return head, entries


def test_two_pass_handler_reads_fields_after_the_list():
    payload = dict(reversed(list(LIST.items())))  # list first, as a CSMS may send it
    text = json.dumps([2, "u", "SendLocalList", payload])
    assert text.index("localAuthorizationList") < text.index("listVersion")
    head, entries = send_local_list_handler(text)
    assert head == {"listVersion": 7, "updateType": "Full"} and entries == LIST["localAuthorizationList"]
    with pytest.raises(ValueError):
        send_local_list_handler(text, max_send=3)
    with pytest.raises(JsonError):  # a broken tail is found before any entry is used
        send_local_list_handler(text[:-1] + ",]")


def test_nested_cursors_and_unread_values_skipped():
    r = Reader('{"a":{"x":[1,2],"y":3},"b":[[1],{"z":"w"}],"c":4}')
    seen = []
    for k in r.keys():
        if k == "a":
            for k2 in r.keys():
                seen.append(k2)  # values left unread
        elif k == "b":
            for i in r.items():
                if i == 1:
                    for k3 in r.keys():
                        seen.append((k3, r.scalar()))
        else:
            seen.append(r.scalar())
    r.finish()
    assert seen == ["x", "y", ("z", "w"), 4]


def test_leaving_an_inner_container_early_is_misuse():
    r = Reader('{"a":[1,2,3],"b":1}')
    with pytest.raises(RuntimeError):
        for _k in r.keys():
            for _ in r.items():
                break


def test_scalar_refuses_containers_and_reads_every_scalar():
    assert [Reader(t).scalar() for t in ('"s"', "-1.5e1", "true", "false", "null", "12")] == \
        ["s", -15.0, True, False, None, 12]
    with pytest.raises(JsonError):
        Reader("[1]").scalar()
    assert [Reader(t).kind() for t in ("{", "[", '"', "-1", "7", "t", "f", "n")] == \
        ["object", "array", "string", "number", "number", "bool", "bool", "null"]


@pytest.mark.parametrize("text,head", [
    ('[2,"a","Heartbeat",{}]', (2, "a", "Heartbeat")),
    (' [ 3 , "b" , {"status":"Accepted"} ] ', (3, "b", None)),
    ('[4,"c","NotImplemented","no",{"a":1}]', (4, "c", "NotImplemented")),
])
def test_frame_heads(text, head):
    r = Reader(text)
    assert r.frame() == head
    if head[0] == 4:
        assert r.scalar() == "no"
        r.comma()
        assert r.value() == {"a": 1}
    else:
        r.skip()
    r.frame_end()


@pytest.mark.parametrize("text,uid", [
    ('["2","a","X",{}]', None), ('[2.0,"a","X",{}]', None), ('[5,"a",{}]', None), ("[2,1,{}]", None),
    ('[2,"a",3,{}]', "a"), ('[2,"a","X",{}', "a"), ('[2,"a","X",{},1]', "a"), ('[2,"a","X",{}]x', "a"),
    ("{}", None), ('[2,"a"', "a"),
])
def test_bad_frames_raise_with_the_uid_when_known(text, uid):
    r = Reader(text)
    with pytest.raises(JsonError):
        r.frame()
        r.skip()
        r.frame_end()
    assert r.uid == uid


# -- the same reader in the MicroPython VM

VM_CASES = [t for t in ODD if "e400" not in t and "9" * 50 not in t] + [
    json.dumps([2, "u", "SendLocalList", LIST]), json.dumps({"\u00e9": ["\U0001f600", -2, 0.5]}),
]

VM_SCRIPT = """
import json
from evse.wire.jsonstream import Reader, JsonError
def loads(t):
    return Reader(t, max_depth=64, max_size=None, max_number=None).document()
for t in json.loads(%r):
    try:
        v = loads(t)
        # a str as code points: MicroPython keeps lone surrogates, but
        # its json.dumps writes them as raw (invalid UTF-8) bytes
        print(json.dumps(["str", [ord(c) for c in v]] if isinstance(v, str) else ["ok", v]))
    except JsonError as e:
        print(json.dumps(["error", e.pos]))
"""


def test_vm_reads_like_cpython():
    script = VM_SCRIPT % json.dumps(VM_CASES, ensure_ascii=False)  # the VM json joins no surrogate pairs
    host = []
    for t in VM_CASES:
        try:
            v = loads(t)
            host.append(["str", [ord(c) for c in v]] if isinstance(v, str) else ["ok", v])
        except JsonError as e:
            host.append(["error", e.pos])
    vm = mpvm.json_lines(mpvm.run(script))
    assert len(vm) == len(host)
    for t, a, b in zip(VM_CASES, vm, host):
        assert same(a, json.loads(json.dumps(b))), t


# -- heap in the VM: stream big frames entry by entry vs json.loads

MEASURE = "gc.collect()\nprint('M', gc.mem_alloc())"


def _measure(frame, setup, step, n, as_str=False):
    load = "frame = %r%s" % (frame, "" if as_str else ".encode()")
    steps = ["import gc, json\nfrom evse.wire.jsonstream import Reader\n" + load,
             "gc.collect()", MEASURE,
             "tree = json.loads(frame)\nprint('P', gc.mem_alloc())", "gc.collect()", MEASURE,
             "tree = None", "gc.collect()", MEASURE, setup, "gc.collect()", MEASURE]
    for _ in range(n):
        steps += [step + "\nprint('P', gc.mem_alloc())", "gc.collect()", MEASURE]
    steps.append("it = None\nr = None\nprint('DONE', count)")
    out = mpvm.run(steps, timeout=300)
    live = [int(x.split()[1]) for x in out.splitlines() if x.startswith("M ")]
    during = [int(x.split()[1]) for x in out.splitlines() if x.startswith("P ")]
    base = live[0]
    done = [x for x in out.splitlines() if x.startswith("DONE")]
    return {"json.loads live": live[1] - base, "json.loads peak (upper bound)": during[0] - base,
            "stream live max": max(live[3:]) - base, "stream peak (upper bound)": max(during[1:]) - base,
            "frame bytes": len(frame.encode()), "count": int(done[0].split()[1])}


SLL_SETUP = """
r = Reader(frame)
count = 0
def walk():
    global count
    kind, uid, action = r.frame()
    for key in r.keys():
        if key == 'localAuthorizationList':
            for _ in r.items():
                entry = r.value()
                count += 1
                yield entry['idTag']
        else:
            r.skip()
    r.frame_end()
it = walk()
"""


@pytest.mark.parametrize("as_str", [False, True])
def test_vm_heap_send_local_list_100_entries(as_str):
    big = dict(LIST, localAuthorizationList=[
        {"idTag": "TAG%017d" % i, "idTagInfo": {"status": "Accepted", "expiryDate": "2030-01-01T00:00:00Z",
                                                "parentIdTag": "GROUP%015d" % (i % 5)}} for i in range(100)])
    frame = json.dumps([2, "0a1b2c3d-4e5f", "SendLocalList", big], separators=(",", ":"))
    m = _measure(frame, SLL_SETUP, "tag = next(it, None)", 101, as_str)
    print("\nSendLocalList 100 entries, frame as %s:" % ("str" if as_str else "bytes"), m)
    assert m["count"] == 100
    # a str frame costs no copy: MicroPython's str.encode() shares the data
    assert m["stream live max"] < 4096
    assert m["json.loads live"] > 5 * m["stream live max"]


SCP_SETUP = """
r = Reader(frame)
count = 0
def walk():
    global count
    r.frame()
    for key in r.keys():
        if key != 'csChargingProfiles':
            continue
        for k2 in r.keys():
            if k2 != 'chargingSchedule':
                continue
            for k3 in r.keys():
                if k3 != 'chargingSchedulePeriod':
                    continue
                for _ in r.items():
                    p = r.value(max_depth=1, max_size=128)
                    count += 1
                    yield p['startPeriod']
    r.frame_end()
it = walk()
"""


def test_vm_heap_set_charging_profile_1000_periods():
    periods = [{"startPeriod": 60 * i, "limit": 16.0 + (i % 7), "numberPhases": 3} for i in range(1000)]
    payload = {"connectorId": 1, "csChargingProfiles": {
        "chargingProfileId": 9, "stackLevel": 1, "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Absolute", "chargingSchedule": {
            "chargingRateUnit": "A", "startSchedule": "2030-01-01T00:00:00Z",
            "chargingSchedulePeriod": periods}}}
    frame = json.dumps([2, "f00d", "SetChargingProfile", payload], separators=(",", ":"))
    m = _measure(frame, SCP_SETUP, "for _ in range(50):\n    s = next(it, None)", 21)
    print("\nSetChargingProfile 1000 periods:", m)
    assert m["count"] == 1000
    assert m["stream live max"] < 4096
    assert m["json.loads live"] > 10 * m["stream live max"]
