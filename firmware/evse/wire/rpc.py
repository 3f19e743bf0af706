"""OCPP-J message layer (OCPP-J 1.6 section 4), sans-IO.

Turns text frames into message tuples and back, tracks the one CALL the
station may have outstanding (OCPP 1.6: at most one at a time) and gives
every CALL a unique id. It never reads a clock: `now` is a tick value.
"""
import json
import sys

from evse.compat import const, ticks_diff, random_bytes, hexlify

_MP = sys.implementation.name != "cpython"

CALL = const(2)
CALLRESULT = const(3)
CALLERROR = const(4)
_MAX_ID = const(36)  # OCPP-J 4.1.1: unique id is at most 36 characters


class CallError(Exception):
    """Raised by a handler to answer a CALL with a CALLERROR."""

    def __init__(self, code, description="", details=None):
        super().__init__(code)
        self.code = code
        self.description = description
        self.details = details


def recover_id(text):
    """Best effort: the unique id of a frame that is not valid OCPP-J.

    Only a frame that starts like `[2, "id"` yields an id; anything else
    gets no answer (OCPP-J 4.2.3 needs an id to reply to). `text` is a
    str or a ws.Frame (its start is looked at).
    """
    if not isinstance(text, str):
        text = head_text(text, 128)
    i = text.find("[")
    if i < 0:
        return None
    j = text.find(",", i)
    if j < 0 or text[i + 1:j].strip() != "2":
        return None
    q1 = text.find('"', j)
    if q1 < 0 or text[j + 1:q1].strip():
        return None
    q2 = text.find('"', q1 + 1)
    if q2 < 0 or q2 - q1 - 1 > _MAX_ID:
        return None
    return text[q1 + 1:q2]


def loads(text):
    """json.loads of a frame: a str, or a ws.Frame read in place
    (MicroPython's json reads any buffer; CPython's wants bytes)."""
    if isinstance(text, str):
        return json.loads(text)
    return json.loads(text.mv() if _MP else bytes(text.mv()))


def head_text(text, n=200):
    """The start of a frame as a str (logs, recovering an id)."""
    if isinstance(text, str):
        return text[:n]
    try:
        return str(text.mv()[:n], "utf-8")
    except UnicodeError:  # cut inside a character
        return ""


def decode(text):
    """Parse one frame (a str or a ws.Frame). Returns one of:
    (CALL, id, action, payload), (CALLRESULT, id, payload),
    (CALLERROR, id, code, description, details), or
    (None, id_or_None, error_code, description) for a malformed frame.
    """
    try:
        msg = loads(text)
    except (ValueError, TypeError):
        return (None, recover_id(text), "FormationViolation", "invalid JSON")
    if not isinstance(msg, list) or len(msg) < 3:
        return (None, recover_id(text), "FormationViolation", "not an OCPP-J array")
    kind, uid = msg[0], msg[1]
    if not isinstance(uid, str) or not uid or len(uid) > _MAX_ID:
        return (None, None, "FormationViolation", "bad unique id")
    if kind == CALL and type(kind) is int:
        if len(msg) != 4 or not isinstance(msg[2], str):
            return (None, uid, "FormationViolation", "CALL needs [2, id, action, payload]")
        return (CALL, uid, msg[2], msg[3])
    if kind == CALLRESULT and type(kind) is int and len(msg) == 3:
        return (CALLRESULT, uid, msg[2])
    if kind == CALLERROR and type(kind) is int and len(msg) in (4, 5):
        details = msg[4] if len(msg) == 5 else {}
        return (CALLERROR, uid, msg[2], msg[3] if isinstance(msg[3], str) else "", details)
    # An unknown message type or bad shape: only a would-be CALL is answered.
    return (None, uid if kind == CALL else None, "FormationViolation", "bad message type")


STREAM_MIN = const(2048)  # frames at least this long may be read in place


def decode_head(data):
    """(uid, action, reader) of a CALL frame, the reader on its payload
    (evse.wire.jsonstream), or None when it is not a well-formed CALL head: the
    caller then falls back to decode(), which answers the error."""
    from evse.wire.jsonstream import JsonError, Reader

    try:
        r = Reader(data) if isinstance(data, (str, bytes, bytearray)) else Reader(data.buf, n=data.n)
        kind, uid, action = r.frame()
    except JsonError:
        return None
    if kind != CALL or not isinstance(uid, str) or not uid or len(uid) > _MAX_ID:
        return None
    return uid, action, r


# Messages that can be big (GetConfiguration of every key, a composite
# schedule, StopTransaction with its meter values): their frames stay
# objects until the transport writes them out in pieces (Out).
BIG = ("GetConfiguration", "GetCompositeSchedule", "StopTransaction")


class Out:
    """A frame written out in pieces (evse.wire.jsonout) instead of one
    json.dumps string: `msg` is [2, uid, action, payload] or [3, uid, payload]."""

    def __init__(self, msg):
        self.msg = msg

    def size(self):
        """UTF-8 bytes of its JSON text, without building it."""
        from evse.wire import jsonout
        return jsonout.size(self.msg)

    def dump(self, write):
        from evse.wire import jsonout
        jsonout.dump(self.msg, write)

    def text(self):
        return json.dumps(self.msg)


def result_frame(uid, action, payload):
    """The CALLRESULT for a CALL of `action`: text, or an Out if it can be big."""
    return Out([CALLRESULT, uid, payload]) if action in BIG else encode_result(uid, payload)


def encode_call(uid, action, payload):
    return json.dumps([CALL, uid, action, payload])


def encode_result(uid, payload):
    return json.dumps([CALLRESULT, uid, payload])


def encode_error(uid, code, description="", details=None):
    return json.dumps([CALLERROR, uid, code, description[:255], details or {}])


class Rpc:
    """Ids and the single outstanding CALL of the station.

    `pending` is (uid, action, payload, sent_tick, ctx) while a CALL waits for
    its answer; `ctx` is whatever the caller needs back with the answer.
    """

    def __init__(self, timeout_ms=30000):
        self.timeout_ms = timeout_ms
        self.pending = None
        self._prefix = hexlify(random_bytes(4))
        self._n = 0

    def busy(self):
        return self.pending is not None

    def call(self, action, payload, now, ctx=None):
        """Start a CALL; returns its frame. Only one may be outstanding."""
        if self.pending is not None:
            raise RuntimeError("CALL already outstanding: " + self.pending[1])
        self._n = (self._n + 1) & 0x3FFFFFFF
        uid = self._prefix + "-" + str(self._n)
        self.pending = (uid, action, payload, now, ctx)
        if action in BIG:
            return Out([CALL, uid, action, payload])
        return encode_call(uid, action, payload)

    def answer(self, uid):
        """The pending CALL if `uid` answers it (then it is no longer pending)."""
        p = self.pending
        if p is None or p[0] != uid:
            return None
        self.pending = None
        return p

    def expired(self, now):
        """The pending CALL if its answer is overdue (then it is dropped)."""
        p = self.pending
        if p is not None and ticks_diff(now, p[3]) >= self.timeout_ms:
            self.pending = None
            return p
        return None

    def abandon(self):
        """Connection lost: the pending CALL will never be answered."""
        p, self.pending = self.pending, None
        return p

    def ms_left(self, now):
        p = self.pending
        return None if p is None else max(0, self.timeout_ms - ticks_diff(now, p[3]))
