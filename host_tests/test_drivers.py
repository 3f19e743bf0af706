"""Board drivers against register-level fakes (host_tests/fakes.py): control
pilot, contactor, BL0942 meter, MFRC522 reader."""
from fractions import Fraction

import pytest

import fakes
from boards.drivers import bl0942, mfrc522
from boards.drivers.mfrc522 import Mfrc522, crc_a
from boards.drivers.pilot import Pilot, level_state
from boards.drivers.relay import NOT_CLOSED, WELDED, Contactor

# -- control pilot ------------------------------------------------------------
NOMINAL = {"A": 12000, "B": 9000, "C": 6000, "D": 3000, "E": 0, "F": -12000}


@pytest.mark.parametrize("state", sorted(NOMINAL))
def test_level_bands_are_nominal_plus_minus_one_volt(state):
    mv = NOMINAL[state]
    for inside in (mv - 1000, mv - 999, mv, mv + 999, mv + 1000):
        assert level_state(inside) == state
    for outside in (mv - 1001, mv + 1001):
        assert level_state(outside) is None


def pilot_on(line=None, **kw):
    # 2 raw counts per mV: every level maps to an exact ADC reading.
    line = line or fakes.FakePilotLine(raw_n12=4000, raw_p12=52000)
    kw.setdefault("debounce", 3)
    return line, Pilot(line.pwm, line.adc, raw_n12=4000, raw_p12=52000, **kw)


def settle(pilot, n=None):
    for _ in range(n or pilot.debounce):
        pilot.sense()
    return pilot.state


@pytest.mark.parametrize("state", ["A", "B", "C", "D", "E"])
@pytest.mark.parametrize("delta", [-1000, 0, 1000])
def test_adc_thresholds_at_each_boundary(state, delta):
    line, p = pilot_on()
    line.high_mv = NOMINAL[state] + delta  # PWM off: every sample is the high level
    assert settle(p) == state
    assert p.high_mv == NOMINAL[state] + delta


@pytest.mark.parametrize("mv", [13001, 10001, 10999, 7001, 4001, 1001, -1001, -10999])
def test_levels_between_bands_read_as_invalid(mv):
    line, p = pilot_on()
    line.high_mv = mv
    assert settle(p) == "?"


def test_state_f_only_when_driven_low():
    line, p = pilot_on()
    p.set_f()
    assert line.pwm.duty == 0 and p.permille == 0
    assert settle(p) == "F"


def test_debounce_needs_n_equal_bursts_in_a_row():
    line, p = pilot_on(debounce=3)
    assert p.sense() is None  # nothing confirmed yet
    assert settle(p) == "A"
    line.ev = "B"
    assert [p.sense(), p.sense()] == ["A", "A"]
    assert p.sense() == "B"
    # A glitch shorter than the debounce never shows.
    line.ev = None
    p.sense()
    line.ev = "B"
    assert [p.sense(), p.sense()] == ["B", "B"]
    line.ev = None
    assert [p.sense(), p.sense(), p.sense()] == ["B", "B", "A"]


@pytest.mark.parametrize("amps,permille", [(6, 100), (16, 266), (32, 533), (80, 960)])
def test_duty_output_for_current(amps, permille):
    # IEC 61851-1 Table A.8: D = I / 0.6 up to 51 A, D = I / 2.5 + 64 above.
    line, p = pilot_on()
    p.set_da(amps * 10)
    assert line.pwm.freq() == 1000
    assert p.permille == permille
    assert line.pwm.duty == permille * 65535 // 1000


@pytest.mark.parametrize("da", [0, 59])
def test_no_charging_is_dc_plus_12v(da):
    line, p = pilot_on()
    p.set_da(320)
    p.set_da(da)
    assert p.permille == 1000 and line.pwm.duty == 65535 and not p.pwm_running()


def test_inverting_driver_stage():
    line, p = pilot_on(invert=True)
    assert line.pwm.duty == 0  # DC +12 V through an inverting stage
    p.set_da(160)
    assert line.pwm.duty == (1000 - 266) * 65535 // 1000


