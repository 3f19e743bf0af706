"""Chaos soak for "Nothing lost" (docs/ARCHITECTURE.md): transaction messages
survive power cuts and CSMS outages and arrive in order.

  .venv/bin/python tools/soak.py --sessions 50 --seed 1 --seconds 600

The dev CSMS (tools/csms.py) runs in this process on its own event loop
thread; tools/sim.py runs as a real subprocess on a fresh --data dir with
MeterValueSampleInterval=1 and a 3 s heartbeat. N charging sessions follow
(plug, card, charge a random short time, stop by card or by unplugging), with
chaos at random points:
  kill    SIGKILL the simulator (a power cut), restart it on the same --data
          after a random off time;
  outage  stop the CSMS, restart it on the same port after a random pause;
  both    both at once, restarted independently;
  trap    SIGKILL at the moment the simulator's --json trace shows a chosen
          transaction frame (a Start/Stop/MeterValues sent or answered), to
          hit the windows between a message, its answer and the journal.
Chaos points (--points): before the plug, 0-30 ms after the card, mid-charge,
0-30 ms after the stop command (half of them within 4 ms: the station takes
2-3 ms to handle a command), and when idle. The first chaos events take each
kind in turn. The seed fixes the schedule (timings, kinds, points), not the
interleaving with the processes. --seconds bounds the session phase; then the
station gets up to DRAIN_S to empty its queue. Exit status 1 on any violation.

Measured: reconnect = from the moment everything is back up (CSMS listening,
simulator started) to the CSMS's first frame from the station; drain = from
that frame to the answer of the last backlog message (a tx message stamped
before the recovery, arriving after it).

Terms. A *tx message* is a StartTransaction, StopTransaction, or MeterValues
with a transactionId. The *stream* is the tx messages in the order the CSMS
received them. Delivery is at-least-once: the station resends its queue head
when the answer was lost (power cut, link loss), so a *resend* is a message
identical to the one just before it in the stream; it can come nowhere else.
A *logical transaction* is one StartTransaction payload: each delivery of it
gets a fresh transactionId from the dev CSMS; the ids of all but the last
answered delivery are *orphans* (the station never learnt them), expected and
counted, never stopped.

Invariants (from the CSMS frame log once the queue is drained):
  I1 order: resends removed, the stream is, per logical transaction in turn,
     Start, MeterValues*, Stop (one connector: transactions do not overlap).
  I2 ids: every MeterValues and Stop carries the id of the last answered
     delivery of its Start; none carries an unknown or orphan id.
  I3 exactly one Stop per logical transaction (a second, different Stop for
     the same transaction is a violation, as is a missing one).
  I4 per transaction: MeterValues timestamps and energy non-decreasing and
     >= meterStart; meterStop >= meterStart; Stop timestamp >= Start's;
     meterStop >= the last sampled energy, whatever the reason (PowerLoss too).
  I5 energy monotonicity (issue 12, rule 10 in docs/CONFORMANCE.md): no
     energy value the station reports (meterStart, sampled energy, meterStop,
     in stream order, across transactions and power cuts) is lower than one
     it reported before. The simulator saves its meter once a second, so
     every power cut restores an older register: the core must not let that
     show. Each regression is a violation; the count is reported.
  I6 every tx message the station sent (its --json trace, any life) reached
     the CSMS.
  I7 after the drain the txq journal holds no live record (but one FLOOR
     record per connector: the last energy reported) and tx.json no
     running transaction.
  I8 no simulator crash: no traceback or error-level log line, no tx queue
     drop/discard warning, no exit we did not cause.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Callable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _p in (os.path.join(ROOT, "firmware"), ROOT, os.path.join(ROOT, "tools")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import csms as csms_mod  # noqa: E402
from evse import timestamp  # noqa: E402
from evse.store.journal import Journal  # noqa: E402
from evse.store.snapshot import Snapshot  # noqa: E402
from evse.txqueue import FLOOR  # noqa: E402

TAG = "SOAK01"
CP = "SOAK1"
TX_ACTIONS = ("StartTransaction", "StopTransaction", "MeterValues")
KINDS = ("kill", "outage", "both", "trap")
POINTS = ("plug", "card", "charge", "stop", "idle")  # where a session's chaos may strike
FULL_POWER_W = 7360  # SimBoard: 32 A x 230 V
ROLLBACK_S = 3  # I5: register rollback allowed across a power cut
QUIET_S = 2.5  # no tx traffic this long after the last answer: drained
DRAIN_S = 90.0
ENERGY = "Energy.Active.Import.Register"
# Trap targets: (trace event, frame type, action).
TRAPS = [(ev, typ, act) for act in TX_ACTIONS for ev, typ in (("sent", "CALL"), ("received", "CALLRESULT"))]


# ---- analysis of the CSMS frame log (pure) ----------------------------------
def _canon(payload: Any) -> str:
    return json.dumps(payload, sort_keys=True)


def tx_stream(log: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tx messages in arrival order, each with the time the CSMS answered it
    and, for a Start, the transactionId it handed out."""
    out: list[dict[str, Any]] = []
    waiting: dict[str, dict[str, Any]] = {}
    for e in log:
        m = e["msg"]
        if not isinstance(m, list) or len(m) < 3:
            continue
        if e["dir"] == "in" and m[0] == 2 and len(m) == 4 and m[2] in TX_ACTIONS:
            if m[2] == "MeterValues" and "transactionId" not in m[3]:
                continue  # clock-aligned or triggered outside a transaction
            rec = {"action": m[2], "payload": m[3], "t": e["t"], "tid": None, "answer_t": None}
            waiting[m[1]] = rec
            out.append(rec)
        elif e["dir"] == "out" and m[0] in (3, 4) and m[1] in waiting:
            rec = waiting.pop(m[1])
            rec["answer_t"] = e["t"]
            if m[0] == 3 and rec["action"] == "StartTransaction":
                rec["tid"] = m[2].get("transactionId")
    return out


