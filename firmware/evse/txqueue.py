"""Durable queue of transaction messages (OCPP 1.6 sections 4.7-4.10, 3.x).

StartTransaction, StopTransaction and transaction MeterValues are written
to the journal before they are sent and deleted only when answered, so they
survive reconnects and power cuts and go out in order.

A transaction is known locally by `local` = the journal seq of its START
record. Its CSMS transactionId arrives with StartTransaction.conf and is
journalled as a TXID record, so a StopTransaction queued before the answer
(or before a power cut) still goes out with the real id.

Energy records carry the value they report ("c" connector, "f" Wh, "t" unix
time of the reading): the energy floor (transaction.Register) and the last
reading of a running transaction live in the journal, not in snapshots
rewritten per sample. When the record holding a connector's highest floor
is answered, a FLOOR record replaces it (and the previous FLOOR) in the
same write, so each sample costs its record and its answer, nothing more.
"""
import json

from evse.compat import const, ticks_add, ticks_diff
from evse.store.journal import JournalFull

START = const(1)
STOP = const(2)
METER = const(3)
TXID = const(4)
FLOOR = const(5)  # {"c": connector, "f": Wh, "t": unix}: the energy floor of an answered record
_ACTION = {START: "StartTransaction", STOP: "StopTransaction", METER: "MeterValues"}


