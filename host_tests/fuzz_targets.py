"""Fuzz targets: one function per input surface the network (or the flash)
reaches, each taking raw bytes and raising AssertionError (or whatever
escaped the firmware) when the surface breaks its invariant.

tools/fuzz.py drives them with atheris (coverage-guided, libFuzzer);
test_fuzz_corpus.py replays the kept corpus (host_tests/fuzz_corpus/) in
`make test`. Nothing here needs atheris: the bytes are read through `Src`.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import struct
import tempfile
import zlib
from typing import Any, Callable

import ocpp

SCHEMAS = os.path.join(os.path.dirname(ocpp.__file__), "v16", "schemas")
TMP = "/dev/shm" if os.path.isdir("/dev/shm") else None
CSMS_ACTIONS = ["CancelReservation", "ChangeAvailability", "ChangeConfiguration", "ClearCache",
                "ClearChargingProfile", "DataTransfer", "GetCompositeSchedule", "GetConfiguration",
                "GetDiagnostics", "GetLocalListVersion", "RemoteStartTransaction", "RemoteStopTransaction",
                "ReserveNow", "Reset", "SendLocalList", "SetChargingProfile", "TriggerMessage",
                "UnlockConnector", "UpdateFirmware", "CertificateSigned", "DeleteCertificate",
                "ExtendedTriggerMessage", "GetInstalledCertificateIds", "GetLog", "InstallCertificate",
                "SignedUpdateFirmware"]
WORDS = ["Accepted", "Rejected", "Pending", "Soft", "Hard", "Operative", "Inoperative", "Full",
         "Differential", "A", "W", "TxProfile", "TxDefaultProfile", "ChargePointMaxProfile", "Absolute",
         "Recurring", "Relative", "Daily", "Heartbeat", "MeterValues", "StatusNotification", "BootNotification",
         "AA", "BB", "HeartbeatInterval", "LocalAuthListEnabled", "MeterValueSampleInterval",
         "2026-01-01T00:10:00Z", "2025-12-31T23:59:59.999Z", "1970-01-01T00:00:00Z", "Blocked", "Expired",
         "Invalid", "ConcurrentTx", "CentralSystemRootCertificate", "ManufacturerRootCertificate",
         "DiagnosticsLog", "SecurityLog", "http://127.0.0.1:1/x", "SHA256"]


class Src:
    """Deterministic choices read from the fuzz input (zeros once it runs out)."""

    def __init__(self, data: bytes) -> None:
        self.d = data
        self.i = 0

    def left(self) -> int:
        return len(self.d) - self.i

    def u8(self) -> int:
        if self.i >= len(self.d):
            return 0
        self.i += 1
        return self.d[self.i - 1]

    def below(self, n: int) -> int:
        if n <= 256:
            return self.u8() % n
        return (self.u8() << 8 | self.u8()) % n

    def pick(self, seq: Any) -> Any:
        return seq[self.below(len(seq))]

    def take(self, n: int) -> bytes:
        b = self.d[self.i:self.i + n]
        self.i += len(b)
        return b

    def blob(self, cap: int = 255) -> bytes:
        return self.take(min(self.u8(), cap))

    def text(self, cap: int = 255) -> str:
        return self.blob(cap).decode("utf-8", "replace")

    def rest(self) -> bytes:
        return self.take(self.left())


def _tmpdir() -> str:
    return tempfile.mkdtemp(prefix="fz", dir=TMP)


# -- values shaped by the OCPP JSON schemas --------------------------------------

_SCHEMA_CACHE: dict[str, Any] = {}


def schema(name: str) -> Any:
    if name not in _SCHEMA_CACHE:
        path = os.path.join(SCHEMAS, name + ".json")
        if not os.path.exists(path):
            return None
        with open(path) as f:
            _SCHEMA_CACHE[name] = json.load(f)
    return _SCHEMA_CACHE[name]


def any_value(src: Src, depth: int = 0) -> Any:
    k = src.below(9 if depth < 3 else 6)
    if k == 0:
        return None
    if k == 1:
        return bool(src.u8() & 1)
    if k == 2:
        return src.pick([0, 1, -1, 2, 10, 255, 65536, 2**31, 2**53 + 1, 2**64, -2**63, src.u8()])
    if k == 3:
        return src.pick([0.5, -0.1, 1e308, 1e-300, 3.0, src.u8() / 7])
    if k == 4:
        return src.pick(WORDS)
    if k == 5:
        return src.text(40)
    if k == 6:
        return [any_value(src, depth + 1) for _ in range(src.below(4))]
    return {src.pick(["connectorId", "type", "key", "value", "idTag", "status", "x", src.text(8)]):
            any_value(src, depth + 1) for _ in range(src.below(4))}


def shaped(node: Any, src: Src, depth: int = 0) -> Any:
    """A value valid under `node` most of the time; now and then a wrong one,
    so the validator's every branch is reached."""
    if depth > 6 or src.below(16) == 0:
        return any_value(src, depth)
    if "enum" in node:
        return src.pick(node["enum"])
    t = node.get("type")
    if t == "object":
        out = {}
        req = set(node.get("required", ()))
        for k, v in node.get("properties", {}).items():
            if k in req or src.u8() & 1:
                out[k] = shaped(v, src, depth + 1)
        if src.below(8) == 0:
            out[src.pick(["extra", "connectorId", ""])] = any_value(src)
        return out
    if t == "array":
        n = src.below(5)
        if src.below(8) == 0:
            n = src.below(300)  # past the list limits
        return [shaped(node.get("items", {}), src, depth + 1) for _ in range(n)]
    if t == "string":
        if node.get("format") == "date-time":
            return src.pick(WORDS[27:30] + ["2026-02-30T00:00:00Z", "20260101T000000Z", "2026-01-01T00:00:00+01:00"])
        mx = node.get("maxLength", 40)
        s = src.pick(WORDS) if src.u8() & 1 else src.text(mx + 2)
        return s[:mx + (src.u8() & 1)]
    if t == "integer":
        return src.pick([0, 1, 2, 3, -1, 10, 60, 86400, 2**31 - 1, 2**31, src.u8()])
    if t == "number":
        return src.pick([0, 0.1, 6.0, 16, 32.5, -1, 1e9, src.u8() / 4])
    if t == "boolean":
        return bool(src.u8() & 1)
    return any_value(src, depth)