def _energy(mv_payload: dict[str, Any]) -> list[int]:
    out = []
    for mv in mv_payload.get("meterValue", []):
        for sv in mv.get("sampledValue", []):
            if sv.get("measurand", ENERGY) == ENERGY:
                v = float(sv["value"]) * (1000 if sv.get("unit") == "kWh" else 1)
                out.append(int(round(v)))
    return out


def _ts(text: Any) -> int:
    t = timestamp.parse(text)
    return -1 if t is None else t


class Report:
    def __init__(self) -> None:
        self.violations: list[str] = []
        self.findings: list[str] = []
        self.counts: dict[str, Any] = {}

    def bad(self, text: str) -> None:
        self.violations.append(text)

    def note(self, text: str) -> None:
        self.findings.append(text)


def analyse(stream: list[dict[str, Any]], kills: list[float] | None = None,
            rollback_wh: int = FULL_POWER_W * ROLLBACK_S // 3600 + 1, report: Report | None = None) -> Report:
    """Check I1-I5 on a tx stream; `kills` are the wall times of power cuts."""
    r = report or Report()
    kills = kills or []
    resends = {a: 0 for a in TX_ACTIONS}
    msgs: list[dict[str, Any]] = []
    for rec in stream:
        key = (rec["action"], _canon(rec["payload"]))
        if msgs and msgs[-1]["key"] == key:
            resends[rec["action"]] += 1
            msgs[-1]["deliveries"].append(rec)
        else:
            msgs.append({"key": key, "action": rec["action"], "payload": rec["payload"], "deliveries": [rec]})
    txs: list[dict[str, Any]] = []
    owner: dict[Any, int] = {}  # transactionId -> logical transaction number
    cur: dict[str, Any] | None = None
    orphans = 0
    for m in msgs:
        a, p = m["action"], m["payload"]
        if a == "StartTransaction":
            if cur is not None and cur["stop"] is None:
                r.bad("I1: StartTransaction #%d before the StopTransaction of #%d" % (len(txs) + 1, cur["n"]))
            tids = [d["tid"] for d in m["deliveries"] if d["tid"] is not None]
            cur = {"n": len(txs) + 1, "start": p, "tid": tids[-1] if tids else None, "mv": [], "stop": None}
            orphans += max(0, len(tids) - 1)
            for t in tids:
                owner[t] = cur["n"]
            if not tids:
                r.bad("I2: StartTransaction #%d never answered" % cur["n"])
            txs.append(cur)
            continue
        tid = p.get("transactionId")
        if cur is None or tid is None or tid != cur["tid"]:
            if tid not in owner:
                what = "an unknown id"
            elif tid != txs[owner[tid] - 1]["tid"]:
                what = "an orphan id of #%d" % owner[tid]
            else:
                what = "the id of #%d, not the current transaction" % owner[tid]
            r.bad("I2: %s with transactionId %r: %s" % (a, tid, what))
            continue
        if cur["stop"] is not None:
            r.bad("I3: %s for #%d (id %r) after its StopTransaction: %s then %s" % (
                a, cur["n"], tid, _canon(cur["stop"]), _canon(p)))
            continue
        if a == "MeterValues":
            cur["mv"].append(p)
        else:
            cur["stop"] = p
    for tx in txs:
        _check_tx(r, tx)
    _check_register(r, msgs, kills, rollback_wh)
    r.counts.update({
        "transactions": len(txs), "orphan_ids": orphans, "resends": resends,
        "tx_messages": len(stream), "powerloss_stops": sum(1 for t in txs if t["stop"]
                                                         and t["stop"].get("reason") == "PowerLoss")})
    return r


def _check_tx(r: Report, tx: dict[str, Any]) -> None:
    n, start, stop = tx["n"], tx["start"], tx["stop"]
    if stop is None:
        r.bad("I3: transaction #%d (id %r, started %s) has no StopTransaction" % (
            n, tx["tid"], start.get("timestamp")))
    m0, t0 = start.get("meterStart", 0), _ts(start.get("timestamp"))
    last_t, last_e = t0, m0
    for mv in tx["mv"]:
        for one in mv.get("meterValue", []):
            t = _ts(one.get("timestamp"))
            if t < last_t:
                r.bad("I4: #%d MeterValues timestamp %s goes back" % (n, one.get("timestamp")))
            last_t = max(last_t, t)
        for e in _energy(mv):
            if e < last_e:
                r.bad("I4: #%d sampled energy %d Wh below %d Wh before it" % (n, e, last_e))
            last_e = max(last_e, e)
    if stop is None:
        return
    if stop["meterStop"] < m0:
        r.bad("I4: #%d meterStop %d < meterStart %d" % (n, stop["meterStop"], m0))
    if _ts(stop.get("timestamp")) < t0:
        r.bad("I4: #%d Stop timestamp %s before Start %s" % (n, stop.get("timestamp"), start.get("timestamp")))
    if stop["meterStop"] < last_e:
        r.bad("I4: #%d meterStop %d Wh is %d Wh below the last sample (reason %s)" % (
            n, stop["meterStop"], last_e - stop["meterStop"], stop.get("reason")))


def _check_register(r: Report, msgs: list[dict[str, Any]], kills: list[float], limit: int) -> None:
    """I5: every reported energy value >= every one reported before it."""
    readings: list[tuple[int, int, str]] = []  # (Wh, unix, what)
    for m in msgs:
        a, p = m["action"], m["payload"]
        if a == "StartTransaction":
            readings.append((p.get("meterStart", 0), _ts(p.get("timestamp")), "meterStart"))
        elif a == "MeterValues":
            t = _ts(p["meterValue"][0].get("timestamp")) if p.get("meterValue") else -1
            readings.extend((e, t, "sample") for e in _energy(p))
        else:
            readings.append((p["meterStop"], _ts(p.get("timestamp")), "meterStop " + str(p.get("reason"))))
    worst, n, high = 0, 0, None
    for e1, t1, w1 in readings:
        if high is not None and e1 < high[0]:
            n += 1
            worst = max(worst, high[0] - e1)
            cut = any(high[1] - 2 <= k <= t1 + 2 for k in kills)
            r.bad("I5: energy went back %d Wh (%s %d at %d -> %s %d at %d)%s" % (
                high[0] - e1, high[2], high[0], high[1], w1, e1, t1,
                " across a power cut" if cut else ", no power cut in between"))
        if high is None or e1 > high[0]:
            high = (e1, t1, w1)
    r.counts["energy_values"] = len(readings)
    r.counts["energy_regressions"] = n
    r.counts["energy_regression_max_wh"] = worst


def check_sent(r: Report, sent: list[dict[str, Any]], stream: list[dict[str, Any]]) -> None:
    """I6: every tx message the station traced as sent reached the CSMS."""
    got = set((s["action"], _canon(s["payload"])) for s in stream)
    lost = [e for e in sent if (e["action"], _canon(e["payload"])) not in got]
    for e in lost[:5]:
        r.bad("I6: sent but never received: %s %s" % (e["action"], _canon(e["payload"])))
    if len(lost) > 5:
        r.bad("I6: ... and %d more" % (len(lost) - 5))


def check_flash(data: str) -> list[str]:
    """I7: the station's queue and transaction snapshot after the drain."""
    out = []
    floors: dict[int, int] = {}
    for seq, kind, raw in Journal(os.path.join(data, "txq")).open():
        if kind == FLOOR:  # the energy floor of an answered record: kept by design, one per connector
            cid = json.loads(raw)["c"]
            floors[cid] = floors.get(cid, 0) + 1
            if floors[cid] == 1:
                continue
        out.append("I7: txq record %d (kind %d) still live: %s" % (seq, kind, raw.decode(errors="replace")))
    snap = Snapshot(os.path.join(data, "tx.json")).load(None)
    if isinstance(snap, list) and any(x is not None for x in snap):
        out.append("I7: tx.json still holds a running transaction: %r" % (snap,))
    return out


_ROUTINE_EVENTS = ("StartupOfTheDevice", "ResetOrReboot")


def scan_stderr(path: str) -> list[str]:
    """I8 (and findings): suspicious lines of one simulator life's log."""
    out = []
    try:
        with open(path, errors="replace") as f:
            for line in f:
                low = line.lower()
                if " security " in low and any(e in line for e in _ROUTINE_EVENTS):
                    continue  # every start and reset of a soak logs these
                if "traceback" in low or " !! error:" in low or " security " in low or (
                        "txqueue" in low and ("dropped" in low or "discarded" in low or "lost" in low)):
                    out.append(line.strip())
    except OSError:
        pass
    return out


# ---- the processes ----------------------------------------------------------
class CsmsHost:
    """The dev CSMS on its own event loop thread; stop/start keep port and log."""

    def __init__(self, tags: dict[str, str], heartbeat: int) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.csms = csms_mod.Csms(tags=tags, heartbeat=heartbeat)
        self.port = self._run(self.csms.start())
        self.up = True

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def stop(self) -> None:
        self._run(self.csms.stop())
        self.up = False

    def start(self) -> None:
        self._run(self.csms.start(port=self.port))
        self.up = True

    def connected(self, cp: str) -> bool:
        return cp in self.csms.stations

    def log(self) -> list[dict[str, Any]]:
        return list(self.csms.log)

    def close(self) -> None:
        if self.up:
            self.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class SimProc:
    """One life of tools/sim.py; trace events go to `sink` from a reader thread."""

    def __init__(self, args: list[str], life: int, err_path: str, sink: Callable[[dict[str, Any]], None]) -> None:
        self.life = life
        self.err_path = err_path
        self.killed = False
        with open(err_path, "w") as err:
            self.proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "tools", "sim.py")] + args,
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                                         text=True, bufsize=1)
        self.sink = sink
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            ev["_t"], ev["_life"] = time.monotonic(), self.life
            self.sink(ev)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def send(self, line: str) -> None:
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
        except (OSError, ValueError):
            pass  # it just died: the caller sees that

    def kill(self) -> None:
        self.killed = True
        self.proc.kill()
        self.proc.wait(5)

    def quit(self) -> None:
        self.killed = True
        self.send("quit")
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.kill()


