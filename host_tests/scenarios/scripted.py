"""A scripted CSMS that drives a sans-IO Station directly, frame by frame.

It answers the station's CALLs from a table and records a transcript in
which message ids are replaced by sequence numbers, so runs on CPython and
in the MicroPython VM can be compared as parsed JSON.
"""
import json

from evse.compat import ticks_diff
from evse.timestamp import format_utc


class ScriptedCsms:
    def __init__(self, station, clock):
        self.st = station
        self.clock = clock
        self.transcript = []
        self.boot_plan = []  # statuses for successive BootNotifications
        self.interval = 10
        self.tags = {}
        self.tx_id = 0
        self._ids = {}
        self._n = 0
        self._unix0, self._ms0 = clock.unix(), clock.ms()
        self.fail = set()  # actions answered with a CALLERROR
        self.fail_code = {}  # action -> its CALLERROR's errorCode (default InternalError)
        self.record = True  # keep the transcript (off when measuring the heap)

    def _norm(self, uid):
        if uid not in self._ids:
            self._n += 1
            self._ids[uid] = self._n
        return self._ids[uid]

    def _log(self, direction, msg):
        if not self.record:
            return
        m = list(msg)
        m[1] = self._norm(m[1])
        self.transcript.append({"t": self.clock.ms(), "dir": direction, "msg": m})

    def true_unix(self):
        """The CSMS's own (correct) time: the station's clock may be off."""
        return self._unix0 + ticks_diff(self.clock.ms(), self._ms0) // 1000

    def info(self, tag):
        """idTagInfo for a tag: `tags` maps a tag to a status or an idTagInfo."""
        v = self.tags.get(tag, "Invalid")
        return v if isinstance(v, dict) else {"status": v}

    def answer(self, action, payload):
        now = format_utc(self.true_unix())
        if action == "BootNotification":
            status = self.boot_plan.pop(0) if self.boot_plan else "Accepted"
            return {"status": status, "currentTime": now,
                    "interval": self.interval if status == "Accepted" else 2}
        if action == "Heartbeat":
            return {"currentTime": now}
        if action in ("Authorize",):
            return {"idTagInfo": self.info(payload["idTag"])}
        if action == "StartTransaction":
            self.tx_id += 1
            return {"transactionId": self.tx_id, "idTagInfo": self.info(payload["idTag"])}
        if action == "StopTransaction" and "idTag" in payload:
            return {"idTagInfo": self.info(payload["idTag"])}
        if action == "DataTransfer":
            return {"status": "UnknownVendorId"}
        if action == "SignCertificate":
            return {"status": "Accepted"}
        return {}

    def pump(self):
        """Deliver everything the station emitted; answer its CALLs."""
        while True:
            frames = self.st.take_frames()
            if not frames:
                return
            for f in frames:
                msg = json.loads(f)
                self._log("cs", msg)
                if msg[0] == 2:
                    if msg[2] in self.fail:
                        reply = [4, msg[1], self.fail_code.get(msg[2], "InternalError"), "scripted failure", {}]
                    else:
                        reply = [3, msg[1], self.answer(msg[2], msg[3])]
                    self._log("csms", reply)
                    self.st.receive(json.dumps(reply), self.clock.ms())

    def call(self, uid, action, payload):
        """Send a CALL to the station; returns its answer (parsed)."""
        msg = [2, uid, action, payload]
        self._log("csms", msg)
        self.st.receive(json.dumps(msg), self.clock.ms())
        answer = None
        frames = self.st.take_frames()
        rest = []
        for f in frames:
            m = json.loads(f)
            if m[1] == uid and m[0] in (3, 4) and answer is None:
                answer = m
                self._log("cs", m)
            else:
                rest.append(f)
        self.st.frames[:0] = rest
        self.pump()
        return answer

    def run_steps(self, ms):
        """Advance virtual time by `ms`, ticking the station at each of its
        deadlines; yields after every tick (a step for heap measurements)."""
        end = ms
        while end > 0 or self.st.next_ms(self.clock.ms()) == 0:
            nxt = self.st.next_ms(self.clock.ms())
            d = end if nxt is None else max(0, min(nxt, end))
            self.clock.advance(d)
            end -= d
            self.st.tick(self.clock.ms())
            self.pump()
            yield

    def run_for(self, ms):
        for _ in self.run_steps(ms):
            pass


def run_scenario(steps, data_dir):
    """Run a scenario generator to the end; its transcript (CPython or VM)."""
    out = []
    for _ in steps(data_dir, out):
        pass
    return out[0].transcript
