"""Boards as data: a pin table, its quirks and one part factory.

A board module is a pin table (`PINS`: name -> GPIO number, or a tuple
for a bus), a few quirks and its configuration defaults; this module turns
them into a station. Pin-table names, and the driver that uses them:

  pilot_pwm, pilot_adc           control pilot (drivers/pilot.py)
  relay, relay_fb                contactor coil and mirror contact
  meter_uart (id, tx, rx)        BL0942 (drivers/bl0942.py)
  meter_i2c (id, scl, sda)       ADE7953 (drivers/ade7953.py)
  rfid_spi (id, sck, mosi, miso), rfid_cs, rfid_rst   MFRC522

`MachineParts` builds MicroPython `machine` objects from the table; the
CircuitPython board has its own factory with the same methods, the tests
use host_tests/fakes.FakeParts. Drivers say which parts they need in their
build(parts, cal) function, so a board picks its meter IC by name.
"""
from boards.hal import HwBoard, Port


class MachineParts:
    """machine.* objects from a pin table (MicroPython). Quirks:
    `adc_atten` (ESP32: the ADC attenuation constant's name) and
    `uart_pin_ids` (ESP32's UART takes GPIO numbers, rp2 takes Pins)."""

    def __init__(self, pins, adc_atten=None, uart_pin_ids=False, serial_prefix="MCU-"):
        self.pins = pins
        self.adc_atten = adc_atten
        self.uart_pin_ids = uart_pin_ids
        self.serial_prefix = serial_prefix

    def has(self, name):
        return name in self.pins

    def pwm(self, name, freq=1000, duty_u16=65535):
        import machine  # only on the device

        p = machine.PWM(machine.Pin(self.pins[name]))
        p.freq(freq)
        p.duty_u16(duty_u16)  # DC +12 V: state A/B until the core offers current
        return p

    def adc(self, name):
        import machine

        pin = machine.Pin(self.pins[name])
        if self.adc_atten:
            return machine.ADC(pin, atten=getattr(machine.ADC, self.adc_atten))
        return machine.ADC(pin)

    def out(self, name, value=0):
        import machine

        return machine.Pin(self.pins[name], machine.Pin.OUT, value=value)

    def inp(self, name, pull_up=True):
        import machine

        Pin = machine.Pin
        return Pin(self.pins[name], Pin.IN, Pin.PULL_UP if pull_up else None)

    def uart(self, name, baudrate):
        import machine

        uid, tx, rx = self.pins[name]
        if not self.uart_pin_ids:
            tx, rx = machine.Pin(tx), machine.Pin(rx)
        return machine.UART(uid, baudrate=baudrate, bits=8, parity=None, stop=1, tx=tx, rx=rx)

    def spi(self, name, baudrate, polarity=0, phase=0):
        import machine

        Pin = machine.Pin
        sid, sck, mosi, miso = self.pins[name]
        return machine.SPI(sid, baudrate=baudrate, polarity=polarity, phase=phase,
                           sck=Pin(sck), mosi=Pin(mosi), miso=Pin(miso))

    def i2c(self, name, freq=400000):
        import machine

        iid, scl, sda = self.pins[name]
        return machine.I2C(iid, scl=machine.Pin(scl), sda=machine.Pin(sda), freq=freq)

    def serial(self):
        import machine

        from evse.compat import hexlify

        return self.serial_prefix + hexlify(machine.unique_id()).upper()


def driver(name):
    """The driver module boards.drivers.<name> (its build(parts, cal))."""
    return __import__("boards.drivers." + name, None, None, ["build"])


class OneConnectorBoard(HwBoard):
    """The reference station: one connector with a control pilot, a
    contactor with a mirror contact to GND (pull-up: 0 = closed), a meter
    IC (`METER`, default BL0942) and a card reader (`READER`). A board
    module subclasses it with PINS, QUIRKS, model, PILOT_CAL, OVERRIDES.

    Each of pilot/contactor/meter/reader may be given as a driver object;
    meter and reader also as a driver name ("ade7953"), reader False for
    none; what is missing is built from `parts` (default: the pin table)."""

    model = "?"
    PINS: "dict" = {}
    QUIRKS: "dict" = {}
    PILOT_CAL = (4000, 60000)
    OVERRIDES: "dict[str, str]" = {}
    METER = "bl0942"
    READER = "mfrc522"

    def parts(self):
        return MachineParts(self.PINS, **self.QUIRKS)

    def __init__(self, meter=None, reader=None, pilot=None, contactor=None, parts=None,
                 serial=None, overrides=None, energy=None, pilot_cal=None, meter_cal=None,
                 debounce=2):
        if parts is None:
            parts = self.parts()
        if pilot is None:
            from boards.drivers.pilot import Pilot

            cal = pilot_cal or self.PILOT_CAL
            # debounce 2 bursts at poll_ms 50: a state counts within 50..100 ms.
            pilot = Pilot(parts.pwm("pilot_pwm"), parts.adc("pilot_adc"), raw_n12=cal[0],
                          raw_p12=cal[1], debounce=debounce)
        if contactor is None:
            from boards.drivers.relay import Contactor

            contactor = Contactor(parts.out("relay", 0), parts.inp("relay_fb"), closed_level=0)
        if meter is None or isinstance(meter, str):
            meter = driver(meter or self.METER).build(parts, meter_cal)
        if reader is None or isinstance(reader, str):
            reader = driver(reader or self.READER).build(parts)
        ov = dict(self.OVERRIDES)
        if overrides:
            ov.update(overrides)
        HwBoard.__init__(self, [Port(pilot, contactor, meter)], reader=reader or None,
                         serial=serial or parts.serial(), overrides=ov, energy=energy)

    @classmethod
    def make(cls, cfg, energy=None):
        """The board from the device configuration (main.py): optional
        "serial", "overrides", "pilot_cal", "meter" (a driver name) and
        "meter_cal" (that driver's calibration keywords)."""
        cal = cfg.get("pilot_cal")
        return cls(serial=cfg.get("serial"), overrides=cfg.get("overrides"), energy=energy,
                   pilot_cal=tuple(cal) if cal else None, meter=cfg.get("meter"),
                   meter_cal=cfg.get("meter_cal"))


def wlan_connect(ssid, key, wait_ms=20000, setup=None, country=None):
    """Join a Wi-Fi network in station mode (MicroPython `network`); with
    wait_ms 0 only (re)start the connection and return. True if connected."""
    import network  # MicroPython only

    if country:
        network.country(country)
    from evse.compat import sleep_ms, ticks_diff, ticks_ms

    wlan = network.WLAN(network.STA_IF)
    wlan.active(True)
    if setup is not None:
        setup(wlan)
    if wlan.isconnected():
        return True
    if wlan.status() != network.STAT_CONNECTING:
        wlan.connect(ssid, key)
    t0 = ticks_ms()
    while not wlan.isconnected() and ticks_diff(ticks_ms(), t0) < wait_ms:
        sleep_ms(100)
    return wlan.isconnected()
