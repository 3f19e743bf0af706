"""ADE7953 driver against the register-level fake, on a board, and in the VM."""
import json
import os
import sys
from fractions import Fraction

import pytest

import fakes
from boards.drivers import ade7953
from boards.drivers.ade7953 import Ade7953
from boards.esp32.board import Esp32Board

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CAL = {"v_cal": (9032007, 3536), "i_cal": (9032007, 3536), "p_cal": (4862401, 125000),
       "e_cal": (595872, 100)}
WH = Fraction(100, 595872)  # Wh per count with CAL


def meter(**kw):
    chip = fakes.FakeAde7953()
    m = Ade7953(chip, **{**CAL, **kw})
    return chip, m


def test_register_widths_follow_the_address():
    assert [ade7953.reg_width(r) for r in (0x004, 0x0FE, 0x102, 0x21E, 0x31E, 0x702, 0x800)] == \
        [1, 1, 2, 3, 4, 1, 1]


def test_setup_unlocks_and_tunes_the_reserved_register():
    chip, m = meter(pga_ia=3)
    assert m.setup() and m.version == 0x05
    assert chip.regs[0x120] == 0x30 and chip.regs[0x008] == 3
    chip2 = fakes.FakeAde7953()
    chip2.writeto_mem(0x38, 0x120, b"\x00\x30", addrsize=16)  # no unlock first: ignored
    assert chip2.regs[0x120] == 0