def test_short_high_phase_is_still_seen():
    line, p = pilot_on()
    line.ev, line.auto = "B", False
    p.set_da(60)  # 10 % duty: a 100 us high phase
    assert settle(p) == "B"
    assert p.low_mv == -12000 and not p.diode_fault


def test_a_burst_that_misses_the_high_phase_is_no_reading():
    line, p = pilot_on()
    line.ev = "B"
    settle(p)
    p.set_da(160)
    line.high_mv = -12000  # as if every sample fell in the low phase
    assert settle(p, 5) == "B"


def test_ev_goes_to_c_on_pwm():
    line, p = pilot_on()
    line.ev = "B"
    assert settle(p) == "B"
    p.set_da(320)
    assert settle(p) == "C"
    p.set_da(0)
    assert settle(p) == "B"


def test_missing_diode_latches_until_state_a():
    line, p = pilot_on()
    line.ev, line.diode = "B", False
    assert settle(p) == "B" and not p.diode_fault  # no PWM: no negative phase to judge
    p.set_da(160)
    settle(p)
    assert p.diode_fault and p.low_mv == -6000
    p.set_da(0)  # the station stops the PWM on the fault
    settle(p)
    assert p.diode_fault
    line.ev = None
    assert settle(p) == "A" and not p.diode_fault


def test_diode_present_is_no_fault():
    line, p = pilot_on()
    line.ev = "B"
    p.set_da(320)
    settle(p, 6)
    assert p.state == "C" and not p.diode_fault


def test_pilot_rejects_bad_parameters():
    line = fakes.FakePilotLine()
    with pytest.raises(ValueError):
        Pilot(line.pwm, line.adc, raw_n12=100, raw_p12=100)
    with pytest.raises(ValueError):
        Pilot(line.pwm, line.adc, debounce=0)


# -- contactor ------------------------------------------------------------------
def contactor(**kw):
    coil = fakes.FakePin()
    fb = fakes.MirrorPin(coil, closed_level=0)
    return coil, fb, Contactor(coil, fb, settle_ms=300, clear_ms=1000, closed_level=0, **kw)


def test_contactor_drives_the_coil_and_follows():
    coil, fb, c = contactor()
    assert coil.v == 0 and c.check(0) is None
    c.set(True)
    assert coil.v == 1 and c.closed() is True
    for t in range(0, 2000, 50):
        assert c.check(t) is None


def test_no_feedback_never_faults():
    coil = fakes.FakePin()
    c = Contactor(coil)
    c.set(True)
    assert c.closed() is None and c.check(0) is None and c.check(10000) is None


def test_welded_contactor_faults_then_clears():
    coil, fb, c = contactor()
    c.set(True)
    c.check(0)
    fb.stuck = "closed"
    c.set(False)
    assert c.check(100) is None  # release time
    assert c.check(399) is None
    assert c.check(400) == WELDED == ("PowerSwitchFailure", "contactor welded")
    assert c.check(5000) == WELDED
    fb.stuck = None  # contact opens at last
    assert c.check(5050) == WELDED
    assert c.check(6049) == WELDED
    assert c.check(6050) is None


def test_contactor_that_does_not_close_stays_faulted_until_rearmed():
    coil, fb, c = contactor()
    fb.stuck = "open"
    c.set(True)
    c.check(0)
    assert c.check(300) == NOT_CLOSED
    c.set(False)  # the station gives up: the contact agrees now
    assert c.check(400) == NOT_CLOSED and c.check(5000) == NOT_CLOSED
    c.rearm()
    assert c.check(5050) is None


def test_short_mismatch_within_settle_time_is_no_fault():
    coil, fb, c = contactor()
    fb.stuck = "open"
    c.set(True)
    c.check(0)
    c.check(250)
    fb.stuck = None
    assert c.check(299) is None and c.check(1000) is None


# -- BL0942 -------------------------------------------------------------------------
def packet(i_rms, v_rms, watt, cf, cmd=0x58):
    """A full packet built from the datasheet layout (independent of the driver)."""
    body = [0x55]
    for v in (i_rms, v_rms, 0, watt & 0xFFFFFF, cf, 20000, 0):
        body += [v & 0xFF, (v >> 8) & 0xFF, (v >> 16) & 0xFF]
    body.append(255 - (cmd + sum(body)) % 256)
    return bytes(body)


