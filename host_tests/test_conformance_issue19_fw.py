"""Issue 19 (A): firmware update, logs and transaction message deviations,
each reproduced over the wire against the real CSMS peer (tools/csms.py,
`ocpp` package, strict schemas) and fixed at its mechanism. The case ids are
the item numbers of issue 19 (not OCTT ids)."""
from __future__ import annotations

import time
from typing import Any

import pytest
from ocpp.v16 import call

from evse import timestamp
from fwkit import Pki, image
from httpserver import HttpServer
from live import wait_for
from test_conformance_harness import case

MF_ROOT = "ManufacturerRootCertificate"


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki("ec")


def provision(e: Any, pki: Pki) -> None:
    from evse import certificates
    e.st.do(lambda: certificates.provision(e.st.station, MF_ROOT, pki.root_pem, replace=True))


def signed(e: Any, srv: HttpServer, pki: Pki, req_id: int, data: bytes, retrieve_in: int = 0,
           path: str = "/files/fw.img", **kw: Any) -> Any:
    fw = {"location": srv.url(path), "signing_certificate": pki.signer_pem, "signature": pki.sign(data),
          "retrieve_date_time": timestamp.format_utc(int(time.time()) + retrieve_in)}
    return e.call(call.SignedUpdateFirmware(request_id=req_id, firmware=fw, **kw))


def fw_statuses(e: Any) -> list[dict[str, Any]]:
    return e.calls("SignedFirmwareStatusNotification")


def wait_accepted(e: Any) -> None:
    wait_for(lambda: e.st.do(lambda: e.st.station.registration) == "Accepted", 10, "boot accepted")


def callerrors(e: Any, action: str) -> list[str]:
    """Error codes of the station's CALLERRORs to the CSMS's `action` CALLs."""
    ids = {m[1] for m in e.frames("out") if m[0] == 2 and m[2] == action}
    return [m[2] for m in e.frames("in") if m[0] == 4 and m[1] in ids]


@case("ISSUE19_01", "Plain UpdateFirmware is NotSupported beside the signed update; a signed one goes on",
      "Security")
def test_01_plain_update_firmware_refused(make, srv, pki):
    e = make()
    provision(e, pki)
    srv.files["fw.img"] = image("9.9.9")
    assert signed(e, srv, pki, 5, srv.files["fw.img"], retrieve_in=3600).status == "Accepted"
    e.wait_call("SignedFirmwareStatusNotification")
    now = timestamp.format_utc(int(time.time()))
    assert e.call(call.UpdateFirmware(location=srv.url("/files/fw.img"), retrieve_date=now)) is None
    assert callerrors(e, "UpdateFirmware") == ["NotSupported"]
    e.settle(0.5)
    # Nothing started: no download, no plain status; the signed request still runs.
    assert srv.requests == [] and e.calls("FirmwareStatusNotification") == []
    assert fw_statuses(e) == [{"status": "DownloadScheduled", "requestId": 5}]
    assert e.st.do(lambda: e.st.station.fwupdate.req["id"]) == 5


def ext_trigger(e: Any, what: str = "FirmwareStatusNotification") -> str:
    return e.call(call.ExtendedTriggerMessage(requested_message=what)).status


@case("ISSUE19_09", "Triggered firmware status after a failure: the last status with its requestId", "Security")
def test_09_trigger_after_a_failed_update(make, srv, pki):
    e = make()
    provision(e, pki)
    srv.files["fw.img"] = image("9.9.9")
    assert signed(e, srv, pki, 31, b"not the image").status == "Accepted"
    e.wait_call("SignedFirmwareStatusNotification", where=lambda p: p["status"] == "InvalidSignature")
    n = len(fw_statuses(e))
    assert ext_trigger(e) == "Accepted"
    e.wait_call("SignedFirmwareStatusNotification", n + 1)
    assert fw_statuses(e)[-1] == {"status": "InvalidSignature", "requestId": 31}
    # A download that fails: DownloadFailed with its id, after a power cut too.
    assert signed(e, srv, pki, 32, b"x", path="/missing.img").status == "Accepted"
    e.wait_call("SignedFirmwareStatusNotification", where=lambda p: p["status"] == "DownloadFailed")
    e.restart()
    e.wait_call("BootNotification", 2)
    wait_accepted(e)
    n = len(fw_statuses(e))
    assert ext_trigger(e) == "Accepted"
    e.wait_call("SignedFirmwareStatusNotification", n + 1)
    assert fw_statuses(e)[-1] == {"status": "DownloadFailed", "requestId": 32}


