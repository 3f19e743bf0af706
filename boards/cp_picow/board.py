"""Raspberry Pi Pico W under CircuitPython: the Pico W pin table, parts
from CircuitPython's `board`, `digitalio`, `pwmio`, `analogio`, `busio`.

CircuitPython has no `machine`: `CpParts` is the part factory of
boards/parts.py for it, with small adapters that give the drivers the
machine-style calls they use (duty_u16, read_u16, value(), UART any/read,
SPI write/write_readinto, I2C *_mem). The CircuitPython modules are
injected (`mods`), so host tests run the board on fakes; on the device
they are imported. Same wiring as boards/picow (see its README).
"""
from boards.parts import OneConnectorBoard
from boards.picow.board import OVERRIDES, PINS

MODULES = ("board", "digitalio", "pwmio", "analogio", "busio", "microcontroller")


def modules():
    """The CircuitPython hardware modules, by name (on the device)."""
    return {n: __import__(n) for n in MODULES}


class _Pwm:
    def __init__(self, p):
        self.p = p

    def freq(self, f=None):
        if f is None:
            return self.p.frequency
        if f != self.p.frequency:
            self.p.frequency = f  # made with variable_frequency=True
        return None

    def duty_u16(self, d=None):
        if d is None:
            return self.p.duty_cycle
        self.p.duty_cycle = d
        return None


class _Adc:
    def __init__(self, a):
        self.a = a

    def read_u16(self):
        return self.a.value  # 16-bit, as read_u16


class _Pin:
    def __init__(self, io):
        self.io = io

    def value(self, v=None):
        if v is None:
            return 1 if self.io.value else 0
        self.io.value = bool(v)
        return None


class _Uart:
    def __init__(self, u):
        self.u = u

    def write(self, buf):
        return self.u.write(buf)

    def any(self):
        return self.u.in_waiting

    def read(self, n=None):
        return self.u.read(n)


class _Bus:
    """busio.SPI/I2C need try_lock() around every transfer (and SPI a
    configure() inside the lock)."""

    def __init__(self, bus, conf=None):
        self.bus = bus
        self.conf = conf

    def _lock(self):
        while not self.bus.try_lock():
            pass
        if self.conf:
            self.bus.configure(**self.conf)

    # SPI
    def write(self, buf):
        self._lock()
        try:
            self.bus.write(buf)
        finally:
            self.bus.unlock()

    def write_readinto(self, wbuf, rbuf):
        self._lock()
        try:
            self.bus.write_readinto(wbuf, rbuf)
        finally:
            self.bus.unlock()

    # I2C with 16-bit register addresses (the only kind our drivers use)
    def readfrom_mem_into(self, addr, reg, buf, addrsize=8):
        self._lock()
        try:
            self.bus.writeto_then_readfrom(addr, reg.to_bytes(addrsize // 8, "big"), buf)
        finally:
            self.bus.unlock()

    def writeto_mem(self, addr, reg, buf, addrsize=8):
        self._lock()
        try:
            self.bus.writeto(addr, reg.to_bytes(addrsize // 8, "big") + bytes(buf))
        finally:
            self.bus.unlock()


class CpParts:
    """Part factory over CircuitPython modules (`mods`: name -> module)."""

    def __init__(self, pins, mods=None, serial_prefix="CPPICOW-"):
        self.pins = pins
        self.m = mods if mods is not None else modules()
        self.serial_prefix = serial_prefix

    def has(self, name):
        return name in self.pins

    def _gp(self, n):
        return getattr(self.m["board"], "GP" + str(n))

    def pwm(self, name, freq=1000, duty_u16=65535):
        return _Pwm(self.m["pwmio"].PWMOut(self._gp(self.pins[name]), frequency=freq,
                                           duty_cycle=duty_u16, variable_frequency=True))

    def adc(self, name):
        return _Adc(self.m["analogio"].AnalogIn(self._gp(self.pins[name])))

    def out(self, name, value=0):
        io = self.m["digitalio"].DigitalInOut(self._gp(self.pins[name]))
        io.switch_to_output(value=bool(value))
        return _Pin(io)

    def inp(self, name, pull_up=True):
        dio = self.m["digitalio"]
        io = dio.DigitalInOut(self._gp(self.pins[name]))
        io.switch_to_input(pull=dio.Pull.UP if pull_up else None)
        return _Pin(io)

    def uart(self, name, baudrate):
        _id, tx, rx = self.pins[name]
        # timeout 0: read() returns what is there, never waits (poll-based drivers)
        return _Uart(self.m["busio"].UART(self._gp(tx), self._gp(rx), baudrate=baudrate, timeout=0))

    def spi(self, name, baudrate, polarity=0, phase=0):
        _id, sck, mosi, miso = self.pins[name]
        bus = self.m["busio"].SPI(self._gp(sck), MOSI=self._gp(mosi), MISO=self._gp(miso))
        return _Bus(bus, {"baudrate": baudrate, "polarity": polarity, "phase": phase})

    def i2c(self, name, freq=400000):
        _id, scl, sda = self.pins[name]
        return _Bus(self.m["busio"].I2C(self._gp(scl), self._gp(sda), frequency=freq))

    def serial(self):
        from evse.compat import hexlify

        return self.serial_prefix + hexlify(self.m["microcontroller"].cpu.uid).upper()


class CpPicoWBoard(OneConnectorBoard):
    name = "cp_picow"
    model = "CPPICOW-1P-32A"
    PINS = PINS
    OVERRIDES = OVERRIDES

    def parts(self):
        return CpParts(self.PINS)


make = CpPicoWBoard.make  # the board from the device configuration


def wifi(ssid, key, wait_ms=20000, country=None):
    """Join the Wi-Fi network; True when connected. CircuitPython may have
    joined already from settings.toml (CIRCUITPY_WIFI_SSID); with wait_ms
    0 a missing link is left to the next call (connect() blocks)."""
    import wifi as _wifi  # CircuitPython only

    radio = _wifi.radio
    if radio.connected:
        return True
    if not wait_ms or not ssid:
        return False
    try:
        radio.connect(ssid, key, timeout=wait_ms / 1000)
    except (ConnectionError, OSError):
        return False
    return bool(radio.connected)


def storage_writable(root="/data"):
    """True if code may write under `root`'s filesystem. CircuitPython
    mounts CIRCUITPY read-only to code while USB storage is enabled
    (boot.py remounts it)."""
    probe = root.rstrip("/") + ".probe"
    try:
        with open(probe, "wb") as f:
            f.write(b"1")
        import os

        os.remove(probe)
        return True
    except OSError:
        return False
