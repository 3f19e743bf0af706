"""Pull-style JSON reader for big inbound frames: no object tree.

json.loads builds a frame's whole object tree: 42 KB for a 100-entry
SendLocalList, 165 KB for a 1,000-period SetChargingProfile (32-bit
MicroPython VM). This reader walks the frame in place and builds only what
the caller asks for (one list entry, one schedule period: about 1.5 KB
live at most in both cases, see host_tests/test_jsonstream.py):

    r = Reader(frame)                      # bytes (preferred) or str
    kind, uid, action = r.frame()          # cursor now on the payload
    for key in r.keys():                   # cursor on the key's value
        if key == "localAuthorizationList":
            for _ in r.items():
                entry = r.value()          # small dict, bounded
        elif key == "listVersion":
            version = r.scalar()
        # a value left unread is skipped (still checked)
    r.frame_end()                          # "]" and nothing after it

`r.pos` may be saved and restored: JSON keys come in any order, so a
handler can note where a big array starts, skip it (which checks it),
read the small fields after it, then come back and walk the array.

Strict RFC 8259: every error is one JsonError with the byte offset, so
the caller can answer FormationViolation. Positions are byte offsets into
the UTF-8 text.

Works on bytes internally: MicroPython indexes a str (and finds in it
from an offset) by walking its UTF-8 from the start, O(n) per call
(measured), while bytes index in O(1). A str frame is encoded once, which
on MicroPython shares the str's data (no copy; CPython copies).
"""
import json

from evse.compat import const

_DEPTH = const(8)  # default nesting limit for skip()/value()
_SIZE = const(1024)  # default source bytes limit for value()
_NUMBER = const(40)  # default longest number (chars)

# byte values
_QUOTE = const(0x22)
_COMMA = const(0x2C)
_COLON = const(0x3A)
_LBRACE = const(0x7B)
_RBRACE = const(0x7D)
_LBRACK = const(0x5B)
_RBRACK = const(0x5D)
_MINUS = const(0x2D)

_ESCAPES = {0x22: '"', 0x5C: "\\", 0x2F: "/", 0x62: "\b", 0x66: "\f", 0x6E: "\n", 0x72: "\r", 0x74: "\t"}
_KINDS = {_LBRACE: "object", _LBRACK: "array", _QUOTE: "string", 0x74: "bool", 0x66: "bool", 0x6E: "null"}


class JsonError(ValueError):
    """Malformed JSON, or a limit exceeded, at byte offset `pos`."""

    def __init__(self, msg, pos):
        super().__init__(msg + " at " + str(pos))
        self.msg = msg
        self.pos = pos


