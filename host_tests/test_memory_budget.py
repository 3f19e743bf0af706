"""Memory budgets per board, measured in the MicroPython VM (32-bit like the
MCUs): `make test` fails when a change makes a board exceed one. Method and
numbers: docs/PERFORMANCE.md (tools/memboard.py, host_tests/memsteps.py)."""
import os
import sys

import pytest

import memsteps

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools"))
import memboard  # noqa: E402

KB = 1024
# Issue 13: with the core frozen, a 100-entry SendLocalList adds at most
# 16 KB of peak heap over idle (idle = booted, the frame already received).
LIST_LIVE_MAX = 16 * KB  # live heap at any step of the streamed list
LIST_STEP_MAX = 16 * KB  # live + all allocations of one entry's step
# The snapshot write goes out a row at a time (Snapshot.save_pieces): its live
# peak is one row, but the VM frees nothing within one call, so this bound on
# everything it allocates counts the garbage of all rows; the real peak is
# checked with tracemalloc below.
LIST_SAVE_MAX = 48 * KB
BUDGETS = {  # bytes above the imported modules
    # "all allocations" bounds count the garbage of a whole streamed profile
    # (the VM frees nothing within one call): a regression guard, not a peak.
    "esp32": {"data after boot": 12 * KB, "live after the workload": 24 * KB,
              "StopTransaction: json.dumps allocations": 8 * KB, "profile: all allocations (largest)": 104 * KB},
    "picow": {"data after boot": 12 * KB, "live after the workload": 24 * KB,
              "StopTransaction: json.dumps allocations": 8 * KB, "profile: all allocations (largest)": 64 * KB},
    "sim": {"data after boot": 12 * KB, "live after the workload": 80 * KB,
            "StopTransaction: json.dumps allocations": 8 * KB},
}
IMPORT_MAX = 200 * KB  # the core + board from .mpy in /lib (frozen: in flash instead)



def peak(fn):
    """Peak bytes CPython allocates while fn() runs (tracemalloc)."""
    import tracemalloc
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    fn()
    got = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return got


def test_streamed_send_local_list_within_budget():
    streamed = memsteps.send_local_list(100, streamed=True)
    tree = memsteps.send_local_list(100, streamed=False)
    print("streamed", streamed, "tree", tree)
    assert streamed["live max"] <= LIST_LIVE_MAX
    assert streamed["step peak max (upper bound)"] <= LIST_SAVE_MAX
    assert streamed["live max"] < tree["live max"] - 8 * KB  # the object tree is gone


def test_list_snapshot_written_a_row_at_a_time(tmp_path):
    # Peak allocation while saving a full 100-entry list, above the live list
    # (CPython objects are larger than MicroPython's: the bound is generous).
    from evse.locallist import LocalList, _snapshot
    from evse.store.snapshot import Snapshot
    from evse.store.storage import FileStorage
    entries = [{"idTag": "%020X" % (0xA0000000 + i), "idTagInfo": {
        "status": "Accepted", "expiryDate": "2030-01-01T00:00:00Z", "parentIdTag": "PARENT%014d" % (i % 5)}}
        for i in range(100)]
    ll = LocalList(persist=FileStorage(str(tmp_path)).persist("locallist"))
    payload = {"listVersion": 1, "updateType": "Full", "localAuthorizationList": entries}
    ll._persist, persist = None, ll._persist
    assert ll.send_local_list(payload) == "Accepted"  # the list, in RAM only
    ll._persist = persist
    pieces = peak(lambda: ll._commit(2, ll._map, True))
    whole = peak(lambda: persist.save(_snapshot(3, ll._map)))  # rows + one JSON text
    print("save peak: a row at a time", pieces, "bytes; rows + one JSON text", whole)
    assert Snapshot(persist.snap.path).load(None) == _snapshot(3, ll._map)
    assert pieces < whole / 3  # what is left is the file object's own buffer


def test_streamed_list_entry_steps_stay_small():
    # Without the final save step: each entry's step (read, check, pack).
    r = memsteps.run_steps(memsteps.LIST_SETUP.replace("range(%d)", "range(100)"),
                           memsteps.STREAM_STEPS + [memsteps.STREAM_ENTRY] * 100)
    assert r["step peak max (upper bound)"] <= LIST_STEP_MAX


@pytest.mark.parametrize("board", memboard.BOARDS)
def test_board_budget(board):
    got = memboard.workload(board)
    print(board, got)
    for key, limit in BUDGETS[board].items():
        assert got[key] <= limit, (board, key, got[key], limit)


def test_import_heap_from_lib():
    assert memboard.import_heap("esp32") <= IMPORT_MAX


def test_big_outgoing_message_written_in_pieces():
    # StopTransaction with 20 meter values (ORS-8): its frame goes out through
    # rpc.Out + jsonout.Chunks, never as one JSON text (CPython tracemalloc;
    # the VM cannot show a peak within one call).
    from evse.wire import rpc
    from evse.wire.jsonout import Chunks
    mv = [{"timestamp": "2026-01-01T00:%02d:00Z" % i, "sampledValue": [
        {"value": str(1000 * i + k), "context": "Sample.Periodic", "measurand": m, "unit": u, "location": "Outlet"}
        for k, (m, u) in enumerate((("Energy.Active.Import.Register", "Wh"), ("Power.Active.Import", "W"),
                                    ("Current.Import", "A"), ("Voltage", "V")))]} for i in range(20)]
    payload = {"transactionId": 7, "meterStop": 20000, "timestamp": "2026-01-01T01:00:00Z", "reason": "Local",
               "transactionData": mv}
    buf = bytearray(512)

    def emit(view):
        buf[:len(view)] = view

    out = rpc.Out([rpc.CALL, "u1", "StopTransaction", payload])

    def pieces():
        ch = Chunks(emit, 512)
        out.size()
        out.dump(ch.write)
        ch.flush()
    text = peak(lambda: rpc.encode_call("u1", "StopTransaction", payload).encode())
    piecewise = peak(pieces)
    print("StopTransaction frame: json.dumps + encode peak", text, "bytes; in pieces", piecewise)
    assert piecewise < text / 3
