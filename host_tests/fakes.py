"""Register-level fakes of the board hardware, for host and VM tests.

They stand where machine.PWM / ADC / Pin / UART / SPI stand on the device
and answer the real protocols (ISO/IEC 14443-3 card states, BL0942 frames
with checksums), so the drivers run unchanged against them. Not for the
device build.
"""
from boards.drivers.mfrc522 import crc_a


class FakePin:
    def __init__(self, v=0):
        self.v = v
        self.writes = 0

    def value(self, v=None):
        if v is None:
            return self.v
        self.v = 1 if v else 0
        self.writes += 1
        return None


class MirrorPin:
    """The contactor's mirror contact: follows the coil pin unless `stuck`
    ("closed" = welded, "open" = does not close)."""

    def __init__(self, coil, closed_level=0):
        self.coil = coil
        self.closed_level = closed_level
        self.stuck = None

    def value(self, v=None):
        closed = self.coil.v == 1 if self.stuck is None else self.stuck == "closed"
        return self.closed_level if closed else 1 - self.closed_level


class FakePwm:
    def __init__(self):
        self.f = 0
        self.duty = 0

    def freq(self, f=None):
        if f is None:
            return self.f
        self.f = f
        return None

    def duty_u16(self, d=None):
        if d is None:
            return self.duty
        self.duty = d
        return None


class _LineAdc:
    def __init__(self, line):
        self.line = line

    def read_u16(self):
        return self.line.sample()


class FakePilotLine:
    """The CP wire: our PWM in, an EV on it, the ADC sees the result.

    `ev`: None (no EV, A), "B", "C" or "D"; with `auto` an EV in B that sees
    a valid PWM (8..97 %) requests energy (C). `diode` False: the negative
    half is loaded like the positive one. `short`: CP shorted to PE (0 V).
    `high_mv` forces the high level. Each read moves 1/steps of a period on,
    so a burst of `steps` reads covers one period from its start.
    """

    def __init__(self, raw_n12=4000, raw_p12=60000, steps=24):
        self.pwm = FakePwm()
        self.adc = _LineAdc(self)
        self.raw_n12 = raw_n12
        self.raw_p12 = raw_p12
        self.steps = steps
        self.ev = None
        self.auto = True
        self.diode = True
        self.short = False
        self.high_mv = None
        self.reads = 0
        self._k = 0

    def permille(self):
        return (self.pwm.duty * 1000 + 32767) // 65535

    def ev_mv(self):
        """Level the EV's resistors make of +12 V."""
        p = self.permille()
        ev = self.ev
        if ev == "B" and self.auto and 80 <= p <= 970:
            ev = "C"
        return {None: 12000, "B": 9000, "C": 6000, "D": 3000}[ev]

    def levels(self):
        if self.short:
            return 0, 0
        hi = self.ev_mv() if self.high_mv is None else self.high_mv
        lo = -12000 if self.diode or self.ev is None else -hi
        return hi, lo

    def raw(self, mv):
        return self.raw_n12 + (mv + 12000) * (self.raw_p12 - self.raw_n12) // 24000

    def sample(self):
        k = self._k
        self._k = (k + 1) % self.steps
        self.reads += 1
        hi, lo = self.levels()
        high = k * 1000 < self.permille() * self.steps
        return self.raw(hi if high else lo)


# -- BL0942 over UART -----------------------------------------------------
I_RMS = 0x03
V_RMS = 0x04
I_FAST_RMS = 0x05
WATT = 0x06
CF_CNT = 0x07
FREQ = 0x08
STATUS = 0x09


class FakeBl0942:
    """A BL0942 on the UART: answers 0x58|addr + register (or 0xAA for the
    full packet) from `regs`. Faults for the next answers: `bad_checksum`,
    `short` (only the first 10 bytes), `silent` (no answer)."""

    def __init__(self, addr=0):
        self.addr = addr
        self.regs = {I_RMS: 0, V_RMS: 0, I_FAST_RMS: 0, WATT: 0, CF_CNT: 0, FREQ: 20000, STATUS: 0}
        self.rx = bytearray()
        self.bad_checksum = 0
        self.short = 0
        self.silent = 0
        self.requests = 0
        self._cmd = bytearray()

    def add_cf(self, counts):
        self.regs[CF_CNT] = (self.regs[CF_CNT] + counts) & 0xFFFFFF

    # machine.UART
    def write(self, buf):
        for b in buf:
            self._cmd.append(b)
            if len(self._cmd) == 2:
                cmd, reg = self._cmd[0], self._cmd[1]
                self._cmd = bytearray()
                self._answer(cmd, reg)
        return len(buf)

    def any(self):
        return len(self.rx)

    def read(self, n=None):
        if not self.rx:
            return None
        n = len(self.rx) if n is None else n
        out = bytes(self.rx[:n])
        self.rx = self.rx[n:]
        return out

    def _answer(self, cmd, reg):
        if cmd != 0x58 | self.addr:
            return  # another chip's address, or not a read
        self.requests += 1
        if self.silent:
            self.silent -= 1
            return
        if reg == 0xAA:
            body = bytearray((0x55,))
            for r in (I_RMS, V_RMS, I_FAST_RMS, WATT, CF_CNT, FREQ, STATUS):
                v = self.regs[r] & 0xFFFFFF
                body += bytes((v & 0xFF, v >> 8 & 0xFF, v >> 16))
            s = cmd
        else:
            v = self.regs.get(reg, 0) & 0xFFFFFF
            body = bytearray((v & 0xFF, v >> 8 & 0xFF, v >> 16))
            s = cmd + reg
        for b in body:
            s += b
        body.append(~s & 0xFF)
        if self.bad_checksum:
            self.bad_checksum -= 1
            body[-1] ^= 0x01
        if self.short:
            self.short -= 1
            body = body[:10]
        self.rx += body


