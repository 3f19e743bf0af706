"""Firmware update end to end: tools/sim.py as a real process (--manufacturer-ca),
the dev CSMS over WebSockets, images from the loopback HTTP server; power
cuts (kill -9) at each step of download and install."""
from __future__ import annotations

import base64
import os
import time
from typing import Any

import pytest
from ocpp.v16 import call

from evse import timestamp
from evse.fwimage import Slots
from fwkit import Pki, image
from httpserver import HttpServer
from live import CsmsThread, SimProcess, _LoopThread, csms_mod, wait_for
from test_conformance_harness import case

CP = "FW1"
OLD, NEW = "0.1.0", "2.0.0"


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki("ec")


@pytest.fixture
def ca_file(tmp_path, pki) -> str:
    p = tmp_path / "maker.pem"
    p.write_text(pki.root_pem)
    return str(p)


@pytest.fixture
def srv():
    s = HttpServer()
    s.files["fw.img"] = image(NEW, size=4000)
    yield s
    s.close()


@pytest.fixture
def csms():
    c = CsmsThread()
    yield c
    c.stop()


def start(csms: Any, data: str, ca: str) -> SimProcess:
    sim = SimProcess(csms.url, CP, data, "--manufacturer-ca", ca)
    return sim


def accepted_boots(csms: Any) -> list[str]:
    """firmwareVersion of each BootNotification the CSMS accepted."""
    out = []
    pending = {}
    for e in csms.csms.log:
        m = e["msg"]
        if not isinstance(m, list) or e["cp"] != CP:
            continue
        if e["dir"] == "in" and m[0] == 2 and m[2] == "BootNotification":
            pending[m[1]] = m[3].get("firmwareVersion")
        elif e["dir"] == "out" and m[0] == 3 and m[1] in pending and m[2].get("status") == "Accepted":
            out.append(pending.pop(m[1]))
    return out


def statuses(csms: Any) -> list[str]:
    return [p["status"] for p in csms.calls("SignedFirmwareStatusNotification", CP)]


def wait_status(csms: Any, status: str, timeout: float = 10) -> None:
    wait_for(lambda: status in statuses(csms), timeout, status)


def wait_boots(csms: Any, n: int, timeout: float = 10) -> list[str]:
    return wait_for(lambda: (lambda b: b if len(b) >= n else None)(accepted_boots(csms)), timeout, f"{n} boots")


def request(csms: Any, srv: HttpServer, pki: Pki, query: str = "", install_in: int | None = None,
            data: bytes | None = None, retries: int = 1, retrieve_in: int = 0) -> Any:
    now = int(time.time())
    fw = {"location": srv.url("/files/fw.img" + query), "retrieve_date_time": timestamp.format_utc(now + retrieve_in),
          "signing_certificate": pki.signer_pem, "signature": pki.sign(data or srv.files["fw.img"])}
    if install_in is not None:
        fw["install_date_time"] = timestamp.format_utc(now + install_in)
    return csms.call(CP, call.SignedUpdateFirmware(request_id=1, firmware=fw, retries=retries, retry_interval=1))


def consistent(data: str, version: str) -> None:
    """The version the station booted is the one its slots say runs, and that slot verifies
    (once the accepted boot has confirmed a trial: that follows the CSMS's answer)."""
    s = wait_for(lambda: (lambda s: s if s.state["trial"] is None or s.state["boots"] == 0 else None)(
        Slots(data, "sim")), 5, "trial confirmed")
    active = s.state["active"]
    assert version == (s.info(active)["version"] if active else OLD)
    if active:
        assert s.verify_slot(active) is None


@case("TC_080_CS", "Secure Firmware Update", "Security")
def test_signed_image_installs_and_the_station_boots_it(tmp_path, csms, srv, pki, ca_file):
    data = str(tmp_path / "d")
    sim = start(csms, data, ca_file)
    try:
        wait_boots(csms, 1)
        assert request(csms, srv, pki, "?chunked=1").status == "Accepted"
        assert wait_boots(csms, 2) == [OLD, NEW]
        wait_status(csms, "Installed")
        assert statuses(csms) == ["Downloading", "Downloaded", "SignatureVerified", "Installing",
                                  "InstallRebooting", "Installed"]
        csms.wait_call("SecurityEventNotification", where=lambda p: p["type"] == "FirmwareUpdated")
        consistent(data, NEW)
    finally:
        sim.quit()


@case("TC_081_CS", "Secure Firmware Update - Invalid Signature", "Security")
def test_bad_signature_offline_event_arrives_after_reconnect(tmp_path, srv, pki, ca_file):
    data = str(tmp_path / "d")
    c1 = CsmsThread()
    sim = start(c1, data, ca_file)
    port = c1.port
    try:
        wait_boots(c1, 1)
        request(c1, srv, pki, data=b"not the image", retrieve_in=2)
        wait_status(c1, "DownloadScheduled")
        c1.stop()  # the CSMS goes away before the download is due
        wait_for(lambda: srv.requests, 10, "the download")
        time.sleep(0.5)  # it ends offline: InvalidSignature, InvalidFirmwareSignature
        c2 = _LoopThread()
        cs2 = csms_mod.Csms()
        c2.run(cs2.start(port=port))
        try:
            wait_for(lambda: "InvalidFirmwareSignature" in [p["type"] for p in cs2.calls("SecurityEventNotification")],
                     15, "security event after reconnect")
            assert "InvalidSignature" in [p["status"] for p in cs2.calls("SignedFirmwareStatusNotification")]
        finally:
            c2.run(cs2.stop())
            c2.close()
        consistent(data, OLD)
    finally:
        sim.quit()