@case("ISSUE19_12", "ExtendedTriggerMessage(FirmwareStatusNotification) answers with SignedFirmwareStatusNotification",
      "Security")
def test_12_extended_trigger_sends_the_signed_notification(make):
    e = make()  # a fresh station: no firmware request ever
    assert ext_trigger(e) == "Accepted"
    assert e.wait_call("SignedFirmwareStatusNotification") == [{"status": "Idle"}]
    assert e.calls("FirmwareStatusNotification") == []
    # The 1.6 TriggerMessage keeps its own message.
    assert e.call(call.TriggerMessage(requested_message="FirmwareStatusNotification")).status == "Accepted"
    assert e.wait_call("FirmwareStatusNotification") == [{"status": "Idle"}]


@case("ISSUE19_17", "SupportedFileTransferProtocols is reported, read-only (HTTP,HTTPS)", "Security")
def test_17_supported_file_transfer_protocols(make):
    e = make()
    res = e.call(call.GetConfiguration(key=["SupportedFileTransferProtocols"]))
    assert res.configuration_key == [{"key": "SupportedFileTransferProtocols", "readonly": True,
                                      "value": "HTTP,HTTPS"}] and not res.unknown_key
    assert e.call(call.ChangeConfiguration(key="SupportedFileTransferProtocols", value="FTP")).status == "Rejected"
    everything = e.call(call.GetConfiguration()).configuration_key
    assert "SupportedFileTransferProtocols" in [k["key"] for k in everything]


DEAD = "http://127.0.0.1:9/upload"  # nothing listens: every attempt fails at once


def get_log(e: Any, req_id: int, loc: str, **kw: Any) -> Any:
    return e.call(call.GetLog(log={"remote_location": loc}, log_type="DiagnosticsLog", request_id=req_id, **kw))


@case("ISSUE19_19", "Log/Diagnostics status triggered during a retry wait: Uploading (with requestId)", "Security")
def test_19_trigger_during_a_retry_wait(make):
    e = make()
    assert get_log(e, 19, DEAD, retries=1, retry_interval=600).status == "Accepted"
    e.wait_call("LogStatusNotification")
    e.settle(0.5)  # the first attempt has failed; the retry is 600 s away
    assert e.st.do(lambda: e.st.station.diag.job) is None
    assert e.call(call.ExtendedTriggerMessage(requested_message="LogStatusNotification")).status == "Accepted"
    got = e.wait_call("LogStatusNotification", 2)
    assert got == [{"status": "Uploading", "requestId": 19}] * 2
    e.call(call.GetDiagnostics(location=DEAD, retries=1, retry_interval=600))
    e.wait_call("DiagnosticsStatusNotification", where=lambda p: p["status"] == "Uploading")
    e.settle(0.5)
    assert e.call(call.TriggerMessage(requested_message="DiagnosticsStatusNotification")).status == "Accepted"
    assert e.wait_call("DiagnosticsStatusNotification", 2) == [{"status": "Uploading"}] * 2


@case("ISSUE19_20", "GetLog and GetDiagnostics replacing each other: every request reaches a final status",
      "Security")
def test_20_every_request_reaches_a_final_status(make, srv):
    e = make()
    e.call(call.GetDiagnostics(location=DEAD, retries=1, retry_interval=600))
    e.wait_call("DiagnosticsStatusNotification")
    # A GetLog ends it: Accepted (not AcceptedCanceled), the GetDiagnostics gets UploadFailed.
    assert get_log(e, 1, DEAD, retries=1, retry_interval=600).status == "Accepted"
    assert e.wait_call("DiagnosticsStatusNotification", 2)[-1] == {"status": "UploadFailed"}
    e.wait_call("LogStatusNotification")
    # A GetLog replacing a GetLog: AcceptedCanceled; the first one ends with UploadFailure.
    assert get_log(e, 2, DEAD, retries=1, retry_interval=600).status == "AcceptedCanceled"
    e.wait_call("LogStatusNotification", where=lambda p: p == {"status": "UploadFailure", "requestId": 1})
    # A GetDiagnostics ends that one (UploadFailure) and uploads.
    e.call(call.GetDiagnostics(location=srv.url("/upload")))
    e.wait_call("LogStatusNotification", where=lambda p: p == {"status": "UploadFailure", "requestId": 2})
    e.wait_call("DiagnosticsStatusNotification", where=lambda p: p["status"] == "Uploaded")
    logs = e.calls("LogStatusNotification")
    assert logs == [{"status": "Uploading", "requestId": 1}, {"status": "UploadFailure", "requestId": 1},
                    {"status": "Uploading", "requestId": 2}, {"status": "UploadFailure", "requestId": 2}]
    assert [p["status"] for p in e.calls("DiagnosticsStatusNotification")] == [
        "Uploading", "UploadFailed", "Uploading", "Uploaded"]


