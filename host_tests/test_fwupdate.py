"""Firmware update (evse/fwupdate.py) on the sans-IO rig: virtual clock,
scripted CSMS, real downloads from the loopback HTTP server run as jobs."""
from __future__ import annotations

import pytest

from evse import timestamp
from evse.fwimage import Slots
from fwkit import FEATURES, Pki, boot, events, fw_statuses, image, provision_root, run_jobs
from rig import Rig
from test_conformance_harness import case


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki("ec")


def make_rig(tmp_path, pki: Pki) -> Rig:
    r = Rig(str(tmp_path / "data"), features=FEATURES)
    boot(r)  # the boot loader runs before every core, as on the device
    provision_root(r.st, pki.root_pem)
    r.connect()
    return r


def iso(rig: Rig, ds: int = 0) -> str:
    return timestamp.format_utc(rig.clock.unix() + ds)


def signed_req(rig, url, pki: Pki, data: bytes, req_id=7, cert=None, **extra):
    fw = {"location": url, "retrieveDateTime": iso(rig), "signingCertificate": cert or pki.signer_pem,
          "signature": pki.sign(data)}
    fw.update(extra.pop("fw", {}))
    return rig.call("SignedUpdateFirmware", dict({"requestId": req_id, "firmware": fw}, **extra))


def versions(rig: Rig) -> list[str]:
    return [p["firmwareVersion"] for p in rig.sent("BootNotification")]


def test_profile_is_reported(tmp_path, pki):
    r = make_rig(tmp_path, pki)
    ans = r.call("GetConfiguration", {"key": ["SupportedFeatureProfiles"]})
    assert "FirmwareManagement" in ans[2]["configurationKey"][0]["value"].split(",")


def test_signed_update_installs_reboots_and_reports_the_new_version(tmp_path, pki, srv):
    r = make_rig(tmp_path, pki)
    data = image("2.0.0")
    srv.files["fw.img"] = data
    assert signed_req(r, srv.url("/files/fw.img?chunked=1"), pki, data)[2] == {"status": "Accepted"}
    r.run(0)
    assert fw_statuses(r) == ["Downloading"]
    assert run_jobs(r) == 1
    r.run(200)
    assert fw_statuses(r) == ["Downloading", "Downloaded", "SignatureVerified", "Installing", "InstallRebooting"]
    r.run(1000)
    assert r.st.reboot == "Hard"
    assert boot(r) is None
    r.connect()
    assert versions(r) == ["0.1.0", "2.0.0"]
    assert fw_statuses(r)[-1] == "Installed"
    assert "FirmwareUpdated" in events(r)
    s = Slots(r.data, "sim").status()
    assert s["version"] == "2.0.0" and s["trial"] is None and s["active"] == "a"
    assert all(p["requestId"] == 7 for p in r.sent("SignedFirmwareStatusNotification"))
    # The next boot runs the confirmed image again; the trigger says Idle.
    boot(r)
    r.connect()
    assert versions(r)[-1] == "2.0.0"
    r.call("ExtendedTriggerMessage", {"requestedMessage": "FirmwareStatusNotification"})
    assert r.sent("SignedFirmwareStatusNotification")[-1]["status"] == "Idle"


# A build without the security feature: the only one with the plain path (L01.FR.20).
PLAIN_BUILD = tuple(f for f in FEATURES if f not in ("security", "certificates"))


@case("TC_044_1_CS", "Firmware Update - Download and Install (a build without the security feature)",
      "Firmware Management")
def test_plain_update_firmware(tmp_path, pki, srv):
    r = Rig(str(tmp_path / "data"), features=PLAIN_BUILD)
    boot(r)
    r.connect()
    srv.files["fw.img"] = image("1.5.0")
    assert r.call("UpdateFirmware", {"location": srv.url("/files/fw.img"), "retrieveDate": iso(r)})[2] == {}
    r.run(0)
    run_jobs(r)
    r.run(1000)
    assert fw_statuses(r, signed=False) == ["Downloading", "Downloaded", "Installing"]
    assert r.st.reboot == "Hard"
    boot(r)
    r.connect()
    assert versions(r)[-1] == "1.5.0"
    assert fw_statuses(r, signed=False)[-1] == "Installed"
    assert r.sent("SignedFirmwareStatusNotification") == []