# -- the station core: OCPP-J text into Station.receive ------------------------

_REGISTRATIONS = (None, "Pending", "Accepted", "Rejected")


def _rig(data: str, tx: bool) -> Any:
    from rig import Rig
    rig = Rig(data, tags={"AA": "Accepted", "BB": "Blocked"}).connect()
    rig.cmd("plug")
    if tx:
        rig.cmd("card", "AA")
        rig.run(2000)
    return rig


def state_view(st: Any) -> dict[str, Any]:
    """What must survive a reboot unchanged: the persisted state."""
    conf = st.config.get_configuration({})
    # HeartbeatInterval comes anew with every BootNotification.conf.
    view: dict[str, Any] = {"config:" + e["key"]: e.get("value") for e in conf.get("configurationKey", [])
                            if e["key"] != "HeartbeatInterval"}
    if st.authlist is not None:
        view["list"] = [st.authlist.version, sorted(st.authlist._map.items())]
    # A change scheduled for the end of the transaction applies when the reboot ends it.
    view["operative"] = [c.operative if c.scheduled is None else c.scheduled == "Operative" for c in st.connectors]
    return view


def _is_call(text: str) -> str | None:
    try:
        m = json.loads(text)
    except ValueError:
        return None
    if isinstance(m, list) and len(m) >= 2 and m[0] == 2 and isinstance(m[1], str):
        return m[1]
    return None


