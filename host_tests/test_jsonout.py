"""evse.wire.jsonout: pieces written to a sink join to the platform's compact
json.dumps; frames match rpc's; Chunks packs them into one buffer; in the
VM the output equals the VM's own json.dumps and the peak heap of a big
StopTransaction drops (figures printed with -s)."""
import json
import os
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evse.wire import rpc
from evse.wire.jsonout import Chunks, dump, size

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tools"))
import mpvm  # noqa: E402

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "300"))
COMPACT = {"separators": (",", ":")}

scalars = (st.none() | st.booleans() | st.integers() | st.text(max_size=20)
           | st.floats(allow_nan=False, allow_infinity=False))
values = st.recursive(scalars, lambda kids: st.lists(kids, max_size=5)
                      | st.dictionaries(st.text(max_size=8), kids, max_size=5), max_leaves=30)


def pieces(obj, fn=dump):
    out = []
    fn(obj, out.append) if fn is dump else fn(out.append, *obj)
    return out


@settings(max_examples=EXAMPLES, deadline=None)
@given(values)
def test_pieces_join_to_compact_json_dumps(value):
    assert "".join(pieces(value)) == json.dumps(value, **COMPACT)
    assert size(value) == len(json.dumps(value, **COMPACT).encode())


@settings(max_examples=EXAMPLES // 3, deadline=None)
@given(values, st.integers(1, 40))
def test_chunks_pack_pieces_into_one_buffer(value, n):
    got = []
    sink = Chunks(lambda mv: got.append(bytes(mv)), size=n)
    dump(value, sink.write)
    sink.flush()
    text = json.dumps(value, **COMPACT).encode()
    assert b"".join(got) == text and sink.total == len(text)
    assert all(len(c) == n for c in got[:-1]) and all(0 < len(c) <= n for c in got)


def test_tuples_odd_strings_and_refusals():
    obj = {"a": (1, [], {}, ""), "\u00e9\n\x00\x7f\"\\": "\U0001f600\b\f\t\r/"}
    assert "".join(pieces(obj)) == json.dumps(obj, **COMPACT)
    for bad in (float("nan"), float("inf"), -float("inf"), [1, float("nan")]):
        with pytest.raises(ValueError):
            dump(bad, lambda s: None)
    for bad in ({1: 2}, {"a": {1, 2}}, b"x"):
        with pytest.raises(TypeError):
            dump(bad, lambda s: None)


def test_frames_equal_rpc_encoders():
    p = {"meterStop": 1234, "transactionData": [{"timestamp": "2030-01-01T00:00:00Z", "sampledValue": []}]}
    # rpc.Out writes its frame as one dump of the frame's list: the same JSON as the encoders
    assert json.loads("".join(pieces([2, "u1", "StopTransaction", p]))) == \
        json.loads(rpc.encode_call("u1", "StopTransaction", p))
    assert json.loads("".join(pieces([3, "u2", p]))) == json.loads(rpc.encode_result("u2", p))
    assert "".join(pieces([2, "u4", "Heartbeat", {}])) == '[2,"u4","Heartbeat",{}]'


# -- in the MicroPython VM

VM_OBJECTS = [{"a": [1, -2, 0.5, 1e20, 2.5e-5, True, False, None, "x"]}, "\u00e9\n\x00\x7f\"\\\b\f\t",
              [[], {}, [{}], {"k": []}], 12345678901234567890, {"\u00e9": {"b": [1.0, -0.0]}}]

VM_SCRIPT = """
import json
from evse.wire.jsonout import dump, Chunks, size
objs = json.loads(%r)
for o in objs:
    out = []
    dump(o, out.append)
    got = []
    c = Chunks(lambda mv: got.append(bytes(mv)), size=7)
    dump(o, c.write)
    c.flush()
    ref = json.dumps(o, separators=(',', ':'))
    print(json.dumps(["".join(out) == ref, b"".join(got) == ref.encode(), size(o) == len(ref.encode())]))
"""


def test_vm_output_equals_the_vms_json_dumps():
    out = mpvm.json_lines(mpvm.run(VM_SCRIPT % json.dumps(VM_OBJECTS, ensure_ascii=False)))
    assert out == [[True, True, True]] * len(VM_OBJECTS)


STOP = """
import gc, json
from evse.wire.jsonout import Chunks, dump
sv = [{'value': str(1000 + i), 'context': 'Sample.Periodic', 'measurand': m, 'unit': u}
      for i, (m, u) in enumerate([('Energy.Active.Import.Register', 'Wh'), ('Power.Active.Import', 'W'),
                                  ('Current.Import', 'A'), ('Voltage', 'V')])]
payload = {'transactionId': 123456, 'idTag': 'TAG00000000000000001', 'meterStop': 123456,
           'timestamp': '2030-01-01T00:00:00Z', 'reason': 'Local',
           'transactionData': [{'timestamp': '2030-01-01T00:%02d:00Z' % i, 'sampledValue': sv}
                               for i in range(20)]}
sent = [0]
def emit(mv):  # a WebSocket fragment would go out here
    sent[0] += len(mv)
"""


def test_vm_heap_stop_transaction_20_meter_values():
    """The VM's gc reclaims nothing inside one call, so the streamed frame
    is written one meterValue per step (head, 20 elements, tail), the live
    heap read between steps; 'P' is the heap before collecting: the live
    heap plus everything the step allocated, an upper bound of its peak."""
    measure = ["gc.collect()", "gc.collect()\nprint('M', gc.mem_alloc())"]
    steps = [STOP] + measure + [
        "s = json.dumps([2, 'u1', 'StopTransaction', payload], separators=(',', ':'))\n"
        "n = len(s)\nprint('P', gc.mem_alloc())"] + measure + ["s = None"] + measure + [
        "c = Chunks(emit, 256)\nw = c.write\nbody = dict(payload)\ndata = body.pop('transactionData')\n"
        "w('[2,\"u1\",\"StopTransaction\",{\"transactionData\":[')\nprint('P', gc.mem_alloc())"] + measure
    for i in range(20):
        steps += ["w(%r)\ndump(data[%d], w)\nprint('P', gc.mem_alloc())" % ("," if i else "", i)] + measure
    steps += ["w(']')\nfor k in body:\n    w(',')\n    dump(k, w)\n    w(':')\n    dump(body[k], w)\n"
              "w('}]')\nc.flush()\nprint('N', n, sent[0])"]
    out = mpvm.run(steps).splitlines()
    m = [int(x.split()[1]) for x in out if x.startswith("M ")]
    p = [int(x.split()[1]) for x in out if x.startswith("P ")]
    n, sent = [int(v) for v in next(x for x in out if x.startswith("N ")).split()[1:]]
    dumps_peak = p[0] - m[0]
    stream_live = max(m[3:]) - m[2]
    stream_peak = max(p[1:]) - m[2]
    print("\nStopTransaction 20 meter values: frame %d bytes; json.dumps peak %d; through a 256-byte"
          " buffer: live %d, peak per meterValue (upper bound) %d" % (n, dumps_peak, stream_live, stream_peak))
    assert sent == n
    assert stream_live < 1024 and stream_peak < dumps_peak / 2
