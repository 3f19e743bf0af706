# The security log (whitepaper ed.3 section 4) and the durable queue of
# SecurityEventNotifications.
# lines(st, since, until) -> iterator of text lines, for GetLog (SecurityLog).
#
# Two journals on flash (evse/store/journal.py), both bounded:
#  "seclog"  a ring of records "unix type techInfo": when full, the oldest
#            record goes (whitepaper: a log of fixed size, oldest overwritten).
#  "secq"    SecurityEventNotification payloads (JSON) not yet answered by the
#            CSMS: the station's _pump sends the head once the boot is
#            accepted and deletes it when answered, so an event survives an
#            offline period and a power cut. An event equal to one already
#            waiting (type and techInfo) is not queued again; when full, the
#            oldest goes. A CALLERROR NotImplemented / NotSupported is final
#            for that notification (a CSMS without the message: it goes, the
#            log keeps it); other failures (CALLERROR, timeout, invalid
#            answer) are retried every _RETRY_MS, _ATTEMPTS times in all; a
#            lost link is not counted (sent again once connected).
#            (Connect failures are recorded once per streak by security.py,
#            so a CSMS that fails every backoff round does not flood it.)
#            The log keeps every event.
# Events the whitepaper marks critical, and the connection-security ones the
# CSMS needs to see, are queued; InvalidMessages and AttemptedReplayAttacks
# (peer-triggered, possibly in floods) are only logged.
#
# InvalidMessages (A04.FR.04): a frame that is not valid OCPP (not OCPP-J,
# an unknown action, a CALL or an answer against its schema) is recorded at
# once; further ones within _INVALID_MS of that record are only counted, and
# the count (with the last one's reason) is recorded when the window ends: a
# flood writes one record per _INVALID_MS, and none of it is lost.
import json

from evse import timestamp
from evse.compat import const, ticks_add, ticks_diff
from evse.store.journal import JournalFull

_LOG_BYTES = const(8192)
_QUEUE_BYTES = const(3072)
_SEGMENT = const(1024)
_KIND = const(1)
_RETRY_MS = const(30000)
_ATTEMPTS = const(5)  # sends of one notification before it is given up
_FINAL = ("CALLERROR NotImplemented", "CALLERROR NotSupported")
_KEEP = b'"MemoryExhaustion"'
_INVALID_MS = const(600000)  # InvalidMessages: one record per 10 minutes at most
LOG_ONLY = ("InvalidMessages", "AttemptedReplayAttacks")


_LAST = const(0x3FFFFFFF)  # a send-queue order after everything: events go when nothing else waits


