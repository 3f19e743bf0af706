"""ADE7953 single-phase metering IC over I2C: voltage + current channel A.

Datasheet facts used (Analog Devices ADE7953, Rev. B):
- I2C address 0x38; a register address is 16 bits, data MSB first
  (machine.I2C readfrom_mem_into / writeto_mem with addrsize=16). I2C,
  not SPI, so the meter does not share the reader's SPI bus (the reader
  is mode 0, this chip mode 3).
- Register width follows the address: 0x0xx 8 bits, 0x1xx 16, 0x2xx 24,
  0x3xx the same 24-bit values sign-extended to 32 bits; 0x702 VERSION
  and 0x800 EX_REF are 8 bits.
- Start-up: write 0xAD to 0x0FE, then 0x30 to 0x120 (unlocks and sets the
  reserved register for the specified accuracy). PGA_IA (0x008) sets the
  channel A gain.
- VRMS 0x31C and IRMSA 0x31A read 9032007 at full-scale input (0.5 V
  peak at the pins); AWATT 0x312 is the signed instantaneous active power.
- AENERGYA 0x31E: signed 24-bit active energy, read-with-reset by
  default (LCYCMODE RSTREAD), so each read is the energy since the last
  one. At full-scale inputs it counts about 206.9 kHz: a read every second
  stays far from the 24-bit overflow (about 40 s at full scale).

Calibration is a (raw, value) pair per quantity: `raw` counts read `value`
units (deci-volts, deci-amps, watts); e_cal = (counts, Wh). The defaults
are for a 1000:1 voltage divider and a 1 mOhm shunt at PGA gain 1: VRMS
full scale 9032007 is then 353.6 V, IRMSA 353.6 A, and 206.9 kHz at
125 kW full scale makes 5958.72 counts per Wh. p_cal's default is a
placeholder: calibrate every board against a reference meter.

The energy register `wh` only moves forward: negative counts (export, a
reversed CT) are not counted. A read that fails (OSError) keeps the last
values and counts in `failed`.
"""
from boards.drivers.energy import EnergyCounter
from evse.compat import const, ticks_diff

ADDR = const(0x38)
UNLOCK = const(0x0FE)
UNLOCK_KEY = const(0xAD)
RESERVED_120 = const(0x120)
RESERVED_120_VALUE = const(0x30)
PGA_IA = const(0x008)
VERSION = const(0x702)
AWATT = const(0x312)
IRMSA = const(0x31A)
VRMS = const(0x31C)
AENERGYA = const(0x31E)


def reg_width(reg):
    """Bytes of register `reg` on the bus."""
    top = reg >> 8
    return (1, 2, 3, 4)[top] if top < 4 else 1


def build(parts, cal=None):
    """The meter on pin-table entry "meter_i2c"; `cal`: Ade7953 keywords."""
    return Ade7953(parts.i2c("meter_i2c"), **(cal or {}))


class Ade7953:
    """`i2c`: readfrom_mem_into(addr, reg, buf, addrsize=16) and
    writeto_mem(addr, reg, buf, addrsize=16), as machine.I2C."""

    TYPE = "ADE7953"

    def __init__(self, i2c, addr=ADDR, v_cal=(9032007, 3536), i_cal=(9032007, 3536),
                 p_cal=(4862401, 125000), e_cal=(595872, 100), pga_ia=0, period_ms=1000):
        if v_cal[0] <= 0 or i_cal[0] <= 0 or p_cal[0] <= 0 or e_cal[0] <= 0 or e_cal[1] <= 0:
            raise ValueError("bad calibration")
        self.i2c = i2c
        self.addr = addr
        self.v_cal = v_cal
        self.i_cal = i_cal
        self.p_cal = p_cal
        self.energy = EnergyCounter(e_cal[1], e_cal[0])  # Wh per count = e_cal[1] / e_cal[0]
        self.pga_ia = pga_ia
        self.period_ms = period_ms
        self.voltage_dv = 0
        self.current_da = 0
        self.power_w = 0
        self.version = None  # set once the chip has been set up
        self.failed = 0
        self.good = 0
        self._last = None
        self._b = (None, bytearray(1), bytearray(2), bytearray(3), bytearray(4))

    # -- registers ----------------------------------------------------------
    def read(self, reg):
        """Register `reg` as an unsigned integer (OSError if the bus fails)."""
        buf = self._b[reg_width(reg)]
        self.i2c.readfrom_mem_into(self.addr, reg, buf, addrsize=16)
        v = 0
        for b in buf:
            v = v << 8 | b
        return v

    def read_signed(self, reg):
        v = self.read(reg) & 0xFFFFFF  # 24 significant bits, sign-extended
        return v - 0x1000000 if v & 0x800000 else v

    def write(self, reg, value):
        n = reg_width(reg)
        self.i2c.writeto_mem(self.addr, reg, value.to_bytes(n, "big"), addrsize=16)

    # -- meter interface ----------------------------------------------------
    def setup(self):
        """Datasheet start-up writes; True when the chip answered."""
        try:
            self.write(UNLOCK, UNLOCK_KEY)
            self.write(RESERVED_120, RESERVED_120_VALUE)
            self.write(PGA_IA, self.pga_ia)
            self.version = self.read(VERSION)
        except OSError:
            self.version = None
        return self.version is not None

    @property
    def wh(self):
        """The energy register, whole Wh."""
        return self.energy.wh

    def restore(self, wh):
        """Continue the register from a persisted value (boot)."""
        self.energy.restore(wh)

    def poll(self, now):
        if self._last is not None and ticks_diff(now, self._last) < self.period_ms:
            return
        self._last = now
        if self.version is None and not self.setup():
            self.failed += 1  # not powered yet, or not there: try again next period
            return
        try:
            v = self.read(VRMS)
            i = self.read(IRMSA)
            w = self.read_signed(AWATT)
            e = self.read_signed(AENERGYA)
        except OSError:
            self.failed += 1
            if self.failed >= 3:
                self.version = None  # maybe the chip restarted: set it up again
            return
        self.failed = 0
        self.good += 1
        self.voltage_dv = v * self.v_cal[1] // self.v_cal[0]
        self.current_da = i * self.i_cal[1] // self.i_cal[0]
        self.power_w = max(0, w * self.p_cal[1] // self.p_cal[0])
        if e > 0:
            self.energy.add(e)
