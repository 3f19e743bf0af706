"""The asyncio runtime: the only place where the core meets the network.

It connects (with backoff), feeds frames to the station, wakes it when its
next deadline comes, writes what it emits, and returns when the station
asks for a reboot. Same code on the MCU (MicroPython asyncio) and the host.

The connection parameters are the station's (`station.link`, security.py):
read before every connect; when the CSMS changes them (link.version moves)
the link is closed and opened again with the new ones. The constructor's
url / cp_id / password only seed the link like a factory tool would.
"""
import asyncio
import binascii
import gc

from evse.link import tls, wsconn
from evse.compat import const, ticks_diff
from evse.link.backoff import Backoff
from evse.link.url import port as urlport
from evse.link.url import split as urlsplit
from evse.link.ws import RxBuffer

_BEAT_MS = const(5000)  # longest timer sleep: the watchdog sees the core tick
_FAULT_MS = const(200)  # pause after a task survived an exception (no hot loop)
# Collect after this many bytes allocated rather than when the heap is
# exhausted: the allocator (first fit) then keeps reusing the low holes, so
# what a big message leaves alive is not scattered over the whole heap
# between the garbage (measured on 32-bit MicroPython: the largest free block
# after a 100-entry SendLocalList at a 200 KB heap 104 KB instead of 2.2 KB).
_GC_EVERY = const(16384)
if hasattr(gc, "threshold"):  # MicroPython (CPython has its own gc); at import: before the core is built
    gc.threshold(_GC_EVERY)


def parse_url(url):
    """ws[s]://host[:port][/path] -> (tls, host, port, path). ValueError says
    what is wrong (the simulator checks its --url with this before starting)."""
    if not url.startswith(("ws://", "wss://")):
        raise ValueError("not a ws:// or wss:// url")
    for ch in url:
        if ch <= " " or ch in "?#@\x7f":  # the station id is appended to the path
            what = "a space" if ch == " " else repr(ch)
            raise ValueError(what + " not allowed: the station id goes after the path")
    scheme, host, port, path, _, _ = urlsplit(url)
    return scheme == "wss", host, urlport(port, scheme), path


def basic_auth(user, password):
    """Security profiles 1, 2: HTTP Basic with the AuthorizationKey's bytes
    (`password`: bytes, or a str taken as UTF-8)."""
    if isinstance(password, str):
        password = password.encode()
    raw = user.encode() + b":" + password
    return "Basic " + binascii.b2a_base64(raw).decode().strip()