class SecLog:
    """st.seclog: the security log ring and the SecurityEventNotification
    queue, one of the station's send queues (Station.queues)."""

    name = "secq"
    last = 0  # no order of its own for the outbox (its head goes last, _LAST)
    corrupt = False  # its journals report corruption through the storage

    def __init__(self, storage, log_bytes=_LOG_BYTES, queue_bytes=_QUEUE_BYTES):
        self.ring = storage.journal("seclog", max_bytes=log_bytes, segment_bytes=_SEGMENT)
        self.queue = storage.journal("secq", max_bytes=queue_bytes, segment_bytes=_SEGMENT)
        self.waiting = []  # _key of each queued event (bounded by the queue)
        for _, _, data in self.queue.live():
            self.waiting.append(_key_of(data))
        self.retry_at = None  # tick before which the head is not sent again
        self.tries = 0  # counted failures of the head
        self.bad_at = None  # tick of the last InvalidMessages record
        self.bad_n = 0  # invalid frames since, not yet recorded
        self.bad_last = ""  # the reason of the newest of them

    def payload(self, unix, kind, info):
        """The SecurityEventNotification payload of an event."""
        p = {"type": kind[:50], "timestamp": timestamp.format_utc(unix)}
        if info:
            p["techInfo"] = info[:255]
        return p

    def keep(self, p, unix):
        """Record event payload `p` and queue its notification (durable)."""
        self.record(unix, p["type"], p.get("techInfo"))
        return self.notify(p)

    # -- the send-queue seam (Station._pump, next_ms, remote._delivered) --
    def head_call(self, st, now):
        """(action, payload, ctx, order) to send now, or None."""
        if st.registration != "Accepted":
            return None
        h = self.head(now)
        return None if h is None else ("SecurityEventNotification", h[1], h[0], _LAST)

    def pending(self, st):
        """Something to deliver before a reset (one waiting to retry does not hold it)."""
        return bool(st.online and self.queue.count and self.retry_at is None)

    def record(self, unix, kind, info):
        """Append to the ring, dropping the oldest records to make room."""
        line = ("%d %s %s" % (unix, kind, info or "")).encode()[:300]
        _push(self.ring, line)

    def notify(self, payload):
        """Queue a SecurityEventNotification unless an equal one waits.
        Returns None when nothing was queued, else whether older ones had
        to go to make room (the queue is full: MemoryExhaustion)."""
        k = _key(payload)
        if payload["type"] in LOG_ONLY or k in self.waiting:
            return None
        data = json.dumps(payload).encode()
        dropped = _push(self.queue, data, _KEEP)  # the queue's own MemoryExhaustion stays
        for d in dropped:
            self._gone(_key_of(d))
        self.waiting.append(k)
        return bool(dropped)

    def head(self, now):
        """(seq, payload) to send now, or None (empty or waiting to retry)."""
        if self.retry_at is not None and ticks_diff(self.retry_at, now) > 0:
            return None
        for seq, _, data in self.queue.live():
            try:
                return seq, json.loads(data)
            except ValueError:
                self._drop(seq, data)  # unreadable: not worth blocking the queue
        return None

    def done(self, seq):
        try:
            data = self.queue.read(seq)
        except KeyError:
            return
        self._drop(seq, data)
        self.retry_at = None
        self.tries = 0

    def failed(self, now, seq, reason):
        """The head `seq` was not answered with a result: "final" or "gave
        up" when it is dropped (see above), else None (retried later)."""
        if reason in _FINAL:
            self.done(seq)
            return "final"
        if reason == "link lost":
            self.retry_at = None  # not the CSMS's answer: the next connection sends it at once
            return None
        self.tries += 1
        if self.tries >= _ATTEMPTS:
            self.done(seq)
            return "gave up"
        self.retry_at = ticks_add(now, _RETRY_MS)
        return None

    def retry_ms(self, now):
        """Ms until a failed head may go again; None once it may (the next
        pump sends it: a past deadline must not keep waking the core)."""
        if self.retry_at is None:
            return None
        left = ticks_diff(self.retry_at, now)
        if left <= 0 or not self.queue.count:
            self.retry_at = None
            return None
        return left

    def _drop(self, seq, data):
        try:
            self.queue.delete(seq)
        except (KeyError, OSError):
            pass
        self._gone(_key_of(data))

    def _gone(self, k):
        if k in self.waiting:
            self.waiting.remove(k)


def _key(payload):
    return payload["type"] + "|" + payload.get("techInfo", "")


def _key_of(data):
    try:
        return _key(json.loads(data))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _push(j, data, keep=None):
    """Append `data` to journal `j`, deleting the oldest records while it
    is full (the oldest not holding `keep`, if any); returns the payloads
    deleted."""
    dropped = []
    while True:
        try:
            j.append(_KIND, data)
            return dropped
        except JournalFull:
            oldest = None
            for seq, _, old in j.live():
                if oldest is None or keep is None or keep not in bytes(old):
                    oldest = (seq, old)
                    if keep is None or keep not in bytes(old):
                        break
            if oldest is None:
                return dropped  # bigger than the whole journal: not kept
            dropped.append(oldest[1])
            j.delete(oldest[0])


def invalid_message(st, what):
    """A frame that is not valid OCPP came (see InvalidMessages above)."""
    ev = _events(st)
    if ev is None:
        return
    if ev.bad_at is None or ticks_diff(st.now, ev.bad_at) >= _INVALID_MS:
        return _invalid_record(st, ev, what)
    ev.bad_n += 1
    ev.bad_last = what[:100]
    if not st.timers.active("seclog.invalid"):
        st.on_timer["seclog.invalid"] = invalid_window
        st.timers.start("seclog.invalid", st.now, _INVALID_MS - ticks_diff(st.now, ev.bad_at))


def _invalid_record(st, ev, info):
    ev.bad_at = st.now
    ev.bad_n = 0
    st.security_event("InvalidMessages", info)


def invalid_window(st, now):
    """The window after an InvalidMessages record ended: record its count."""
    ev = _events(st)
    if ev is not None and ev.bad_n:
        _invalid_record(st, ev, "%d more invalid messages, the last: %s" % (ev.bad_n, ev.bad_last))


def lines(st, since=None, until=None):
    """The security log as text lines "2026-11-26T01:02:03Z type techInfo",
    oldest first, for records with since <= unix time <= until (None: no
    bound). Reads one record at a time from flash."""
    ev = _events(st)
    if ev is None:
        return
    for _, _, data in ev.ring.live():
        try:
            text = bytes(data).decode()
            sp = text.index(" ")
            t = int(text[:sp])
        except ValueError:
            continue
        if (since is None or t >= since) and (until is None or t <= until):
            yield timestamp.format_utc(t) + text[sp:]


def _events(st):
    return st.seclog
