"""Host simulator board: EV, control pilot, relay, meter and card reader model."""
import json

import pytest
from vmcheck import run_both
from evse.compat import TICKS_PERIOD, ticks_add
from boards.pilotduty import da_for_duty, duty_for_da
from hypothesis import given, settings
from hypothesis import strategies as hs

from boards.sim.board import SimBoard

CWMS_PER_WH = 3600 * 1000 * 100


def charging(board=None, offer=320, t=0, **kw):
    """A board with a plugged EV, relay closed and `offer` on the pilot, polled at t."""
    b = board or SimBoard(**kw)
    b.poll(t)
    assert b.command("plug", []) is None
    b.set_pilot(1, offer)
    b.set_relay(1, True)
    return b


# -- plug / control pilot ---------------------------------------------------

def test_identity_and_overrides_still_work():
    b = SimBoard(serial="X-1", overrides={"HeartbeatInterval": 60})
    assert b.identity()["chargePointSerialNumber"] == "X-1"
    assert b.identity()["meterSerialNumber"] == "M-X-1"
    assert b.config_overrides() == {"HeartbeatInterval": 60}
    assert (b.connectors, b.voltage, b.phases, b.max_current_da, b.has_lock) == (1, 230, 1, 320, False)


def test_plug_unplug_events():
    b = SimBoard()
    assert b.poll(0) == []
    assert b.command("plug", []) is None
    assert b.poll(10) == [("cp", 1, "B")]
    assert b.poll(20) == []
    assert b.command("unplug", ["1"]) is None
    assert b.poll(30) == [("cp", 1, "A")]
    # plug + unplug between two polls: nothing changed at the poll
    b.command("plug", [])
    b.command("unplug", [])
    assert b.poll(40) == []


def test_charging_needs_relay_and_pwm_of_6a():
    b = SimBoard()
    b.poll(0)
    b.command("plug", [])
    assert b.poll(1) == [("cp", 1, "B")]
    b.set_pilot(1, 160)
    assert b.poll(2) == []  # PWM but relay open
    b.set_pilot(1, 0)
    b.set_relay(1, True)
    assert b.poll(3) == []  # relay but no PWM
    b.set_pilot(1, 59)
    assert b.poll(4) == []  # below 6 A
    b.set_pilot(1, 60)
    assert b.poll(5) == [("cp", 1, "C")]
    assert b.meter(1)[1:4] == (60 * 23, 60, 2300)
    b.set_pilot(1, 50)  # offer drops below 6 A
    assert b.poll(6) == [("cp", 1, "B")]
    assert b.meter(1)[1:3] == (0, 0)
    b.set_pilot(1, 100)
    assert b.poll(7) == [("cp", 1, "C")]
    b.set_relay(1, False)  # contactor opens
    assert b.poll(8) == [("cp", 1, "B")]
    assert b.meter(1)[2] == 0


def test_unplug_while_charging_stops_current():
    b = charging()
    assert b.poll(1) == [("cp", 1, "B"), ("cp", 1, "C")]
    b.command("unplug", [])
    assert b.poll(2) == [("cp", 1, "A")]
    assert b.meter(1)[1:3] == (0, 0)
    assert b.meter(1)[4] is None


def test_change_between_polls_applies_at_next_poll():
    b = SimBoard()
    b.poll(0)
    b.command("plug", [])
    b.set_pilot(1, 320)
    b.set_relay(1, True)
    assert b.poll(3600 * 1000) == [("cp", 1, "B"), ("cp", 1, "C")]
    assert b.meter(1)[0] == 0  # it was not drawing during that hour


# -- current ------------------------------------------------------------------

