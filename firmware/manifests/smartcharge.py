# Freeze manifest of the optional feature: Smart Charging.
# Included by ../manifest.py; a build that leaves it out runs without it
# (station.CORE lists what no build may leave out).
package("evse", files=["smartcharge.py", "profilestack.py", "chargingprofile.py"], base_path="..")  # noqa: F821
