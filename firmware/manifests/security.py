# Freeze manifest of the optional feature: the Security Whitepaper (security
# profiles, certificates, the security log) and pki/ (its crypto).
# Included by ../manifest.py; a build that leaves it out runs without it
# (station.CORE lists what no build may leave out).
package("evse", files=["security.py", "certificates.py", "certrequests.py", "seclog.py"], base_path="..")  # noqa: F821
package("evse/pki", base_path="..")  # noqa: F821
