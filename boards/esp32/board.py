"""ESP32 station board (ESP32-WROOM-32 DevKitC, no PSRAM): pin table + HAL.

One AC connector, 1 phase, 32 A, fixed cable; control pilot, contactor
with mirror contact, BL0942 meter, MFRC522 reader (boards/hal.py has the
event and fault rules). Parts can be injected (tests pass register-level
fakes, host_tests/fakes.py); the missing ones are built from the pin table
(boards/parts.py), importing `machine` only then.
"""
from boards.parts import OneConnectorBoard, wlan_connect

# Pin table (GPIO numbers; buses as tuples). boards/parts.py names the parts.
PINS = {
    "pilot_pwm": 27,  # LEDC PWM into the +/-12 V op-amp stage
    "pilot_adc": 36,  # SENSOR_VP = ADC1_CH0: ADC2 pins cannot be read while Wi-Fi runs
    "relay": 26,  # contactor coil driver, high = on
    "relay_fb": 33,  # mirror contact to GND, internal pull-up: low = closed
    "meter_uart": (2, 17, 16),  # (UART, TX, RX): UART1's default pins are the SPI flash
    "meter_i2c": (0, 22, 21),  # (I2C, SCL, SDA): an ADE7953 instead ("meter": "ade7953")
    "rfid_spi": (2, 18, 23, 19),  # (SPI, SCK, MOSI, MISO): VSPI
    "rfid_cs": 5,
    "rfid_rst": 4,
}
# ESP32 quirks: the pilot ADC needs 11 dB attenuation for its 0..3.3 V
# range; its UART takes GPIO numbers for tx/rx.
QUIRKS = {"adc_atten": "ATTN_11DB", "uart_pin_ids": True, "serial_prefix": "ESP32-"}

# Pilot ADC raw readings (read_u16, 11 dB attenuation) at -12 V and +12 V on
# the reference front end; measure and pass pilot_cal= for each board.
PILOT_CAL = (4000, 60000)

# Configuration defaults (OCPP 1.6 section 9.4). A big SetChargingProfile is
# read in place, period by period (smartcharge._set_stream), but its frame is
# still received whole, and the ESP32 has about 100 KB of heap with Wi-Fi and
# a TLS session: 86400 periods, the certified
# reference value, is megabytes of JSON. 192 periods (two days in quarter
# hours) keep the frame near 6.4 KB and an installed profile at 1.8 KB
# (docs/PERFORMANCE.md).
# Profiles and stack levels stay at the certificate's 3 and 3.
OVERRIDES = {
    "ChargingScheduleMaxPeriods": "192",
    "MaxChargingProfilesInstalled": "3",
    "ChargeProfileMaxStackLevel": "3",
}


class Esp32Board(OneConnectorBoard):
    name = "esp32"
    model = "ESP32-1P-32A"
    PINS = PINS
    QUIRKS = QUIRKS
    PILOT_CAL = PILOT_CAL
    OVERRIDES = OVERRIDES


make = Esp32Board.make  # the board from the device configuration (main.py)


def wifi(ssid, key, wait_ms=20000, country=None):
    """Join the Wi-Fi network (station mode); True when connected."""
    return wlan_connect(ssid, key, wait_ms, country=country)