def test_checksum_is_the_inverted_byte_sum():
    assert bl0942.checksum(0x58, b"") == 0xA7
    assert bl0942.checksum(0x58, bytes([0x55, 0x01])) == 0xFF - ((0x58 + 0x55 + 1) & 0xFF)


def test_packet_parsing():
    pkt = packet(1234, 3653169, -5, 0xABCDEF)
    assert len(pkt) == 23
    assert bl0942.parse_packet(pkt) == (1234, 3653169, -5, 0xABCDEF)
    assert bl0942.parse_packet(packet(1, 2, 3, 4, cmd=0x5A), 0x5A) == (1, 2, 3, 4)
    assert bl0942.parse_packet(packet(1, 2, 3, 4, cmd=0x5A)) is None  # other address
    bad = bytearray(pkt)
    bad[22] ^= 0x10
    assert bl0942.parse_packet(bytes(bad)) is None
    bad = bytearray(pkt)
    bad[5] ^= 0x01  # a flipped data bit
    assert bl0942.parse_packet(bytes(bad)) is None
    assert bl0942.parse_packet(pkt[:22]) is None
    assert bl0942.parse_packet(b"\x54" + pkt[1:]) is None
    assert bl0942.parse_packet(None) is None


def test_single_register_answer():
    m = fakes.FakeBl0942()
    m.regs[fakes.V_RMS] = 0x123456
    m.write(bytes((0x58, fakes.V_RMS)))
    ans = m.read(4)
    assert ans[3] == 255 - (0x58 + 0x04 + 0x56 + 0x34 + 0x12) % 256
    assert int.from_bytes(ans[:3], "little") == 0x123456
    assert bl0942.checksum(0x58 + fakes.V_RMS, ans[:3]) == ans[3]
    assert bl0942.checksum(0x58 + fakes.I_RMS, ans[:3]) != ans[3]  # the checksum covers the address


# Raw readings for 230.0 V, 32.0 A, 7360 W from the datasheet formulas and
# the default front end (1 mOhm shunt, 1950 kOhm : 510 Ohm divider).
VV_PER_V = 1000 * 510 / (1950000 + 510)  # mV at VP per line volt
V230 = int(230 * 73989 * VV_PER_V / 1.218) + 1
A32 = int(32 * 305978 / 1.218) + 1
W7360 = int(7360 * 3537 * VV_PER_V / 1.218 ** 2) + 1
# Wh per CF_CNT count: 1638.4 * 256 WATT-LSB seconds, WATT-LSB = 1 / 623.3938 W.
WH_PER_COUNT = Fraction(4194304, 36000) / Fraction(6233938, 10000)


def meter(fake=None, **kw):
    fake = fake or fakes.FakeBl0942()
    fake.regs.update({fakes.V_RMS: V230, fakes.I_RMS: A32, fakes.WATT: W7360})
    return fake, bl0942.Bl0942(fake, **kw)


def test_scaling_to_integer_units():
    fake, m = meter()
    m.poll(0)  # request
    assert fake.requests == 1 and (m.voltage_dv, m.current_da, m.power_w) == (0, 0, 0)
    m.poll(50)  # answer read
    assert (m.voltage_dv, m.current_da, m.power_w) == (2300, 320, 7360)
    assert m.good == 1 and m.failed == 0
    fake.regs[fakes.WATT] = -W7360  # export / reversed shunt: import power 0
    m.poll(1000)
    m.poll(1050)
    assert m.power_w == 0


def test_requests_follow_the_period():
    fake, m = meter(period_ms=1000)
    for t in range(0, 3000, 50):
        m.poll(t)
    assert fake.requests == 3


def test_bad_checksum_is_rejected_and_last_good_value_kept():
    fake, m = meter()
    m.poll(0)
    m.poll(50)
    fake.regs[fakes.V_RMS] = V230 * 2
    fake.add_cf(1000)
    fake.bad_checksum = 1
    m.poll(1000)
    m.poll(1050)
    assert m.voltage_dv == 2300 and m.failed == 1 and m.wh == 0
    m.poll(2000)
    m.poll(2050)
    assert m.voltage_dv == 4600 and m.failed == 0
    assert m.wh == int(1000 * WH_PER_COUNT)  # the counts were not lost