def _frame(src: Src, pending: str | None, pending_action: str | None, n: int) -> str:
    mode = src.below(8)
    uid = "f%d" % n if src.below(8) else src.pick(["f0", "", "x" * 37, "f%d" % (n - 1)])
    if mode <= 3:  # a CALL shaped by its schema
        action = src.pick(CSMS_ACTIONS)
        return json.dumps([2, uid, action, shaped(schema(action), src)])
    if mode == 4 and pending is not None:  # the answer to our CALL in flight
        sch = schema(str(pending_action) + "Response") or {}
        if src.below(4):
            return json.dumps([3, pending, shaped(sch, src)])
        return json.dumps([4, pending, src.pick(["InternalError", "NotSupported", "x"]), src.text(20), {}])
    if mode == 5:  # a frame of any shape
        return json.dumps([src.pick([2, 3, 4, 5, "2"]), uid] + [any_value(src) for _ in range(src.below(4))])
    return src.text(200)  # any text


def station(data: bytes) -> None:
    src = Src(data)
    kind = src.u8()
    reg, tx = _REGISTRATIONS[kind & 3], bool(kind & 4)
    d = _tmpdir()
    try:
        rig = _rig(d, tx)
        if reg is None:
            rig.disconnect()  # a new link: BootNotification sent, not yet answered
            rig.st.connected(rig.clock.ms())
        st = rig.st
        st.registration = reg
        pending = rig.swallow() if reg is None else []
        n = 0
        while src.left() and n < 12:
            n += 1
            calls = [m for m in pending if m[0] == 2]
            text = _frame(src, calls[-1][1] if calls else None, calls[-1][2] if calls else None, n)
            st.receive(text, rig.clock.ms())
            out = [json.loads(f) for f in st.take_frames()]
            uid = _is_call(text)
            answers = [m for m in out if m[0] in (3, 4) and m[1] == uid]
            assert uid is None or len(answers) <= 1, (text, out)
            for m in out:
                assert not (m[0] == 4 and m[2] == "InternalError"), (text, m)
            pending = [m for m in out if m[0] == 2]
            if src.u8() & 1:  # the scripted CSMS answers what the station sent
                st.frames[:0] = [json.dumps(m) for m in pending]
                pending = []
                rig.cs.pump()
            rig.clock.advance(src.pick([0, 10, 1000, 30000, 600000]))
            st.tick(rig.clock.ms())
            pending += [json.loads(f) for f in st.take_frames()]
        errors = [t for lvl, t in rig.logs if lvl == "error"]
        assert not errors, errors
        before = state_view(st)
        json.dumps(before)
        n_logs = len(rig.logs)
        running = [c.tx.local for c in st.connectors if c.tx is not None]
        rig.reboot()
        after = state_view(rig.st)
        # AQ-7.2: a transaction cut by the reboot is stopped, its StopTransaction queued.
        assert all(rig.st.transactions.queue.has_stop(local) for local in running), running
        assert before == after, {k: (v, after.get(k)) for k, v in before.items() if after.get(k) != v}
        corrupt = [t for lvl, t in rig.logs[n_logs:] if "StorageCorrupted" in t or lvl == "error"]
        assert not corrupt, corrupt
    finally:
        shutil.rmtree(d, ignore_errors=True)


# -- big streamed CALLs: the streaming JSON reader ---------------------------------

