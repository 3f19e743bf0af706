"""tools/sim.py's security flags (an exact contract for outside test suites):
--url wss://, --ca, --cert/--key, --set SecurityProfile=N, --password; a
bad certificate file or a key that is not the certificate's: one line, exit 2."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from live import CsmsThread, SimProcess, wait_for
from test_security_live import PW, Pki

SIM = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools", "sim.py")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: Any) -> Pki:
    p = Pki(tmp_path_factory.mktemp("simpki"))
    p.write("ca.pem", p.pem(p.ca))
    p.write("other.pem", p.pem(p.other))
    cert, key, _ = p.client("SIMTLS")
    p.write("client.pem", cert)
    p.write("client.key", key)
    p.write("stranger.key", p.client("X")[1])
    return p


def run_sim(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, SIM, "--url", "wss://127.0.0.1:9/ocpp", "--id", "CPE", "--quiet",
                           *args], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)


def test_bad_files_exit_2_with_one_line(pki: Pki, tmp_path: Path) -> None:
    d = pki.d
    (tmp_path / "noread.pem").write_text("x")
    os.chmod(tmp_path / "noread.pem", 0)
    cases = [
        (["--ca", str(tmp_path / "missing.pem")], "--ca"),
        (["--ca", str(d / "client.key")], "no certificate"),
        (["--cert", str(d / "client.pem"), "--key", str(d / "stranger.key")], "does not match"),
        (["--cert", str(tmp_path / "missing.pem"), "--key", str(d / "client.key")], "--cert"),
        (["--cert", str(d / "client.pem"), "--key", str(d / "ca.pem")], "--key"),
        (["--cert", str(d / "client.pem")], "together"),
    ]
    if os.geteuid() != 0:  # root reads anything
        cases.append((["--ca", str(tmp_path / "noread.pem")], "cannot read"))
    for args, words in cases:
        p = run_sim("--data", str(tmp_path / "data"), *args)
        lines = p.stderr.strip().splitlines()
        assert p.returncode == 2 and len(lines) == 1 and words in lines[0], (args, p.stderr)
        assert "Traceback" not in p.stderr


def test_profile_3_session_from_flags(pki: Pki, tmp_path: Path) -> None:
    c = CsmsThread(ssl=pki.server(clients=pki.ca))
    sim = SimProcess(c.url, "SIMTLS", str(tmp_path), "--ca", str(pki.d / "ca.pem"), "--cert",
                     str(pki.d / "client.pem"), "--key", str(pki.d / "client.key"), "--set", "SecurityProfile=3")
    try:
        c.wait_call("BootNotification", timeout=20)
        assert c.csms.peers["SIMTLS"][-1] is not None  # our client certificate
    finally:
        sim.quit()
    # --ca at every start replaces the root provisioned before: with the wrong
    # one the CSMS is refused, as the security log says.
    sim = SimProcess(c.url, "SIMTLS", str(tmp_path), "--ca", str(pki.d / "other.pem"))
    try:
        ev = sim.wait_event(lambda e: e.get("event") == "connect_failed", timeout=20)
        assert "CERTIFICATE_VERIFY_FAILED" in ev["error"]
    finally:
        sim.quit()
        c.stop()


def test_profile_2_with_password(pki: Pki, tmp_path: Path) -> None:
    c = CsmsThread(ssl=pki.server(), passwords={"SIM2": PW})
    sim = SimProcess(c.url, "SIM2", str(tmp_path), "--ca", str(pki.d / "ca.pem"), "--password", PW,
                     "--set", "SecurityProfile=2")
    try:
        c.wait_call("BootNotification", timeout=20)
        wait_for(lambda: c.connected("SIM2"), 10, "connected")
    finally:
        sim.quit()
        c.stop()