def test_plain_request_is_not_supported_beside_the_signed_update(tmp_path, pki, srv):
    r = make_rig(tmp_path, pki)
    data = image("2.0.0")
    srv.files["fw.img"] = data
    signed_req(r, srv.url("/files/fw.img"), pki, data, fw={"retrieveDateTime": iso(r, 3600)})
    r.run(0)
    ans = r.call("UpdateFirmware", {"location": srv.url("/files/fw.img"), "retrieveDate": iso(r)})
    assert ans[0] == 4 and ans[2] == "NotSupported"  # L01.FR.20
    r.run(4000 * 1000)  # the signed one goes on, at its time
    run_jobs(r)
    r.run(1000)
    assert fw_statuses(r)[-1] == "InstallRebooting" and fw_statuses(r, signed=False) == []


def test_a_persisted_plain_request_never_installs_in_a_secure_build(tmp_path, pki, srv):
    # Accepted by a build without the security feature, then the secure
    # build boots on the same flash: the unsigned request ends, unrun.
    r = Rig(str(tmp_path / "data"), features=PLAIN_BUILD)
    boot(r)
    r.connect()
    srv.files["fw.img"] = image("1.5.0")
    r.call("UpdateFirmware", {"location": srv.url("/files/fw.img"), "retrieveDate": iso(r, 60)})
    r.run(0)
    r.features = FEATURES
    boot(r)
    r.connect()
    r.run(120 * 1000)
    assert r.st.jobs == [] and srv.requests == []
    assert fw_statuses(r, signed=False)[-1] == "InstallationFailed" and r.st.fwupdate.req is None


def test_bad_signature_keeps_the_old_firmware(tmp_path, pki, srv):
    r = make_rig(tmp_path, pki)
    data = image("2.0.0")
    srv.files["fw.img"] = data
    signed_req(r, srv.url("/files/fw.img"), pki, data + b"x")
    r.run(0)
    run_jobs(r)
    r.run(1000)
    assert fw_statuses(r) == ["Downloading", "Downloaded", "InvalidSignature"]
    assert "InvalidFirmwareSignature" in events(r)
    assert r.st.reboot is None
    assert Slots(r.data, "sim").status()["slots"] == {"a": None, "b": None}
    boot(r)
    r.connect()
    assert versions(r)[-1] == "0.1.0"


@case("TC_082_CS", "Secure Firmware Update - InvalidCertificate Security Event", "Security")
def test_certificate_not_from_the_manufacturer_root(tmp_path, pki, srv):
    r = make_rig(tmp_path, pki)
    data = image("2.0.0")
    srv.files["fw.img"] = data
    ans = signed_req(r, srv.url("/files/fw.img"), pki, data, cert=pf_pem(pki.stranger))
    assert ans[2] == {"status": "InvalidCertificate"}
    r.run(1000)
    assert "InvalidFirmwareSigningCertificate" in events(r)
    assert r.st.jobs == [] and srv.requests == []


def pf_pem(c) -> str:
    import pki_factory
    return pki_factory.pem(c)


def test_truncated_download_retries_then_fails(tmp_path, pki, srv):
    r = make_rig(tmp_path, pki)
    data = image("2.0.0")
    srv.files["fw.img"] = data
    signed_req(r, srv.url(f"/files/fw.img?truncate={len(data) // 2}"), pki, data, retries=1, retryInterval=30)
    r.run(0)
    run_jobs(r)
    r.run(29000)
    assert r.st.jobs == [] and len(srv.requests) == 1  # waits retryInterval
    r.run(1000)
    run_jobs(r)
    r.run(1000)
    assert len(srv.requests) == 2
    assert fw_statuses(r) == ["Downloading", "Downloading", "DownloadFailed"]
    assert r.st.reboot is None
    assert Slots(r.data, "sim").status()["slots"] == {"a": None, "b": None}


def test_unreachable_server(tmp_path, pki):
    r = make_rig(tmp_path, pki)
    data = image("2.0.0")
    signed_req(r, "http://127.0.0.1:9/fw.img", pki, data)
    r.run(0)
    run_jobs(r)
    r.run(1000)
    assert fw_statuses(r) == ["Downloading", "DownloadFailed"]
    boot(r)
    r.connect()
    assert versions(r)[-1] == "0.1.0"


def test_request_during_a_transaction_waits_for_its_end(tmp_path, pki, srv):
    r = make_rig(tmp_path, pki)
    r.cs.tags = {"T1": "Accepted"}
    r.cmd("plug")
    r.cmd("card", "T1")
    r.run(1000)
    assert r.st.connectors[1].tx is not None
    data = image("2.0.0")
    srv.files["fw.img"] = data
    signed_req(r, srv.url("/files/fw.img"), pki, data)
    r.run(60000)
    assert fw_statuses(r) == ["DownloadPaused"] and r.st.jobs == []
    r.cmd("card", "T1")  # stop
    r.run(1000)
    assert fw_statuses(r)[-1] == "Downloading"
    run_jobs(r)
    r.run(1000)
    assert fw_statuses(r)[-1] == "InstallRebooting"