def _big_call(src: Src) -> str:
    if src.u8() & 1:
        entries = []
        for i in range(src.below(120) + 30):
            e: dict[str, Any] = {"idTag": "T%04d" % i if src.below(8) else src.text(24)}
            if src.below(4):
                e["idTagInfo"] = shaped(schema("SendLocalList")["properties"]["localAuthorizationList"]
                                        ["items"]["properties"]["idTagInfo"], src)
            entries.append(e)
        p: dict[str, Any] = {"listVersion": src.pick([1, 2, 0, -1, 7]),
                             "updateType": src.pick(["Full", "Differential", "x"]),
                             "localAuthorizationList": entries}
        action = "SendLocalList"
    else:
        periods = [{"startPeriod": i * 60 if src.below(8) else src.pick([-1, 0, 2**31]),
                    "limit": src.pick([6, 16, 32.5, 0, -1, 1e9])} for i in range(src.below(60) + 60)]
        prof = shaped(schema("SetChargingProfile")["properties"]["csChargingProfiles"], src)
        if not isinstance(prof, dict):
            prof = {}
        sched = prof.get("chargingSchedule") if isinstance(prof.get("chargingSchedule"), dict) else {}
        sched["chargingSchedulePeriod"] = periods
        prof["chargingSchedule"] = sched
        p = {"connectorId": src.pick([0, 1, 2, -1]), "csChargingProfiles": prof}
        action = "SetChargingProfile"
    text = json.dumps([2, "big", action, p], separators=(",", ":") if src.u8() & 1 else None)
    # Then a few bytes of the frame changed: the reader must refuse, not crash.
    b = bytearray(text.encode())
    for _ in range(src.below(4)):
        b[src.below(len(b))] = src.u8()
    return b.decode("utf-8", "replace")


def _answer(rig: Any, text: str) -> Any:
    rig.st.receive(text, rig.clock.ms())
    out = [json.loads(f) for f in rig.st.take_frames()]
    answers = [m for m in out if m[0] in (3, 4) and m[1] == "big"]
    assert len(answers) <= 1, out
    for m in out:
        assert not (m[0] == 4 and m[2] == "InternalError"), m
    return answers


def jsonstream(data: bytes) -> None:
    from evse.wire import jsonstream as js
    src = Src(data)
    if src.u8() & 1:
        # Small documents: the reader agrees with json.loads on what is JSON.
        raw = src.rest()
        try:
            text = raw.decode()
        except UnicodeDecodeError:
            return
        try:
            ours: Any = js.Reader(text, max_depth=64, max_size=None, max_number=None).document()
        except js.JsonError:
            ours = js.JsonError
        try:
            ref: Any = json.loads(text)
        except (ValueError, RecursionError):
            ref = js.JsonError
        if ours is not js.JsonError:
            assert ours == ref or (ours != ours), (text, ours, ref)
        return
    text = _big_call(src)
    d = _tmpdir()
    try:
        from rig import Rig
        rig = Rig(d, tags={"AA": "Accepted"}).connect()
        got = _answer(rig, text)
        errors = [t for lvl, t in rig.logs if lvl == "error"]
        assert not errors, errors
        assert len(text) < 2048 or got or _is_call(text) is None, text[:200]
    finally:
        shutil.rmtree(d, ignore_errors=True)


# -- the WebSocket client: handshake and frames, in odd chunks -----------------------

_KEY = b"0123456789abcdef"


def _ws_events(chunks: list[bytes]) -> list[Any]:
    from evse.link.ws import WsClient
    ws = WsClient("h", "/cp", key=_KEY, max_message=4096)
    ev: list[Any] = []
    for c in chunks:
        ws.receive_data(c)
        assert ws._mlen <= ws.max_message and len(ws._ctl) <= 125
        assert len(ws._buf) <= 4096 + 14 + 4096, len(ws._buf)
        while True:
            got = ws.events()
            if not got:
                break
            # A big text comes as a Frame lent out of the receive buffer until release().
            ev += [("text", e[1].text()) if e[0] == "text" and not isinstance(e[1], str) else e for e in got]
            ws.release()
        if ws.fail_bytes():  # its mask key is random: the code says what it is
            ev.append(("fail", ws.fail_code))
        if ws.state == "closed":
            break
    return ev + [ws.state]