class TxQueue:
    def __init__(self, journal, log=None):
        self.j = journal
        self.log = log or (lambda *a: None)
        self.index = []  # [seq, kind, local, cid, Wh, unix] of live START/STOP/METER, in order
        self.floors = {}  # cid -> [Wh, unix, [seqs of its FLOOR records]]
        self.txids = {}  # local -> (CSMS transactionId, seq of its TXID record)
        self.attempts = 0  # failed attempts of the head record
        self.retry_at = None  # tick before which the head is not retried
        self.on_full = None  # fn(full): out of room (True) / room again (False)
        self.full = False
        journal.open(False)
        for seq, kind, data in journal.live():
            try:
                rec = json.loads(data)
                if kind == FLOOR:
                    self._floor_rec(rec["c"], rec["f"], rec["t"], seq)
                    continue
                local = rec["l"]
            except (ValueError, KeyError, TypeError):
                self.log("error", "txqueue: bad record %d dropped" % seq)
                journal.delete(seq)
                continue
            if kind == TXID:
                self.txids[local] = (rec["t"], seq)
            elif kind in _ACTION:
                self.index.append([seq, kind, local if kind != START else seq,
                                   rec.get("c"), rec.get("f"), rec.get("t")])
        self._gc_txids()
        self.last = self.index[-1][0] if self.index else 0  # newest record seq

    def __len__(self):
        return len(self.index)

    # ---- enqueue -----------------------------------------------------
    def _put(self, kind, rec):
        dropped = False
        while True:
            try:
                # In pieces: a StopTransaction with 20 meter values is 8 KB of JSON.
                seq = self.j.append_json(kind, rec)
                self._room(dropped)
                return seq
            except JournalFull:
                # 4.7 bounded queue: periodic samples go first, never Start/Stop.
                dropped = True
                if not self._drop_oldest_meter():
                    self.log("error", "txqueue full: record kind %d lost" % kind)
                    self._room(True)
                    return None

    def _room(self, full):
        # Tell the owner when the queue runs out of room and when it has
        # room again (MemoryExhaustion once per streak, station.exhausted).
        if full != self.full:
            self.full = full
            if self.on_full is not None:
                self.on_full(full)

    def _append(self, kind, local, payload, cid=None, wh=None, unix=None):
        rec = {"l": local, "p": payload}
        if cid is None:
            wh = None
        if wh is not None:
            rec["c"], rec["f"], rec["t"] = cid, wh, unix
        seq = self._put(kind, rec)
        if seq is not None:
            self.index.append([seq, kind, seq if kind == START else local, cid, wh, unix])
        self.last = seq
        return seq

    def start(self, payload, unix=None):
        """Queue StartTransaction; returns the transaction's local id."""
        return self._append(START, 0, payload, payload.get("connectorId"), payload.get("meterStart"), unix)

    def stop(self, local, payload, cid=None, unix=None):
        """Queue StopTransaction of transaction `local` (on connector `cid`).
        `payload` carries transactionId when it is known; otherwise it is
        filled in from the answer to START `local`."""
        return self._append(STOP, local, payload, cid, payload.get("meterStop") if cid else None, unix)

    def meter(self, local, payload, wh=None, unix=None):
        """Queue a transaction MeterValues; `wh` the energy it reports."""
        return self._append(METER, local, payload, payload.get("connectorId"), wh, unix)

    # ---- the energy floor ------------------------------------------------
    def _floor_rec(self, cid, wh, unix, seq):
        f = self.floors.get(cid)
        if f is None:
            self.floors[cid] = [wh, unix, [seq]]
        else:  # a torn replace() left two: the higher counts, both go next time
            if wh > f[0]:
                f[0], f[1] = wh, unix
            f[2].append(seq)

    def floor(self, cid):
        """(Wh, unix) of the highest energy of connector `cid` on flash (0, 0)."""
        f = self.floors.get(cid)
        wh, t = (f[0], f[1] or 0) if f else (0, 0)
        for rec in self.index:
            if rec[3] == cid and rec[4] is not None and rec[4] > wh:
                wh, t = rec[4], rec[5] or 0
        return wh, t

    def _drop_oldest_meter(self):
        meters = [i for i, rec in enumerate(self.index) if rec[1] == METER]
        if not meters:
            return False
        # The head may be in flight: drop it only when nothing else is left.
        i = meters[1] if meters[0] == 0 and len(meters) > 1 else meters[0]
        self.log("warn", "txqueue full: oldest MeterValues dropped")
        self._remove(i)
        return True

    # ---- sending -----------------------------------------------------
    def txid(self, local):
        t = self.txids.get(local)
        return None if t is None else t[0]

    # -- the send-queue seam (Station._pump, next_ms, _check_storage, remote._delivered) --
    name = "txq"

    @property
    def corrupt(self):
        return self.j.error == "corrupt"

    def head_call(self, st, now):
        """(action, payload, ctx, order) to send now, or None: the head once
        the boot is accepted and its retry wait is over; ctx (seq, idTag)."""
        if st.registration != "Accepted" or not self.ready(now):
            return None
        h = self.head()
        return None if h is None else (h[0], h[1], (h[2], h[1].get("idTag")), h[2])

    def pending(self, st):
        return bool(self.index)

    def head_seq(self):
        return self.index[0][0] if self.index else None

    def ready(self, now):
        """True when the head may be sent at tick `now` (retry wait over)."""
        return bool(self.index) and (self.retry_at is None or ticks_diff(now, self.retry_at) >= 0)

    def head(self):
        """(action, payload, seq) of the next record to send, or None."""
        while self.index:
            seq, kind, local = self.index[0][:3]
            try:
                payload = self.j.load(seq)["p"]
            except Exception:  # unreadable: nothing to send
                self.log("error", "txqueue: record %d unreadable, dropped" % seq)
                self._remove(0)
                continue
            if kind != START:
                # The id from the latest answer to its StartTransaction wins (a
                # Start resent after a power cut gets a new one); else the
                # id it was queued with.
                tid = self.txid(local)
                if tid is None:
                    tid = payload.get("transactionId")
                if tid is None:  # its StartTransaction was discarded (never registered)
                    self.log("warn", "txqueue: %s of an unregistered transaction dropped: %s" % (
                        _ACTION[kind], self._summary(0)))
                    self._remove(0)
                    continue
                payload["transactionId"] = tid
            return _ACTION[kind], payload, seq
        return None

    def answered(self, seq, result):
        """The CSMS answered record `seq`. Returns the transactionId for a START."""
        if not self.index or self.index[0][0] != seq:
            return None
        kind, local = self.index[0][1], self.index[0][2]
        tid = None
        if kind == START:
            tid = result.get("transactionId")
            if self._dependents(local):
                rec = self._put(TXID, {"l": local, "t": tid})
                self.txids[local] = (tid, rec)
            else:
                self.txids[local] = (tid, None)
        self._remove(0)
        self._gc_txids()
        return tid

    def failed(self, seq, now, max_attempts, retry_ms):
        """CALLERROR, invalid answer or timeout for record `seq`: retry later
        or, after `max_attempts`, discard it, a StartTransaction too
        (TransactionMessageAttempts, docs/CONFORMANCE.md rule 12): the
        messages of a transaction the CSMS never registered are then dropped
        as they reach the head (no transactionId), each written to the log
        first. Returns True when a StartTransaction has just been discarded."""
        if not self.index or self.index[0][0] != seq:
            return False
        self.attempts += 1
        kind = self.index[0][1]
        if self.attempts >= max_attempts:
            self.log("warn", "txqueue: %s discarded after %d attempts: %s" % (
                _ACTION[kind], self.attempts, self._summary(0)))
            self._remove(0)
            self._gc_txids()
            return kind == START
        # OCPP 1.6 4.10: wait retry interval x preceding attempts.
        self.retry_at = ticks_add(now, retry_ms * self.attempts)
        return False

    def _summary(self, i):
        # The record's facts for the diagnostics log (a line is cut at 200
        # characters): where the energy of an unregistered session stays.
        seq, kind, local = self.index[i][:3]
        try:
            p = self.j.load(seq)["p"]
        except Exception:  # noqa: BLE001 - unreadable: the log says so
            return "record %d unreadable" % seq
        keys = ("connectorId", "idTag", "meterStart", "reservationId", "timestamp") if kind == START else \
            ("transactionId", "meterStop", "reason", "timestamp") if kind == STOP else ("connectorId",)
        out = "tx %d" % local
        for k in keys:
            if k in p:
                out += " %s=%s" % (k, p[k])
        if kind == METER and p.get("meterValue"):
            out += " at=%s" % p["meterValue"][0].get("timestamp")
        return out

    def retry_ms(self, now):
        if self.retry_at is None or not self.index:
            return None
        return max(0, ticks_diff(self.retry_at, now))

    def has_stop(self, local):
        """True if a StopTransaction for transaction `local` is queued."""
        for rec in self.index:
            if rec[1] == STOP and rec[2] == local:
                return True
        return False

    def open_starts(self):
        """[(local, payload)] of queued StartTransactions with no StopTransaction
        queued after them: transactions that were running at a power cut."""
        stopped = set(rec[2] for rec in self.index if rec[1] == STOP)
        out = []
        for seq, kind, _local, _c, _f, _t in self.index:
            if kind == START and seq not in stopped:
                try:
                    out.append((seq, self.j.load(seq)["p"]))
                except Exception:
                    pass
        return out

    # ---- internals ---------------------------------------------------
    def _dependents(self, local):
        for rec in self.index[1:]:
            if rec[2] == local:
                return True
        return False

    def _remove(self, i):
        rec = self.index.pop(i)
        seq, cid, wh = rec[0], rec[3], rec[4]
        if wh is not None and self.floor(cid)[0] < wh:
            # It holds the connector's highest energy on flash: a FLOOR record
            # takes it over in the same write.
            old = self.floors.get(cid)
            f = json.dumps({"c": cid, "f": wh, "t": rec[5]}).encode()
            n = self.j.replace([seq] + (old[2] if old else []), FLOOR, f)
            self.floors[cid] = [wh, rec[5], [n]]
        else:
            self.j.delete(seq)
        if i == 0:
            self.attempts = 0
            self.retry_at = None

    def _gc_txids(self):
        live = set(rec[2] for rec in self.index)
        for local in list(self.txids):
            if local not in live:
                rec = self.txids.pop(local)[1]
                if rec is not None:
                    self.j.delete(rec)
