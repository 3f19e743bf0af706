"""MemStorage: the station's flash in RAM (fleets), surviving a rebuilt core."""
import os

from boards.sim.board import SimBoard
from evse.clock import SystemClock
from evse.station import Station
from evse.store.storage import MemStorage


def test_snapshots_are_copies_and_journals_are_kept_by_name():
    s = MemStorage(os.devnull + "/x")
    p = s.persist("tx")
    assert p.load() is None and p.error is None
    obj = {"a": [1, 2]}
    p.save(obj)
    obj["a"].append(3)  # the owner changes its object after saving: the flash keeps what was saved
    assert s.persist("tx") is p and p.load() == {"a": [1, 2]}
    p.save_pieces(lambda write: [write(piece) for piece in ('{"b":', " 7", "}")])
    assert p.load() == {"b": 7}
    j = s.journal("txq", max_bytes=1000)
    seq = j.append(1, b"record")
    assert s.journal("txq") is j and j.read(seq) == b"record"
    assert [n for n, _ in s.opened] == ["tx"]


def test_a_new_core_boots_from_the_same_memory():
    storage = MemStorage(os.devnull + "/CP1")
    board = SimBoard(serial="CP1")
    st = Station(board=board, clock=SystemClock(), storage=storage)
    assert st.config.change("HeartbeatInterval", "77") == "Accepted"
    assert storage.error is None and st.connectors[0].status != "Faulted"  # no read-only flash alarm
    again = Station(board=SimBoard(serial="CP1"), clock=SystemClock(), storage=storage)
    assert again.config.get("HeartbeatInterval") == 77
    fresh = Station(board=SimBoard(serial="CP1"), clock=SystemClock(), storage=MemStorage(os.devnull + "/CP2"))
    assert fresh.config.get("HeartbeatInterval") != 77