def test_readings_scale_with_the_calibration():
    chip, m = meter()
    chip.vrms, chip.irms, chip.watt = 5875000, 408600, 2100000
    m.poll(0)
    v = 5875000 * 3536 // 9032007
    assert (m.voltage_dv, m.current_da, m.power_w) == (v, 408600 * 3536 // 9032007, 2100000 * 125000 // 4862401)
    assert 2295 <= m.voltage_dv <= 2305 and m.failed == 0 and m.good == 1


def test_energy_accumulates_exactly_and_reads_reset_the_chip_register():
    chip, m = meter()
    total = 0
    for t, counts in enumerate((100000, 333333, 1, 5958, 2000000, 7)):
        chip.add_energy(counts)
        total += counts
        m.poll(t * 1000)
        assert chip.energy == 0  # read-with-reset
        assert m.wh == int(total * WH)
    assert m.wh == 409 and m.good == 6


def test_energy_never_goes_backwards():
    chip, m = meter()
    chip.add_energy(600000)
    m.poll(0)
    wh = m.wh
    chip.add_energy(-500000)  # export, or a reversed CT
    chip.watt = -1000
    m.poll(1000)
    assert m.wh == wh and m.power_w == 0


def test_polls_only_once_per_period():
    chip, m = meter(period_ms=1000)
    m.poll(0)
    n = chip.reads
    m.poll(500)
    assert chip.reads == n
    m.poll(1000)
    assert chip.reads > n


def test_bus_failures_keep_values_count_and_set_up_again():
    chip, m = meter()
    chip.vrms = 5875000
    m.poll(0)
    v = m.voltage_dv
    chip.restart()  # power glitch: defaults back, 0x120 lost
    chip.silent = 3
    for i in range(1, 4):
        m.poll(i * 1000)
    assert m.failed == 3 and m.voltage_dv == v and m.version is None
    chip.vrms = 5875000
    m.poll(4000)
    assert m.failed == 0 and chip.regs[0x120] == 0x30  # set up again


def test_absent_chip_counts_as_failed_without_raising():
    m = Ade7953(fakes.FakeAde7953(addr=0x39))
    for i in range(5):
        m.poll(i * 1000)
    assert m.failed == 5 and m.wh == 0


def test_restore_continues_the_register():
    chip, m = meter()
    m.restore(1234)
    chip.add_energy(595872)
    m.poll(0)
    assert m.wh == 1334


def test_bad_calibration_is_refused():
    with pytest.raises(ValueError):
        Ade7953(fakes.FakeAde7953(), e_cal=(0, 1))


# -- on a board: one pin-table line and a driver name -----------------------------
def ade_board(**kw):
    line, coil = fakes.FakePilotLine(), fakes.FakePin()
    chip = fakes.FakeAde7953()
    parts = fakes.FakeParts({"pilot_pwm": line.pwm, "pilot_adc": line.adc, "relay": coil,
                             "relay_fb": fakes.MirrorPin(coil), "meter_i2c": chip}, serial="ESP32-AB")
    return chip, Esp32Board(parts=parts, meter="ade7953", meter_cal=CAL, reader=False, **kw)


def test_board_with_the_ade7953_reports_its_readings():
    chip, b = ade_board()
    assert b.identity()["meterType"] == "ADE7953" and b.identity()["chargePointSerialNumber"] == "ESP32-AB"
    chip.vrms, chip.irms = 5875000, 408600
    chip.add_energy(595872 * 3)
    b.poll(0)
    wh, w, da, dv, soc = b.meter(1)
    assert (wh, da, dv, soc) == (300, 408600 * 3536 // 9032007, 5875000 * 3536 // 9032007, None)


def test_board_persists_and_restores_the_ade7953_register():
    class Store:
        data = [700]

        def load(self):
            return self.data

        def save(self, v):
            self.data = v

    store = Store()
    chip, b = ade_board(energy=store)
    chip.add_energy(595872)
    b.poll(0)
    assert b.meter(1)[0] == 800
    b.save_energy()
    assert store.data == [800]


def test_silent_ade7953_raises_power_meter_failure_on_the_board():
    chip, b = ade_board()
    chip.silent = 100
    events = []
    for i in range(7):
        events += b.poll(i * 1000)
    assert ("fault", 1, "PowerMeterFailure", "meter does not answer") in events


def test_make_picks_the_meter_from_the_configuration(monkeypatch):
    chip = fakes.FakeAde7953()
    line, coil = fakes.FakePilotLine(), fakes.FakePin()
    objs = {"pilot_pwm": line.pwm, "pilot_adc": line.adc, "relay": coil, "relay_fb": fakes.MirrorPin(coil),
            "meter_i2c": chip, "rfid_spi": fakes.FakeMfrc522()}
    objs["rfid_cs"] = objs["rfid_spi"].cs
    objs["meter_uart"] = fakes.FakeBl0942()
    monkeypatch.setattr(Esp32Board, "parts", lambda self: fakes.FakeParts(objs))
    b = Esp32Board.make({"meter": "ade7953", "meter_cal": {"e_cal": [1000, 1]}})
    chip.add_energy(5000)
    b.poll(0)
    assert b.meter_type == "ADE7953" and b.meter(1)[0] == 5
    assert Esp32Board.make({}).meter_type == "BL0942"  # the default stays


# -- MicroPython VM -----------------------------------------------------------------
SCRIPT = """
import json
import fakes
from boards.drivers.ade7953 import Ade7953
chip = fakes.FakeAde7953()
m = Ade7953(chip, e_cal=(595872, 100))
out = []
chip.vrms = 5875000; chip.irms = 408600; chip.watt = 2100000
for t in range(6):
    chip.add_energy(1234567 + t)
    if t == 3:
        chip.silent = 1
    m.poll(t * 1000)
    out.append([m.wh, m.power_w, m.current_da, m.voltage_dv, m.failed])
print(json.dumps(out))
"""


def test_same_readings_in_the_micropython_vm():
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import mpvm
    from io import StringIO
    buf = StringIO()
    old, sys.stdout = sys.stdout, buf
    try:
        exec(SCRIPT, {})
    finally:
        sys.stdout = old
    host = json.loads(buf.getvalue())
    assert mpvm.json_lines(mpvm.run(SCRIPT, mpvm.scenario_files()))[0] == host
    assert host[3][4] == 1 and host[-1][0] > host[0][0]
