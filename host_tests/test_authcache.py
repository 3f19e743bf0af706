"""Authorization Cache (evse.authcache): LRU, expiry, persistence, garbage."""
import json
import os
from datetime import datetime

import ocpp.v16
import pytest
from evse.authcache import AuthCache
from evse.idtag import fold
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft4Validator
from mempersist import MemPersist

SCHEMAS = os.path.join(os.path.dirname(ocpp.v16.__file__), "schemas")
with open(os.path.join(SCHEMAS, "AuthorizeResponse.json")) as f:
    AUTH_RESPONSE = Draft4Validator(json.load(f))

NOW = 1_750_000_000  # 2025-06-15
EXP = "2026-01-01T00:00:00Z"
EXP_UNIX = 1_767_225_600


def check_info(info):
    """A returned idTagInfo is valid as Authorize.conf's idTagInfo; the
    schema's date-time format is not enforced by jsonschema without extra
    packages, so parse expiryDate here."""
    AUTH_RESPONSE.validate({"idTagInfo": info})
    if "expiryDate" in info:
        datetime.fromisoformat(info["expiryDate"])
    return info


def test_miss_then_hit_returns_schema_valid_info():
    c = AuthCache()
    assert c.get("AABBCCDD", NOW) is None
    c.update("AABBCCDD", {"status": "Accepted", "expiryDate": EXP, "parentIdTag": "FLEET1"}, NOW)
    info = check_info(c.get("AABBCCDD", NOW))
    assert info == {"status": "Accepted", "expiryDate": EXP, "parentIdTag": "FLEET1"}
    c.update("X1", {"status": "Blocked"}, NOW)
    assert check_info(c.get("X1", NOW)) == {"status": "Blocked"}
    assert len(c) == 2


@pytest.mark.parametrize("status", ["Accepted", "Blocked", "Expired", "Invalid", "ConcurrentTx"])
def test_every_status_is_cached(status):
    c = AuthCache()
    c.update("T", {"status": status}, NOW)
    assert check_info(c.get("T", NOW)) == {"status": status}


def test_idtag_is_case_insensitive():
    c = AuthCache()
    c.update("aabbccdd", {"status": "Accepted"}, NOW)
    assert c.get("AABBCCDD", NOW) == {"status": "Accepted"}
    c.update("AABBCCDD", {"status": "Blocked"}, NOW)
    assert len(c) == 1
    assert c.get("aaBBccDD", NOW) == {"status": "Blocked"}


def test_fold_is_ascii_only_and_rejects_non_cistring20():
    assert fold("abc") == "ABC"
    assert fold("é") == "é"  # MicroPython's str.upper() leaves non-ASCII alone too
    assert fold("x" * 20) == "X" * 20
    assert fold("x" * 21) is None
    assert fold(None) is None
    assert fold(1234) is None


@pytest.mark.parametrize("tag, info", [
    ("T" * 21, {"status": "Accepted"}),
    (None, {"status": "Accepted"}),
    ("T", None),
    ("T", "Accepted"),
    ("T", {}),
    ("T", {"status": "accepted"}),
    ("T", {"status": "Accepted", "expiryDate": "tomorrow"}),
    ("T", {"status": "Accepted", "expiryDate": 1767225600}),
    ("T", {"status": "Accepted", "parentIdTag": "P" * 21}),
    ("T", {"status": "Accepted", "parentIdTag": 5}),
])
def test_malformed_update_is_ignored(tag, info):
    c = AuthCache()
    c.update(tag, info, NOW)
    assert len(c) == 0
    assert not c.dirty


def test_expiry_is_exclusive_and_turns_entry_expired_for_good():
    c = AuthCache()
    c.update("T", {"status": "Accepted", "expiryDate": EXP}, NOW)
    c.dirty = False
    assert c.get("T", EXP_UNIX)["status"] == "Accepted"  # valid up to the instant itself
    assert not c.dirty
    info = check_info(c.get("T", EXP_UNIX + 1))
    assert info == {"status": "Expired", "expiryDate": EXP}
    assert c.dirty  # section 3.5.1: changed to Expired in the cache, worth saving
    # Changed in the cache: a clock stepping back does not revive it.
    assert c.get("T", NOW)["status"] == "Expired"