# -- MFRC522 over SPI with an ISO/IEC 14443-3 type A card ---------------
class FakeCard:
    """A type A PICC: IDLE -> (REQA/WUPA) READY -> anticollision/select per
    cascade level -> ACTIVE -> (HLTA) HALT; HALT wakes only on WUPA; any
    unexpected frame sends it back to IDLE (or HALT)."""

    def __init__(self, uid, sak=0x08):
        if len(uid) not in (4, 7, 10):
            raise ValueError("UID of 4, 7 or 10 bytes")
        self.uid = bytes(uid)
        self.sak = sak
        u = self.uid
        if len(u) == 4:
            self.cls = [u]
        elif len(u) == 7:
            self.cls = [b"\x88" + u[:3], u[3:]]
        else:
            self.cls = [b"\x88" + u[:3], b"\x88" + u[3:6], u[6:]]
        self.reset()

    def reset(self):
        self.state = "IDLE"
        self.halted = False
        self.level = 0
        self.selects = 0  # completed selections

    def _drop(self):
        self.state = "HALT" if self.halted else "IDLE"
        return None

    def receive(self, data, bits):
        short = bits == 7 and len(data) == 1
        if short and (data[0] == 0x52 or (data[0] == 0x26 and self.state == "IDLE")):
            if self.state in ("IDLE", "HALT"):
                self.state = "READY"
                self.level = 0
                return bytes((0x04 | (len(self.cls) - 1) << 6, 0x00))
            return self._drop()
        if bits != 0:
            return self._drop()
        if self.state == "READY":
            sel = (0x93, 0x95, 0x97)[self.level]
            cl = self.cls[self.level]
            bcc = cl[0] ^ cl[1] ^ cl[2] ^ cl[3]
            if data == bytes((sel, 0x20)):
                return cl + bytes((bcc,))
            frame = bytes((sel, 0x70)) + cl + bytes((bcc,))
            if len(data) == 9 and data[:7] == frame and crc_a(frame) == data[7:]:
                if self.level + 1 < len(self.cls):
                    self.level += 1
                    sak = 0x04
                else:
                    self.state = "ACTIVE"
                    self.selects += 1
                    sak = self.sak
                return bytes((sak,)) + crc_a(bytes((sak,)))
            return self._drop()
        if self.state == "ACTIVE" and data == b"\x50\x00" + crc_a(b"\x50\x00"):
            self.state = "HALT"
            self.halted = True
            return None
        return self._drop()