def _cut(sim: SimProcess, data: str, csms: Any, ca: str) -> SimProcess:
    sim.kill()
    return start(csms, data, ca)


@pytest.mark.parametrize("step", ["downloading", "downloaded", "rebooting"])
def test_power_cut_at_each_step_leaves_one_consistent_version(tmp_path, csms, srv, pki, ca_file, step):
    data = str(tmp_path / "d")
    sim = start(csms, data, ca_file)
    try:
        wait_boots(csms, 1)
        if step == "downloading":
            request(csms, srv, pki, "?piece=400&delay=0.05")
            wait_status(csms, "Downloading")
            time.sleep(0.3)
        elif step == "downloaded":
            request(csms, srv, pki, install_in=4)
            wait_status(csms, "InstallScheduled")
        else:
            request(csms, srv, pki)
            wait_status(csms, "InstallRebooting")
        sim = _cut(sim, data, csms, ca_file)
        boots = wait_boots(csms, 2)
        consistent(data, boots[-1])
        # The update goes on (retry, scheduled install) or has been rolled
        # back; either way it ends and the slots agree with the boot.
        wait_for(lambda: {"Installed", "InstallationFailed"} & set(statuses(csms)), 20, "update end")
        boots = accepted_boots(csms)
        consistent(data, boots[-1])
        assert boots[-1] == (NEW if "Installed" in statuses(csms) else OLD)
    finally:
        sim.quit()


def test_trial_that_never_reaches_an_accepted_boot_rolls_back(tmp_path, srv, pki, ca_file):
    data = str(tmp_path / "d")
    csms = CsmsThread(boot_statuses=["Accepted", "Pending", "Pending", "Pending"])
    sim = start(csms, data, ca_file)
    try:
        wait_boots(csms, 1)
        request(csms, srv, pki)
        csms.wait_call("BootNotification", 2, timeout=10, where=lambda p: p["firmwareVersion"] == NEW)
        sim = _cut(sim, data, csms, ca_file)  # the new image dies before its boot is accepted
        boots = wait_boots(csms, 2, timeout=15)
        assert boots == [OLD, OLD]
        wait_status(csms, "InstallationFailed")
        consistent(data, OLD)
    finally:
        sim.quit()
        csms.stop()


def test_mkimage_image_signed_by_openssl_with_rsa(tmp_path, csms, srv):
    """The outside contract: tools/mkimage.py builds the image, openssl signs
    it (RSA 2048), the station installs it and boots the new version."""
    import subprocess
    import sys

    from cryptography.hazmat.primitives import serialization

    from fwkit import ROOT
    rsa = Pki("rsa")
    key = tmp_path / "signer.pem"
    key.write_bytes(rsa.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    ca = tmp_path / "maker.pem"
    ca.write_text(rsa.root_pem)
    img = tmp_path / "fw.img"
    printed = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "mkimage.py"), "--board", "sim",
                              "--version", "3.1.4", "--out", str(img), "--sign", str(key)],
                             capture_output=True, text=True, check=True).stdout.strip()
    dgst = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(key), str(img)], capture_output=True,
                          check=True).stdout
    sig = base64.b64encode(dgst).decode()
    assert sig == printed  # RSA PKCS#1 v1.5 is deterministic
    srv.files["fw.img"] = img.read_bytes()
    data = str(tmp_path / "d")
    sim = start(csms, data, str(ca))
    try:
        wait_boots(csms, 1)
        fw = {"location": srv.url("/files/fw.img"), "retrieve_date_time": timestamp.format_utc(int(time.time())),
              "signing_certificate": rsa.signer_pem, "signature": sig}
        assert csms.call(CP, call.SignedUpdateFirmware(request_id=2, firmware=fw)).status == "Accepted"
        assert wait_boots(csms, 2, timeout=20) == [OLD, "3.1.4"]
        wait_status(csms, "Installed")
        consistent(data, "3.1.4")
    finally:
        sim.quit()


def test_update_during_a_transaction_waits_for_its_end(tmp_path, srv, pki, ca_file):
    csms = CsmsThread(tags={"T1": "Accepted"})
    data = str(tmp_path / "d")
    sim = start(csms, data, ca_file)
    try:
        wait_boots(csms, 1)
        sim.send("plug")
        sim.send("card T1")
        csms.wait_call("StartTransaction", cp_id=CP)
        assert request(csms, srv, pki).status == "Accepted"
        wait_status(csms, "DownloadPaused")
        time.sleep(0.5)
        assert statuses(csms) == ["DownloadPaused"] and srv.requests == []
        sim.send("card T1")  # the driver ends the session
        csms.wait_call("StopTransaction", cp_id=CP)
        assert wait_boots(csms, 2) == [OLD, NEW]
        stop_at = next(i for i, e in enumerate(csms.csms.log) if isinstance(e["msg"], list)
                       and e["msg"][0] == 2 and e["msg"][2] == "StopTransaction")
        first_dl = next(i for i, e in enumerate(csms.csms.log) if isinstance(e["msg"], list)
                        and e["msg"][0] == 2 and e["msg"][2] == "SignedFirmwareStatusNotification"
                        and e["msg"][3]["status"] == "Downloading")
        assert stop_at < first_dl
        wait_status(csms, "Installed")
    finally:
        sim.quit()
        csms.stop()
