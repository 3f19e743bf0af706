# Freeze the station core into a MicroPython firmware image, so its bytecode
# runs from flash instead of the heap (docs/DEPLOY.md has the figures):
#   make -C ports/esp32 BOARD=ESP32_GENERIC FROZEN_MANIFEST=/path/to/firmware/manifest.py
# Included from another manifest, `port_manifest=` names the port's own
# (e.g. "$(PORT_DIR)/variants/manifest.py" on the unix port), `boards=True`
# freezes the boards package beside the core, and `without=` names optional
# features to leave out, e.g. include(".../firmware/manifest.py",
# without="fwupdate,security"): the station runs without them, no code edit
# (manifests/<feature>.py per feature, as micropython-lib's aioble does).
metadata(description="OCPP 1.6-J charging station core", version="0.1.0")  # noqa: F821
include(options.port_manifest or "$(PORT_DIR)/boards/manifest.py")  # noqa: F821  the port's own frozen modules
include("manifests/core.py")  # noqa: F821
_without = (options.without or "").split(",")  # noqa: F821
for _f in ("security", "fwupdate", "diagnostics", "locallist", "reservation", "trigger", "smartcharge"):
    if _f not in _without:
        include("manifests/" + _f + ".py")  # noqa: F821
if options.boards:  # noqa: F821
    package("boards", base_path="..")  # noqa: F821