class Reader:
    """A cursor over one JSON text; see the module docstring."""

    def __init__(self, data, pos=0, max_depth=_DEPTH, max_size=_SIZE, max_number=_NUMBER, n=None):
        if isinstance(data, str):
            try:
                data = data.encode()
            except UnicodeError:  # CPython: a lone surrogate in the str
                raise JsonError("not UTF-8", 0) from None
        elif isinstance(data, memoryview):
            data = bytes(data)  # find() is needed, memoryview has none
        self.buf = data  # bytes or bytearray; the text is buf[:n]
        self.n = len(data) if n is None else n
        self._mv = memoryview(data)
        self.pos = pos
        self.max_depth = max_depth
        self.max_size = max_size
        self.max_number = max_number
        self.depth = 0  # containers entered with keys()/items()
        self.uid = None  # set by frame() as soon as the id is read
        self._raw_ws = self._check_controls(pos)

    def _check_controls(self, pos):
        """One pass of find() per control byte instead of a check per
        character: raw controls are invalid anywhere except tab/LF/CR as
        whitespace. Returns True if tab/LF/CR occur (then strings check)."""
        b, found = self.buf, False
        for c in range(32):
            i = b.find(bytes((c,)), pos, self.n)
            if i >= 0:
                if c not in (9, 10, 13):
                    raise JsonError("control character", i)
                found = True
        return found

    def _err(self, msg, pos=None):
        return JsonError(msg, self.pos if pos is None else pos)

    # -- cursor primitives

    def _next(self):
        """Skip whitespace; the byte at the cursor (not consumed). Bytes up
        to 0x20 can only be whitespace: __init__ refused other controls."""
        b, i, n = self.buf, self.pos, self.n
        while i < n:
            c = b[i]
            if c > 0x20:
                self.pos = i
                return c
            i += 1
        self.pos = n
        raise JsonError("unexpected end", n)

    def _expect(self, c):
        if self._next() != c:
            raise self._err("expected '" + chr(c) + "'")
        self.pos += 1

    def kind(self):
        """Type of the value at the cursor: "object", "array", "string",
        "number", "bool" or "null"."""
        c = self._next()
        k = _KINDS.get(c)
        if k is not None:
            return k
        if c == _MINUS or 0x30 <= c <= 0x39:
            return "number"
        raise self._err("unexpected character")

    def finish(self):
        """Check that only whitespace follows the cursor."""
        try:
            self._next()
        except JsonError:
            return
        raise self._err("extra data")

    # -- containers

    def keys(self):
        """Iterate the keys of the object at the cursor. After each key the
        cursor is on its value: read it, iterate it fully, or leave it
        (then it is skipped). Duplicate keys are all yielded."""
        self._expect(_LBRACE)
        d = self.depth = self.depth + 1
        c = self._next()
        if c == _RBRACE:
            self.pos += 1
            self.depth = d - 1
            return
        while True:
            if c != _QUOTE:
                raise self._err("expected key")
            k = self._string(True)
            self._expect(_COLON)
            self._next()
            v = self.pos
            yield k
            self._after(v, d)
            c = self._next()
            self.pos += 1
            if c == _RBRACE:
                break
            if c != _COMMA:
                raise self._err("expected ',' or '}'", self.pos - 1)
            c = self._next()
        self.depth = d - 1

    def items(self):
        """Iterate the array at the cursor; yields the index with the cursor
        on that element (same rules as keys())."""
        self._expect(_LBRACK)
        d = self.depth = self.depth + 1
        if self._next() == _RBRACK:
            self.pos += 1
            self.depth = d - 1
            return
        i = 0
        while True:
            v = self.pos
            yield i
            self._after(v, d)
            c = self._next()
            self.pos += 1
            if c == _RBRACK:
                break
            if c != _COMMA:
                raise self._err("expected ',' or ']'", self.pos - 1)
            self._next()
            i += 1
        self.depth = d - 1

    def _after(self, v, d):
        """Back in a container after yielding: skip an unread value."""
        if self.depth != d:  # API misuse: an inner keys()/items() left early
            raise RuntimeError("inner JSON container not finished")
        if self.pos == v:
            self.skip()

    # -- values

    def scalar(self):
        """Read a string, number, bool or null at the cursor."""
        c = self._next()
        if c == _QUOTE:
            return self._string(True)
        if c == _LBRACE or c == _LBRACK:
            raise self._err("expected a scalar")
        return self._atom(True)

    def value(self, max_depth=None, max_size=None):
        """Read the value at the cursor fully (a small sub-object). It is
        checked first without building anything: deeper than max_depth or
        longer than max_size source bytes raises JsonError."""
        self._next()
        start = self.pos
        self.skip(max_depth)
        end = self.pos
        lim = self.max_size if max_size is None else max_size
        if lim is not None and end - start > lim:
            raise JsonError("value too big", start)
        if self.buf.find(b"\\u", start, end) < 0:
            # Checked strictly above, so the C parser may build it (~5x
            # faster); MicroPython's would split a \u surrogate pair.
            try:
                return json.loads(str(self._mv[start:end], "utf-8"))
            except ValueError:  # CPython's limit on int digits
                raise JsonError("number too big", start) from None
        self.pos = start
        return self._build()

    def document(self, max_depth=None, max_size=None):
        """The whole remaining text as one value (json.loads equivalent)."""
        v = self.value(max_depth, max_size)
        self.finish()
        return v

    def _build(self):
        c = self._next()
        if c == _LBRACE:
            obj = {}
            for k in self.keys():
                obj[k] = self._build()
            return obj
        if c == _LBRACK:
            arr = []
            for _ in self.items():
                arr.append(self._build())
            return arr
        if c == _QUOTE:
            return self._string(True)
        return self._atom(True)

    def skip(self, max_depth=None):
        """Pass over the value at the cursor without building it; it is
        still checked strictly. Iterative: no recursion on nesting."""
        lim = self.max_depth if max_depth is None else max_depth
        depth, objs = 0, 0  # objs: one bit per open container, 1 = object
        while True:
            c = self._next()
            if c == _LBRACE or c == _LBRACK:
                self.pos += 1
                depth += 1
                if lim is not None and depth > lim:
                    raise self._err("nested too deep")
                obj = c == _LBRACE
                objs = (objs << 1) | obj
                c = self._next()
                if c != (_RBRACE if obj else _RBRACK):
                    if obj:
                        self._key()
                    continue  # read the first member's value
                self.pos += 1
                depth -= 1
                objs >>= 1
            elif c == _QUOTE:
                self._string(False)
            else:
                self._atom(False)
            # after a value: close containers until a comma or the end
            while depth:
                c = self._next()
                self.pos += 1
                if c == _COMMA:
                    if objs & 1:
                        self._key()
                    break
                if c != (_RBRACE if objs & 1 else _RBRACK):
                    raise self._err("expected ',' or a close", self.pos - 1)
                depth -= 1
                objs >>= 1
            if not depth:
                return

    def _key(self):
        if self._next() != _QUOTE:
            raise self._err("expected key")
        self._string(False)
        self._expect(_COLON)

    # -- scalars

    def _string(self, build):
        """The string at the cursor (on its opening quote)."""
        b, mv, start = self.buf, self._mv, self.pos
        i = start + 1
        parts = None
        while True:
            q = b.find(b'"', i, self.n)
            if q < 0:
                raise JsonError("unterminated string", start)
            e = b.find(b"\\", i, q)
            end = q if e < 0 else e
            if self._raw_ws and (b.find(b"\n", i, end) >= 0 or b.find(b"\r", i, end) >= 0
                                 or b.find(b"\t", i, end) >= 0):
                raise JsonError("control character in string", i)
            if build and end > i:
                run = str(mv[i:end], "utf-8")
                if e < 0 and parts is None:
                    self.pos = q + 1
                    return run
                if parts is None:
                    parts = []
                parts.append(run)
            if e < 0:
                self.pos = q + 1
                if not build:
                    return None
                return "".join(parts) if parts else ""
            if build and parts is None:
                parts = []
            i = self._escape(e, parts)

    def _escape(self, e, parts):
        """Decode the escape at byte e into parts (if not None); returns the
        index after it. A UTF-16 surrogate pair becomes one character; a lone
        surrogate is kept as is (as CPython's json does)."""
        b = self.buf
        c = b[e + 1]  # e < the closing quote, so e + 1 exists
        if c != 0x75:  # not \u
            ch = _ESCAPES.get(c)
            if ch is None:
                raise JsonError("bad escape", e)
            if parts is not None:
                parts.append(ch)
            return e + 2
        cp = self._hex4(e + 2)
        i = e + 6
        if 0xD800 <= cp < 0xDC00 and i + 2 <= self.n and b[i:i + 2] == b"\\u":
            lo = self._hex4(i + 2)
            if 0xDC00 <= lo < 0xE000:
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00)
                i += 6
        if parts is not None:
            parts.append(chr(cp))
        return i

    def _hex4(self, i):
        b = self.buf
        if i + 4 > self.n:
            raise JsonError("bad \\u escape", i)
        v = 0
        for j in range(i, i + 4):
            c = b[j]
            if 0x30 <= c <= 0x39:
                c -= 0x30
            else:
                c |= 0x20  # lower case
                if not 0x61 <= c <= 0x66:
                    raise JsonError("bad \\u escape", j)
                c -= 0x57
            v = (v << 4) | c
        return v

    def _atom(self, build):
        """A number, true, false or null at the cursor."""
        b, i = self.buf, self.pos
        c = b[i]
        if c == 0x74:
            return self._word(b"true", True)
        if c == 0x66:
            return self._word(b"false", False)
        if c == 0x6E:
            return self._word(b"null", None)
        if c != _MINUS and not 0x30 <= c <= 0x39:
            raise self._err("unexpected character")
        return self._number(build)

    def _word(self, word, val):
        if self.pos + len(word) > self.n or not self.buf.startswith(word, self.pos):
            raise self._err("bad literal")
        self.pos += len(word)
        return val

    def _digits(self, i):
        """Index after a run of at least one digit starting at i."""
        b, n, s = self.buf, self.n, i
        while i < n and 0x30 <= b[i] <= 0x39:
            i += 1
        if i == s:
            raise JsonError("expected digit", i)
        return i

    def _number(self, build):
        b, s = self.buf, self.pos
        n = self.n
        i = s + 1 if b[s] == _MINUS else s
        if i < n and b[i] == 0x30:
            i += 1
        else:
            i = self._digits(i)
        integer = True
        if i < n and b[i] == 0x2E:  # .
            i = self._digits(i + 1)
            integer = False
        if i < n and b[i] | 0x20 == 0x65:  # e or E
            i += 1
            if i < n and (b[i] == 0x2B or b[i] == _MINUS):
                i += 1
            i = self._digits(i)
            integer = False
        if self.max_number is not None and i - s > self.max_number:
            raise JsonError("number too long", s)
        self.pos = i
        if not build:
            return None
        text = str(self._mv[s:i], "utf-8")
        try:
            return int(text) if integer else float(text)
        except ValueError:  # CPython's limit on int digits
            raise JsonError("number too big", s) from None

    # -- OCPP-J

    def frame(self):
        """Read an OCPP-J frame head (OCPP-J 1.6 section 4) and return
        (type, uid, name) with the cursor on the next element:
        `[2, "id", "Action", ` -> (2, id, action), cursor on the payload;
        `[3, "id", ` -> (3, id, None), cursor on the payload;
        `[4, "id", "Code", ` -> (4, id, code), cursor on the description
        (then comma() and the details). Call frame_end() after the last
        element. r.uid holds the id as soon as it was read, for an answer
        to a frame that breaks later."""
        self._expect(_LBRACK)
        if self.kind() != "number":
            raise self._err("expected message type")
        at = self.pos
        t = self._number(True)
        if type(t) is not int or t < 2 or t > 4:
            raise JsonError("bad message type", at)
        self._expect(_COMMA)
        if self._next() != _QUOTE:
            raise self._err("expected unique id")
        self.uid = self._string(True)
        self._expect(_COMMA)
        name = None
        if t != 3:
            if self._next() != _QUOTE:
                raise self._err("expected action" if t == 2 else "expected error code")
            name = self._string(True)
            self._expect(_COMMA)
        self._next()
        return t, self.uid, name

    def comma(self):
        """Consume the ',' before the next frame element (CALLERROR)."""
        self._expect(_COMMA)

    def frame_end(self):
        """The closing bracket of the frame and nothing after it."""
        self._expect(_RBRACK)
        self.finish()
