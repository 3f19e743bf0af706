"""BL0942 single-phase metering IC over UART (4800 baud 8N1), read-only.

Protocol (Belling BL0942 datasheet, UART section):
- read: the host sends 0x58 | A (A = address pins, 0..3) and a register
  address; 0xAA asks for the full packet of 23 bytes:
      0x55, I_RMS, V_RMS, I_FAST_RMS, WATT, CF_CNT, FREQ, STATUS, CHECKSUM
  every register 3 bytes little-endian (WATT signed), CHECKSUM =
  ~((0x58 | A) + sum of the 22 bytes before it) & 0xFF. A single register
  answers 3 data bytes and ~((0x58 | A) + reg + data) & 0xFF.
- scaling: V_RMS = 73989 * Vv / Vref, I_RMS = 305978 * Vi / Vref,
  WATT = 3537 * Vi * Vv * cos(phi) / Vref^2 (Vv, Vi in mV at the pins,
  Vref 1.218 V); one CF_CNT count is 1638.4 * 256 WATT-LSB seconds.

Calibration is a (raw, value) pair per quantity: `raw` register counts
read `value` units (deci-volts, deci-amps, watts); exact integer ratios.
The defaults are the datasheet formulas for a 1 mOhm shunt and a
1950 kOhm : 510 Ohm voltage divider; calibrate each board against a
reference meter. Energy per CF_CNT count follows from the power
calibration unless `e_cal` = (counts, Wh) is given.

Non-blocking: poll(now) reads the answer to the previous request if it is
complete, then sends the next one every `period_ms`. A packet that is short,
has the wrong header or checksum is rejected; the last good values stay.
`failed` counts requests in a row without a good answer.
"""
from boards.drivers.energy import EnergyCounter
from evse.compat import const, ticks_diff

READ = const(0x58)
FULL_PACKET = const(0xAA)
HEADER = const(0x55)
PACKET_LEN = const(23)
_CF_MASK = const(0xFFFFFF)
_CF_HALF = const(0x800000)
_CF_SECONDS_LSB = const(4194304)  # 10 x (1638.4 * 256 WATT-LSB seconds per count)


def checksum(cmd, data):
    """The BL0942 check byte over the command byte and `data`."""
    s = cmd
    for b in data:
        s += b
    return ~s & 0xFF


def _u24(b, i):
    return b[i] | b[i + 1] << 8 | b[i + 2] << 16


def parse_packet(buf, cmd=READ):
    """(i_rms, v_rms, watt, cf_cnt) raw from a full packet, or None."""
    if buf is None or len(buf) != PACKET_LEN or buf[0] != HEADER:
        return None
    if checksum(cmd, buf[:PACKET_LEN - 1]) != buf[PACKET_LEN - 1]:
        return None
    watt = _u24(buf, 10)
    if watt & _CF_HALF:
        watt -= 0x1000000
    return _u24(buf, 1), _u24(buf, 4), watt, _u24(buf, 13)


def build(parts, cal=None):
    """The meter on pin-table entry "meter_uart"; `cal`: Bl0942 keywords."""
    return Bl0942(parts.uart("meter_uart", 4800), **(cal or {}))


class Bl0942:
    """`uart`: write(), any(), read(n) as machine.UART (4800 8N1)."""

    TYPE = "BL0942"

    def __init__(self, uart, addr=0, v_cal=(15883341, 10000), i_cal=(25121346, 1000),
                 p_cal=(6233938, 10000), e_cal=None, period_ms=1000, timeout_ms=300):
        if v_cal[0] <= 0 or i_cal[0] <= 0 or p_cal[0] <= 0:
            raise ValueError("bad calibration")
        self.uart = uart
        self.cmd = READ | (addr & 3)
        self.v_cal = v_cal
        self.i_cal = i_cal
        self.p_cal = p_cal
        # Wh per count = num / den.
        if e_cal is None:
            num, den = _CF_SECONDS_LSB * p_cal[1], 36000 * p_cal[0]
        else:
            num, den = e_cal[1], e_cal[0]
        self.energy = EnergyCounter(num, den)
        self.period_ms = period_ms
        self.timeout_ms = timeout_ms
        self.voltage_dv = 0
        self.current_da = 0
        self.power_w = 0
        self._cf = None  # last CF_CNT (None: next packet sets the baseline)
        self.failed = 0
        self.good = 0  # packets accepted, for diagnostics
        self._sent = None  # tick of the pending request
        self._last = None  # tick of the last request

    @property
    def wh(self):
        """The energy register, whole Wh."""
        return self.energy.wh

    def restore(self, wh):
        """Continue the register from a persisted value (boot)."""
        self.energy.restore(wh)

    def poll(self, now):
        if self._sent is not None:
            if self.uart.any() >= PACKET_LEN:
                self._sent = None
                self.feed(self.uart.read(PACKET_LEN))
            elif ticks_diff(now, self._sent) >= self.timeout_ms:
                self._sent = None
                self.failed += 1
        if self._sent is None and (self._last is None or ticks_diff(now, self._last) >= self.period_ms):
            self._drain()  # a late or partial answer must not shift the next frame
            self.uart.write(bytes((self.cmd, FULL_PACKET)))
            self._sent = self._last = now

    def _drain(self):
        while self.uart.any():
            if not self.uart.read(self.uart.any()):
                break

    def feed(self, buf):
        """Apply one full packet; False (values kept) if it is rejected."""
        raw = parse_packet(buf, self.cmd)
        if raw is None:
            self.failed += 1
            return False
        i_rms, v_rms, watt, cf = raw
        self.failed = 0
        self.good += 1
        self.voltage_dv = v_rms * self.v_cal[1] // self.v_cal[0]
        self.current_da = i_rms * self.i_cal[1] // self.i_cal[0]
        # Import-only station: negative power is export or a reversed shunt.
        self.power_w = max(0, watt * self.p_cal[1] // self.p_cal[0])
        if self._cf is not None:
            d = (cf - self._cf) & _CF_MASK
            if d >= _CF_HALF:
                # Not a wrap: the IC restarted and counts from 0 again.
                d = cf
            self.energy.add(d)
        self._cf = cf
        return True
