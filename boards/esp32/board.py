"""ESP32 station board (ESP32-WROOM-32 DevKitC, no PSRAM): pin map + HAL.

One AC connector, 1 phase, 32 A, fixed cable; control pilot, contactor
with mirror contact, BL0942 meter, MFRC522 reader (boards/hal.py has the
event and fault rules). Every machine object can be injected (tests pass
register-level fakes, boards/fakes.py); the missing ones are built from
the pin map, importing `machine` only then.
"""
from evse.compat import const, hexlify

from boards.hal import OneConnectorBoard, make_board, wlan_connect

# Pin map (GPIO numbers).
PILOT_PWM = const(27)  # LEDC PWM into the +/-12 V op-amp stage
PILOT_ADC = const(36)  # SENSOR_VP = ADC1_CH0: ADC2 pins cannot be read while Wi-Fi runs
RELAY = const(26)  # contactor coil driver, high = on
RELAY_FB = const(33)  # mirror contact to GND, internal pull-up: low = closed
METER_UART = const(2)  # UART1's default pins are the SPI flash: use UART2
METER_TX = const(17)
METER_RX = const(16)
RFID_SPI = const(2)  # VSPI
RFID_SCK = const(18)
RFID_MOSI = const(23)
RFID_MISO = const(19)
RFID_CS = const(5)
RFID_RST = const(4)

# Pilot ADC raw readings (read_u16, 11 dB attenuation) at -12 V and +12 V on
# the reference front end; measure and pass pilot_cal= for each board.
PILOT_CAL = (4000, 60000)

# Configuration defaults (OCPP 1.6 section 9.4). A SetChargingProfile frame
# is received and parsed whole, and the ESP32 has about 100 KB of heap with
# Wi-Fi and a TLS session (docs NOTES, "Memory figures"): 86400 periods, the
# certified reference value, is megabytes of JSON. 48 periods (a day in
# half hours) keep the frame near 2.5 KB and the parsed profile a few KB.
# Profiles and stack levels stay at the certificate's 3 and 3.
OVERRIDES = {
    "ChargingScheduleMaxPeriods": "48",
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
        return machine.ADC(Pin(PILOT_ADC), atten=machine.ADC.ATTN_11DB)
    if part == "relay":
        return Pin(RELAY, Pin.OUT, value=0)
    if part == "feedback":
        return Pin(RELAY_FB, Pin.IN, Pin.PULL_UP)
    if part == "uart":
        return machine.UART(METER_UART, baudrate=4800, bits=8, parity=None, stop=1,
                            tx=METER_TX, rx=METER_RX)
    if part == "spi":
        return machine.SPI(RFID_SPI, baudrate=1000000, polarity=0, phase=0,
                           sck=Pin(RFID_SCK), mosi=Pin(RFID_MOSI), miso=Pin(RFID_MISO))
    if part == "cs":
        return Pin(RFID_CS, Pin.OUT, value=1)
    if part == "rst":
        return Pin(RFID_RST, Pin.OUT, value=1)
    if part == "serial":
        return "ESP32-" + hexlify(machine.unique_id()).upper()
    raise ValueError(part)


class Esp32Board(OneConnectorBoard):
    model = "ESP32-1P-32A"
    PILOT_CAL = PILOT_CAL
    OVERRIDES = OVERRIDES

    def part(self, name):
        return _machine(name)


def make(cfg, energy=None):
    """The board from the device configuration (main.py)."""
    return make_board(Esp32Board, cfg, energy)


def wifi(ssid, key, wait_ms=20000, country=None):
    """Join the Wi-Fi network (station mode); True when connected."""
    if country:
        import network

        network.country(country)
    return wlan_connect(ssid, key, wait_ms)
