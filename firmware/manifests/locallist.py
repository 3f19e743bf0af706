# Freeze manifest of the optional feature: Local Auth List Management.
# Included by ../manifest.py; a build that leaves it out runs without it
# (station.CORE lists what no build may leave out).
package("evse", files=["locallist.py"], base_path="..")  # noqa: F821
