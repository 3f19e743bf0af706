"""Logs: the bounded diagnostics log on flash, GetDiagnostics (OCPP 1.6
5.8, 4.4) and GetLog (Security Whitepaper ed.3, 2.7 / 4.5)."""
# The log: every st.log(level, text) call also lands here, as the line
# "<unix s> <level> <text>" (text cut at _LINE_MAX, one line). Lines are
# buffered in RAM (at most _BUF_MAX bytes) and appended to the newest of
# numbered files <data>/diag/NNNNNNNN.log; a file that reached _FILE_MAX
# starts the next one, and only the newest _FILES are kept: the log never
# takes more than _FILES * _FILE_MAX bytes of flash, and one write per
# buffer-full keeps littlefs from rewriting a block per line.
#
# Uploads are jobs (evse/jobs.py): the lines in the requested time window,
# oldest first, with ISO 8601 timestamps, read one line at a time and sent
# by HTTP(S) PUT (POST if the server refuses PUT) with a Content-Length
# counted in a first pass, to location + "/" + fileName. While one runs,
# new lines wait in the RAM buffer (the counted length stays true).
# SecurityLog: the security engineer's evse.seclog if this build has it,
# else this log's "security" lines (Station.security_event logs them).
# A new request cancels the running upload (GetLog: AcceptedCanceled).
# Requests are not persisted: a reboot ends an upload (the CSMS asks again).
#
# (Comments, not a docstring: compiled from source on the device, a
# docstring stays in RAM.)
import os

from evse import rpc, timestamp
from evse.compat import const
from evse.files import ensure_dir, remove
from evse.jobs import Cancelled, Job

_FILE_MAX = const(8192)
_FILES = const(4)
_BUF_MAX = const(1024)
_LINE_MAX = const(200)
_RETRY_S = const(60)
_FLUSH_MS = const(30000)
_ISO = const(20)  # len("2026-01-01T00:00:00Z")


class DiagLog:
    """The rotating log files under `folder`; `clock.unix()` stamps lines."""

    def __init__(self, folder, clock):
        self.dir = folder
        self.clock = clock
        self.buf = []
        self.size = 0  # bytes in buf
        self.hold = False  # an upload reads the files: keep lines in RAM
        self.broken = False  # the flash refused a write: RAM only from then on

    def add(self, level, text):
        text = str(text).replace("\n", " ")[:_LINE_MAX]
        line = "%d %s %s\n" % (self.clock.unix(), level, text)
        if self.size + len(line) > _BUF_MAX and self.buf:
            if self.hold or self.broken:
                self.size -= len(self.buf.pop(0))  # bounded: the oldest goes
            else:
                self.flush()
        self.buf.append(line)
        self.size += len(line)

    def files(self):
        """Log file paths, oldest first."""
        try:
            names = [n for n in os.listdir(self.dir) if n.endswith(".log")]
        except OSError:
            return []
        names.sort()
        return [self.dir + "/" + n for n in names]

    def flush(self):
        if not self.buf or self.hold or self.broken:
            return
        try:
            ensure_dir(self.dir)
            files = self.files()
            path = files[-1] if files else self.dir + "/00000001.log"
            if files and os.stat(path)[6] >= _FILE_MAX:
                n = int(path[path.rfind("/") + 1:-4]) + 1
                path = "%s/%08d.log" % (self.dir, n)
                files.append(path)
            with open(path, "a") as f:
                for line in self.buf:
                    f.write(line)
            for old in files[:-_FILES]:
                remove(old)
        except OSError:
            self.broken = True
            return
        self.buf = []
        self.size = 0

    def lines(self, t0, t1, level=None):
        """(ISO line) for every stored line with t0 <= time <= t1 (None:
        open), oldest first; `level` keeps one level only."""
        for path in self.files():
            try:
                f = open(path)
            except OSError:
                continue
            with f:
                while True:
                    raw = f.readline()
                    if not raw:
                        break
                    out = _pick(raw, t0, t1, level)
                    if out is not None:
                        yield out
        for raw in self.buf:
            out = _pick(raw, t0, t1, level)
            if out is not None:
                yield out


