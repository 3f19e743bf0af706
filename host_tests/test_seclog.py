"""The security log ring and the durable SecurityEventNotification queue
(seclog.py, Station.security_event), on the sans-IO rig."""
from __future__ import annotations

from typing import Any

from evse import seclog
from evse.store.storage import FileStorage
from rig import Rig


def test_ring_is_bounded_and_keeps_the_newest(tmp_path: Any) -> None:
    log = seclog.SecLog(FileStorage(str(tmp_path)), log_bytes=1024)
    for i in range(200):
        log.record(1767225600 + i, "InvalidMessages", "message %d" % i)
    assert log.ring.live_bytes <= 1024
    kept = [bytes(d).decode() for _, _, d in log.ring.live()]
    assert kept[-1].endswith("message 199") and len(kept) < 200
    # Reopened from flash (a power cut), the same records.
    again = seclog.SecLog(FileStorage(str(tmp_path)), log_bytes=1024)
    assert [bytes(d).decode() for _, _, d in again.ring.live()] == kept


def test_lines_for_getlog_by_time_window(tmp_path: Any) -> None:
    r = Rig(str(tmp_path))
    t0 = r.clock.unix()
    for i, kind in enumerate(("StartupOfTheDevice", "SettingSystemTime", "ResetOrReboot")):
        r.clock.set_unix(t0 + 100 * i)
        r.st.security_event(kind, "info %d" % i)
    lines = list(seclog.lines(r.st))
    assert lines == ["2026-01-01T00:00:00Z StartupOfTheDevice info 0",
                     "2026-01-01T00:01:40Z SettingSystemTime info 1",
                     "2026-01-01T00:03:20Z ResetOrReboot info 2"]
    assert list(seclog.lines(r.st, t0 + 50, t0 + 150)) == lines[1:2]
    assert list(seclog.lines(r.st, since=t0 + 100)) == lines[1:]


def test_offline_events_survive_a_power_cut_and_go_out_after_the_boot(tmp_path: Any) -> None:
    r = Rig(str(tmp_path))
    r.st.security_event("TamperDetectionActivated", "lid open")
    r.st.security_event("MemoryExhaustion")
    r.reboot()  # never online: only the flash has them
    r.connect()
    sent = r.sent("SecurityEventNotification")
    assert [p["type"] for p in sent] == ["TamperDetectionActivated", "MemoryExhaustion"]
    assert sent[0]["techInfo"] == "lid open" and "techInfo" not in sent[1]
    assert r.actions().index("BootNotification") < r.actions().index("SecurityEventNotification")
    assert r.st.seclog.queue.count == 0  # answered: deleted
    r.reboot()
    r.connect()
    assert len(r.sent("SecurityEventNotification")) == 2  # not sent twice


def test_a_failed_notification_is_retried(tmp_path: Any) -> None:
    r = Rig(str(tmp_path))
    r.connect()
    r.cs.fail.add("SecurityEventNotification")
    r.st.security_event("SettingSystemTime", "x")
    r.cs.pump()
    r.st.tick(r.clock.ms())
    r.cs.pump()
    assert len(r.sent("SecurityEventNotification")) == 1
    assert r.st.seclog.queue.count == 1
    assert 0 < r.st.next_ms(r.clock.ms()) <= 30000
    r.st.disconnected(r.clock.ms())
    r.clock.advance(40000)
    r.st.tick(r.clock.ms())
    assert r.st.next_ms(r.clock.ms()) != 0  # offline past the deadline: no busy wake-ups
    r.cs.fail.clear()
    r.connect()
    assert len(r.sent("SecurityEventNotification")) == 2
    assert r.st.seclog.queue.count == 0


def test_repeats_of_a_waiting_event_are_logged_not_queued(tmp_path: Any) -> None:
    r = Rig(str(tmp_path))
    for _ in range(50):
        r.st.security_event("InvalidCentralSystemCertificate", "expired")
    r.st.security_event("InvalidMessages", "peer noise")  # log only
    # Same type, other techInfo: another event (e.g. two reconfigurations).
    r.st.security_event("InvalidCentralSystemCertificate", "wrong host")
    assert len(list(seclog.lines(r.st))) == 52
    r.connect()
    sent = [(p["type"], p["techInfo"]) for p in r.sent("SecurityEventNotification")]
    assert sent == [("InvalidCentralSystemCertificate", "expired"), ("InvalidCentralSystemCertificate", "wrong host")]


def test_a_full_queue_drops_the_oldest(tmp_path: Any) -> None:
    log = seclog.SecLog(FileStorage(str(tmp_path)), queue_bytes=600)
    for i in range(20):
        log.notify({"type": "T%d" % i, "timestamp": "2026-01-01T00:00:00Z", "techInfo": "x" * 40})
    kinds = [p["type"] for p in (log.head(0)[1],)]
    assert log.queue.live_bytes <= 600 and kinds != ["T0"]
    assert log.waiting[-1] == "T19|" + "x" * 40 and len(log.waiting) == log.queue.count


def test_clock_step_and_reset_are_security_events(tmp_path: Any) -> None:
    # Security WP event list: SettingSystemTime and ResetOrReboot are
    # critical: logged and notified (durably: the reset's event goes out
    # after the reboot). Small clock corrections are not events.
    r = Rig(str(tmp_path))
    r.clock.set_unix(r.clock.unix() - 3600)  # the station's clock is an hour behind
    r.connect()
    r.run(2000)
    ev = r.sent("SecurityEventNotification")
    assert [e["type"] for e in ev] == ["SettingSystemTime"] and "+3600 s" in ev[0]["techInfo"]
    r.clock.set_unix(r.clock.unix() - 5)
    r.call("TriggerMessage", {"requestedMessage": "Heartbeat"})
    r.run(2000)
    assert len(r.sent("SecurityEventNotification")) == 1
    r.call("Reset", {"type": "Soft"})
    r.run(100)
    assert r.st.reboot == "Soft"
    r.reboot()
    r.connect()
    r.run(2000)
    types = [e["type"] for e in r.sent("SecurityEventNotification")]
    assert types == ["SettingSystemTime", "ResetOrReboot"]
    assert "Soft reset" in r.sent("SecurityEventNotification")[1]["techInfo"]
    assert [ln.split(" ")[1] for ln in seclog.lines(r.st)] == types
