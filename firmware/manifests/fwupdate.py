# Freeze manifest of the optional feature: Firmware Management: (Signed)UpdateFirmware, the A/B image slots.
# Included by ../manifest.py; a build that leaves it out runs without it
# (station.CORE lists what no build may leave out).
package("evse", files=["fwupdate.py", "fwrequests.py", "fwimage.py"], base_path="..")  # noqa: F821
