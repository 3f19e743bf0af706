"""GetDiagnostics (OCPP 1.6 5.8, 4.4) and GetLog (Security Whitepaper ed.3):
the uploads of the diagnostics log (diagnostics.py imports this module
when such a request comes or runs)."""
# Uploads are jobs (evse/jobs.py): the lines in the requested time window,
# oldest first, with ISO 8601 timestamps, read one line at a time and sent
# by HTTP(S) PUT (POST if the server refuses PUT) with a Content-Length
# counted in a first pass, to location + "/" + fileName. While one runs,
# new lines wait in the RAM buffer (the counted length stays true).
# SecurityLog: the security log of evse/seclog.py where the link has one,
# else the diagnostics log's "security" lines (Station.security_event logs them).
# A new request (either kind) cancels the running one, which first gets its
# final status (UploadFailed / UploadFailure): every request the CSMS had
# accepted ends with one. AcceptedCanceled answers only a GetLog that
# replaced a GetLog (a replaced GetDiagnostics is told by its own status).
# Requests are not persisted: a reboot ends an upload (the CSMS asks again).
from evse import timestamp
from evse.wire import rpc
from evse.compat import const
from evse.jobs import Cancelled, Job

_RETRY_S = const(60)


def _name(st, prefix):
    t = timestamp.format_utc(st.clock.unix()).replace(":", "").replace("-", "")
    cp = st.link.cp_id if st.link is not None and st.link.cp_id else "cp"
    return "%s-%s-%s.log" % (prefix, cp, t)


def _http(url):
    return url.startswith("http://") or url.startswith("https://")


def get_diagnostics(st, p):
    loc = p["location"]
    if not _http(loc):
        # 1.6 GetDiagnostics.conf has no status: the transfer protocol (FTP...) is what is not supported.
        raise rpc.CallError("NotSupported", "only http(s) uploads")
    name = _name(st, "diagnostics")
    _begin(st, "diag", {"loc": loc, "name": name, "t0": timestamp.parse(p.get("startTime", "")),
                        "t1": timestamp.parse(p.get("stopTime", "")), "level": None, "id": None}, p)
    return {"fileName": name}


def get_log(st, p):
    g = p["log"]
    loc = g["remoteLocation"]
    if not _http(loc):
        return {"status": "Rejected"}
    sec = p["logType"] == "SecurityLog"
    name = _name(st, "security" if sec else "diagnostics")
    d = st.diag
    status = "AcceptedCanceled" if d.req is not None and d.kind == "log" else "Accepted"
    _begin(st, "log", {"loc": loc, "name": name, "t0": timestamp.parse(g.get("oldestTimestamp", "")),
                       "t1": timestamp.parse(g.get("latestTimestamp", "")), "sec": sec,
                       "id": p["requestId"]}, p)
    return {"status": status, "filename": name}


def _begin(st, kind, req, p):
    d = st.diag
    if d.req is not None:  # replaced: its final status first
        st.log("warn", "log upload cancelled by a new request")
        _end(st, "UploadFailed" if d.kind == "diag" else "UploadFailure")
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


def start(st, now):
    d = st.diag
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
        if st.seclog is not None:
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
        from evse.link import tls
        link = st.link
        ctx = tls.client_context(link.ca) if link is not None and link.ca else tls.system_context()
    url = req["loc"].rstrip("/") + "/" + req["name"]

    async def work():
        from evse.link import http
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