def _pick(raw, t0, t1, level):
    sp = raw.find(" ")
    if sp < 1 or not raw[:sp].isdigit():
        return None  # a torn line (power cut mid-write)
    t = int(raw[:sp])
    if (t0 is not None and t < t0) or (t1 is not None and t > t1):
        return None
    if level is not None and not raw.startswith(level + " ", sp + 1):
        return None
    line = timestamp.format_utc(t) + raw[sp:]
    return line if line.endswith("\n") else line + "\n"


class DiagState:
    def __init__(self, st):
        self.log = DiagLog(st.storage.root + "/diag", st.clock)
        self.job = None
        self.kind = None  # "diag" (GetDiagnostics) or "log" (GetLog) of the running upload
        self.req = None  # the running request: dict
        self.status = "Idle"


def install(st):
    d = st.diag = DiagState(st)
    inner = st.log

    def log(level, text):
        inner(level, text)
        try:
            d.log.add(level, text)
        except Exception:  # noqa: BLE001 - logging never fails the caller
            pass

    st.log = log
    st.handlers["GetDiagnostics"] = _get_diagnostics
    st.handlers["GetLog"] = _get_log
    st.on_timer["diag"] = _timer
    st.on_timer["diagflush"] = _flush_timer
    st.timers.start("diagflush", st.now, _FLUSH_MS)
    st.triggers["DiagnosticsStatusNotification"] = _trigger_diag
    st.triggers["LogStatusNotification"] = _trigger_log


def _flush_timer(st, now):
    st.diag.log.flush()
    st.timers.start("diagflush", now, _FLUSH_MS)


def _name(st, prefix):
    t = timestamp.format_utc(st.clock.unix()).replace(":", "").replace("-", "")
    cp = st.link.cp_id if st.link is not None and st.link.cp_id else "cp"
    return "%s-%s-%s.log" % (prefix, cp, t)


def _http(url):
    return url.startswith("http://") or url.startswith("https://")


def _get_diagnostics(st, p):
    loc = p["location"]
    if not _http(loc):
        # 1.6 GetDiagnostics.conf has no status: the transfer protocol (FTP...) is what is not supported.
        raise rpc.CallError("NotSupported", "only http(s) uploads")
    name = _name(st, "diagnostics")
    _begin(st, "diag", {"loc": loc, "name": name, "t0": timestamp.parse(p.get("startTime", "")),
                        "t1": timestamp.parse(p.get("stopTime", "")), "level": None, "id": None}, p)
    return {"fileName": name}


def _get_log(st, p):
    g = p["log"]
    loc = g["remoteLocation"]
    if not _http(loc):
        return {"status": "Rejected"}
    sec = p["logType"] == "SecurityLog"
    name = _name(st, "security" if sec else "diagnostics")
    status = "AcceptedCanceled" if st.diag.req is not None else "Accepted"
    _begin(st, "log", {"loc": loc, "name": name, "t0": timestamp.parse(g.get("oldestTimestamp", "")),
                       "t1": timestamp.parse(g.get("latestTimestamp", "")), "sec": sec,
                       "id": p["requestId"]}, p)
    return {"status": status, "filename": name}


def _begin(st, kind, req, p):
    d = st.diag
    _cancel(st)
    req["left"] = max(0, p.get("retries") or 0)
    req["iv"] = p.get("retryInterval") or _RETRY_S
    d.kind, d.req = kind, req
    st.timers.start("diag", st.now, 0)  # after the .conf


def _cancel(st):
    d = st.diag
    if d.job is not None:
        d.job.cancelled = True
        d.job = None
        d.log.hold = False
    d.req = None
    st.timers.cancel("diag")