class Runtime:
    def __init__(self, station, url=None, cp_id=None, password=None, ssl=None, log=None,
                 backoff_ms=(1000, 60000), rx=None):
        self.st = station
        self.url, self.cp_id, self.password = url, cp_id, password
        self.ssl = ssl  # an explicit TLS context (tests); else built from the link
        if station.link is not None:
            from evse import security
            security.provision(station, url=url, cp_id=cp_id, password=password)
        self._version = None  # link.version of the open connection
        self.log = log or station.log
        self.conn = None
        self._wake = asyncio.Event()  # the timer loop: an input moved a deadline
        # The reconnect backoff has its own event: every timer round pokes
        # _wake (a hardware board polls every 50 ms), so waiting on that one
        # reconnected at the board's poll rate instead of backing off.
        self._retry = asyncio.Event()
        self._backoff = Backoff(base_ms=backoff_ms[0], max_ms=backoff_ms[1])
        self._retry_ms = None  # the pause after the failed connect, once drawn
        # Every link receives into this one buffer (grown to the biggest
        # message, never shrunk): no frame-sized block is needed again later.
        # The device passes one for every core it builds (a Soft reset).
        self._rx = rx or RxBuffer()
        self._stop = False
        self.beat = station.clock.ms()  # tick of the last timer round that completed
        self.faults = 0  # exceptions the runtime's tasks survived
        self._jobs = []  # tasks running the core's jobs

    def alive(self, now, max_ms):
        """True while the timer loop has completed a round in the last max_ms
        (the device's watchdog is fed only then)."""
        return ticks_diff(now, self.beat) < max_ms

    def fault(self, where, e, close=True):
        """A task survived `e`: log it, collect, and (close) drop the link,
        which may be half-written; reconnect and the durable queue recover."""
        self.faults += 1
        gc.collect()
        try:
            self.log("error", where + ": " + repr(e))
        except Exception:  # noqa: BLE001 - even the log may fail out of memory
            pass
        conn = self.conn
        if close and conn is not None and not conn.closed:
            asyncio.create_task(_close_quietly(conn))

    def poke(self):
        """Wake the timer loop: an input may have moved the next deadline."""
        self._wake.set()

    async def flush(self):
        frames = self.st.take_out()
        conn = self.conn
        for f in frames:
            if conn is None or conn.closed:
                break  # unsent CALLs are re-queued by disconnected()
            try:
                if isinstance(f, str):
                    await conn.send(f)
                else:  # a big message: its JSON written out in pieces
                    await conn.send_out(f)
            except OSError:
                break
            except Exception as e:  # noqa: BLE001 - MemoryError framing it: the peer may miss it
                self.fault("send", e)
                break
        self.poke()

    async def run(self):
        """Run until the station asks for a reboot; returns its kind."""
        timer = asyncio.create_task(self._timer_loop())
        try:
            while self.st.reboot is None and not self._stop:
                self._retry_ms = None
                try:
                    await self._session()
                except Exception as e:  # noqa: BLE001 - the runtime never dies
                    self.fault("session", e, close=False)
                if self.st.reboot is None and not self._stop and not self.link_changed():
                    ms = self._retry_ms  # drawn when the connect failed, and told
                    await self._backoff_wait(self._backoff.next_ms() if ms is None else ms)
        finally:
            self._stop = True
            timer.cancel()
            for job in self._jobs:
                job.cancel()
            # Let the cancelled tasks end: until they do they hold the core
            # (a Soft reset builds the next one right after).
            await asyncio.gather(timer, *self._jobs, return_exceptions=True)
            self._jobs = []
        return self.st.reboot

    def drop_link(self):
        """The link goes away at once, without a close handshake (a tool's
        network outage); the runtime reconnects as after any lost link."""
        if self.conn is not None:
            self.conn.abort()

    def stop(self):
        self._stop = True
        self.poke()
        self._retry.set()
        if self.conn is not None:
            asyncio.create_task(self.conn.close())

    def params(self):
        """(host, port, path, headers, ssl context or None) from the link."""
        link = self.st.link
        url, cp_id, pw, profile, ca, cert, key = self.url, self.cp_id, self.password, 0, None, None, None
        if link is not None:
            from evse import security
            url, cp_id, profile = link.url or url, link.cp_id or cp_id, link.profile
            pw, ca, cert, key = security.key_bytes(link), security.trust(link), link.cert, link.key
        if profile >= 2 and url.startswith("ws://"):
            # The profile decides the scheme: TLS to the same host, port and
            # path (a ws:// URL is never a reason to stay unencrypted).
            url = "wss://" + url[5:]
        secure, host, port, path = parse_url(url)
        headers = []
        if pw and profile < 3:  # profiles 1, 2: HTTP Basic; 3: the client certificate
            headers.append(("Authorization", basic_auth(cp_id, pw)))
        ctx = None
        if secure:
            ctx = self.ssl
            if ctx is None:
                # Never an unverified link: without the CSMS root installed
                # client_context refuses (ValueError, logged as the reason
                # the connect failed) rather than trusting whoever answers.
                if profile == 3 and cert:
                    ctx = tls.client_context(ca, cert, key)
                else:
                    ctx = tls.client_context(ca)
        return host, port, path.rstrip("/") + "/" + cp_id, headers, ctx

    def link_changed(self):
        link = self.st.link
        return link is not None and self._version is not None and link.version != self._version

    def _link_done(self):
        """True when the link should close for new parameters: they changed
        and no CALL is in flight either way (answers already flushed)."""
        if not self.link_changed():
            return False
        st = self.st
        st.hold = True  # no new CALL of ours: the one in flight is answered first
        conn = self.conn
        return not st.rpc.busy() and (conn is None or not conn.queued())

    async def _session(self):
        link = self.st.link
        self._version = link.version if link is not None else None
        try:
            host, port, path, headers, ctx = self.params()
            self.conn = await wsconn.connect(
                host, port, path, headers=headers, ssl=ctx,
                server_hostname=host if ctx is not None else None,
                ping_interval_s=self.st.config.get("WebSocketPingInterval"), rx=self._rx)
        except Exception as e:  # DNS, refused, TLS, HTTP 401: all retried
            ms = self._retry_ms = self._backoff.next_ms()
            self.log("warn", "connect failed: %r; next try in %d ms" % (e, ms))
            self.st.connect_failed(self.st.clock.ms(), e, ms)
            return
        self._backoff.reset()
        st = self.st
        st.hold = False
        if link is not None:
            # The certificates that validated this TLS link, for the root in
            # use (DeleteCertificate, M04.FR.06); None without TLS.
            link.peer = self.conn.peer_certs() if ctx is not None else None
        st.connected(st.clock.ms())
        await self.flush()
        try:
            while st.reboot is None and not self._stop:
                text = await self.conn.recv()
                if text is None:
                    break
                self._receive(text)
                text = None
                await self.flush()
                if self._link_done():
                    self.log("info", "link parameters changed: reconnecting")
                    break
        finally:
            conn, self.conn = self.conn, None
            if conn.error is not None:  # the reader died of it (MemoryError mid-frame)
                self.fault("reader", conn.error, close=False)
            try:
                st.disconnected(st.clock.ms())
                st.take_frames()
            except Exception as e:  # noqa: BLE001 - still close the socket below
                self.fault("disconnect", e, close=False)
            await _close_quietly(conn)

    def _receive(self, text):
        st = self.st
        try:
            st.receive(text, st.clock.ms())
        except Exception as e:  # noqa: BLE001 - MemoryError parsing: answer it, go on
            self.fault("receive", e, close=False)
            try:
                st.receive_failed(text, st.clock.ms(), e)
            except Exception as e2:  # noqa: BLE001 - cannot even answer: start over
                self.fault("receive", e2)

    async def _backoff_wait(self, ms):
        """Sleep before the next connect; only a stop or a reboot the core
        asked for (e.g. a firmware install done offline) ends it early."""
        self._retry.clear()
        try:
            await asyncio.wait_for(self._retry.wait(), ms / 1000)
        except asyncio.TimeoutError:
            pass

    async def _sleep_ms(self, ms):
        try:
            await asyncio.wait_for(self._wake.wait(), ms / 1000)
        except asyncio.TimeoutError:
            pass
        self._wake.clear()

    def _start_jobs(self):
        """Start the core's queued jobs (evse/jobs.py) as tasks. Jobs are
        queued while the core handles an input, and every input ends in a
        timer round (flush pokes it), so no polling is needed."""
        from evse import jobs
        st = self.st

        async def one(job):
            await jobs.run(st, job)
            self.poke()  # the next round sends what the job's outcome queued

        self._jobs = [t for t in self._jobs if not t.done()]
        while st.jobs:
            self._jobs.append(asyncio.create_task(one(st.jobs.pop(0))))

    async def _timer_loop(self):
        while not self._stop:
            try:
                ms = await self._timer_round()
            except Exception as e:  # noqa: BLE001 - the timer must outlive any fault
                # Not the link's fault (flush guards its own writes): keep it,
                # a tick that keeps failing must not make the link flap.
                self.fault("timer", e, close=False)
                ms = _FAULT_MS
            await self._sleep_ms(ms)

    async def _timer_round(self):
        st = self.st
        st.tick(st.clock.ms())
        if st.jobs:
            self._start_jobs()
        await self.flush()
        if self.conn is not None and (st.reboot is not None or self._link_done()):
            await self.conn.close()  # ends the reader: run() returns or reconnects
        elif self.conn is None and st.reboot is not None:
            self._retry.set()  # offline: end the backoff wait, run() returns
        self._wake.clear()
        self.beat = st.clock.ms()
        ms = st.next_ms(self.beat)
        return _BEAT_MS if ms is None or ms > _BEAT_MS else ms


async def _close_quietly(conn):
    try:
        await conn.close()
    except Exception:  # noqa: BLE001 - gone either way
        pass