class FakeMfrc522:
    """The reader chip behind SPI: register file, FIFO, IRQ bits, Transceive
    run against the card in the field (only with the antenna on). `collide`:
    two cards answer at once (CollErr)."""

    def __init__(self, version=0x92):
        self.cs = FakePin(1)
        self.version = version
        self.regs = bytearray(64)
        self.fifo = bytearray()
        self.card = None
        self.collide = False
        self.frames = []  # every frame sent to the field: (bytes, bits)

    def present(self, card):
        card.reset()  # powered up by the field
        self.card = card

    def remove(self):
        self.card = None

    # machine.SPI
    def write(self, buf):
        self._xfer(buf, None)

    def write_readinto(self, wbuf, rbuf):
        self._xfer(wbuf, rbuf)

    def _xfer(self, w, r):
        if self.cs.v != 0:
            raise RuntimeError("SPI transfer with NSS high")
        if w[0] & 0x80:
            for i in range(1, len(w)):
                v = self._read((w[i - 1] >> 1) & 0x3F)
                if r is not None:
                    r[i] = v
            if r is not None:
                r[0] = 0
        else:
            reg = (w[0] >> 1) & 0x3F
            for b in w[1:]:
                self._write(reg, b)
            if r is not None:
                for i in range(len(r)):
                    r[i] = 0

    def _read(self, reg):
        if reg == 0x09:
            if not self.fifo:
                return 0
            v = self.fifo[0]
            self.fifo = self.fifo[1:]
            return v
        if reg == 0x0A:
            return len(self.fifo)
        if reg == 0x37:
            return self.version
        return self.regs[reg]

    def _write(self, reg, v):
        if reg == 0x01:
            cmd = v & 0x0F
            if cmd == 0x0F:  # SoftReset
                self.regs = bytearray(64)
                self.fifo = bytearray()
                return
            self.regs[1] = cmd
            if cmd == 0x0C and self.regs[0x0D] & 0x80:
                self._run()
        elif reg == 0x04:
            if v & 0x80:
                self.regs[4] |= v & 0x7F
            else:
                self.regs[4] &= ~v & 0x7F
        elif reg == 0x0A:
            if v & 0x80:
                self.fifo = bytearray()
        elif reg == 0x09:
            if len(self.fifo) < 64:
                self.fifo.append(v)
        elif reg == 0x0D:
            self.regs[0x0D] = v
            if v & 0x80 and self.regs[1] == 0x0C:
                self._run()
        else:
            self.regs[reg] = v

    def _run(self):
        data = bytes(self.fifo)
        self.fifo = bytearray()
        bits = self.regs[0x0D] & 0x07
        self.frames.append((data, bits))
        self.regs[0x06] = 0
        card = self.card if self.regs[0x14] & 0x03 == 0x03 else None
        resp = card.receive(data, bits) if card is not None else None
        if resp is None:
            self.regs[4] |= 0x01  # TimerIRq: nobody answered
            return
        if self.collide:
            self.regs[0x06] |= 0x08  # CollErr
            resp = resp[:1]
        self.fifo = bytearray(resp)
        self.regs[4] |= 0x20  # RxIRq


# -- ADE7953 on I2C -------------------------------------------------------
class FakeAde7953:
    """An ADE7953 on the I2C bus (machine.I2C's *_mem calls, addrsize 16).
    Widths follow the address as on the chip; AENERGYA (0x21E/0x31E) is
    read-with-reset; 0x120 only takes a write right after 0xAD went to
    0x0FE. `silent`: that many next transfers fail with OSError (ENODEV).
    Set readings with `vrms`, `irms`, `watt`; add energy with add_energy."""

    def __init__(self, addr=0x38, version=0x05):
        self.addr = addr
        self.regs = {0x702: version, 0x004: 0x40, 0x120: 0, 0x008: 0}
        self.vrms = self.irms = self.watt = 0
        self.energy = 0  # counts since the last AENERGYA read
        self.unlocked = False
        self.silent = 0
        self.reads = 0

    def add_energy(self, counts):
        self.energy += counts

    def restart(self):
        """Power glitch: registers back to defaults, energy lost."""
        self.__init__(self.addr, self.regs[0x702])

    @staticmethod
    def _width(reg):
        top = reg >> 8
        return (1, 2, 3, 4)[top] if top < 4 else 1

    def _check(self, addr, n, reg, addrsize):
        if addrsize != 16 or n != self._width(reg):
            raise ValueError("bad transfer for register %x" % reg)
        if addr != self.addr or self.silent:
            self.silent = max(0, self.silent - 1)
            raise OSError(19)  # ENODEV: no ACK

    def _value(self, reg):
        low = reg & 0xFF
        if reg >> 8 in (2, 3) and low in (0x12, 0x1A, 0x1C, 0x1E):
            if low == 0x1E:
                v, self.energy = self.energy, 0
            else:
                v = {0x12: self.watt, 0x1A: self.irms, 0x1C: self.vrms}[low]
            v = max(-0x800000, min(0x7FFFFF, v)) & 0xFFFFFF  # 24-bit two's complement
            if reg >> 8 == 3 and v & 0x800000:
                v |= 0xFF000000  # sign-extended to 32 bits
            return v
        return self.regs.get(reg, 0)

    # machine.I2C
    def readfrom_mem_into(self, addr, reg, buf, addrsize=8):
        self._check(addr, len(buf), reg, addrsize)
        self.reads += 1
        v = self._value(reg)
        for i in range(len(buf) - 1, -1, -1):
            buf[i] = v & 0xFF
            v >>= 8

    def writeto_mem(self, addr, reg, buf, addrsize=8):
        self._check(addr, len(buf), reg, addrsize)
        v = 0
        for b in buf:
            v = v << 8 | b
        if reg == 0x120 and not self.unlocked:
            return  # locked: ignored, as on the chip
        self.unlocked = reg == 0x0FE and v == 0xAD
        self.regs[reg] = v