# ---- the soak ----------------------------------------------------------------
class Soak:
    def __init__(self, sessions: int, seed: int, seconds: float, rate: float = 0.6,
                 kinds: tuple[str, ...] = KINDS, points: tuple[str, ...] = POINTS,
                 max_outage: float = 3.0, max_charge: float = 4.0,
                 data: str | None = None, echo: Callable[[str], None] | None = None) -> None:
        self.n, self.seconds, self.rate, self.kinds, self.points = sessions, seconds, rate, kinds, points
        self.max_outage, self.max_charge = max_outage, max_charge
        self.rng = random.Random(seed)
        self.echo = echo or (lambda s: None)
        self.tmp = None if data else tempfile.mkdtemp(prefix="soak-")
        self.dir = data or self.tmp or ""
        self.data = os.path.join(self.dir, "flash")
        self.report = Report()
        self.lock = threading.Lock()
        self.events: list[dict[str, Any]] = []
        self.trap: tuple[tuple[str, str, str], float] | None = None
        self.planned = 0  # chaos events planned so far
        self.sim: SimProc | None = None
        self.lives = 0
        self.due: list[tuple[float, str]] = []  # (monotonic, "sim"|"csms") restarts
        self.kills: list[float] = []  # wall times of power cuts
        self.chaos: list[dict[str, Any]] = []  # {kind, down, up, wall_up}
        self.stats = {"started": 0, "not_started": 0, "stop_card": 0, "stop_unplug": 0, "cut_short": 0,
                      "kills": 0, "traps": 0, "trap_kills": 0, "outages": 0, "both": 0}
        self.cs = CsmsHost({TAG: "Accepted"}, heartbeat=3)

    # -- simulator lives --
    def _on_event(self, ev: dict[str, Any]) -> None:
        with self.lock:
            self.events.append(ev)
            trap, sim = self.trap, self.sim
            if trap is None or sim is None or ev["_life"] != sim.life:
                return
            (want, typ, act), delay = trap
            if ev.get("event") != want or ev.get("type") != typ or ev.get("action") != act:
                return
            self.trap = None
        if delay:
            time.sleep(delay)
        sim.kill()
        self.kills.append(time.time())
        self.echo("  trap: power cut at %s %s" % (want, act))

    def _spawn(self) -> None:
        self.lives += 1
        args = ["--url", "ws://127.0.0.1:%d/ocpp" % self.cs.port, "--id", CP, "--data", self.data, "--json",
                "--set", "MeterValueSampleInterval=1", "--set", "HeartbeatInterval=3"]
        self.sim = SimProc(args, self.lives, os.path.join(self.dir, "life%03d.err" % self.lives), self._on_event)

    def _alive(self) -> bool:
        return self.sim is not None and self.sim.alive()

    def _dead_unexpectedly(self) -> None:
        sim = self.sim
        if sim is not None and not sim.alive() and not sim.killed:
            self.report.bad("I8: simulator life %d exited by itself (rc %s)" % (sim.life, sim.proc.returncode))
            sim.killed = True
            self.due.append((time.monotonic(), "sim"))

    def _tick(self) -> None:
        """Run the restarts that are due; notice a trap's power cut."""
        self._dead_unexpectedly()
        sim = self.sim
        if sim is not None and sim.killed and not any(k == "sim" for _, k in self.due):
            # A trap's power cut (from the reader thread): off for a while.
            self.stats["trap_kills"] += 1
            self.chaos.append({"kind": "trap", "down": time.monotonic(), "up": None, "wall_up": None})
            self.due.append((time.monotonic() + self.rng.uniform(0.05, 1.0), "sim"))
        now = time.monotonic()
        for item in sorted(self.due):
            if item[0] > now:
                continue
            self.due.remove(item)
            if item[1] == "sim":
                self._spawn()
            else:
                self.cs.start()
            if not self.due:
                self._mark_up()

    def _mark_up(self) -> None:
        now, wall = time.monotonic(), time.time()
        for c in self.chaos:
            if c["up"] is None:
                c["up"], c["wall_up"] = now, wall

    def sleep(self, s: float) -> None:
        end = time.monotonic() + s
        while True:
            self._tick()
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(0.02, left))

    def cmd(self, line: str) -> bool:
        self._tick()
        if not self._alive():
            return False
        assert self.sim is not None
        self.sim.send(line)
        return True

    def status(self, timeout: float = 2.0) -> dict[str, Any] | None:
        sim = self.sim
        if sim is None or not self.cmd("status"):
            return None
        with self.lock:
            n = len(self.events)
        end = time.monotonic() + timeout
        while time.monotonic() < end and sim is self.sim:
            with self.lock:
                new = [e for e in self.events[n:] if e.get("event") == "status" and e["_life"] == sim.life]
            if new:
                return new[-1]
            self.sleep(0.02)
        return None

    def tx_running(self) -> bool | None:
        st = self.status()
        if st is None:
            return None
        return any(c.get("connectorId") == 1 and c.get("idTag") for c in st["connectors"])

    # -- chaos --
    def _kind(self) -> str:
        # The first ones take each kind in turn, so a short run has them all.
        i, self.planned = self.planned, self.planned + 1
        return self.kinds[i] if i < len(self.kinds) else self.rng.choice(self.kinds)

    def chaos_now(self, kind: str) -> None:
        self.echo("  chaos: " + kind)
        if kind == "trap":
            self.stats["traps"] += 1
            with self.lock:
                self.trap = (self.rng.choice(TRAPS), self.rng.choice((0, 0, 0.0005, 0.001, 0.002)))
            return
        # Only what is up can go down: count what was really done.
        cut = kind in ("kill", "both") and self._alive()
        outage = kind in ("outage", "both") and self.cs.up
        if cut:
            assert self.sim is not None
            self.sim.kill()
            self.kills.append(time.time())
            self.due.append((time.monotonic() + self.rng.uniform(0.05, 1.0), "sim"))
        if outage:
            self.cs.stop()
            self.due.append((time.monotonic() + self.rng.uniform(0.2, self.max_outage), "csms"))
        if cut or outage:
            done = "both" if cut and outage else "kill" if cut else "outage"
            self.chaos.append({"kind": done, "down": time.monotonic(), "up": None, "wall_up": None})
            self.stats[{"kill": "kills", "outage": "outages", "both": "both"}[done]] += 1

    # -- one session --
    def session(self, i: int) -> None:
        points = self.points
        plan: dict[str, str] = {}
        if self.rng.random() < self.rate:
            plan[self.rng.choice(points)] = self._kind()
        if self.rng.random() < self.rate * 0.3:
            plan.setdefault(self.rng.choice(points), self._kind())
        charge = self.rng.uniform(0.5, self.max_charge)
        by_card = self.rng.random() < 0.5
        # A chaos point right after a command: the station handles one in
        # 2-3 ms, so half of them fall inside that (e.g. between the journal
        # append of a StopTransaction and the tx.json save).
        fast = self.rng.uniform(0, 0.004 if self.rng.random() < 0.5 else 0.03)
        self.echo("session %d: plan %s, charge %.1f s, stop by %s" % (i, plan, charge, "card" if by_card else "unplug"))
        if "plug" in plan:
            self.chaos_now(plan["plug"])
        self.wait_alive(3.0)  # offline is fine: an outage may span sessions
        life = self.sim.life if self.sim else 0
        self.cmd("plug")
        self.cmd("card " + TAG)
        if "card" in plan:
            self.sleep(fast)
            self.chaos_now(plan["card"])
        started = False
        end = time.monotonic() + 3.0
        while time.monotonic() < end and self.sim is not None and self.sim.life == life:
            if self.tx_running():
                started = True
                break
            self.sleep(0.1)
        if not started:
            self.stats["not_started"] += 1
            self.cmd("unplug")
            self.sleep(0.3)
            return
        self.stats["started"] += 1
        if "charge" in plan:
            cut = self.rng.uniform(0, charge)
            self.sleep(cut)
            self.chaos_now(plan["charge"])
            self.sleep(charge - cut)
        else:
            self.sleep(charge)
        self._tick()
        if self.sim is None or self.sim.life != life:
            self.stats["cut_short"] += 1  # the next boot stops it (PowerLoss)
        elif by_card:
            self.cmd("card " + TAG)
            self.stats["stop_card"] += 1
        else:
            self.cmd("unplug")
            self.stats["stop_unplug"] += 1
        if "stop" in plan:
            self.sleep(fast)
            self.chaos_now(plan["stop"])
        self.sleep(0.3)
        self.cmd("unplug")  # after a card stop; harmless error otherwise
        if "idle" in plan:
            self.sleep(self.rng.uniform(0, 1))
            self.chaos_now(plan["idle"])
        self.sleep(self.rng.uniform(0.2, 1.0))

    def wait_alive(self, timeout: float) -> None:
        end = time.monotonic() + timeout
        while not self._alive() and time.monotonic() < end:
            self.sleep(0.02)

    def wait_up(self, timeout: float) -> bool:
        """Until the station is (re)connected, running due restarts."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self._tick()
            if self._alive() and self.cs.up and self.cs.connected(CP):
                return True
            time.sleep(0.02)
        return False

    # -- run and drain --
    def run(self) -> Report:
        t0 = time.monotonic()
        done = 0
        try:
            self._spawn()
            self.warm_up()
            for i in range(1, self.n + 1):
                if time.monotonic() - t0 > self.seconds:
                    self.echo("time limit: %d of %d sessions" % (done, self.n))
                    break
                self.session(i)
                done += 1
            with self.lock:
                self.trap = None
            self.drain()
        finally:
            if self.sim is not None and self.sim.alive():
                self.sim.quit()
            self.cs.close()
        self.stats["sessions"] = done
        self.finish(time.monotonic() - t0)
        return self.report

    def warm_up(self) -> None:
        """Present the card once online (Authorize: the tag is cached, so a
        session can start offline), then again to cancel it."""
        self.wait_up(5.0)
        self.cmd("card " + TAG)
        end = time.monotonic() + 5.0
        while not self.cs.csms.calls("Authorize") and time.monotonic() < end:
            self.sleep(0.02)
        self.sleep(0.2)
        self.cmd("card " + TAG)
        self.sleep(0.2)

    def drain(self) -> None:
        self._tick()
        self.due = [(0.0, k) for _, k in self.due]  # restart whatever is down now
        if not self.wait_up(DRAIN_S):
            self.report.bad("drain: station not connected within %.0f s" % DRAIN_S)
            return
        if self.tx_running():
            self.cmd("unplug")
        t_conn = time.monotonic()
        end = t_conn + DRAIN_S
        while time.monotonic() < end:
            self.sleep(0.2)
            stream = tx_stream(self.cs.log())
            now = time.monotonic()
            last = stream[-1] if stream else None
            if now - t_conn >= QUIET_S and (last is None or (last["answer_t"] is not None
                                                               and now - last["answer_t"] >= QUIET_S)):
                if self.cs.connected(CP):
                    return
        self.report.bad("drain: tx traffic did not stop within %.0f s" % DRAIN_S)

    def finish(self, elapsed: float) -> None:
        r = self.report
        log = self.cs.log()
        stream = tx_stream(log)
        analyse(stream, self.kills, report=r)
        with self.lock:
            sent = [{"action": e["action"], "payload": e["payload"]} for e in self.events
                    if e.get("event") == "sent" and e.get("type") == "CALL" and e.get("action") in TX_ACTIONS
                    and not (e["action"] == "MeterValues" and "transactionId" not in e["payload"])]
        check_sent(r, sent, stream)
        if r.counts["transactions"] < self.stats["started"]:
            r.bad("I6: %d sessions ran a transaction but the CSMS saw %d StartTransaction payloads" % (
                self.stats["started"], r.counts["transactions"]))
        for p in check_flash(self.data):
            r.bad(p)
        for life in range(1, self.lives + 1):
            for line in scan_stderr(os.path.join(self.dir, "life%03d.err" % life)):
                (r.note if " security " in line.lower() or "oldest metervalues" in line.lower()
                 else r.bad)("I8: life %d: %s" % (life, line))
        self._timings(log, stream)
        r.counts.update(self.stats)
        r.counts.update({"seconds": round(elapsed, 1), "lives": self.lives,
                         "csms_calls_in": sum(1 for e in log if e["dir"] == "in" and isinstance(e["msg"], list)
                                              and e["msg"][0] == 2),
                         "tx_sent_by_station": len(sent)})

    def _timings(self, log: list[dict[str, Any]], stream: list[dict[str, Any]]) -> None:
        """Reconnect (up -> first frame) and drain (first frame -> answer to the
        last backlog message: one generated before the chaos ended)."""
        rec: dict[str, list[float]] = {"after_cut": [], "after_outage": []}
        drains: list[float] = []
        backlog_max = 0
        ins = [e["t"] for e in log if e["dir"] == "in"]
        ups = list({c["up"]: c for c in self.chaos if c["up"] is not None}.values())  # one per recovery
        for c in ups:
            nxt = min([d["down"] for d in self.chaos if d["down"] > c["up"]], default=float("inf"))
            conn = next((t for t in ins if t >= c["up"]), None)
            if conn is None or conn > nxt:
                continue
            rec["after_cut" if c["kind"] in ("kill", "trap") else "after_outage"].append(conn - c["up"])
            backlog = [s for s in stream if c["up"] <= s["t"] < nxt and 0 <= _gen_ts(s) < int(c["wall_up"])]
            backlog_max = max(backlog_max, len(backlog))
            drain = None
            if backlog and backlog[-1]["answer_t"] is not None and backlog[-1]["answer_t"] < nxt:
                drain = backlog[-1]["answer_t"] - conn
                drains.append(drain)
            self.echo("recovery after %s: down %.2f s, first frame %.2f s after up, backlog %d, drained %s" % (
                c["kind"], c["up"] - c["down"], conn - c["up"], len(backlog),
                "-" if drain is None else "%.2f s after it" % drain))
        cnt = self.report.counts
        for k, v in rec.items():
            cnt["reconnect_" + k + "_max_s"] = round(max(v), 2) if v else None
            cnt["reconnect_" + k + "_mean_s"] = round(sum(v) / len(v), 2) if v else None
        cnt["drain_max_s"] = round(max(drains), 2) if drains else None
        cnt["drains_measured"] = len(drains)
        cnt["backlog_max_msgs"] = backlog_max

    def cleanup(self) -> None:
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)


def _gen_ts(s: dict[str, Any]) -> int:
    p = s["payload"]
    if s["action"] == "MeterValues":
        return _ts(p["meterValue"][0].get("timestamp")) if p.get("meterValue") else -1
    return _ts(p.get("timestamp"))


def summary(r: Report) -> str:
    c = r.counts
    lines = ["soak: %s sessions (%s started, %s not started, %s cut short by a power cut) in %s s, %s simulator lives"
             % (c.get("sessions"), c.get("started"), c.get("not_started"), c.get("cut_short"), c.get("seconds"),
                c.get("lives")),
             "chaos: %s kills, %s trap kills (of %s traps set), %s CSMS outages, %s both" % (
                 c.get("kills"), c.get("trap_kills"), c.get("traps"), c.get("outages"), c.get("both")),
             "messages: %s CALLs at the CSMS, %s tx messages (%s sent by the station), %s transactions, "
             "%s PowerLoss stops" % (c.get("csms_calls_in"), c.get("tx_messages"), c.get("tx_sent_by_station"),
                                     c.get("transactions"), c.get("powerloss_stops")),
             "duplicates: resends %s, orphan transactionIds %s" % (c.get("resends"), c.get("orphan_ids")),
             "reconnect: after a power cut max %s s (mean %s), after an outage max %s s (mean %s); "
             "drain max %s s over %s, largest backlog %s msgs" % (
                 c.get("reconnect_after_cut_max_s"), c.get("reconnect_after_cut_mean_s"),
                 c.get("reconnect_after_outage_max_s"), c.get("reconnect_after_outage_mean_s"),
                 c.get("drain_max_s"), c.get("drains_measured"), c.get("backlog_max_msgs")),
             "energy: %s values reported, %s regressions (max %s Wh): never lower than before, "
             "across %s power cuts" % (c.get("energy_values"), c.get("energy_regressions"),
                                      c.get("energy_regression_max_wh"), c.get("kills", 0) + c.get("both", 0)
                                      + c.get("trap_kills", 0))]
    lines += ["finding: " + f for f in r.findings]
    lines += ["VIOLATION: " + v for v in r.violations]
    lines.append("result: %s" % ("%d violation(s)" % len(r.violations) if r.violations else "OK, nothing lost"))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Chaos soak: power cuts and CSMS outages lose no tx message")
    ap.add_argument("--sessions", type=int, default=30)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=600, help="time limit for the session phase")
    ap.add_argument("--rate", type=float, default=0.6, help="chance of chaos per session")
    ap.add_argument("--max-outage", type=float, default=3.0, help="longest CSMS outage, seconds")
    ap.add_argument("--kinds", default=",".join(KINDS), help="chaos kinds, comma separated")
    ap.add_argument("--points", default=",".join(POINTS), help="chaos points in a session, comma separated")
    ap.add_argument("--keep", help="keep the flash and logs in this directory")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args(argv)
    if a.keep:
        os.makedirs(a.keep, exist_ok=True)
    soak = Soak(a.sessions, a.seed, a.seconds, rate=a.rate, kinds=tuple(a.kinds.split(",")),
                points=tuple(a.points.split(",")), max_outage=a.max_outage, data=a.keep,
                echo=print if a.verbose else None)
    try:
        r = soak.run()
    finally:
        soak.cleanup()
    print(summary(r))
    return 1 if r.violations else 0


if __name__ == "__main__":
    sys.exit(main())