@case("ISSUE19_24", "TransactionMessageAttempts holds for StartTransaction; the queue behind it moves on", "Core")
def test_24_start_transaction_attempts_are_bounded(make):
    e = make(seeds={"TransactionMessageAttempts": "3", "TransactionMessageRetryInterval": "1"})
    refuse = [True]
    # The CSMS answers every StartTransaction with a CALLERROR (EVerest's case).
    e.rewrite(lambda m: [4, m[1], "InternalError", "refused", {}]
              if refuse[0] and m[0] == 3 and "transactionId" in m[2] else m)
    e.card("AA")
    e.cmd("plug")
    e.wait_call("StartTransaction", 3, timeout=8)  # retried 1 s, then 2 s later
    e.wait_status("Finishing", timeout=4)  # not registered: stopped (StopTransactionOnInvalidId)
    wait_for(lambda: e.st.do(lambda: len(e.st.station.transactions.queue)) == 0, 5, "transaction queue empty")
    e.settle(4)  # no 4th attempt after TransactionMessageAttempts=3, no Stop without an id
    assert len(e.calls("StartTransaction")) == 3 and e.calls("StopTransaction") == []
    # The record of the session is in the diagnostics log (GetDiagnostics reaches it).
    lines = e.st.do(lambda: list(e.st.station.diag.log.lines(None, None)))
    assert [ln for ln in lines if "StartTransaction discarded after 3 attempts" in ln and "idTag=AA" in ln]
    assert [ln for ln in lines if "StopTransaction of an unregistered transaction dropped" in ln
            and "meterStop=" in ln]
    # The next session is not held up behind it.
    refuse[0] = False
    e.cmd("unplug")
    e.card("AA")
    e.cmd("plug")
    e.wait_status("Charging")
    assert len(e.wait_call("StartTransaction", 4)) == 4
    e.card("AA")
    stop = e.wait_call("StopTransaction")[0]
    assert stop["transactionId"] >= 1 and stop["reason"] == "Local"


@pytest.fixture(scope="module")
def rsa_pki() -> Pki:
    return Pki("rsa")


@case("ISSUE19_15", "Firmware signed with RSA-PSS (SHA-256, MGF1-SHA256) verifies and installs", "Security")
def test_15_rsa_pss_firmware_signature(make, srv, rsa_pki):
    from cryptography.hazmat.primitives.asymmetric import padding
    srv.files["fw.img"] = data = image("7.0.0")
    # Salt lengths: the digest's (openssl 3 signing), the maximum (cryptography's default), none.
    for req_id, salt in ((51, 32), (52, padding.PSS.MAX_LENGTH), (53, 0)):
        e = make("s%d" % req_id)  # a station each: one trial boot per station here (no boot loader)
        provision(e, rsa_pki)
        fw = {"location": srv.url("/files/fw.img"), "signing_certificate": rsa_pki.signer_pem,
              "retrieve_date_time": timestamp.format_utc(int(time.time())), "signature": rsa_pki.sign_pss(data, salt)}
        assert e.call(call.SignedUpdateFirmware(request_id=req_id, firmware=fw)).status == "Accepted"
        e.wait_call("SignedFirmwareStatusNotification", timeout=15,
                    where=lambda p: p["status"] in ("InstallRebooting", "InvalidSignature", "DownloadFailed"))
        got = [p["status"] for p in fw_statuses(e)]
        assert got[:5] == ["Downloading", "Downloaded", "SignatureVerified", "Installing", "InstallRebooting"], got
        assert not [p for p in e.calls("SecurityEventNotification") if p["type"] == "InvalidFirmwareSignature"]
        # Let the reboot into the trial end (its boot accepted) before the next station or the teardown.
        e.wait_call("BootNotification", 2, timeout=20)
        wait_accepted(e)