def ws(data: bytes) -> None:
    from evse.link.wshandshake import accept_key
    from binascii import b2a_base64
    src = Src(data)
    head = b""
    if src.below(8):
        acc = accept_key(b2a_base64(_KEY).strip())
        lines = [b"HTTP/1.1 101 Switching Protocols", b"Upgrade: websocket", b"Connection: Upgrade",
                 b"Sec-WebSocket-Accept: " + acc, b"Sec-WebSocket-Protocol: ocpp1.6"]
        for _ in range(src.below(3)):  # a line dropped, changed or added
            j = src.below(len(lines))
            k = src.below(3)
            if k == 0:
                lines.pop(j)
            elif k == 1:
                lines[j] = src.blob(60)
            else:
                lines.insert(j, src.blob(60))
            if not lines:
                break
        head = b"\r\n".join(lines) + b"\r\n\r\n"
    stream = head + src.rest()
    whole = _ws_events([stream, b""])
    # The same bytes in odd pieces: the same events, in the same order.
    cuts = sorted({(b * 7 + 3) % (len(stream) + 1) for b in data[:6]})
    pieces = [stream[i:j] for i, j in zip([0] + cuts, cuts + [len(stream)]) if j > i] + [b""]
    assert _ws_events(pieces) == whole, (stream[:100], whole)


# -- the HTTP client: responses to one request, redirects followed ----------------

class _Conn:
    """A connection whose server answers with the next scripted response."""

    def __init__(self, reply: bytes, cut: int) -> None:
        self.reader = asyncio.StreamReader()
        for i in range(0, len(reply), cut):
            self.reader.feed_data(reply[i:i + cut])
        self.reader.feed_eof()
        self.sent = bytearray()

    def write(self, b: bytes) -> None:
        self.sent += b

    async def drain(self) -> None:
        return None

    def close(self) -> None:
        return None

    async def wait_closed(self) -> None:
        return None


_LOOP: asyncio.AbstractEventLoop | None = None


def http(data: bytes) -> None:
    from evse.link import http as h
    global _LOOP
    src = Src(data)
    replies = [src.take(src.below(1024)) for _ in range(src.below(4) + 1)]
    replies[-1] += src.rest()
    cut = src.below(64) + 1
    url = src.pick(["http://127.0.0.1:8080/fw/a.bin", "https://127.0.0.1/x?y=1", "http://u:p@127.0.0.1/"])
    opened: list[tuple[str, int]] = []

    async def open_connection(host: str, port: int, **kw: Any) -> tuple[Any, Any]:
        if not replies:
            raise OSError("refused")
        opened.append((host, port, "ssl" in kw))
        c = _Conn(replies.pop(0), cut)
        return c.reader, c

    got = bytearray()
    real = asyncio.open_connection
    asyncio.open_connection = open_connection  # type: ignore[assignment]
    try:
        if _LOOP is None:
            _LOOP = asyncio.new_event_loop()
        resp = _LOOP.run_until_complete(h.get(url, got.extend, ssl=object(), max_redirects=2, bufsize=64))
    except (h.HttpError, ValueError):
        resp = None
    finally:
        asyncio.open_connection = real  # type: ignore[assignment]
    assert len(opened) <= 3
    if url.startswith("https"):
        assert all(s for _, _, s in opened), opened  # never from https down to http
    if resp is not None:
        assert 200 <= resp.status < 300
        assert resp.received == len(got)
        if resp.length is not None:
            assert resp.length == len(got), (resp.length, len(got))
    # The sans-IO parser alone: feeding in pieces gives what feeding at once gives.
    raw = data[1:]
    assert _parse(raw, len(raw) or 1) == _parse(raw, cut)
    try:
        h.join_url(url, src.text(60) if src.left() else data[:40].decode("latin-1"))
    except ValueError:
        pass


def _parse(raw: bytes, cut: int) -> Any:
    from evse.link.http import HttpError, Response
    r = Response()
    body = bytearray()
    try:
        i = 0
        while i < len(raw) and not r.done:
            piece = raw[i:i + cut]
            j = 0
            while j < len(piece) and not r.done:
                used = r.feed(piece[j:], body.extend)
                assert used > 0 or r.done
                j += used
            i += cut
        r.eof()
        return r.status, sorted(r.headers.items()), bytes(body)
    except HttpError as e:
        return "error", str(e)


