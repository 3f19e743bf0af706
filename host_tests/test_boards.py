"""ESP32 and Pico W boards on register-level fakes: the HAL events a station
expects, the safety interlock, faults, energy persistence, the real station
core on an Esp32Board, the device entry point, and the MicroPython VM."""
import json
import os
import sys
from fractions import Fraction

import pytest
from rig import Rig

import fakes
from boards.esp32.board import Esp32Board
from boards.picow.board import PicoWBoard

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CARD = bytes.fromhex("04A1B2C3")
V230, A16, W3680 = 3653169, 4019416, 2294090  # raw BL0942 readings (see test_drivers)
WH_PER_COUNT = Fraction(4194304, 36000) / Fraction(6233938, 10000)


class Hw:
    """One set of fakes wired as the reference front end."""

    def __init__(self):
        self.line = fakes.FakePilotLine()
        self.coil = fakes.FakePin()
        self.fb = fakes.MirrorPin(self.coil, closed_level=0)
        self.meter = fakes.FakeBl0942()
        self.rf = fakes.FakeMfrc522()
        self.t = 0

    def parts(self):
        """The board's pin-table names wired to the fakes (no RST pin)."""
        return fakes.FakeParts({"pilot_pwm": self.line.pwm, "pilot_adc": self.line.adc, "relay": self.coil,
                                "relay_fb": self.fb, "meter_uart": self.meter, "rfid_spi": self.rf,
                                "rfid_cs": self.rf.cs})

    def board(self, cls=Esp32Board, **kw):
        self.b = cls(parts=self.parts(), serial=kw.pop("serial", "TEST-1"), **kw)
        return self.b

    def run(self, ms):
        """Poll every 50 ms for `ms`; all events."""
        out = []
        for _ in range(ms // 50):
            self.t += 50
            out += self.b.poll(self.t)
        return out


BOARDS = [Esp32Board, PicoWBoard]


@pytest.fixture(params=BOARDS, ids=["esp32", "picow"])
def hw(request):
    h = Hw()
    h.board(request.param)
    h.run(200)
    return h


def test_hal_attributes_and_identity(hw):
    b = hw.b
    assert (b.connectors, b.voltage, b.phases, b.max_current_da, b.has_lock, b.poll_ms) == \
        (1, 230, 1, 320, False, 50)
    ident = b.identity()
    assert ident["chargePointSerialNumber"] == ident["chargeBoxSerialNumber"] == "TEST-1"
    assert ident["chargePointModel"] in ("ESP32-1P-32A", "PICOW-1P-32A")
    assert ident["meterType"] == "BL0942" and ident["meterSerialNumber"] == "M-TEST-1"
    assert all(len(ident[k]) <= 20 for k in ("chargePointVendor", "chargePointModel"))


@pytest.mark.parametrize("cls,periods", [(Esp32Board, "192"), (PicoWBoard, "96")])
def test_config_overrides_fit_the_heap(cls, periods):
    b = Hw().board(cls, overrides={"HeartbeatInterval": "60"})
    assert b.config_overrides() == {"ChargingScheduleMaxPeriods": periods, "MaxChargingProfilesInstalled": "3",
                                    "ChargeProfileMaxStackLevel": "3", "HeartbeatInterval": "60"}


def test_overrides_are_accepted_by_the_station_config():
    from evse import smartcharge
    from evse.config import Config
    cfg = Config(overrides=Hw().board().config_overrides())
    cfg.add_keys(smartcharge._KEYS)  # the smart charging feature declares them
    assert cfg.get("ChargingScheduleMaxPeriods") == 192 and cfg.get("MaxChargingProfilesInstalled") == 3


def test_idle_board_is_quiet(hw):
    assert hw.run(2000) == []
    assert hw.b.meter(1)[3] == 0  # no meter answer had anything to say yet


def test_plug_card_charge_unplug_events(hw):
    hw.line.ev = "B"
    assert hw.run(200) == [("cp", 1, "B")]
    hw.rf.present(fakes.FakeCard(CARD))
    assert hw.run(1000) == [("card", 1, "04A1B2C3")]  # held: one event
    b = hw.b
    b.set_relay(1, True)
    b.set_pilot(1, 160)
    assert hw.line.permille() == 266
    assert hw.coil.v == 0  # the EV is still in B: no voltage on the cable yet
    assert hw.run(100) == [("cp", 1, "C")]
    assert hw.coil.v == 1
    hw.line.ev = None
    assert hw.run(100) == [("cp", 1, "A")]
    assert hw.coil.v == 0  # opened by the board itself, before the core reacts


def test_contactor_opens_at_once_when_the_ev_stops_requesting(hw):
    hw.line.ev = "B"
    hw.run(200)
    hw.b.set_relay(1, True)
    hw.b.set_pilot(1, 320)
    hw.run(200)
    assert hw.coil.v == 1
    hw.line.auto = False  # the EV pauses: back to B
    t0 = hw.t
    events = []
    while hw.coil.v:
        events += hw.run(50)
    assert events == [("cp", 1, "B")]
    assert hw.t - t0 <= 100  # two bursts of 50 ms


def test_a_to_c_directly_reports_b_first(hw):
    hw.line.ev = "C"
    assert hw.run(200) == [("cp", 1, "B"), ("cp", 1, "C")]


def test_state_d_counts_as_charging(hw):
    hw.line.ev = "D"
    hw.run(200)
    hw.b.set_relay(1, True)
    hw.b.set_pilot(1, 100)
    hw.run(100)
    assert hw.coil.v == 1


def test_welded_contactor_fault_then_clear(hw):
    hw.line.ev = "B"
    hw.run(200)
    hw.b.set_relay(1, True)
    hw.b.set_pilot(1, 320)
    hw.run(200)
    hw.fb.stuck = "closed"
    hw.b.set_relay(1, False)
    hw.b.set_pilot(1, 0)
    events = hw.run(1000)
    assert ("fault", 1, "PowerSwitchFailure", "contactor welded") in events
    hw.fb.stuck = None
    events = hw.run(2000)
    assert events == [("clear", 1)]


def test_contactor_that_does_not_close_faults_until_unplug(hw):
    hw.line.ev = "B"
    hw.run(200)
    hw.fb.stuck = "open"
    hw.b.set_relay(1, True)
    hw.b.set_pilot(1, 320)
    events = hw.run(1000)
    assert events == [("cp", 1, "C"), ("fault", 1, "PowerSwitchFailure", "contactor did not close")]
    hw.b.set_relay(1, False)  # what the core does on the fault
    hw.b.set_pilot(1, 0)
    hw.fb.stuck = None
    assert hw.run(3000) == [("cp", 1, "B")]  # still faulted
    hw.line.ev = None
    assert hw.run(200) == [("clear", 1), ("cp", 1, "A")]


def test_pilot_short_is_state_e_fault(hw):
    hw.line.ev = "B"
    hw.run(200)
    hw.line.short = True
    assert hw.run(200) == [("fault", 1, "EVCommunicationError", "CP at 0 V (state E)"), ("cp", 1, "E")]
    hw.line.short = False
    hw.line.ev = None
    assert hw.run(200) == [("clear", 1), ("cp", 1, "A")]


def test_missing_diode_fault_until_unplug(hw):
    hw.line.ev = "B"
    hw.line.diode = False
    hw.run(200)
    hw.b.set_relay(1, True)
    hw.b.set_pilot(1, 160)
    events = hw.run(200)
    assert ("fault", 1, "EVCommunicationError", "EV diode missing") in events
    assert hw.coil.v == 0  # never closed on a faulty pilot
    hw.b.set_relay(1, False)
    hw.b.set_pilot(1, 0)
    assert hw.run(1000) == [("cp", 1, "B")]
    hw.line.ev = None
    assert hw.run(200) == [("clear", 1), ("cp", 1, "A")]


def test_pilot_stuck_low_is_an_internal_error(hw):
    hw.line.high_mv = -12000
    assert hw.run(200) == [("fault", 1, "InternalError", "CP stuck at -12 V"), ("cp", 1, "F")]


def test_silent_meter_is_a_power_meter_failure(hw):
    hw.meter.silent = 6
    events = hw.run(8000)
    assert events == [("fault", 1, "PowerMeterFailure", "meter does not answer"), ("clear", 1)]


def test_meter_reading_tuple(hw):
    hw.meter.regs.update({fakes.V_RMS: V230, fakes.I_RMS: A16, fakes.WATT: W3680})
    hw.run(1100)
    assert hw.b.meter(1) == (0, 3680, 160, 2300, None)
    hw.meter.add_cf(10000)
    hw.run(1000)
    assert hw.b.meter(1)[0] == int(10000 * WH_PER_COUNT)


def test_bad_connector_and_current(hw):
    for cid in (0, 2, "1"):
        with pytest.raises(ValueError):
            hw.b.meter(cid)
    with pytest.raises(ValueError):
        hw.b.set_pilot(1, -1)


def test_polls_at_one_instant_take_one_pilot_burst(hw):
    reads = hw.line.reads
    for _ in range(4):  # the core polls up to 4 times per input
        hw.b.poll(hw.t)
    assert hw.line.reads == reads


def test_resync_reports_the_present_state_to_a_new_core(hw):
    hw.line.ev = "B"
    hw.run(200)
    hw.b.set_relay(1, True)
    hw.b.set_pilot(1, 320)
    hw.line.short = True
    assert hw.run(200)[0][0] == "fault"
    hw.line.short = False
    assert hw.run(200)[0] == ("clear", 1)
    hw.b.resync()
    assert hw.coil.v == 0 and hw.line.permille() == 1000
    assert hw.run(200) == [("cp", 1, "B")]
    hw.line.short = True
    hw.run(200)
    hw.b.resync()
    assert hw.run(200) == [("fault", 1, "EVCommunicationError", "CP at 0 V (state E)"), ("cp", 1, "E")]


def test_no_reader_chip_no_cards(hw):
    h = Hw()
    h.rf.version = 0x00
    b = h.board()
    assert b.reader is None and b.reader_version == 0
    h.rf.present(fakes.FakeCard(CARD))
    h.line.ev = "B"
    assert h.run(1000) == [("cp", 1, "B")]


class Store:
    def __init__(self, data=None):
        self.data = data
        self.saves = 0

    def load(self):
        return self.data

    def save(self, obj):
        self.data = json.loads(json.dumps(obj))
        self.saves += 1


def test_energy_register_survives_a_reboot():
    store = Store([1200])
    h = Hw()
    b = h.board(energy=store)
    assert b.meter(1)[0] == 1200
    h.meter.regs[fakes.CF_CNT] = 5000  # counted before this boot: not ours
    h.run(2000)
    assert b.meter(1)[0] == 1200 and store.saves == 0
    h.line.ev = "B"
    h.run(200)
    b.set_relay(1, True)
    b.set_pilot(1, 320)
    h.meter.add_cf(1000)
    h.run(2000)
    wh = 1200 + int(1000 * WH_PER_COUNT)
    assert b.meter(1)[0] == wh and store.data == [wh] and store.saves == 1
    h.meter.add_cf(100)
    h.run(2000)
    assert store.data == [wh]  # at most once a minute while it moves ...
    b.set_relay(1, False)  # ... but at once when the charge ends
    h.run(50)
    wh2 = 1200 + int(1100 * WH_PER_COUNT)
    assert store.data == [wh2] and store.saves == 2
    h2 = Hw()
    assert h2.board(energy=store).meter(1)[0] == wh2


def test_corrupt_energy_store_starts_at_zero():
    b = Hw().board(energy=Store(["x"]))
    assert b.meter(1)[0] == 0


def test_station_session_on_esp32_board(tmp_path):
    """The real station core on an Esp32Board driven by fakes."""
    h = Hw()
    board = h.board()
    h.meter.regs.update({fakes.V_RMS: V230, fakes.I_RMS: A16, fakes.WATT: W3680, fakes.CF_CNT: 100})
    rig = Rig(str(tmp_path), tags={"04A1B2C3": "Accepted"}, board=board).connect()
    rig.run(2000)
    h.meter.add_cf(20000)  # the meter counts whatever happens (house load...)
    rig.run(2000)
    assert rig.status() == "Available"
    h.line.ev = "B"  # plug: 9 V
    rig.run(500)
    assert rig.status() == "Preparing"
    h.rf.present(fakes.FakeCard(CARD))
    rig.run(500)
    assert rig.sent("Authorize") == [{"idTag": "04A1B2C3"}]
    start = rig.sent("StartTransaction")[0]
    assert start["idTag"] == "04A1B2C3" and start["meterStart"] == int(20000 * WH_PER_COUNT)
    assert h.line.permille() == 533  # 32 A offered; the EV went to C (6 V)
    assert h.coil.v == 1 and rig.status() == "Charging"
    h.rf.remove()
    rig.run(1000)
    h.meter.add_cf(40000)
    rig.run(3000)
    h.rf.present(fakes.FakeCard(CARD))  # presented again: stop
    rig.run(500)
    stop = rig.sent("StopTransaction")[0]
    assert stop["reason"] == "Local" and stop["idTag"] == "04A1B2C3"
    assert stop["meterStop"] == int(60000 * WH_PER_COUNT)
    assert stop["meterStop"] - start["meterStart"] in (7476, 7477)
    assert h.coil.v == 0 and h.line.permille() == 1000
    h.line.ev = None
    rig.run(500)
    # SuspendedEV: the transaction runs and the PWM is on while the EV has
    # not yet switched to C (two pilot bursts, 50..100 ms).
    assert rig.statuses() == ["Available", "Preparing", "SuspendedEV", "Charging", "Finishing", "Available"]
    assert len(rig.sent("Authorize")) == 1 and len(rig.sent("StartTransaction")) == 1


# -- device entry point ----------------------------------------------------------
def test_main_config_and_board_selection(tmp_path, monkeypatch):
    import main
    path = str(tmp_path / "config.json")
    assert main.load_config(path) is None
    main.provision("wss://csms.example/ocpp", "CP042", password="secret-key-16-bytes", path=path, country="DE")
    cfg = main.load_config(path)
    assert cfg["url"] == "wss://csms.example/ocpp" and cfg["id"] == "CP042" and cfg["country"] == "DE"
    with open(path, "r+b") as f:  # a flipped byte: the CRC refuses it
        f.seek(20)
        c = f.read(1)
        f.seek(20)
        f.write(bytes((c[0] ^ 1,)))
    assert main.load_config(path) is None
    for name in ("esp32", "picow"):
        mod = main.board_module(name)
        assert callable(mod.make) and callable(mod.wifi)
    board_txt = tmp_path / "board.txt"
    board_txt.write_text("picow\n")
    monkeypatch.setattr(main, "BOARD_FILE", str(board_txt))
    assert main.board_name() == "picow"
    monkeypatch.setattr(main, "BOARD", "esp32")
    assert main.board_name() == "esp32"
    assert "machine" not in sys.modules  # only board code imports it, lazily


def test_main_station_seeds_the_link_once(tmp_path, monkeypatch):
    import main
    from scenarios.vclock import VirtualClock
    monkeypatch.setattr(main, "DATA", str(tmp_path))
    cfg = {"url": "ws://csms.example/ocpp", "id": "CP1", "password": "0123456789abcdef"}
    st = main.make_station(Hw().board(), cfg, VirtualClock())
    # The plain factory password is kept as its hex AuthorizationKey.
    assert (st.link.url, st.link.cp_id, st.link.authkey) == ("ws://csms.example/ocpp", "CP1",
                                                             b"0123456789abcdef".hex())
    # The CSMS changes the key; the next boot's factory seeding must not undo it.
    assert st.config.change("AuthorizationKey", "FEDCBA9876543210FEDCBA9876543210") == "Accepted"
    st = main.make_station(Hw().board(), cfg, VirtualClock())
    assert st.link.authkey == "fedcba9876543210fedcba9876543210"
    # "authorization_key" gives the hex key itself.
    cfg2 = {"url": "ws://csms.example/ocpp", "id": "CP2", "authorization_key": "4F43415F4F4354545F61646D696E"}
    monkeypatch.setattr(main, "DATA", str(tmp_path / "b"))
    assert main.make_station(Hw().board(), cfg2, VirtualClock()).link.authkey == "4f43415f4f4354545f61646d696e"
    assert "AuthorizationKey" not in str(st.config.get_configuration({}))


# -- MicroPython VM --------------------------------------------------------------
SCRIPT = """
import json
import fakes
from boards.esp32.board import Esp32Board
line = fakes.FakePilotLine(); coil = fakes.FakePin(); fb = fakes.MirrorPin(coil)
meter = fakes.FakeBl0942(); rf = fakes.FakeMfrc522()
meter.regs[fakes.V_RMS] = 3653169; meter.regs[fakes.CF_CNT] = 0xFFFF00
parts = fakes.FakeParts({"pilot_pwm": line.pwm, "pilot_adc": line.adc, "relay": coil, "relay_fb": fb,
                         "meter_uart": meter, "rfid_spi": rf, "rfid_cs": rf.cs})
b = Esp32Board(parts=parts, serial="VM")
out = []
def run(t0, n):
    for i in range(n):
        for e in b.poll(t0 + 50 * i):
            out.append(list(e))
run(0, 10)
line.ev = "B"; run(500, 10)
rf.present(fakes.FakeCard(bytes([4, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66]))); run(1000, 10)
b.set_relay(1, True); b.set_pilot(1, 320); run(1500, 10)
meter.add_cf(0x300); run(2000, 30)
fb.stuck = "closed"; b.set_relay(1, False); b.set_pilot(1, 0); run(3500, 20)
out.append([coil.v, line.permille()] + list(b.meter(1)))
print(json.dumps(out))
"""


def test_same_events_in_the_micropython_vm():
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import mpvm
    ns = {}
    from io import StringIO
    buf = StringIO()
    old, sys.stdout = sys.stdout, buf
    try:
        exec(SCRIPT, ns)
    finally:
        sys.stdout = old
    host = json.loads(buf.getvalue())
    vm = mpvm.json_lines(mpvm.run(SCRIPT, mpvm.scenario_files()))[0]
    assert vm == host
    assert ["card", 1, "04112233445566"] in host and ["cp", 1, "C"] in host
    assert ["fault", 1, "PowerSwitchFailure", "contactor welded"] in host


def test_import_heap_cost_in_the_vm():
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import mpvm
    m = "gc.collect()\nprint('M', gc.mem_alloc())"
    out = mpvm.run(["import gc", "import evse.compat, boards.pilotduty", m, "import boards.parts", m,
                    "import boards.esp32.board", m, "import boards.picow.board", m])
    base, shared, esp, pico = [int(line.split()[1]) for line in out.splitlines() if line.startswith("M ")]
    # Compiled from source in the VM (docstrings kept); from .mpy it is about
    # two thirds of this, frozen far less. A board is its pin table: the HAL
    # and the part factory are shared, drivers load when a board is built.
    assert esp - base < 28000
    assert esp - shared < 4000 and pico - esp < 4000
