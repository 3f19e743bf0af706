# Freeze the station core into a MicroPython firmware image, so its bytecode
# runs from flash instead of the heap (about 110 KB as .mpy files in /lib):
#   make -C ports/esp32 BOARD=ESP32_GENERIC FROZEN_MANIFEST=/path/to/firmware/manifest.py
# A board package is added beside it, e.g. package("boards", base_path="..").
metadata(description="OCPP 1.6-J charging station core", version="0.1.0")  # noqa: F821
include("$(PORT_DIR)/boards/manifest.py")  # noqa: F821  the port's own frozen modules
package("evse")  # noqa: F821