# -- PEM / DER / X.509 / keys and chain validation ---------------------------------

_PKI_SEEDS: list[bytes] = []


def _roots() -> Any:
    if not _PKI_SEEDS:
        import pki_factory as pf
        leaf, inter, root = pf.chain3("ec")
        _PKI_SEEDS.extend([pf.der(root), pf.der(inter), pf.der(leaf)])
    from evse.pki import x509
    return [x509.Certificate(_PKI_SEEDS[0])]


def pki(data: bytes) -> None:
    from evse.pki import chain, csr, pem, x509
    import pki_factory as pf
    src = Src(data)
    mode = src.below(6)
    raw = src.rest()
    roots = _roots()
    try:
        if mode == 0:
            blocks = pem.decode_all(raw.decode("latin-1"))
            for label, der in blocks:
                assert isinstance(label, str) and isinstance(der, (bytes, bytearray))
        elif mode == 1:
            csr.load_key(raw.decode("latin-1"))
        elif mode in (2, 3):
            certs = x509.load_all(raw)
            if mode == 3 and certs:
                from pki_host_backend import Host
                why = chain.validate(certs, roots, pf.NOW_S, Host())
                assert why is None or isinstance(why, str)
            for c in certs:
                assert isinstance(c.cn, (str, type(None))) and isinstance(c.org, (str, type(None)))
                c.key_size(), c.self_issued(), chain.hash_data(c, c)
        else:
            # The DER of a good chain with a few bytes changed, all the way to validation.
            der = bytearray(_PKI_SEEDS[1 + (mode & 1)])
            for k in range(0, len(raw) - 2, 3):
                der[(raw[k] << 8 | raw[k + 1]) % len(der)] = raw[k + 2]
            cert = x509.Certificate(bytes(der))
            certs = [cert] + ([x509.Certificate(_PKI_SEEDS[1])] if mode == 5 else [])
            from pki_host_backend import Host
            assert chain.validate(certs, roots, pf.NOW_S, Host()) is None or True
    except ValueError:
        pass


# -- firmware images into the A/B installer ------------------------------------------

def image(files: list[tuple[str, bytes]], board: str = "fuzz", version: str = "1.0") -> bytes:
    from evse import fwimage
    ent = [(p, len(b), hashlib.sha256(b).hexdigest()) for p, b in files]
    m = fwimage.manifest(version, board, ent)
    return fwimage.header(m) + m + b"".join(b for _, b in files)


def fwimage(data: bytes) -> None:
    from evse import fwimage as fw
    src = Src(data)
    mode = src.below(4)
    if mode == 0:
        img = src.rest()
    else:
        files = [(src.text(12) if src.below(4) == 0 else "f%d/%s.py" % (i % 2, chr(97 + i)), src.blob(40))
                 for i in range(src.below(4) + 1)]
        board = "fuzz" if src.below(8) else src.text(6)
        img = bytearray(image(files, board, src.pick(["1.0", "", "x" * 60])))
        for _ in range(src.below(3) if mode == 1 else 0):
            img[src.below(len(img))] = src.u8()
        if mode == 3:
            m = src.blob(200)  # a manifest of any bytes with a right header
            img = bytearray(fw.header(m) + m + src.rest())
    d = _tmpdir()
    try:
        slots = fw.Slots(d + "/fw", "fuzz")
        inst = slots.begin_install()
        err = None
        cut = src.below(50) + 1
        try:
            for i in range(0, len(img), cut):
                inst.feed(img[i:i + cut])
        except fw.ImageError as e:
            err = str(e)
        res = inst.finish() if err is None else err
        assert res is None or isinstance(res, str)
        for root, _, names in os.walk(d):
            for name in names:
                p = os.path.join(root, name)
                assert p.startswith(slots.dir(inst.slot) + "/") or p == d + "/fw/fwstate.json", p
        if res is None:
            assert slots.info(inst.slot) is not None
            assert slots.verify_slot(inst.slot) is None
    finally:
        shutil.rmtree(d, ignore_errors=True)