def test_short_packet_times_out_and_the_next_frame_is_aligned():
    fake, m = meter(timeout_ms=300)
    fake.short = 1
    m.poll(0)
    m.poll(50)
    m.poll(250)
    assert m.good == 0 and m.failed == 0  # still waiting
    m.poll(300)
    assert m.failed == 1
    m.poll(1000)  # drains the partial answer before asking again
    m.poll(1050)
    assert m.good == 1 and m.voltage_dv == 2300


def test_silent_meter_counts_failures():
    fake, m = meter(timeout_ms=300)
    fake.silent = 3
    for t in range(0, 3000, 50):
        m.poll(t)
    assert m.failed == 3 and m.good == 0 and fake.requests == 3
    m.poll(3000)
    m.poll(3050)
    assert m.good == 1 and m.failed == 0


def run_meter(fake, m, t0, steps):
    t = t0
    for counts in steps:
        fake.add_cf(counts)
        m.poll(t)
        m.poll(t + 50)
        t += 1000
    return t


def test_energy_accumulates_with_remainder_carried():
    fake, m = meter()
    fake.regs[fakes.CF_CNT] = 777  # whatever the IC counted before: the baseline
    t = run_meter(fake, m, 0, [0])
    assert m.wh == 0
    chunks = [1, 5, 3, 0, 17, 2, 9, 4, 11, 6] * 20
    run_meter(fake, m, t, chunks)
    assert m.wh == int(sum(chunks) * WH_PER_COUNT)  # floor of the exact total


def test_energy_across_register_wrap():
    fake, m = meter()
    fake.regs[fakes.CF_CNT] = 0xFFFFF0
    t = run_meter(fake, m, 0, [0])
    t = run_meter(fake, m, t, [0x08, 0x20, 0x30])  # wraps past 0xFFFFFF
    assert fake.regs[fakes.CF_CNT] == 0x48
    assert m.wh == int(0x58 * WH_PER_COUNT)


def test_ic_restart_counts_from_zero():
    fake, m = meter()
    fake.regs[fakes.CF_CNT] = 0x123456
    t = run_meter(fake, m, 0, [0])
    fake.regs[fakes.CF_CNT] = 0  # the IC lost power
    run_meter(fake, m, t, [40])
    assert m.wh == int(40 * WH_PER_COUNT)


def test_energy_calibration_and_restore():
    fake, m = meter(e_cal=(10, 3))  # 10 counts = 3 Wh
    m.restore(5000)
    t = run_meter(fake, m, 0, [0])
    run_meter(fake, m, t, [7, 7, 7])  # 21 counts = 6.3 Wh
    assert m.wh == 5006
    run_meter(fake, m, t + 5000, [9])  # 30 counts = 9 Wh
    assert m.wh == 5009


def test_address_pins_select_the_command():
    fake = fakes.FakeBl0942(addr=2)
    fake.regs[fakes.V_RMS] = V230
    m = bl0942.Bl0942(fake, addr=2)
    m.poll(0)
    m.poll(50)
    assert m.voltage_dv == 2300
    other = bl0942.Bl0942(fakes.FakeBl0942(addr=1), addr=2, timeout_ms=100)
    other.poll(0)
    other.poll(100)
    assert other.failed == 1


def test_bad_calibration_is_refused():
    with pytest.raises(ValueError):
        bl0942.Bl0942(fakes.FakeBl0942(), v_cal=(0, 1))


# -- MFRC522 -------------------------------------------------------------------
def test_crc_a_check_values():
    # CRC-16/ISO-IEC-14443-3-A catalogue check value, and the well-known HLTA frame.
    assert crc_a(b"123456789") == bytes((0x05, 0xBF))
    assert crc_a(b"\x50\x00") == bytes((0x57, 0xCD))


