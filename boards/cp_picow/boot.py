"""CircuitPython boot.py for the station (the build copies it to /boot.py).

CircuitPython lets code write to the CIRCUITPY filesystem only while the
USB host cannot: by default the computer may write and the station may
not, and the station's storage (/data: transactions, configuration, the
meter register; /tls) refuses every write. This remounts CIRCUITPY
writable for the station; the computer then sees the drive read-only.

Back to USB storage (to copy new files from the computer):
  - connect GP22 to GND (maintenance jumper) and reset: the remount is
    skipped, the drive is writable from the computer, and the station
    reports a read-only filesystem instead of running; or
  - from the REPL (code may write while this remount is in effect):
    `import os; os.rename("/boot.py", "/boot.off")`, then reset.
"""
import board
import digitalio
import storage

KEEP_USB_PIN = "GP22"  # free on the station's pin table (boards/picow/board.py)


def keep_usb(pin):
    """True while the maintenance jumper pulls `pin` to GND."""
    io = digitalio.DigitalInOut(pin)
    io.switch_to_input(pull=digitalio.Pull.UP)
    held = not io.value
    io.deinit()
    return held


if not keep_usb(getattr(board, KEEP_USB_PIN)):
    storage.remount("/", readonly=False)  # writable for code, read-only over USB