@pytest.mark.parametrize("offer, ev_max, expect", [
    (320, 320, 319),  # 53.3 % duty reads back as 31.9 A
    (160, 320, 159),  # 26.6 % -> 15.9 A
    (160, 100, 100),  # the EV's own maximum
    (320, 160, 160),
    (60, 320, 60),
    (600, 320, 320),  # offer above the EV
])
def test_current_follows_offer_pwm_and_ev_max(offer, ev_max, expect):
    assert expect == min(da_for_duty(duty_for_da(offer)), ev_max)
    b = charging(offer=offer, ev_max_da=ev_max)
    assert b.poll(1) == [("cp", 1, "B"), ("cp", 1, "C")]
    _energy, power, cur, volt, _soc = b.meter(1)
    assert (cur, volt, power) == (expect, 2300, 2300 * expect // 100)
    st = b.ev_state(1)
    assert (st["offered_da"], st["drawing_da"]) == (da_for_duty(duty_for_da(offer)), expect)


def test_lower_offer_while_charging_changes_current():
    b = charging(ev_max_da=160)
    b.poll(1)
    assert b.meter(1)[2] == 160
    b.set_pilot(1, 120)  # 20.0 % duty: exactly 12 A
    assert b.poll(2) == []  # still C
    assert b.meter(1)[2] == 120
    b.set_pilot(1, 100)  # 16.6 % duty reads back as 9.9 A
    b.poll(3)
    assert b.meter(1)[2] == 99


def test_bad_hal_calls_raise():
    b = SimBoard()
    with pytest.raises(ValueError):
        b.set_pilot(2, 100)
    with pytest.raises(ValueError):
        b.set_relay(0, True)
    with pytest.raises(ValueError):
        b.meter(2)
    with pytest.raises(ValueError):
        b.set_pilot(1, -1)


# -- energy -----------------------------------------------------------------

def test_energy_one_hour_16a_exact():
    b = charging(ev_max_da=160, battery_wh=1000000, soc=0)
    b.poll(1)
    b.poll(1 + 3600 * 1000)
    assert b.meter(1)[0] == 3680
    assert b.meter_state() == {"1": [3680, 0]}


def test_energy_across_tick_wrap():
    t0 = TICKS_PERIOD - 1000
    b = charging(ev_max_da=160, battery_wh=1000000, soc=0, t=t0 - 5)
    b.poll(t0)
    t1 = ticks_add(t0, 3600 * 1000)
    assert t1 < t0  # wrapped
    b.poll(t1)
    assert b.meter(1)[0] == 3680
    assert b.meter_state() == {"1": [3680, 0]}


def test_many_small_polls_equal_one_big_poll():
    big = charging(ev_max_da=160, soc=0, meter_wh=7)
    small = charging(ev_max_da=160, soc=0, meter_wh=7)
    big.poll(1)
    small.poll(1)
    t = 1
    step = 0
    while t < 1 + 100 * 1000:
        step = step % 13 + 1  # 1..13 ms, uneven
        t = min(t + step, 1 + 100 * 1000)
        small.poll(t)
    big.poll(t)
    # 3680 W for 100 s = 102.222 Wh: 102 Wh + 0.222 Wh carried as cW*ms
    expect_cwms = 368000 * 100 * 1000
    assert big.meter_state() == {"1": [7 + expect_cwms // CWMS_PER_WH, expect_cwms % CWMS_PER_WH]}
    assert small.meter_state() == big.meter_state()
    assert small.meter(1)[0] == 109


@settings(max_examples=40, deadline=None)
@given(hs.lists(hs.integers(min_value=0, max_value=200000), min_size=1, max_size=40),
       hs.integers(min_value=0, max_value=TICKS_PERIOD - 1))
def test_any_split_of_polls_gives_the_same_register(steps, t0):
    # A small battery so some splits cross the full-battery point too.
    kw = {"ev_max_da": 320, "battery_wh": 300, "soc": 10, "t": t0}
    a = charging(**kw)
    b = charging(**kw)
    a.poll(t0)
    b.poll(t0)
    t = t0
    for s in steps:
        t = ticks_add(t, s)
        a.poll(t)
    b.poll(ticks_add(t0, sum(steps)))  # at most 8e6 ms: one poll, no ambiguity
    assert a.meter_state() == b.meter_state()
    assert a.ev_state(1) == b.ev_state(1)


def test_meter_is_integer_and_monotonic_across_sessions():
    b = charging(ev_max_da=100)
    b.poll(1)
    b.poll(60001)
    e1 = b.meter(1)[0]
    b.command("unplug", [])
    b.poll(60002)
    b.poll(120000)
    assert b.meter(1)[0] == e1
    b.command("plug", [])
    b.poll(120001)
    b.poll(3720001)
    e2 = b.meter(1)[0]
    assert e2 == e1 + 2300 * 100 * 3600 * 1000 // CWMS_PER_WH
    assert all(type(v) is int for v in b.meter(1))


# -- suspend / resume, SoC ------------------------------------------------

def test_suspend_and_resume():
    b = charging()
    assert b.poll(1)[-1] == ("cp", 1, "C")
    assert b.command("ev-suspend", []) is None
    assert b.poll(2) == [("cp", 1, "B")]
    assert b.ev_state(1)["suspended"] is True
    e = b.meter_state()
    b.poll(100000)
    assert b.meter_state() == e  # no energy while suspended
    assert b.command("ev-resume", ["1"]) is None
    assert b.poll(100001) == [("cp", 1, "C")]
    # resume does not charge without the station's permission
    b.command("ev-suspend", [])
    b.poll(100002)
    b.set_relay(1, False)
    b.command("ev-resume", [])
    assert b.poll(100003) == []
    assert b.ev_state(1)["cp"] == "B"


def test_soc_grows_with_energy():
    b = charging(ev_max_da=160, battery_wh=10000, soc=20)
    b.poll(1)
    assert b.meter(1)[4] == 20
    b.poll(1 + 3600 * 1000)  # 3680 Wh = 36.8 % of 10 kWh
    assert b.meter(1)[4] == 56
    assert b.ev_state(1)["soc"] == 56
    assert b.ev_state(1)["session_wh"] == 3680


def test_full_battery_stops_at_the_exact_point():
    # 1000 Wh battery at 90 %: 100 Wh to go at 3680 W = 97826.09 ms, so the EV
    # stops after 97827 whole ms (the register just passes 100 Wh), not after 1 h.
    b = charging(ev_max_da=160, battery_wh=1000, soc=90)
    b.poll(1)
    assert b.poll(1 + 3600 * 1000) == [("cp", 1, "B")]
    ms = -(-100 * CWMS_PER_WH // 368000)  # whole ms until 100 Wh
    assert b.meter_state() == {"1": [100, 368000 * ms - 100 * CWMS_PER_WH]}
    st = b.ev_state(1)
    assert (st["soc"], st["full"], st["suspended"], st["drawing_da"]) == (100, True, True, 0)
    assert b.meter(1)[1:3] == (0, 0)
    # the relay and PWM stay on, the EV does not draw again
    b.command("ev-resume", [])
    assert b.poll(2 + 3600 * 1000) == []
    assert b.meter(1)[0] == 100


def test_full_ev_plugs_in_and_stays_in_b():
    b = charging(battery_wh=1000, soc=100)
    assert b.poll(1) == [("cp", 1, "B")]
    assert b.meter(1)[4] == 100


# -- faults, cards, commands -------------------------------------------------

def test_fault_and_clear():
    b = charging()
    assert b.poll(1)[-1] == ("cp", 1, "C")
    assert b.command("fault", ["GroundFailure"]) is None
    assert b.poll(2) == [("fault", 1, "GroundFailure", "simulated"), ("cp", 1, "B")]
    assert b.meter(1)[2] == 0
    assert b.ev_state(1)["fault"] == "GroundFailure"
    assert b.poll(3000) == []
    assert b.meter(1)[2] == 0
    assert b.command("clear", []) is None
    assert b.poll(3001) == [("clear", 1), ("cp", 1, "C")]
    assert b.command("clear", []) == "no fault on connector 1"


def test_ev_communication_error_shows_as_state_e():
    b = SimBoard()
    b.poll(0)
    b.command("plug", [])
    b.poll(1)
    assert b.command("fault", ["1", "EVCommunicationError"]) is None
    assert b.poll(2) == [("fault", 1, "EVCommunicationError", "simulated"), ("cp", 1, "E")]
    b.command("clear", ["1"])
    assert b.poll(3) == [("clear", 1), ("cp", 1, "B")]


def test_fault_without_ev():
    b = SimBoard()
    b.poll(0)
    assert b.command("fault", ["HighTemperature"]) is None
    assert b.poll(1) == [("fault", 1, "HighTemperature", "simulated")]


def test_card_events_in_order():
    b = SimBoard()
    b.poll(0)
    assert b.command("card", ["04A1B2C3"]) is None
    assert b.command("plug", []) is None
    assert b.command("card", ["DEADBEEF"]) is None
    assert b.poll(1) == [("card", 1, "04A1B2C3"), ("card", 1, "DEADBEEF"), ("cp", 1, "B")]
    assert b.poll(2) == []


def test_pending_events_are_bounded():
    b = SimBoard()
    for i in range(16):
        assert b.command("card", ["T" + str(i)]) is None
    assert b.command("card", ["X"]) == "event queue full"
    assert len(b.poll(0)) == 16
    assert b.command("card", ["X"]) is None


@pytest.mark.parametrize("cmd, args, err", [
    ("plug", ["3"], "unknown connector 3"),
    ("plug", ["0"], "unknown connector 0"),
    ("plug", ["x"], "unknown connector x"),
    ("plug", ["1", "2"], "usage: plug [C]"),
    ("unplug", [], "no EV on connector 1"),
    ("ev-suspend", [], "no EV on connector 1"),
    ("ev-resume", [], "no EV on connector 1"),
    ("card", [], "usage: card IDTAG"),
    ("card", ["a", "b"], "usage: card IDTAG"),
    ("card", ["A" * 21], "idTag longer than 20 characters"),
    ("fault", [], "usage: fault [C] ERRORCODE"),
    ("fault", ["X"], "unknown error code X"),
    ("fault", ["NoError"], "unknown error code NoError"),
    ("fault", ["Ground Failure"], "unknown error code Ground Failure"),
    ("fault", ["2", "GroundFailure"], "unknown connector 2"),
    ("clear", [], "no fault on connector 1"),
    ("clear", ["7"], "unknown connector 7"),
    ("fly", [], "unknown command fly"),
    ("", [], "unknown command "),
])
def test_command_errors(cmd, args, err):
    b = SimBoard()
    b.poll(0)
    assert b.command(cmd, args) == err
    assert b.poll(1) == []  # a refused command has no effect


def test_plug_twice_is_an_error():
    b = SimBoard()
    assert b.command("plug", []) is None
    assert b.command("plug", ["1"]) == "connector 1 already plugged"


@pytest.mark.parametrize("code", [
    "ConnectorLockFailure", "EVCommunicationError", "GroundFailure", "HighTemperature",
    "InternalError", "LocalListConflict", "OtherError", "OverCurrentFailure", "OverVoltage",
    "PowerMeterFailure", "PowerSwitchFailure", "ReaderFailure", "ResetFailure",
    "UnderVoltage", "WeakSignal"])
def test_every_ocpp_error_code_is_accepted(code):
    b = SimBoard()
    assert b.command("fault", [code]) is None
    assert b.poll(0) == [("fault", 1, code, "simulated")]


# -- meter register persistence ----------------------------------------------

def test_meter_state_round_trip():
    b = charging(ev_max_da=160, meter_wh=5000)
    b.poll(1)
    b.poll(12345)
    saved = json.loads(json.dumps(b.meter_state()))
    c = SimBoard(ev_max_da=160)
    assert c.restore_meter(saved) is True
    assert c.meter_state() == b.meter_state()
    assert c.meter(1)[0] == b.meter(1)[0] > 5000
    # the remainder carries on: continuing in c equals continuing in b
    charging(c, t=12345)
    assert c.poll(12345) == [("cp", 1, "B"), ("cp", 1, "C")]
    c.poll(20000)
    b.poll(20000)
    assert c.meter_state() == b.meter_state()


@pytest.mark.parametrize("bad", [None, {}, {"1": [1]}, {"1": ["5", 0]}, {"1": [-1, 0]},
                                 {"1": [5, CWMS_PER_WH]}, {"1": [True, 0]}, [5, 0]])
def test_restore_meter_rejects_bad_state(bad):
    b = SimBoard(meter_wh=42)
    assert b.restore_meter(bad) is False
    assert b.meter_state() == {"1": [42, 0]}


# -- the same model in the MicroPython VM ------------------------------------

SCENARIO = """
from boards.sim.board import SimBoard
b = SimBoard(ev_max_da=160, battery_wh=2000, soc=50, meter_wh=10)
t = (1 << 30) - 2000
print(repr(b.poll(t)))
print(repr(b.command('plug', [])))
print(repr(b.command('card', ['04A1B2'])))
print(repr(b.poll(t + 10)))
b.set_pilot(1, 320)
b.set_relay(1, True)
t = (t + 20) & ((1 << 30) - 1)
print(repr(b.poll(t)))
for i in range(50):
    t = (t + 7919) & ((1 << 30) - 1)
    b.poll(t)
print(repr(b.meter(1)))
print(repr(b.command('ev-suspend', [])))
print(repr(b.poll(t + 1)))
print(repr(b.command('fault', ['OverCurrentFailure'])))
print(repr(b.command('fault', ['Bogus'])))
print(repr(b.poll(t + 2)))
print(repr(b.command('clear', [])))
print(repr(b.command('ev-resume', [])))
print(repr(b.poll(t + 3)))
t = (t + 3600000) & ((1 << 30) - 1)
print(repr(b.poll(t)))
print(repr(b.meter(1)))
s = b.meter_state()
print(repr([s['1'], b.ev_state(1)['soc'], b.ev_state(1)['session_wh']]))
c = SimBoard()
print(repr([c.restore_meter(s), c.meter_state() == s, c.restore_meter({'1': [True, 0]})]))
print(repr([c.command('plug', ['1']), c.command('fault', ['1', 'EVCommunicationError']), c.poll(5)]))
"""


def test_micropython_vm_matches_cpython(capsys, tmp_path):
    vm, lines = run_both(SCENARIO, tmp_path, capsys)
    assert vm == lines
    assert lines[3] == "[('card', 1, '04A1B2'), ('cp', 1, 'B')]"
    assert lines[4] == "[('cp', 1, 'C')]"
    assert lines[-4] == "(1010, 0, 0, 2300, 100)"
    assert lines[-2] == "[True, True, False]"
    assert lines[-1] == ("[None, None, [('fault', 1, 'EVCommunicationError', 'simulated'),"
                         " ('cp', 1, 'E')]]")  # 1000 Wh to fill 50 % of 2 kWh


def test_resync_reports_the_plugged_ev_and_the_fault_to_a_new_core():
    # A new core (reboot, Reset) starts believing nothing is plugged: the
    # board drops relay and PWM and reports its present state again.
    b = SimBoard()
    b.command("plug", [])
    b.command("fault", ["GroundFailure"])
    b.set_relay(1, True)
    b.set_pilot(1, 160)
    b.poll(0)
    b.resync()
    evs = b.poll(100)
    assert ("cp", 1, "B") in evs and any(e[0] == "fault" and e[2] == "GroundFailure" for e in evs)
    assert b.ev_state(1)["relay"] is False
