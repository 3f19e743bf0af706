# The station's own work per message, run INSIDE MicroPython (any port):
# the sans-IO core on the simulator board, littlefs on a RAM block device
# where the port has one (else a temp directory), and a scripted CSMS in
# the same VM whose JSON work is counted too (it stands for the socket).
#   micropython tools/mcu_bench.py           (unix port, from a checkout)
#   tools/bench_mcu.py --qemu "qemu-system-arm ..."   (frozen core, raw REPL)
# Prints one line per message: the median of 5 of time.ticks_us(); under
# qemu with -icount shift=0 one microsecond is 1,000 instructions.
import gc
import json
import sys
import time

try:
    import evse  # noqa: F401  frozen into the firmware
except ImportError:  # a checkout: tools/.. and firmware/ on the path
    _here = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
    sys.path.insert(0, _here + "/..")
    sys.path.insert(0, _here + "/../firmware")

from boards.sim.board import SimBoard  # noqa: E402
from evse.wire import rpc  # noqa: E402
from evse.compat import ticks_add  # noqa: E402
from evse.station import Station  # noqa: E402
from evse.store.storage import FileStorage  # noqa: E402
from evse.timestamp import format_utc  # noqa: E402

RUNS = 5
_BEAT_MS = 5000  # the runtime's longest timer sleep


class RamDisk:
    """A block device in RAM for littlefs (the extended interface)."""

    def __init__(self, blocks, size=4096):
        self.size = size
        self.data = bytearray(blocks * size)
        self.blocks = blocks
        self.ff = b"\xff" * size

    def readblocks(self, n, buf, off=0):
        a = n * self.size + off
        buf[:] = memoryview(self.data)[a:a + len(buf)]

    def writeblocks(self, n, buf, off=0):
        a = n * self.size + off
        self.data[a:a + len(buf)] = buf

    def ioctl(self, op, arg):
        if op == 4:
            return self.blocks
        if op == 5:
            return self.size
        if op == 6:  # erase
            a = arg * self.size
            self.data[a:a + self.size] = self.ff
        return 0


def storage_root():
    """littlefs on a RAM disk where the port has it, else a host directory."""
    import os
    try:
        import vfs
        fs = vfs.VfsLfs2
    except (ImportError, AttributeError):
        return "/tmp/mcu-bench-%d" % time.ticks_ms()
    disk = RamDisk(128)
    fs.mkfs(disk)
    vfs.mount(fs(disk), "/flash")
    os.chdir("/flash")
    return "/flash/data"


class Clock:
    def __init__(self):
        self._ms = 0
        self._unix = 1767225600

    def ms(self):
        return self._ms

    def unix(self):
        return self._unix + self._ms // 1000

    def set_unix(self, t):
        self._unix = int(t) - self._ms // 1000

    def advance(self, ms):
        self._ms = ticks_add(self._ms, ms)


