"""Raspberry Pi Pico W station board: pin map + HAL.

Same hardware blocks and drivers as the ESP32 board (boards/hal.py has the
event and fault rules); only the pins, the ID and Wi-Fi setup differ.
GP23, GP24, GP25 and GP29 belong to the wireless chip on the Pico W and
are not used. Every machine object can be injected (tests pass fakes).
"""
from evse.compat import const, hexlify

from boards.hal import OneConnectorBoard, make_board, wlan_connect

# Pin map (GPIO numbers).
PILOT_PWM = const(13)  # PWM slice 6 B into the +/-12 V op-amp stage
PILOT_ADC = const(26)  # ADC0
RELAY = const(15)  # contactor coil driver, high = on
RELAY_FB = const(14)  # mirror contact to GND, internal pull-up: low = closed
METER_UART = const(0)
METER_TX = const(0)
METER_RX = const(1)
RFID_SPI = const(0)
RFID_SCK = const(18)
RFID_MOSI = const(19)
RFID_MISO = const(16)
RFID_CS = const(17)
RFID_RST = const(20)

# Pilot ADC raw readings (read_u16) at -12 V and +12 V on the reference
# front end; measure and pass pilot_cal= for each board.
PILOT_CAL = (4000, 60000)

# Configuration defaults (OCPP 1.6 section 9.4). The Pico W has more heap
# than the ESP32 (about 150-190 KB, minus 20-40 KB for the TLS session;
# docs NOTES, "Memory figures"), so a day of quarter hours (96 periods,
# about 5 KB of JSON) fits where the certified 86400 would not. Profiles
# and stack levels stay at the certificate's 3 and 3.
OVERRIDES = {
    "ChargingScheduleMaxPeriods": "96",
    "MaxChargingProfilesInstalled": "3",
    "ChargeProfileMaxStackLevel": "3",
}


def _machine(part):
    import machine  # only on the device

    Pin = machine.Pin
    if part == "pwm":
        pwm = machine.PWM(Pin(PILOT_PWM))
        pwm.freq(1000)
        pwm.duty_u16(65535)  # DC +12 V: state A/B until the core offers current
        return pwm
    if part == "adc":
        return machine.ADC(Pin(PILOT_ADC))
    if part == "relay":
        return Pin(RELAY, Pin.OUT, value=0)
    if part == "feedback":
        return Pin(RELAY_FB, Pin.IN, Pin.PULL_UP)
    if part == "uart":
        return machine.UART(METER_UART, baudrate=4800, bits=8, parity=None, stop=1,
                            tx=Pin(METER_TX), rx=Pin(METER_RX))
    if part == "spi":
        return machine.SPI(RFID_SPI, baudrate=1000000, polarity=0, phase=0,
                           sck=Pin(RFID_SCK), mosi=Pin(RFID_MOSI), miso=Pin(RFID_MISO))
    if part == "cs":
        return Pin(RFID_CS, Pin.OUT, value=1)
    if part == "rst":
        return Pin(RFID_RST, Pin.OUT, value=1)
    if part == "serial":
        return "PICOW-" + hexlify(machine.unique_id()).upper()
    raise ValueError(part)


class PicoWBoard(OneConnectorBoard):
    model = "PICOW-1P-32A"
    PILOT_CAL = PILOT_CAL
    OVERRIDES = OVERRIDES

    def part(self, name):
        return _machine(name)


def make(cfg, energy=None):
    """The board from the device configuration (main.py)."""
    return make_board(PicoWBoard, cfg, energy)


def _no_power_save(wlan):
    # The CYW43 power-save mode drops connections under load (Raspberry Pi
    # "Connecting to the Internet with Raspberry Pi Pico W").
    wlan.config(pm=getattr(wlan, "PM_NONE", 0xA11140))


def wifi(ssid, key, wait_ms=20000, country=None):
    """Join the Wi-Fi network (station mode); True when connected."""
    if country:
        import network

        network.country(country)
    return wlan_connect(ssid, key, wait_ms, setup=_no_power_save)