def reader(version=0x92, gone=2):
    chip = fakes.FakeMfrc522(version=version)
    r = Mfrc522(chip, chip.cs, gone_polls=gone)
    assert r.init() == version
    return chip, r


def test_init_switches_the_antenna_on():
    chip, r = reader()
    assert chip.regs[0x14] & 0x03 == 0x03 and r.ok()
    assert chip.regs[0x2A] & 0x80  # TAuto: the chip times out a silent card
    assert chip.cs.v == 1


@pytest.mark.parametrize("version", [0x00, 0xFF])
def test_missing_chip_is_detected(version):
    chip, r = reader(version)
    assert not r.ok()


@pytest.mark.parametrize("uid,tag", [
    (bytes.fromhex("04A1B2C3"), "04A1B2C3"),
    (bytes.fromhex("04112233445566"), "04112233445566"),
    (bytes.fromhex("08AABBCCDDEEFF001122"), "08AABBCCDDEEFF001122"),
])
def test_uid_of_4_7_and_10_bytes(uid, tag):
    chip, r = reader()
    card = fakes.FakeCard(uid)
    chip.present(card)
    assert r.read_uid() == uid
    assert card.state == "HALT" and card.selects == 1
    assert r.poll() == tag and r.present == tag
    # Cascade levels: SEL 0x93 (+0x95, +0x97) each with anticollision and select.
    sels = [f[0][0] for f in chip.frames if f[1] == 0 and f[0][0] in (0x93, 0x95, 0x97)]
    assert sels == [0x93, 0x93, 0x95, 0x95, 0x97, 0x97][:2 * len(card.cls)] * 2


def test_card_held_makes_one_event():
    chip, r = reader()
    card = fakes.FakeCard(bytes.fromhex("DEADBEEF"))
    chip.present(card)
    events = [r.poll() for _ in range(10)]
    assert events == ["DEADBEEF"] + [None] * 9
    assert card.selects == 10  # it was really read on every poll


def test_removal_and_represent_is_a_new_event():
    chip, r = reader(gone=2)
    card = fakes.FakeCard(bytes.fromhex("DEADBEEF"))
    chip.present(card)
    assert r.poll() == "DEADBEEF"
    chip.remove()
    assert r.poll() is None  # one missed poll: maybe just a glitch
    chip.present(card)
    assert r.poll() is None
    chip.remove()
    assert [r.poll(), r.poll()] == [None, None] and r.present is None
    chip.present(card)
    assert r.poll() == "DEADBEEF"


def test_another_card_is_a_new_event():
    chip, r = reader()
    chip.present(fakes.FakeCard(bytes.fromhex("01020304")))
    assert r.poll() == "01020304"
    chip.present(fakes.FakeCard(bytes.fromhex("04112233445566")))
    assert r.poll() == "04112233445566"


def test_no_card():
    chip, r = reader()
    assert [r.poll() for _ in range(3)] == [None] * 3
    # Only wake-ups went out, as 7-bit short frames.
    assert chip.frames == [(bytes((mfrc522.WUPA,)), 7)] * 3


def test_collision_reads_as_no_card():
    chip, r = reader()
    chip.present(fakes.FakeCard(bytes.fromhex("01020304")))
    chip.collide = True
    assert r.poll() is None
    chip.collide = False
    # The card was left in READY: the next wake-up knocks it back to IDLE
    # (ISO/IEC 14443-3), the one after reads it.
    assert [r.poll(), r.poll()] == [None, "01020304"]


def test_halted_card_ignores_reqa_but_wakes_on_wupa():
    # Why the driver wakes with WUPA: a card left in HALT answers nothing else.
    chip, r = reader()
    card = fakes.FakeCard(bytes.fromhex("01020304"))
    chip.present(card)
    assert r.read_uid() is not None and card.state == "HALT"
    assert r.transceive(b"\x26", 7) is None
    assert r.transceive(b"\x52", 7) == bytes((0x04, 0x00))


def test_no_antenna_no_card():
    chip = fakes.FakeMfrc522()
    r = Mfrc522(chip, chip.cs)  # init() not called: antenna off
    chip.present(fakes.FakeCard(bytes.fromhex("01020304")))
    assert r.poll() is None