class Csms:
    """Answers the station's CALLs and sends it CALLs, all as JSON text."""

    def __init__(self, st, clock, interval=3600):
        self.st = st
        self.clock = clock
        self.interval = interval  # HeartbeatInterval given at boot
        self.n = 0
        self.tx = 0
        self.seen = []  # actions of the station's CALLs since the mark

    def text(self, f):
        if isinstance(f, str):
            return f
        parts = []
        f.dump(parts.append)  # what the transport writes, piece by piece
        return "".join(parts)

    def time(self):
        return format_utc(1767225600 + self.clock.ms() // 1000)  # the CSMS's true time

    def answer(self, action, p):
        if action == "BootNotification":
            return {"status": "Accepted", "currentTime": self.time(), "interval": self.interval}
        if action == "Heartbeat":
            return {"currentTime": self.time()}
        if action == "StartTransaction":
            self.tx += 1
            return {"transactionId": self.tx, "idTagInfo": {"status": "Accepted"}}
        if action in ("Authorize", "StopTransaction"):
            return {"idTagInfo": {"status": "Accepted"}}
        return {}

    def pump(self, stop=None):
        """Deliver what the station sent (answering its CALLs) until it is
        quiet, or until the station has received the answer to `stop`."""
        st = self.st
        while True:
            frames = st.take_out()
            if not frames:
                return None
            for f in frames:
                m = json.loads(self.text(f))
                if m[0] == 2:
                    self.seen.append(m[2])
                    st.receive(json.dumps([3, m[1], self.answer(m[2], m[3])]), self.clock.ms())
                    st.tick(self.clock.ms())  # every input ends in a timer round
                    if m[2] == stop:
                        return m
                else:
                    self.last = m

    def call(self, action, payload, stop=None):
        self.n += 1
        self.seen = []
        self.last = None
        st = self.st
        st.receive(json.dumps([2, "c%d" % self.n, action, payload]), self.clock.ms())
        st.tick(self.clock.ms())
        return self.pump(stop)


def timed(fn):
    xs = []
    for _ in range(RUNS):
        gc.collect()
        t0 = time.ticks_us()
        fn()
        xs.append(time.ticks_diff(time.ticks_us(), t0))
    xs.sort()
    return xs[RUNS // 2]


def main():
    clock = Clock()
    board = SimBoard()
    st = Station(board=board, clock=clock, storage=FileStorage(storage_root()))
    cs = Csms(st, clock)
    st.connected(clock.ms())
    cs.pump()
    board.command("plug", [])
    st.tick(clock.ms())
    cs.pump()

    def get_one():
        cs.call("GetConfiguration", {"key": ["HeartbeatInterval"]})

    def get_all():
        cs.call("GetConfiguration", {})

    def trigger():
        cs.call("TriggerMessage", {"requestedMessage": "Heartbeat"}, stop="Heartbeat")
        cs.pump()

    stops = []

    def remote_start():
        cs.call("RemoteStartTransaction", {"idTag": "AA", "connectorId": 1}, stop="StartTransaction")
        stops.append(None)

    def remote_stop():
        cs.call("RemoteStopTransaction", {"transactionId": cs.tx}, stop="StopTransaction")

    def idle():
        # The runtime's timer rounds over 60 s with nothing to do, per second.
        t0 = time.ticks_us()
        end = clock.ms() + 60000
        while clock.ms() < end:
            ms = st.next_ms(clock.ms())
            ms = _BEAT_MS if ms is None or ms > _BEAT_MS else max(ms, 1)
            clock.advance(min(ms, end - clock.ms()))
            st.tick(clock.ms())
            cs.pump()
        return time.ticks_diff(time.ticks_us(), t0) // 60

    rows = [("GetConfiguration, one key", timed(get_one)),
            ("GetConfiguration, all keys", timed(get_all)),
            ("TriggerMessage(Heartbeat), to the Heartbeat out", timed(trigger))]
    starts, stops_ = [], []
    for _ in range(RUNS):
        gc.collect()
        t0 = time.ticks_us()
        remote_start()
        starts.append(time.ticks_diff(time.ticks_us(), t0))
        cs.pump()
        clock.advance(1000)
        gc.collect()
        t0 = time.ticks_us()
        remote_stop()
        stops_.append(time.ticks_diff(time.ticks_us(), t0))
        cs.pump()
        clock.advance(1000)
    starts.sort()
    stops_.sort()
    rows.append(("RemoteStartTransaction, to StartTransaction out and its answers in", starts[RUNS // 2]))
    rows.append(("RemoteStopTransaction, to StopTransaction out and its answers in", stops_[RUNS // 2]))
    idles = sorted(idle() for _ in range(RUNS))
    rows.append(("an idle second of ticks", idles[RUNS // 2]))
    assert rpc.CALL == 2
    print("MCUBENCH", sys.platform, sys.implementation.name)
    for name, us in rows:
        print("ROW|%s|%d" % (name, us))
    print("DONE")


if __name__ == "__main__":
    main()
