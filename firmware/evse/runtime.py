"""The asyncio runtime: the only place where the core meets the network.

It connects (with backoff), feeds frames to the station, wakes it when its
next deadline comes, writes what it emits, and returns when the station
asks for a reboot. Same code on the MCU (MicroPython asyncio) and the host.
"""
import asyncio
import binascii

from evse import wsconn
from evse.ws import Backoff


def parse_url(url):
    """ws[s]://host[:port][/path] -> (tls, host, port, path)."""
    tls = url.startswith("wss://")
    if not tls and not url.startswith("ws://"):
        raise ValueError("url must start with ws:// or wss://")
    rest = url[6 if tls else 5:]
    slash = rest.find("/")
    hostport, path = (rest, "/") if slash < 0 else (rest[:slash], rest[slash:])
    host, port = hostport, 443 if tls else 80
    if hostport.startswith("["):  # [v6]:port
        end = hostport.find("]")
        host = hostport[1:end]
        if hostport[end + 1:end + 2] == ":":
            port = int(hostport[end + 2:])
    elif ":" in hostport:
        host, p = hostport.rsplit(":", 1)
        port = int(p)
    return tls, host, port, path


def basic_auth(user, password):
    """Security profile 1: HTTP Basic with the AuthorizationKey."""
    raw = (user + ":" + password).encode()
    return "Basic " + binascii.b2a_base64(raw).decode().strip()


class Runtime:
    def __init__(self, station, url, cp_id, password=None, ssl=None, log=None,
                 backoff_ms=(1000, 60000)):
        self.st = station
        tls, self.host, self.port, path = parse_url(url)
        self.path = path.rstrip("/") + "/" + cp_id
        self.cp_id = cp_id
        self.password = password
        self.ssl = ssl if ssl is not None else (True if tls else None)
        self.log = log or station.log
        self.conn = None
        self._wake = asyncio.Event()
        self._backoff = Backoff(base_ms=backoff_ms[0], max_ms=backoff_ms[1])
        self._stop = False

    def poke(self):
        """Wake the timer loop: an input may have moved the next deadline."""
        self._wake.set()

    async def flush(self):
        frames = self.st.take_frames()
        conn = self.conn
        for f in frames:
            if conn is None or conn.closed:
                break  # unsent CALLs are re-queued by disconnected()
            try:
                await conn.send(f)
            except OSError:
                break
        self.poke()

    async def run(self):
        """Run until the station asks for a reboot; returns its kind."""
        timer = asyncio.create_task(self._timer_loop())
        try:
            while self.st.reboot is None and not self._stop:
                await self._session()
                if self.st.reboot is None and not self._stop:
                    await self._sleep_ms(self._backoff.next_ms())
        finally:
            self._stop = True
            timer.cancel()
        return self.st.reboot

    def stop(self):
        self._stop = True
        self.poke()
        if self.conn is not None:
            asyncio.create_task(self.conn.close())

    async def _session(self):
        headers = []
        if self.password:
            headers.append(("Authorization", basic_auth(self.cp_id, self.password)))
        try:
            self.conn = await wsconn.connect(
                self.host, self.port, self.path, headers=headers, ssl=self.ssl,
                server_hostname=self.host if self.ssl else None,
                ping_interval_s=self.st.config.get("WebSocketPingInterval"))
        except Exception as e:  # DNS, refused, TLS, HTTP 401: all retried
            self.log("warn", "connect failed: " + repr(e))
            return
        self._backoff.reset()
        st = self.st
        st.connected(st.clock.ms())
        await self.flush()
        try:
            while st.reboot is None and not self._stop:
                text = await self.conn.recv()
                if text is None:
                    break
                st.receive(text, st.clock.ms())
                await self.flush()
        finally:
            conn, self.conn = self.conn, None
            st.disconnected(st.clock.ms())
            st.take_frames()
            try:
                await conn.close()
            except Exception:
                pass

    async def _sleep_ms(self, ms):
        try:
            await asyncio.wait_for(self._wake.wait(), ms / 1000)
        except asyncio.TimeoutError:
            pass
        self._wake.clear()

    async def _timer_loop(self):
        st = self.st
        while not self._stop:
            st.tick(st.clock.ms())
            await self.flush()
            if st.reboot is not None and self.conn is not None:
                await self.conn.close()  # ends the reader: run() returns
            self._wake.clear()
            ms = st.next_ms(st.clock.ms())
            await self._sleep_ms(60000 if ms is None else ms)
