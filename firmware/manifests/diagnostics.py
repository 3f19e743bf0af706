# Freeze manifest of the optional feature: GetDiagnostics, GetLog and the diagnostics log.
# Included by ../manifest.py; a build that leaves it out runs without it
# (station.CORE lists what no build may leave out).
package("evse", files=["diagnostics.py", "logrequests.py"], base_path="..")  # noqa: F821
