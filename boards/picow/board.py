"""Raspberry Pi Pico W station board: pin table + HAL.

Same hardware blocks and drivers as the ESP32 board (boards/hal.py has the
event and fault rules); only the pins, the ID and Wi-Fi setup differ.
GP23, GP24, GP25 and GP29 belong to the wireless chip on the Pico W and
are not used. Parts come from the pin table (boards/parts.py) unless
injected (tests pass fakes).
"""
from boards.parts import OneConnectorBoard, wlan_connect

# Pin table (GPIO numbers; buses as tuples). boards/parts.py names the parts.
PINS = {
    "pilot_pwm": 13,  # PWM slice 6 B into the +/-12 V op-amp stage
    "pilot_adc": 26,  # ADC0
    "relay": 15,  # contactor coil driver, high = on
    "relay_fb": 14,  # mirror contact to GND, internal pull-up: low = closed
    "meter_uart": (0, 0, 1),  # (UART, TX, RX)
    "rfid_spi": (0, 18, 19, 16),  # (SPI, SCK, MOSI, MISO)
    "rfid_cs": 17,
    "rfid_rst": 20,
}
QUIRKS = {"serial_prefix": "PICOW-"}

# Pilot ADC raw readings (read_u16) at -12 V and +12 V: the reference
# front end reads OneConnectorBoard.PILOT_CAL (4000, 60000); measure and
# pass pilot_cal= for each board.

# Configuration defaults (OCPP 1.6 section 9.4). The Pico W has more heap
# than the ESP32 (about 150-190 KB, minus 20-40 KB for the TLS session), so a day of quarter hours (96 periods,
# about 5 KB of JSON) fits where the certified 86400 would not. Profiles
# and stack levels stay at the certificate's 3 and 3.
OVERRIDES = {
    "ChargingScheduleMaxPeriods": "96",
    "MaxChargingProfilesInstalled": "3",
    "ChargeProfileMaxStackLevel": "3",
}


class PicoWBoard(OneConnectorBoard):
    name = "picow"
    model = "PICOW-1P-32A"
    PINS = PINS
    QUIRKS = QUIRKS
    OVERRIDES = OVERRIDES


make = PicoWBoard.make  # the board from the device configuration (main.py)


def _no_power_save(wlan):
    # The CYW43 power-save mode drops connections under load (Raspberry Pi
    # "Connecting to the Internet with Raspberry Pi Pico W").
    wlan.config(pm=getattr(wlan, "PM_NONE", 0xA11140))


def wifi(ssid, key, wait_ms=20000, country=None):
    """Join the Wi-Fi network (station mode); True when connected."""
    return wlan_connect(ssid, key, wait_ms, country=country, setup=_no_power_save)