def _timer(st, now):
    d = st.diag
    if d.req is None or d.job is not None:
        return
    d.log.flush()
    if not d.req.get("tries"):
        _notify(st, "Uploading")  # once per request, not per attempt
    d.req["tries"] = d.req.get("tries", 0) + 1
    d.log.hold = True
    d.job = upload_job(st, d.req)
    st.jobs.append(d.job)


def source_lines(st, req):
    """The lines an upload sends (a fresh generator per pass)."""
    if req.get("sec"):
        if getattr(st.link, "events", None) is not None:
            from evse import seclog
            return _ended(seclog.lines(st, req["t0"], req["t1"]))
        return st.diag.log.lines(req["t0"], req["t1"], "security")
    return st.diag.log.lines(req["t0"], req["t1"])


def _ended(lines):
    for line in lines:
        yield line if line.endswith("\n") else line + "\n"


class _Source:
    """source(buffer) -> n for http.request: the lines, a buffer-full at a time."""

    def __init__(self, lines, job):
        self.it = lines
        self.job = job
        self.rest = b""

    def __call__(self, buf):
        if self.job.cancelled:
            raise Cancelled()
        n = 0
        while n < len(buf):
            if not self.rest:
                try:
                    line = next(self.it)
                except StopIteration:
                    break
                self.rest = line.encode()
            k = min(len(self.rest), len(buf) - n)
            buf[n:n + k] = self.rest[:k]
            self.rest = self.rest[k:]
            n += k
        return n


def upload_job(st, req):
    ctx = None
    if req["loc"].startswith("https:"):
        from evse import tls
        link = st.link
        ctx = tls.client_context(link.ca) if link is not None and link.ca else tls.system_context()
    url = req["loc"].rstrip("/") + "/" + req["name"]

    async def work():
        from evse import http
        length = 0
        for line in source_lines(st, req):
            length += len(line.encode())
        for method in ("PUT", "POST"):
            try:
                await http.request(method, url, source=_Source(source_lines(st, req), job), length=length,
                                   ssl=ctx)
                return length
            except http.HttpError as e:
                if method == "POST" or e.status not in (405, 501):
                    raise
        return length

    job = Job("upload", work, _uploaded)
    return job


def _uploaded(st, result, error):
    d = st.diag
    d.job = None
    d.log.hold = False
    if d.req is None:
        return
    if error is None:
        st.log("info", "log uploaded: %d bytes" % result)
        return _end(st, "Uploaded")
    st.log("warn", "log upload failed: " + repr(error))
    r = d.req
    if r["left"] > 0:
        r["left"] -= 1
        st.timers.start("diag", st.now, 1000 * r["iv"])
        return
    s = getattr(error, "status", 0)
    if d.kind == "diag":
        status = "UploadFailed"
    elif s in (401, 403):
        status = "PermissionDenied"
    elif s in (405, 501):
        status = "NotSupportedOperation"
    elif 400 <= s < 500:
        status = "BadMessage"
    else:
        status = "UploadFailure"
    _end(st, status)


def _end(st, status):
    _notify(st, status)
    st.diag.req = None


def _notify(st, status):
    d = st.diag
    d.status = status
    if d.kind == "diag":
        st.send("DiagnosticsStatusNotification", {"status": status})
    else:
        st.send("LogStatusNotification", {"status": status, "requestId": d.req["id"]})


def _trigger_diag(st, cid):
    d = st.diag
    busy = d.req is not None and d.kind == "diag" and d.job is not None
    st.send("DiagnosticsStatusNotification", {"status": "Uploading" if busy else "Idle"})


def _trigger_log(st, cid):
    d = st.diag
    if d.req is not None and d.kind == "log" and d.job is not None:
        st.send("LogStatusNotification", {"status": "Uploading", "requestId": d.req["id"]})
    else:
        st.send("LogStatusNotification", {"status": "Idle"})
