"""Flash writes of the station per hour, and what they mean for a 4 MB
littlefs partition.

The sans-IO core on the simulator board, a scripted CSMS (tools/mcu_bench.py)
and a virtual clock: one hour idle (HeartbeatInterval 300), and a one-hour
charging session (RemoteStart to RemoteStop, EV plugged throughout) at
MeterValueSampleInterval 60 and 1. Every file the core opens for writing,
every byte it writes and every rename is counted (builtins.open and os.rename
wrapped); per file name the count of writes.

Wear model (a lower bound on the partition's life): littlefs with 4 KB
blocks; every write (open for writing ... close: a littlefs commit) and every
rename costs one whole block erase, plus one per further 4 KB written; and
littlefs spreads erases evenly over all 1,024 blocks of the partition
(dynamic wear levelling over free blocks; the station's files take a few
dozen, so nearly all take part). Years = 1,024 x 100,000 / (erases per hour
x 8,766). Real commits of small files append to a metadata block instead of
erasing one, so the life is longer than this.
  .venv/bin/python tools/flashwear.py [--files]
"""
from __future__ import annotations

import argparse
import builtins
import collections
import os
import shutil
import sys
import tempfile
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [os.path.join(ROOT, "firmware"), ROOT, HERE]

from boards.sim.board import SimBoard  # noqa: E402
from evse.station import Station  # noqa: E402
from evse.store.storage import FileStorage  # noqa: E402
from mcu_bench import Clock, Csms  # noqa: E402

_REAL = (builtins.open, os.rename)
BLOCK = 4096
BLOCKS = 4 * 1024 * 1024 // BLOCK
CYCLES = 100_000
HOURS_PER_YEAR = 8766


class Counter:
    """Writes under `root`: per file name, writes (commits) and bytes; renames."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.writes: collections.Counter[str] = collections.Counter()
        self.bytes: collections.Counter[str] = collections.Counter()
        self.renames = 0
        self.erases = 0
        self.on = False

    def name(self, path: str) -> str:
        base = os.path.basename(str(path))
        if base.endswith(".tmp"):
            base = base[:-4]
        return "journal " + os.path.basename(os.path.dirname(str(path))) if base.endswith(".log") else base

    def install(self) -> None:
        real_open, real_rename = _REAL
        me = self

        class Tracked:
            def __init__(self, f: Any, key: str) -> None:
                self.f, self.key, self.n = f, key, 0

            def write(self, b: Any) -> int:
                self.n += len(b)
                return self.f.write(b)

            def close(self) -> None:
                self.f.close()
                if me.on:
                    me.writes[self.key] += 1
                    me.bytes[self.key] += self.n
                    me.erases += 1 + max(0, self.n - 1) // BLOCK

            def __enter__(self) -> "Tracked":
                return self

            def __exit__(self, *a: Any) -> None:
                self.close()

            def __getattr__(self, k: str) -> Any:
                return getattr(self.f, k)

        def open_(path: Any, mode: str = "r", *a: Any, **kw: Any) -> Any:
            f = real_open(path, mode, *a, **kw)
            if str(path).startswith(me.root) and any(c in mode for c in "wax+"):
                return Tracked(f, me.name(path))
            return f

        def rename_(a: Any, b: Any) -> None:
            real_rename(a, b)
            if me.on and str(b).startswith(me.root):
                me.renames += 1
                me.erases += 1

        builtins.open = open_  # type: ignore[assignment]
        os.rename = rename_  # type: ignore[assignment]


def run_for(st: Station, cs: Csms, clock: Clock, ms: int) -> None:
    end = clock.ms() + ms
    while clock.ms() < end:
        n = st.next_ms(clock.ms())
        n = 1000 if n is None or n > 1000 else max(n, 1)
        clock.advance(min(n, end - clock.ms()))
        st.tick(clock.ms())
        cs.pump()


def scenario(counter: Counter, interval: int | None) -> None:
    """One hour: idle (interval None) or a charging session sampled every `interval` s."""
    data = tempfile.mkdtemp(prefix="flashwear-", dir=counter.root)
    clock = Clock()
    board = SimBoard()
    st = Station(board=board, clock=clock, storage=FileStorage(data))
    cs = Csms(st, clock, interval=300)
    st.connected(clock.ms())
    cs.pump()
    if interval is not None:
        cs.call("ChangeConfiguration", {"key": "MeterValueSampleInterval", "value": str(interval)})
        board.command("plug", [])
        st.tick(clock.ms())
        cs.pump()
    run_for(st, cs, clock, 10000)  # settle: boot-time writes are not the hour's
    counter.on = True
    if interval is None:
        run_for(st, cs, clock, 3600 * 1000)
    else:
        cs.call("RemoteStartTransaction", {"idTag": "AA", "connectorId": 1}, stop="StartTransaction")
        cs.pump()
        run_for(st, cs, clock, 3600 * 1000)
        cs.call("RemoteStopTransaction", {"transactionId": cs.tx}, stop="StopTransaction")
        cs.pump()
    counter.on = False
    shutil.rmtree(data, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--files", action="store_true", help="writes per file name too")
    a = ap.parse_args()
    root = tempfile.mkdtemp(prefix="flashwear-")
    rows = []
    try:
        for label, interval in (("idle", None), ("charging, MeterValueSampleInterval 60", 60),
                                ("charging, MeterValueSampleInterval 1", 1)):
            c = Counter(root)
            c.install()
            try:
                scenario(c, interval)
            finally:
                builtins.open, os.rename = _REAL  # type: ignore[assignment]
            rows.append((label, c))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print("| one hour | files written | bytes written | renames | erases (model) | years of a 4 MB partition |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, c in rows:
        w, b = sum(c.writes.values()), sum(c.bytes.values())
        years = BLOCKS * CYCLES / (c.erases * HOURS_PER_YEAR) if c.erases else float("inf")
        print(f"| {label} | {w:,} | {b:,} | {c.renames:,} | {c.erases:,} | "
              f"{'no wear' if years == float('inf') else f'{years:,.0f}'} |")
    if a.files:
        for label, c in rows:
            print(f"{label}: " + ", ".join(f"{k} {n} writes / {c.bytes[k]:,} B" for k, n in c.writes.most_common()))


if __name__ == "__main__":
    main()
