"""Named deadlines (evse/timers.py), including the 2**30 tick wrap."""
from evse.compat import TICKS_PERIOD, ticks_add, ticks_diff
from evse.timers import Timers


def test_order_and_next():
    t = Timers()
    assert t.next_ms(0) is None
    t.start("b", 0, 200)
    t.start("a", 0, 100)
    assert t.next_ms(0) == 100 and ticks_diff(t._due["b"], 50) == 150
    assert t.pop_due(99) == []
    assert t.pop_due(250) == ["a", "b"]
    assert t.next_ms(250) is None


def test_restart_replaces_and_cancel():
    t = Timers()
    t.start("hb", 0, 100)
    t.start("hb", 50, 100)
    assert t.pop_due(120) == [] and t.pop_due(150) == ["hb"]
    t.start("x", 0, 10)
    t.cancel("x")
    assert not t.active("x") and t.pop_due(100) == []


def test_wrap():
    now = TICKS_PERIOD - 10
    t = Timers()
    t.start("w", now, 30)
    assert t.next_ms(now) == 30
    later = ticks_add(now, 29)
    assert later < now and ticks_diff(later, now) == 29
    assert t.pop_due(later) == []
    assert t.pop_due(ticks_add(now, 30)) == ["w"]


def test_ties_fire_in_name_order_whatever_the_insertion_order():
    for names in (["mv1", "hb", "al"], ["al", "mv1", "hb"], ["hb", "al", "mv1"]):
        t = Timers()
        for n in names:
            t.start(n, 0, 100)
        assert t.pop_due(100) == ["al", "hb", "mv1"]
