"""Issue 12 mechanisms in the sans-IO rig (virtual clock, scripted CSMS):
the parts a CSMS over the wire cannot reach in a few seconds."""
import pytest

from evse import transaction
from rig import Rig


@pytest.fixture
def rig(tmp_path):
    return Rig(str(tmp_path), tags={"AA": "Accepted"}).connect()


def queued_statuses(rig, cid=1):
    return [i[1]["status"] for i in rig.st.outbox if i[0] == "StatusNotification" and i[1]["connectorId"] == cid]


def test_offline_keeps_the_latest_status_and_the_errors(rig):
    # 4.9: offline, the present status waits for the link; an earlier error
    # status is kept, an earlier non-error status is not.
    rig.disconnect()
    rig.cmd("fault", "GroundFailure")
    rig.cmd("clear")
    rig.cmd("plug")
    rig.cmd("unplug")
    rig.cmd("plug")
    assert queued_statuses(rig) == ["Faulted", "Preparing"]
    rig.connect()
    assert rig.statuses()[-2:] == ["Faulted", "Preparing"]


def test_a_full_outbox_never_drops_the_latest_status(rig):
    rig.disconnect()
    rig.cmd("plug")
    for i in range(20):  # newer messages push the oldest out, not the status
        rig.st.send("DataTransfer", {"vendorId": "v%d" % i})
    assert queued_statuses(rig) == ["Preparing"] and len(rig.st.outbox) == 16
    assert rig.st.outbox[-1][1] == {"vendorId": "v19"}


def test_status_counts_as_reported_only_when_answered(rig):
    rig.st.take_frames()
    rig.board.command("plug", [])
    rig.st.tick(rig.clock.ms())
    assert [f for f in rig.swallow() if f[2] == "StatusNotification"]  # sent, never answered
    rig.disconnect()
    assert rig.st.connectors[1].reported == ("Available", "NoError")
    rig.connect()
    assert rig.statuses()[-1] == "Preparing"


def test_start_callerror_on_every_attempt_is_discarded_and_logged(tmp_path):
    # Rule 12 (issue 19 item 24): TransactionMessageAttempts holds for a
    # StartTransaction too. After the last attempt the session is not
    # authorized (stopped, StopTransactionOnInvalidId), its messages are
    # dropped, each written to the diagnostics log; the queue moves on.
    r = Rig(str(tmp_path), tags={"AA": "Accepted"},
            seeds={"TransactionMessageAttempts": "2", "TransactionMessageRetryInterval": "5"}).connect()
    r.cs.fail.add("StartTransaction")
    r.cmd("card", "AA")
    r.cmd("plug")
    assert r.status() == "Charging"
    r.run(6000)  # two failed attempts: discarded, stopped
    assert r.st.connectors[1].tx is None and r.status() == "Finishing"
    r.cs.fail.clear()
    r.run(60000)
    assert len(r.sent("StartTransaction")) == 2 and r.sent("StopTransaction") == []
    assert len(r.st.transactions.queue) == 0
    logged = [t for t in r.st.diag.log.lines(None, None) if "txqueue" in t]  # the diagnostics log
    assert any("StartTransaction discarded after 2 attempts" in t and "idTag=AA" in t and "meterStart=" in t
               for t in logged), logged
    assert any("StopTransaction of an unregistered transaction dropped" in t and "reason=DeAuthorized" in t
               and "meterStop=" in t for t in logged), logged
    r.cmd("unplug")
    r.cmd("card", "AA")  # the next session is not held up
    r.cmd("plug")
    r.run(2000)
    assert len(r.sent("StartTransaction")) == 3 and r.st.connectors[1].tx.tx_id == r.cs.tx_id


def test_incomplete_start_answer_acts_on_its_status(tmp_path):
    # Rule 12 (station._on_answer hands such an answer to
    # transaction.start_answer_incomplete via st.on_invalid, see
    # docs/CONFORMANCE.md): the readable idTagInfo.status counts at once.
    r = Rig(str(tmp_path), tags={"AA": "Accepted"}).connect()
    r.cs.fail.add("StartTransaction")  # keep the Start queued
    r.cmd("card", "AA")
    r.cmd("plug")
    c = r.st.connectors[1]
    transaction.start_answer_incomplete(r.st, {"idTagInfo": {"status": "Invalid"}}, (c.tx.local, "AA"))
    assert c.tx is None and r.sent("StopTransaction") == []  # queued behind its Start
    assert r.st.transactions.queue.has_stop(r.st.transactions.queue.head_seq())


def test_energy_register_survives_a_lower_meter(tmp_path):
    r = Rig(str(tmp_path), tags={"AA": "Accepted"}).connect()
    reg = r.st.transactions.register
    reg.reported(1, 500)
    r.board.ports[0].meter.reg.wh = 480  # restored from an older save
    r.reboot()
    assert transaction.reading(r.st, 1)[0] == 500
    r.board.ports[0].meter.reg.wh = 490  # 10 Wh drawn since the boot
    assert transaction.reading(r.st, 1)[0] == 510
    r.reboot()  # a soft reboot: the meter kept its register, the offset stays
    assert transaction.reading(r.st, 1)[0] == 510
