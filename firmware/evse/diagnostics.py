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
# GetDiagnostics and GetLog, the uploads, are evse/logrequests.py, imported
# when such a request comes or runs (heap).
import os

from evse import timestamp
from evse.compat import const
from evse.store.files import ensure_dir, remove

_FILE_MAX = const(8192)
_FILES = const(4)
_BUF_MAX = const(1024)
_LINE_MAX = const(200)
_FLUSH_MS = const(30000)


class DiagLog:
    """The rotating log files under `folder`; `clock.unix()` stamps lines."""

    def __init__(self, folder, clock):
        self.dir = folder
        self.clock = clock
        self.buf = []
        self.size = 0  # bytes in buf
        self.hold = False  # an upload reads the files: keep lines in RAM
        self.broken = False  # the flash refused a write: RAM only from then on
        self.on_full = None  # fn(): called once when the flash refuses

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
            if self.on_full is not None:
                self.on_full()
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
        # While an upload runs new lines only append to buf: the body pass
        # yields what the length pass counted first (http sends `length` bytes).
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


def _requests():
    """The feature's request half, logrequests.py, imported with the first request
    (the same idiom in certificates, diagnostics and fwupdate)."""
    from evse import logrequests
    return logrequests


def install(st):
    d = st.diag = DiagState(st)
    d.log.on_full = lambda: st.exhausted("flash (diagnostics log)")
    st.add_log_sink(d.log.add)
    st.handlers["GetDiagnostics"] = lambda st, p: _requests().get_diagnostics(st, p)
    st.handlers["GetLog"] = lambda st, p: _requests().get_log(st, p)
    st.on_timer["diag"] = _timer
    st.on_timer["diagflush"] = _flush_timer
    st.timers.start("diagflush", st.now, _FLUSH_MS)
    st.triggers["DiagnosticsStatusNotification"] = _trigger_diag
    st.triggers["LogStatusNotification"] = _trigger_log


def _flush_timer(st, now):
    st.diag.log.flush()
    st.timers.start("diagflush", now, _FLUSH_MS)


def _timer(st, now):
    d = st.diag
    if d.req is not None and d.job is None:
        _requests().start(st, now)


# A request is ongoing from its answer to its final status, also while it
# waits for its next attempt (N01.FR.12): a trigger then says Uploading.
def _trigger_diag(st, cid):
    d = st.diag
    busy = d.req is not None and d.kind == "diag"
    st.send("DiagnosticsStatusNotification", {"status": "Uploading" if busy else "Idle"})


def _trigger_log(st, cid):
    d = st.diag
    if d.req is not None and d.kind == "log":
        st.send("LogStatusNotification", {"status": "Uploading", "requestId": d.req["id"]})
    else:
        st.send("LogStatusNotification", {"status": "Idle"})
