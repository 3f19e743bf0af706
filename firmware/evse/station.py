"""The station core: a sans-IO hub between the OCPP-J link, features and time.

Inputs:  connected(now) / disconnected(now) / receive(text, now) / tick(now)
Outputs: take_frames() -> text frames to send, next_ms(now) -> when to tick.
Storage and the clock are injected; the core never opens sockets or sleeps.

Feature modules (station.FEATURES) install into the seams declared in
Station.__init__, among them
  handlers[action]      fn(station, payload) -> response payload  (CSMS CALLs)
  on_result[action]     fn(station, payload, ctx)                  (our CALL answered)
  on_fail[action]       fn(station, ctx, reason)                   (CALLERROR, timeout, link lost)
  on_timer[name]        fn(station, now)                           (timers)
  on_hw[kind]           fn(station, event)                         (board events)
(docs/ARCHITECTURE.md lists them all). `station.now` is the tick of the
input being handled; wall time is clock.unix().
"""
import gc

from evse.wire import rpc, schema
from evse.compat import const
from evse.config import Config
from evse.connector import Connector
from evse.timers import Timers

_OUTBOX_MAX = const(16)  # queued non-transaction CALLs (RAM only)
_HW_ROUNDS = const(4)  # board polls per input: a relay change may move the pilot

# Feature modules (each has install(station)); the order does not matter:
# every seam is declared in Station.__init__, and a module's NEEDS names the
# features it calls into. Core features first, then the optional profiles.
FEATURES = ("boot", "connector", "authorize", "transaction", "metervalues", "remote",
            "security", "certificates", "locallist", "reservation", "trigger", "smartcharge",
            "diagnostics", "fwupdate")


# Features every build has; any other may be left out of a build (its freeze
# manifest not included) and the station runs without it, no code edit.
CORE = ("boot", "connector", "authorize", "transaction", "metervalues", "remote")


def _feature(name):
    """The feature module, or None for an optional one this build lacks."""
    try:
        return __import__("evse." + name, None, None, ["install"])
    except ImportError as e:
        if name in CORE or ("evse." + name) not in str(e):
            raise  # a core feature, or a module the feature itself imports
        return None


_SENDABLE = set()  # type: set[str]  # actions send() found an answer row for


def _noop(*_):
    pass


def _no_reservation(st, c, id_tag, parent):
    return None