# -- bytes read back from flash at boot -------------------------------------------

PERSISTED = ["config", "authcache", "tx", "locallist", "register", "availability", "profiles",
             "reservations", "certs", "seclog", "fwupdate", "diag", "security", "link"]
JOURNALS = ["txq", "seclog", "events", "diaglog"]


def _snap(body: bytes) -> bytes:
    return b"%08x\n" % zlib.crc32(body) + body


def _records(src: Src) -> bytes:
    out = bytearray()
    seq = src.pick([1, 2, 0, 2**32 - 1])
    for _ in range(src.below(6)):
        kind = src.pick([1, 2, 3, 253, 255, src.u8()])
        payload = src.blob(60)
        if src.u8() & 1:
            payload = json.dumps(any_value(src)).encode()
        rec = struct.pack("<IBH", seq, kind, len(payload)) + payload
        out += rec + struct.pack("<I", zlib.crc32(rec))
        seq = (seq + src.pick([1, 1, 1, 0, 2])) & 0xFFFFFFFF
    return bytes(out)


def caught(logs: list[tuple[str, str]]) -> list[str]:
    """Errors a safety net caught (an exception's repr in an error log): a
    bad record the owner refused and logged is fine, a crash is not."""
    return [t for lvl, t in logs if lvl == "error" and ("Error(" in t or "error(" in t or "Exception(" in t)]


def flash(data: bytes) -> None:
    src = Src(data)
    d = _tmpdir()
    try:
        rig = _rig(d, bool(src.u8() & 1))  # a station that ran and wrote its files
        rig.st.receive(json.dumps([2, "s", "SendLocalList", {"listVersion": 2, "updateType": "Full",
                                                             "localAuthorizationList": [{"idTag": "BB"}]}]), 0)
        rig.cs.pump()
        names = sorted(set(os.listdir(d)) | {n + ".json" for n in PERSISTED} | set(JOURNALS))
        for _ in range(src.below(4) + 1):
            name = src.pick(names)
            path = os.path.join(d, name)
            if name in JOURNALS or os.path.isdir(path):
                os.makedirs(path, exist_ok=True)
                seg = os.path.join(path, "%08d.log" % src.pick([1, 2, 3]))
                body = _records(src) if src.below(4) else src.blob()
            else:
                seg = path
                k = src.below(4)
                body = (_snap(json.dumps(any_value(src)).encode()) if k == 0 else _snap(src.blob()) if k == 1
                        else src.blob())
                if k == 3 and os.path.exists(seg):  # the real file, torn or flipped
                    with open(seg, "rb") as f:
                        old = bytearray(f.read())
                    if old:
                        old[src.below(len(old))] ^= 1 << (src.u8() & 7)
                    body = bytes(old[:len(old) - src.below(4)])
            with open(seg, "wb") as f:
                f.write(body)
        rig.logs.clear()
        rig.reboot()
        rig.connect()
        rig.st.receive('[2,"q","GetLocalListVersion",{}]', rig.clock.ms())
        out = [json.loads(f) for f in rig.st.take_frames()]
        assert [m for m in out if m[1] == "q"], out  # the rebooted core still answers
        assert not caught(rig.logs), caught(rig.logs)
        rig.st.frames[:0] = [json.dumps(m) for m in out if m[0] == 2]
        rig.cs.pump()
        rig.run(5000)
        assert not caught(rig.logs), caught(rig.logs)
    finally:
        shutil.rmtree(d, ignore_errors=True)


TARGETS: dict[str, Callable[[bytes], None]] = {
    "station": station, "jsonstream": jsonstream, "ws": ws, "http": http, "pki": pki,
    "fwimage": fwimage, "flash": flash,
}