def test_install_waits_for_a_transaction_started_after_the_download(tmp_path, pki, srv):
    r = make_rig(tmp_path, pki)
    r.cs.tags = {"T1": "Accepted"}
    data = image("2.0.0")
    srv.files["fw.img"] = data
    signed_req(r, srv.url("/files/fw.img"), pki, data, fw={"installDateTime": iso(r, 600)})
    r.run(0)
    run_jobs(r)
    r.run(1000)
    assert fw_statuses(r)[-1] == "InstallScheduled"
    r.cmd("plug")
    r.cmd("card", "T1")
    r.run(700000)  # past installDateTime, the transaction runs
    assert "Installing" not in fw_statuses(r) and r.st.reboot is None
    r.cmd("card", "T1")
    r.run(1000)
    assert fw_statuses(r)[-2:] == ["Installing", "InstallRebooting"]


def test_trial_not_accepted_rolls_back(tmp_path, pki, srv):
    r = make_rig(tmp_path, pki)
    data = image("3.0.0")
    srv.files["fw.img"] = data
    signed_req(r, srv.url("/files/fw.img"), pki, data)
    r.run(0)
    run_jobs(r)
    r.run(1000)
    assert r.st.reboot == "Hard"
    boot(r)
    r.cs.boot_plan = ["Rejected"] * 1000  # the new image never gets accepted
    r.connect()
    r.run(600000)
    assert versions(r)[-1] == "3.0.0"
    assert r.st.reboot == "Hard"  # the trial watchdog
    failure = boot(r)
    assert failure and "rolled back" in failure
    r.cs.boot_plan = []
    r.connect()
    r.run(1000)
    assert versions(r)[-1] == "0.1.0"
    assert fw_statuses(r)[-1] == "InstallationFailed"


def test_power_cut_while_downloading_retries(tmp_path, pki, srv):
    r = make_rig(tmp_path, pki)
    data = image("2.0.0")
    srv.files["fw.img"] = data
    signed_req(r, srv.url("/files/fw.img"), pki, data, retries=2, retryInterval=10)
    r.run(0)
    assert r.st.jobs  # the download never runs: power cut
    boot(r)
    r.connect()
    r.run(11000)
    run_jobs(r)
    r.run(1000)
    assert fw_statuses(r)[-1] == "InstallRebooting"


def test_second_request_cancels_the_first(tmp_path, pki, srv):
    r = make_rig(tmp_path, pki)
    data = image("2.0.0")
    srv.files["fw.img"] = data
    signed_req(r, srv.url("/files/fw.img"), pki, data, fw={"retrieveDateTime": iso(r, 3600)})
    r.run(0)
    assert fw_statuses(r) == ["DownloadScheduled"]
    ans = signed_req(r, srv.url("/files/fw.img"), pki, data, req_id=8)
    assert ans[2] == {"status": "AcceptedCanceled"}
    r.run(0)
    run_jobs(r)
    r.run(1000)
    assert r.sent("SignedFirmwareStatusNotification")[-1] == {"status": "InstallRebooting", "requestId": 8}
    ans = signed_req(r, srv.url("/files/fw.img"), pki, data, req_id=9)
    assert ans[2] == {"status": "Rejected"}  # the install has begun


def test_trigger_reports_the_current_status(tmp_path, pki, srv):
    r = make_rig(tmp_path, pki)
    r.call("TriggerMessage", {"requestedMessage": "FirmwareStatusNotification"})
    assert fw_statuses(r, signed=False) == ["Idle"]
    data = image("2.0.0")
    signed_req(r, srv.url("/files/fw.img"), pki, data, fw={"retrieveDateTime": iso(r, 3600)})
    r.run(0)
    r.call("ExtendedTriggerMessage", {"requestedMessage": "FirmwareStatusNotification"})
    assert r.sent("SignedFirmwareStatusNotification")[-1] == {"status": "DownloadScheduled", "requestId": 7}


def test_https_download_with_the_provisioned_root(tmp_path, pki):
    from evse import security
    from fwkit import https_server
    srv, ca = https_server(str(tmp_path))
    try:
        r = make_rig(tmp_path, pki)
        data = image("2.1.0")
        srv.files["fw.img"] = data
        signed_req(r, srv.url("/files/fw.img"), pki, data)  # no trusted root yet: TLS fails
        r.run(0)
        run_jobs(r)
        r.run(100)
        assert fw_statuses(r)[-1] == "DownloadFailed"
        security.provision(r.st, ca=ca)
        signed_req(r, srv.url("/files/fw.img?chunked=1"), pki, data, req_id=8)
        r.run(0)
        run_jobs(r)
        r.run(1000)
        assert fw_statuses(r)[-1] == "InstallRebooting" and r.st.reboot == "Hard"
    finally:
        srv.close()