class Station:
    def __init__(self, *, board, clock, storage, log=None, trace=None, call_timeout_ms=30000,
                 features=FEATURES):
        self.board = board
        self.clock = clock
        self.storage = storage
        self._sinks = (log or _noop,)  # log(level, text) lines go to each (add_log_sink)
        self.trace = trace  # trace(event_dict): every frame in and out, for tools
        self.config = Config(persist=storage.persist("config"), overrides=board.config_overrides())
        self.rpc = rpc.Rpc(call_timeout_ms)
        self.timers = Timers()
        self.handlers = {}
        self.stream_handlers = {}  # action -> fn(station, reader): big CALLs read in place
        self.on_result = {}
        self.on_fail = {}
        self.on_invalid = {}  # action -> fn(station, payload, ctx): a schema-invalid answer, read as far as it goes
        self.on_timer = {}
        self.outbox = []  # [action, payload, ctx, order, triggered] waiting for the link / the rpc slot
        self.triggering = False  # trigger.py: a TriggerMessage target is queueing what was asked for
        self.frames = []  # encoded frames for the transport
        self.online = False
        self.registration = None  # None | "Pending" | "Accepted" | "Rejected"
        self.now = clock.ms()  # tick of the input being handled
        self.reboot = None  # set to "Soft"/"Hard" when the core wants a restart
        self.ncon = board.connectors
        self.on_accepted = []  # fn(station) once the CSMS accepts the boot
        self.on_hw = {}  # board event kind -> fn(station, event)
        self.on_status = []  # fn(station, connector) after a status change
        self.on_tx = []  # fn(station, connector, started) at transaction start/stop
        self._link_hooks = ()  # fn(station, now, up): add_link_hook
        self.on_connect_failed = []  # fn(station, now, error): a connect attempt failed (runtime)
        self._answer_hooks = ()  # fn(station, now): add_answer_hook
        self._exhausted = []  # where a MemoryExhaustion streak runs (exhausted())
        self.connectors = [Connector(i) for i in range(self.ncon + 1)]  # 0 = the station
        # State of the core features, each filled by its own install().
        self.avail_store = None  # connector.py: persisted availability
        self.cache = None  # authorize.py: the Authorization Cache
        self.on_authorized = None  # fn(st, cid, id_tag, idTagInfo, purpose): transaction.py
        self.transactions = None  # transaction.py: TxState (the queue, the snapshot, the energy register)
        # Send queues (durable, feature-owned; txq, seclog): each offers
        # head_call(st, now) -> (action, payload, ctx, order) or None,
        # retry_ms(now), pending(st), corrupt, name and last (the order an
        # outbox item queued now follows). The hub sends the lowest order.
        self.queues = []
        self.seclog = None  # seclog.py (security feature): the security log and its notifications
        self.reset_kind = None  # remote.py: "Soft"/"Hard" while a reset is pending
        self.vendors = {}  # DataTransfer vendorId -> fn(st, messageId, data) -> (status, data)
        self.triggers = {}  # TriggerMessage requestedMessage -> fn(st, cid); any feature adds its own
        # Seams for optional features; the defaults mean "feature absent".
        self.authlist = None  # locallist.py: LocalList, consulted before the cache
        self.resv = None  # reservation.py: its state
        self.reservation_for = _no_reservation  # fn(st, c, id_tag, parent) -> None | id | False
        self.smart = None  # smartcharge.py: its state
        self.limit_da = None  # fn(st, cid) -> deci-amps, pure (smart charging)
        self.remote_profile = None  # fn(st, cid, TxProfile) -> False to refuse (RemoteStart)
        self.link = None  # security.py: connection parameters the runtime reads before connecting
        self.certs = None  # certificates.py: the certificate store
        self.hold = False  # the runtime: no new CALL (a reconnect waits for the one in flight)
        self.jobs = []  # evse.jobs.Job: I/O work (downloads, uploads) the runtime runs as tasks
        self.fwupdate = None  # fwupdate.py: its state (FwState)
        self.diag = None  # diagnostics.py: its state (the diagnostics log, the running upload)
        mods = []
        for name in features:
            mod = _feature(name)
            if mod is not None:
                mods.append(mod)
        features = [m.__name__[5:] for m in mods]
        for name, mod in zip(features, mods):
            for need in getattr(mod, "NEEDS", ()):
                if need not in features:
                    raise ValueError(name + " needs " + need)
        profiles = ["Core"]
        for mod in mods:
            mod.install(self)
            p = getattr(mod, "PROFILE", None)
            if p is not None and p not in profiles:
                profiles.append(p)
        # Report the profiles this build really has, not a wish list (in one
        # order, whatever the install order).
        self.config.seed("SupportedFeatureProfiles", ",".join(profiles[:1] + sorted(profiles[1:])))
        if hasattr(self.storage, "on_full"):
            self.storage.on_full = lambda full: self.exhausted("flash", full)
        self._check_storage()

    def exhausted(self, where, full=True):
        """MemoryExhaustion, a critical security event, once per streak of
        `where` (flash, a bounded queue) running out of room; full=False:
        it had room again, the streak ended."""
        if not full:
            if where in self._exhausted:
                self._exhausted.remove(where)
            return
        if where not in self._exhausted:
            self._exhausted.append(where)  # first: the event's own write may come back here
            self.security_event("MemoryExhaustion", where + " full")

    def _check_storage(self):
        """Corrupt state fell back to defaults: say so, as a security event."""
        bad = [name for name, p in getattr(self.storage, "opened", ()) if p.error == "corrupt"]
        bad += [q.name for q in self.queues if q.corrupt]
        for name in bad:
            self.security_event("StorageCorrupted", name + " reset to defaults")
        err = getattr(self.storage, "error", None)
        if err:
            # Runs on from RAM (nothing survives a power cut): say so locally
            # and to the CSMS, as a fault of the Charge Point (connector 0).
            self.log("error", err)
            c = self.connectors[0]
            c.fault, c.vendor_error = ("OtherError", "storage read-only"), "StorageReadOnly"
            c.status = "Faulted"

    def security_event(self, kind, info=None):
        """Record a security event in the security log and report it
        (SecurityEventNotification) through its durable queue once the CSMS
        has accepted the boot (seclog.py). The one entry point for features."""
        self.log("security", kind + (": " + info if info else ""))
        sl = self.seclog
        if sl is None:
            return  # a build without the security feature: the log line only
        unix = self.clock.unix()
        p = sl.payload(unix, kind, info)
        try:
            dropped = sl.keep(p, unix)
        except Exception as e:  # noqa: BLE001 - flash failure: still tell the CSMS
            self.log("error", "security log: " + repr(e))
            return self.send("SecurityEventNotification", p)
        if dropped is not None:
            self.exhausted("security event queue", dropped)

    # ---- link events -------------------------------------------------
    def connected(self, now):
        self.now = now
        self.online = True
        self._event({"event": "connected"})
        for fn in self._link_hooks:
            self._run(fn, now, True)
        self._pump(now)

    def connect_failed(self, now, error, retry_ms=None):
        """The runtime could not connect (DNS, refused, TLS, HTTP 401...):
        `error` is the exception, `retry_ms` the pause before the next try.
        Features classify it (security events)."""
        self.now = now
        if self.trace is not None:
            ev = {"event": "connect_failed", "error": repr(error)}
            if retry_ms is not None:
                ev["retryMs"] = retry_ms
            self.trace(ev)
        for fn in self.on_connect_failed:
            self._run(fn, now, error)

    def disconnected(self, now):
        self.now = now
        if not self.online:
            return
        self.online = False
        self._event({"event": "disconnected"})
        p = self.rpc.abandon()
        if p is not None:
            self._failed(p, "link lost", now)
        for fn in self._link_hooks:
            self._run(fn, now, False)

    def add_link_hook(self, fn):
        """fn(station, now, up) on every connect/disconnect."""
        self._link_hooks = self._link_hooks + (fn,)

    def receive(self, text, now):
        """One text frame from the CSMS."""
        self.now = now
        if len(text) >= rpc.STREAM_MIN and self.stream_handlers and self._receive_stream(text, now):
            return self._pump(now)
        m = rpc.decode(text)
        kind = m[0]
        if kind == rpc.CALL:
            self._on_call(m[1], m[2], m[3], now)
        elif kind == rpc.CALLRESULT or kind == rpc.CALLERROR:
            self._on_answer(m, now)
        else:
            self._event({"event": "received", "type": "invalid", "text": rpc.head_text(text)})
            if not self._invalid(m[3]):
                self.log("warn", "bad frame: " + m[3])
            if m[1] is not None:
                self._send_error(m[1], m[2], m[3])
        self._pump(now)

    def receive_failed(self, text, now, error):
        """receive() raised (MemoryError parsing a frame): answer the CALL
        if its id can be read; state is as before the frame."""
        self.now = now
        uid = rpc.recover_id(text) if text is not None else None
        if uid is not None:
            oom = isinstance(error, MemoryError)
            self._send_error(uid, "InternalError", "out of memory" if oom else "internal error")

    def _receive_stream(self, text, now):
        """A big CALL read in place (no object tree): False when the frame is
        not a CALL with a stream handler, for the usual path."""
        head = rpc.decode_head(text)
        if head is None or head[1] not in self.stream_handlers:
            return False
        uid, action, r = head
        if self.trace is not None:  # tools on the host want the payload
            self._frame_event("received", "CALL", action, uid, rpc.loads(text)[3])
        if self._rejected(action):
            return True
        from evse.wire.jsonstream import JsonError

        def read(st, reader):
            try:
                return self.stream_handlers[action](st, reader)
            except JsonError as e:
                self._invalid(action + ": " + e.msg)
                raise rpc.CallError("FormationViolation", e.msg) from None
        self._handle(uid, action, read, r)
        return True

    def poll_hw(self):
        """Feed board events to the features (the board is polled, never
        waited on). Bounded: an event's reaction may cause another event."""
        for _ in range(_HW_ROUNDS):
            events = self.board.poll(self.now)
            if not events:
                return
            for ev in events:
                fn = self.on_hw.get(ev[0])
                if fn is not None and isinstance(self._run(fn, ev), MemoryError):
                    # A board event comes once (a card swipe, a fault): a
                    # transient MemoryError must not lose it. Collect, once more.
                    gc.collect()
                    self._run(fn, ev)

    def tick(self, now):
        self.now = now
        self.poll_hw()
        p = self.rpc.expired(now)
        if p is not None:
            self.log("warn", p[1] + " timed out")
            self._failed(p, "timeout", now)
        for name in self.timers.pop_due(now):
            fn = self.on_timer.get(name)
            if fn is not None:
                self._run(fn, now)
        self._pump(now)

    def next_ms(self, now):
        """Ms until tick() has work (None: only an input can wake the core)."""
        t = self.timers.next_ms(now)
        for r in (self.rpc.ms_left(now), self.board.poll_ms):
            if r is not None and (t is None or r < t):
                t = r
        for q in self.queues:
            r = q.retry_ms(now)
            if r is not None and (t is None or r < t):
                t = r
        return t

    def take_frames(self):
        """Frames to send, as text."""
        return [f.text() if isinstance(f, rpc.Out) else f for f in self.take_out()]

    def take_out(self):
        """Frames to send: text, or rpc.Out for a big one the transport
        writes out in pieces (no JSON text of the whole message in RAM)."""
        f, self.frames = self.frames, []
        return f

    # ---- sending -----------------------------------------------------
    def send(self, action, payload, ctx=None, front=False, triggered=False):
        """Queue a CALL to the CSMS; it goes out when the link and slot allow.
        A triggered one (asked for with TriggerMessage: `triggered`, or sent
        while trigger.py runs a target) may leave while the boot is Pending."""
        if len(self.outbox) >= _OUTBOX_MAX:
            # 4.9: a full outbox drops the oldest message but never a status
            # (statuses are coalesced per connector: they cannot fill it).
            i = 0
            while i < len(self.outbox) - 1 and self.outbox[i][0] == "StatusNotification":
                i += 1
            self.log("warn", "outbox full, dropped " + self.outbox[i][0])
            self.outbox.pop(i)
        if action not in _SENDABLE:  # checked once per action (bounded: the schema's rows)
            if not schema.has_result(action):
                raise ValueError("no schema row for the answer to " + action)
            _SENDABLE.add(action)
        # The 4th field orders it after the queues' records queued before it.
        order = 0
        for q in self.queues:
            if q.last > order:
                order = q.last
        item = [action, payload, ctx, order, triggered or self.triggering]
        if front:
            self.outbox.insert(0, item)
        else:
            self.outbox.append(item)

    def queued(self, action, match=None):
        """The first queued CALL of `action` (for which match(payload, ctx))."""
        for item in self.outbox:
            if item[0] == action and (match is None or match(item[1], item[2])):
                return item
        return None

    def rpc_pending(self, action):
        p = self.rpc.pending
        return p is not None and p[1] == action

    def unqueue(self, action, match=None):
        """Drop queued CALLs of `action` (those for which match(payload, ctx))."""
        self.outbox = [i for i in self.outbox
                       if i[0] != action or (match is not None and not match(i[1], i[2]))]

    def _may_send(self, item):
        if self.registration == "Accepted" or item[0] == "BootNotification":
            return True
        # OCPP 1.6 4.2: nothing but BootNotification before acceptance, unless
        # the CSMS asked for this very message with TriggerMessage while
        # Pending (send: triggered); an unsolicited one of the same action
        # queued ahead of it stays.
        return self.registration == "Pending" and item[4]

    def _pump(self, now):
        if not self.online or self.hold or self.rpc.busy():
            return
        first = None
        for i in range(len(self.outbox)):
            if self._may_send(self.outbox[i]):
                first = i
                break
        best = None  # the queues' head of the lowest order
        for q in self.queues:
            h = q.head_call(self, now)
            if h is not None and (best is None or h[3] < best[3]):
                best = h
        if best is not None and (first is None or best[3] <= self.outbox[first][3]):
            return self._call(best[0], best[1], best[2], now)
        if first is not None:
            action, payload, ctx = self.outbox.pop(first)[:3]
            self._call(action, payload, ctx, now)

    def _call(self, action, payload, ctx, now):
        frame = self.rpc.call(action, payload, now, ctx)
        self._emit(frame, "sent", "CALL", action, self.rpc.pending[0], payload)

    def _emit(self, frame, direction, typ, action, uid, payload):
        self.frames.append(frame)
        self._frame_event(direction, typ, action, uid, payload)

    def _frame_event(self, direction, typ, action, uid, payload):
        # Built only when traced: no dict per frame on a device without tools.
        if self.trace is not None:
            self.trace({"event": direction, "type": typ, "action": action, "id": uid, "payload": payload})

    def _event(self, ev):
        if self.trace is not None:
            self.trace(ev)

    def _send_error(self, uid, code, desc):
        self._emit(rpc.encode_error(uid, code, desc), "sent", "CALLERROR", None, uid,
                   {"errorCode": code, "errorDescription": desc})

    # ---- receiving ---------------------------------------------------
    def _on_call(self, uid, action, payload, now):
        self._frame_event("received", "CALL", action, uid, payload)
        if self._rejected(action):
            return None
        fn = self.handlers.get(action)
        if fn is None:
            # Known to OCPP but not built or disabled here, or not OCPP at all.
            code = "NotSupported" if schema.known_call(action) else "NotImplemented"
            if code == "NotImplemented":
                self._invalid("unknown action " + str(action)[:50])
            return self._send_error(uid, code, action)
        err = schema.check_call(action, payload)
        if err is not None:
            self._invalid(action + ": " + err[1])
            return self._send_error(uid, err[0], err[1])
        cid = payload.get("connectorId")
        if cid is not None and cid < 0:
            # OCPP 1.6 section 6: connectorId >= 0 (the JSON schemas omit it).
            return self._send_error(uid, "PropertyConstraintViolation", "connectorId: negative")
        self._handle(uid, action, fn, payload)

    def _invalid(self, what):
        # A04.FR.04: a frame that is not valid OCPP goes to the security log
        # (seclog.py keeps a flood to one record per window, and so the
        # diagnostics log too). False without the security feature.
        if self.seclog is None:
            return False
        from evse import seclog
        seclog.invalid_message(self, what)
        return True

    def _rejected(self, action):
        # OCPP 1.6 4.2: while Rejected the station SHALL NOT respond to any
        # CSMS-initiated message: dropped (logged), no CALLERROR.
        if self.registration != "Rejected":
            return False
        self.log("warn", "Rejected by the CSMS: " + str(action) + " dropped unanswered")
        return True

    def _handle(self, uid, action, fn, arg):
        """Run a CSMS CALL's handler: its CALLRESULT, or the CALLERROR of
        what it raised (a bug or a MemoryError must not take the station
        down; handlers change state only once they cannot fail)."""
        try:
            res = fn(self, arg)
        except rpc.CallError as e:
            return self._send_error(uid, e.code, e.description)
        except Exception as e:
            self.log("error", action + " handler: " + repr(e))
            return self._send_error(uid, "InternalError", action)
        self._emit(rpc.result_frame(uid, action, res), "sent", "CALLRESULT", action, uid, res)

    def _on_answer(self, m, now):
        p = self.rpc.answer(m[1])
        action = p[1] if p is not None else None
        if m[0] == rpc.CALLRESULT:
            self._frame_event("received", "CALLRESULT", action, m[1], m[2])
        elif self.trace is not None:
            self._frame_event("received", "CALLERROR", action, m[1],
                              {"errorCode": m[2], "errorDescription": m[3]})
        if p is None:
            self.log("warn", "answer for unknown id " + m[1] + " ignored")
            return
        if m[0] == rpc.CALLERROR:
            self._failed(p, "CALLERROR " + str(m[2]), now)
        else:
            self._on_result(p, action, m[2], now)
        for fn in self._answer_hooks:  # a CALLERROR is an answer too (the CSMS is there)
            self._run(fn, now)

    def _on_result(self, p, action, payload, now):
        err = schema.check_result(action, payload)
        if err is not None:
            self.log("warn", action + " answer invalid: " + err[1])
            self._invalid(action + " answer: " + err[1])
            fn = self.on_invalid.get(action)
            if fn is not None:  # the feature still reads what it can (e.g. idTagInfo.status)
                return self._run(fn, payload, p[4])
            return self._failed(p, err[0], now)
        fn = self.on_result.get(action)
        if fn is not None:
            self._run(fn, payload, p[4])

    def _run(self, fn, *args):
        """Call a feature hook; a bug in one is logged, never fatal. Returns
        the exception it raised, or None."""
        try:
            fn(self, *args)
        except Exception as e:
            try:
                self.log("error", "hook %s: %r" % (getattr(fn, "__name__", "?"), e))
            except Exception:  # noqa: BLE001 - out of memory even for the log line
                pass
            return e
        return None

    def log(self, level, text):
        """One log line to every sink: the station's own, then those features
        added (the diagnostics file). A method, so whoever kept `st.log`
        reaches sinks added later: install order does not matter."""
        sinks = self._sinks
        sinks[0](level, text)
        for fn in sinks[1:]:
            try:
                fn(level, text)
            except Exception:  # noqa: BLE001 - logging never fails the caller
                pass

    def add_log_sink(self, fn):
        """fn(level, text) for every log line from now on."""
        self._sinks = self._sinks + (fn,)

    def add_answer_hook(self, fn):
        """fn(station, now) after any CALL of ours is answered (e.g. heartbeat reset)."""
        self._answer_hooks = self._answer_hooks + (fn,)

    def _failed(self, p, reason, now):
        fn = self.on_fail.get(p[1])
        if fn is not None:
            self._run(fn, p[4], reason)
        else:
            self.log("warn", p[1] + " failed: " + reason)