def test_blocked_entry_past_expiry_reads_expired():
    c = AuthCache()
    c.update("T", {"status": "Blocked", "expiryDate": EXP}, NOW)
    assert c.get("T", EXP_UNIX + 60)["status"] == "Expired"


def test_update_already_past_expiry_is_stored_expired():
    c = AuthCache()
    c.update("T", {"status": "Accepted", "expiryDate": "2020-01-01T00:00:00Z"}, NOW)
    assert c.get("T", NOW) == {"status": "Expired", "expiryDate": "2020-01-01T00:00:00Z"}


@pytest.mark.parametrize("exp", ["1970-01-01T00:00:00Z", "1985-12-31T23:59:59Z",
                                 "2054-01-10T13:37:03Z", "2099-12-31T23:59:59Z"])
def test_far_expiry_dates_round_trip_exactly(exp):
    # Outside 1986..2054 the stored offset no longer fits a small int; still exact.
    c = AuthCache(persist=MemPersist())
    c.update("T", {"status": "Accepted", "expiryDate": exp}, 0)
    assert c.get("T", 0)["expiryDate"] == exp
    assert c.save()
    assert AuthCache(persist=c._persist).get("T", 0)["expiryDate"] == exp


def test_expiry_with_offset_is_normalised_to_utc():
    c = AuthCache()
    c.update("T", {"status": "Accepted", "expiryDate": "2026-01-01T02:00:00+02:00"}, NOW)
    assert c.get("T", NOW)["expiryDate"] == EXP


def test_lru_eviction_order():
    c = AuthCache(capacity=3)
    for t in ("A", "B", "C"):
        c.update(t, {"status": "Accepted"}, NOW)
    assert c.get("A", NOW) is not None  # A used: B is now least recent
    c.update("D", {"status": "Accepted"}, NOW)
    assert len(c) == 3
    assert c.get("B", NOW) is None
    # update() counts as use too: refresh C, so A (used before C) goes next.
    c.update("C", {"status": "Accepted"}, NOW)
    c.update("E", {"status": "Accepted"}, NOW)
    assert c.get("A", NOW) is None
    assert all(c.get(t, NOW) for t in ("C", "D", "E"))
    # A miss is not a use and evicts nothing.
    assert c.get("Z", NOW) is None
    assert len(c) == 3


def test_update_of_existing_entry_in_full_cache_evicts_nothing():
    c = AuthCache(capacity=2)
    c.update("A", {"status": "Accepted"}, NOW)
    c.update("B", {"status": "Accepted"}, NOW)
    c.update("A", {"status": "Blocked"}, NOW)
    assert len(c) == 2
    assert c.get("B", NOW) == {"status": "Accepted"}
    assert c.get("A", NOW) == {"status": "Blocked"}


def test_capacity_zero_stores_nothing():
    c = AuthCache(capacity=0)
    c.update("A", {"status": "Accepted"}, NOW)
    assert len(c) == 0 and c.get("A", NOW) is None and not c.dirty


def test_clear():
    c = AuthCache()
    c.clear()
    assert not c.dirty  # nothing to clear, nothing to write
    c.update("A", {"status": "Accepted"}, NOW)
    c.dirty = False
    c.clear()
    assert len(c) == 0 and c.get("A", NOW) is None and c.dirty


def test_dirty_only_on_real_changes():
    p = MemPersist()
    c = AuthCache(persist=p)
    assert not c.dirty
    c.update("A", {"status": "Accepted", "expiryDate": EXP}, NOW)
    assert c.dirty
    assert c.save() and not c.dirty and p.saves == 1
    for _ in range(5):  # card swipes: hits and identical re-authorizations
        c.get("A", NOW)
        c.update("A", {"status": "Accepted", "expiryDate": EXP}, NOW)
    assert not c.dirty
    c.update("A", {"status": "Accepted", "expiryDate": "2027-01-01T00:00:00Z"}, NOW)
    assert c.dirty


