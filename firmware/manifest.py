# Freeze the station core into a MicroPython firmware image, so its bytecode
# runs from flash instead of the heap (docs/DEPLOY.md has the figures):
#   make -C ports/esp32 BOARD=ESP32_GENERIC FROZEN_MANIFEST=/path/to/firmware/manifest.py
# Included from another manifest, `port_manifest=` names the port's own
# (e.g. "$(PORT_DIR)/variants/manifest.py" on the unix port) and
# `boards=True` freezes the boards package beside the core.
metadata(description="OCPP 1.6-J charging station core", version="0.1.0")  # noqa: F821
include(options.port_manifest or "$(PORT_DIR)/boards/manifest.py")  # noqa: F821  the port's own frozen modules
package("evse")  # noqa: F821
if options.boards:  # noqa: F821
    package("boards", base_path="..")  # noqa: F821
