"""OCPP-J framing and the single outstanding CALL (evse/wire/rpc.py)."""
import json

import pytest

from evse.wire import rpc
from evse.compat import TICKS_PERIOD


@pytest.mark.parametrize("text,expected", [
    ('[2,"a1","Heartbeat",{}]', (2, "a1", "Heartbeat", {})),
    ('[3,"a1",{"currentTime":"x"}]', (3, "a1", {"currentTime": "x"})),
    ('[4,"a1","NotImplemented","no",{}]', (4, "a1", "NotImplemented", "no", {})),
    ('[4,"a1","GenericError","d"]', (4, "a1", "GenericError", "d", {})),
])
def test_decode_valid(text, expected):
    assert rpc.decode(text) == expected


@pytest.mark.parametrize("text,uid", [
    ("not json", None),                      # nothing to answer
    ('[2, "abc", "Heartbeat", {', "abc"),     # broken JSON, id recoverable
    ('{"a": 1}', None),                       # not an array
    ('[2, "abc"]', "abc"),                    # too short, a CALL: answer it
    ('[2, "abc", 5, {}]', "abc"),             # action not a string
    ('[2, "abc", "A", {}, 1]', "abc"),        # too long
    ('[2, 17, "Heartbeat", {}]', None),       # id not a string
    ('[2, "' + "x" * 37 + '", "A", {}]', None),  # id longer than 36
    ('[9, "abc", "A", {}]', None),            # unknown type, not a CALL
    ('[3, "abc"]', None),                     # broken CALLRESULT: never answered
    ('[true, "abc", "A", {}]', None),         # type must be an integer
])
def test_decode_malformed(text, uid):
    m = rpc.decode(text)
    assert m[0] is None and m[2] == "FormationViolation"
    assert m[1] == uid


def test_encode_round_trip():
    assert json.loads(rpc.encode_call("i", "Authorize", {"idTag": "A"})) == [2, "i", "Authorize", {"idTag": "A"}]
    assert json.loads(rpc.encode_result("i", {})) == [3, "i", {}]
    assert json.loads(rpc.encode_error("i", "NotSupported", "x" * 300)) == [4, "i", "NotSupported", "x" * 255, {}]


def test_one_outstanding_call_and_unique_ids():
    r = rpc.Rpc(timeout_ms=1000)
    f = json.loads(r.call("Heartbeat", {}, 0, ctx="c"))
    with pytest.raises(RuntimeError):
        r.call("Heartbeat", {}, 0)
    assert r.answer("other") is None and r.busy()
    p = r.answer(f[1])
    assert p[1] == "Heartbeat" and p[4] == "c" and not r.busy()
    ids = set()
    for _ in range(100):
        ids.add(json.loads(r.call("Heartbeat", {}, 0))[1])
        r.abandon()
    assert len(ids) == 100 and all(len(i) <= 36 for i in ids)
    assert rpc.Rpc()._prefix != rpc.Rpc()._prefix  # ids differ across reboots


def test_timeout_across_tick_wrap():
    r = rpc.Rpc(timeout_ms=1000)
    start = TICKS_PERIOD - 300
    r.call("Heartbeat", {}, start)
    assert r.expired((start + 999) % TICKS_PERIOD) is None
    assert r.ms_left((start + 500) % TICKS_PERIOD) == 500
    assert r.expired((start + 1000) % TICKS_PERIOD)[1] == "Heartbeat"
    assert not r.busy() and r.ms_left(0) is None
