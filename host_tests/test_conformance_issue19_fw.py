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


@pytest.fixture
def srv():
    s = HttpServer()
    yield s
    s.close()


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
    wait_for(lambda: e.st.do(lambda: e.st.station.registration) == "Accepted", 5, "boot accepted")
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