def test_a_cancelled_download_finishes_before_the_next_one_starts(tmp_path, pki, srv):
    import asyncio

    from evse import jobs
    r = make_rig(tmp_path, pki)
    data = image("2.0.0")
    srv.files["fw.img"] = data
    signed_req(r, srv.url("/files/fw.img?piece=500&delay=0.02"), pki, data)
    r.run(0)
    old = r.st.jobs.pop(0)  # the runtime has taken it: it runs

    async def both():
        task = asyncio.ensure_future(jobs.run(r.st, old))
        await asyncio.sleep(0.05)  # mid-download
        assert signed_req(r, srv.url("/files/fw.img"), pki, data, req_id=8)[2] == {"status": "AcceptedCanceled"}
        r.run(0)
        assert r.st.jobs == []  # waits for the cancelled one
        await task
        assert old.ended

    asyncio.run(both())
    r.run(300)
    run_jobs(r)
    r.run(1000)
    assert r.sent("SignedFirmwareStatusNotification")[-1] == {"status": "InstallRebooting", "requestId": 8}


def test_trigger_after_a_failure_repeats_it_until_the_next_request(tmp_path, pki, srv):
    # L01.FR.29/21 (issue 19 item 9): the last status sent, with its requestId, not Idle.
    r = make_rig(tmp_path, pki)
    data = image("2.0.0")
    srv.files["fw.img"] = data
    signed_req(r, srv.url("/files/fw.img"), pki, data + b"x", req_id=21)
    r.run(0)
    run_jobs(r)
    r.run(1000)
    assert fw_statuses(r)[-1] == "InvalidSignature"
    r.call("ExtendedTriggerMessage", {"requestedMessage": "FirmwareStatusNotification"})
    assert r.sent("SignedFirmwareStatusNotification")[-1] == {"status": "InvalidSignature", "requestId": 21}
    boot(r)  # persisted: a reboot does not forget it
    r.connect()
    r.call("ExtendedTriggerMessage", {"requestedMessage": "FirmwareStatusNotification"})
    assert r.sent("SignedFirmwareStatusNotification")[-1] == {"status": "InvalidSignature", "requestId": 21}
    signed_req(r, "http://127.0.0.1:9/fw.img", pki, data, req_id=22)
    r.run(0)
    run_jobs(r)
    r.run(1000)
    r.call("TriggerMessage", {"requestedMessage": "FirmwareStatusNotification"})
    assert r.sent("SignedFirmwareStatusNotification")[-1] == {"status": "DownloadFailed", "requestId": 22}
    signed_req(r, srv.url("/files/fw.img"), pki, data, req_id=23, fw={"retrieveDateTime": iso(r, 3600)})
    r.run(0)
    r.call("ExtendedTriggerMessage", {"requestedMessage": "FirmwareStatusNotification"})
    assert r.sent("SignedFirmwareStatusNotification")[-1] == {"status": "DownloadScheduled", "requestId": 23}


def test_a_second_scheduled_request_reports_its_own_schedule(tmp_path, pki, srv):
    # The replaced request's DownloadScheduled is not the new one's: it is said again, with the new id.
    r = make_rig(tmp_path, pki)
    data = image("2.0.0")
    signed_req(r, srv.url("/files/fw.img"), pki, data, req_id=41, fw={"retrieveDateTime": iso(r, 3600)})
    r.run(0)
    signed_req(r, srv.url("/files/fw.img"), pki, data, req_id=42, fw={"retrieveDateTime": iso(r, 7200)})
    r.run(0)
    assert r.sent("SignedFirmwareStatusNotification") == [{"status": "DownloadScheduled", "requestId": 41},
                                                          {"status": "DownloadScheduled", "requestId": 42}]


def test_request_phases_move_only_by_their_table():
    from evse import fwrequests
    r = {"ph": fwrequests._START}
    for event, phase in (("download", "dl"), ("retry", "wait"), ("download", "dl"), ("downloaded", "ready"),
                         ("installed", "boot")):
        fwrequests._go(r, event)
        assert r["ph"] == phase
    with pytest.raises(ValueError):
        fwrequests._go({"ph": "wait"}, "installed")  # no install without a verified download