def test_persistence_round_trip_keeps_entries_and_lru_order():
    p = MemPersist()
    c = AuthCache(capacity=3, persist=p)
    c.update("A", {"status": "Accepted", "parentIdTag": "P"}, NOW)
    c.update("B", {"status": "Invalid"}, NOW)
    c.update("C", {"status": "Accepted", "expiryDate": EXP}, NOW)
    c.get("A", NOW)  # LRU order now B, C, A
    assert c.save()
    d = AuthCache(capacity=3, persist=p)
    assert len(d) == 3 and not d.dirty
    assert d.get("A", NOW) == {"status": "Accepted", "parentIdTag": "P"}
    assert d.get("B", NOW) == {"status": "Invalid"}
    assert d.get("C", NOW) == {"status": "Accepted", "expiryDate": EXP}
    # A fresh load of the same snapshot has LRU order B, C, A: D evicts B.
    d2 = AuthCache(capacity=3, persist=p)
    d2.update("D", {"status": "Accepted"}, NOW)
    assert d2.get("B", NOW) is None and d2.get("C", NOW) is not None


def test_reload_into_smaller_cache_keeps_most_recent():
    p = MemPersist()
    c = AuthCache(capacity=5, persist=p)
    for t in "ABCDE":
        c.update(t, {"status": "Accepted"}, NOW)
    c.get("A", NOW)
    c.save()
    d = AuthCache(capacity=2, persist=p)
    assert len(d) == 2
    assert d.get("A", NOW) and d.get("E", NOW) and d.get("D", NOW) is None


def test_save_failure_keeps_dirty_and_memory():
    c = AuthCache(persist=MemPersist(fail=True))
    c.update("A", {"status": "Accepted"}, NOW)
    assert c.save() is False
    assert c.dirty and c.get("A", NOW) == {"status": "Accepted"}


def test_save_without_persist_is_false():
    c = AuthCache()
    c.update("A", {"status": "Accepted"}, NOW)
    assert c.save() is False and c.dirty


@pytest.mark.parametrize("obj", [
    None, [], "x", 5, {}, {"v": 2, "e": []}, {"v": 1}, {"v": 1, "e": "zz"}, {"v": 1, "e": {"A": 1}},
])
def test_garbage_snapshot_loads_empty(obj):
    c = AuthCache(persist=MemPersist(obj))
    assert len(c) == 0 and not c.dirty
    assert c.load(obj) is False


def test_bad_rows_are_skipped_good_rows_kept():
    rows = [
        ["A", "Bogus", None, None, 1],
        ["B", "Accepted", "2026", None, 2],
        5,
        ["C", "Accepted", None, None],
        ["D" * 21, "Accepted", None, None, 3],
        ["E", "Accepted", None, None, "7"],
        ["F", "Accepted", None, 7, 4],
        ["G", "Accepted", True, None, 5],
        ["H", "Blocked", EXP_UNIX, "P", 6],
    ]
    c = AuthCache()
    assert c.load({"v": 1, "e": rows}) is True
    assert len(c) == 1
    assert c.get("H", NOW) == {"status": "Blocked", "expiryDate": EXP, "parentIdTag": "P"}


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=25),
    lambda ch: st.lists(ch, max_size=6) | st.dictionaries(st.sampled_from(["v", "e", "x"]), ch, max_size=3),
    max_leaves=30)


@settings(derandomize=True, max_examples=300, deadline=None)
@given(st.one_of(JSON, st.fixed_dictionaries({"v": st.just(1), "e": st.lists(
    st.lists(st.one_of(st.none(), st.integers(), st.text(max_size=22),
                       st.sampled_from(["Accepted", "Blocked"])), max_size=6), max_size=8)})))
def test_load_never_raises(obj):
    c = AuthCache(capacity=4)
    c.load(obj)
    assert len(c) <= 4
    for row in c.dump()["e"]:  # whatever survived is well-formed
        assert len(row) == 5


@settings(derandomize=True, max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["u", "g"]), st.sampled_from("ABCDEFG")), max_size=40))
def test_lru_matches_reference_model(ops):
    cap = 3
    c = AuthCache(capacity=cap)
    order = []  # reference: least recent first
    for op, t in ops:
        if op == "u":
            if t not in order and len(order) == cap:
                order.pop(0)
            if t in order:
                order.remove(t)
            order.append(t)
            c.update(t, {"status": "Accepted"}, NOW)
        else:
            hit = c.get(t, NOW) is not None
            assert hit == (t in order)
            if hit:
                order.remove(t)
                order.append(t)
    assert sorted(r[0] for r in c.dump()["e"]) == sorted(order)