class FakeParts:
    """The part factory (boards/parts.py) over fakes: `objs` maps pin-table
    names to objects, returned as they are."""

    def __init__(self, objs, serial="FAKE-0"):
        self.objs = objs
        self._serial = serial

    def has(self, name):
        return name in self.objs

    def _get(self, name, *_a, **_k):
        return self.objs[name]

    pwm = adc = out = inp = uart = spi = i2c = _get

    def serial(self):
        return self._serial


# -- CircuitPython's board/digitalio/pwmio/analogio/busio over the fakes above ---
class _CpPwmOut:
    def __init__(self, pin, frequency=500, duty_cycle=0, variable_frequency=False):
        self.target = pin.target
        self.variable = variable_frequency
        self._f = frequency
        self.target.freq(frequency)
        self.duty_cycle = duty_cycle

    @property
    def frequency(self):
        return self._f

    @frequency.setter
    def frequency(self, f):
        if not self.variable:
            raise ValueError("frequency fixed at construction")  # as CircuitPython
        self._f = f
        self.target.freq(f)

    @property
    def duty_cycle(self):
        return self.target.duty_u16()

    @duty_cycle.setter
    def duty_cycle(self, d):
        if not 0 <= d <= 65535:
            raise ValueError("duty_cycle")
        self.target.duty_u16(d)


class _CpAnalogIn:
    def __init__(self, pin):
        self.target = pin.target

    @property
    def value(self):
        return self.target.read_u16()


class _CpPull:
    UP = "up"
    DOWN = "down"


class _CpDigitalInOut:
    def __init__(self, pin):
        self.target = pin.target
        self.output = None
        self.pull = None

    def switch_to_output(self, value=False):
        self.output = True
        self.target.value(1 if value else 0)

    def switch_to_input(self, pull=None):
        self.output = False
        self.pull = pull

    @property
    def value(self):
        return bool(self.target.value())

    @value.setter
    def value(self, v):
        if not self.output:
            raise AttributeError("Cannot set value when direction is input.")
        self.target.value(1 if v else 0)


class _CpUart:
    def __init__(self, tx, rx, baudrate=9600, timeout=1):
        self.target = tx.target
        self.baudrate = baudrate
        self.timeout = timeout

    def write(self, buf):
        return self.target.write(buf)

    @property
    def in_waiting(self):
        return self.target.any()

    def read(self, n=None):
        return self.target.read(n)


class _CpBus:
    """busio.SPI / busio.I2C: every transfer must hold the lock."""

    def __init__(self, target):
        self.target = target
        self.locked = False
        self.config = None

    def try_lock(self):
        if self.locked:
            return False
        self.locked = True
        return True

    def unlock(self):
        self.locked = False

    def _held(self):
        if not self.locked:
            raise RuntimeError("Function requires lock")

    def configure(self, baudrate=100000, polarity=0, phase=0, bits=8):
        self._held()
        self.config = (baudrate, polarity, phase)

    def write(self, buf):
        self._held()
        self.target.write(buf)

    def write_readinto(self, out, into):
        self._held()
        self.target.write_readinto(out, into)

    def writeto(self, addr, buf):
        self._held()
        self.target.writeto_mem(addr, buf[0] << 8 | buf[1], bytes(buf[2:]), addrsize=16)

    def writeto_then_readfrom(self, addr, out, into):
        self._held()
        self.target.readfrom_mem_into(addr, out[0] << 8 | out[1], into, addrsize=16)


class _CpPinRef:
    def __init__(self, n, target):
        self.n = n
        self.target = target


def circuitpython_modules(wiring, uid=b"\x01\x02\x03\x04\x05\x06\x07\x08"):
    """Fake CircuitPython hardware modules (name -> module) whose pins
    reach the register-level fakes in `wiring` (GPIO number -> fake: a
    FakePwm / ADC / FakePin, a UART fake at its TX pin, an SPI fake at its
    SCK pin, an I2C fake at its SCL pin)."""
    import types

    board = types.SimpleNamespace(**{"GP%d" % n: _CpPinRef(n, t) for n, t in wiring.items()})
    return {
        "board": board,
        "digitalio": types.SimpleNamespace(DigitalInOut=_CpDigitalInOut, Pull=_CpPull),
        "pwmio": types.SimpleNamespace(PWMOut=_CpPwmOut),
        "analogio": types.SimpleNamespace(AnalogIn=_CpAnalogIn),
        "busio": types.SimpleNamespace(UART=_CpUart, SPI=lambda clock, MOSI=None, MISO=None: _CpBus(clock.target),
                                       I2C=lambda scl, sda, frequency=100000: _CpBus(scl.target)),
        "microcontroller": types.SimpleNamespace(cpu=types.SimpleNamespace(uid=bytearray(uid))),
    }
