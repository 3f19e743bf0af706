"""Per-message work of the station core on a microcontroller core.

Runs tools/mcu_bench.py inside MicroPython and prints its table:
  .venv/bin/python tools/bench_mcu.py --qemu "qemu-system-arm -machine mps2-an385 -nographic
        -monitor null -semihosting -icount shift=0 -kernel firmware.elf"
  .venv/bin/python tools/bench_mcu.py --micropython /path/to/micropython   (a unix port)
With --qemu the program goes in over the raw REPL (the core frozen into the
firmware, docs/PERFORMANCE.md says how it is built) and, with -icount
shift=0, one microsecond of ticks_us() is 1,000 Cortex-M instructions; the
table is in instructions. With --micropython the figures are microseconds
of the host. Median of 5 per message.
"""
from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PROGRAM = os.path.join(HERE, "mcu_bench.py")
GOALS = {"GetConfiguration, one key": 200_000, "GetConfiguration, all keys": 1_500_000,
         "TriggerMessage(Heartbeat), to the Heartbeat out": 500_000,
         "RemoteStartTransaction, to StartTransaction out and its answers in": 2_500_000,
         "RemoteStopTransaction, to StopTransaction out and its answers in": 2_500_000,
         "an idle second of ticks": 20_000}


def _read_until(stream, token: bytes) -> bytes:
    buf = b""
    while not buf.endswith(token):
        c = stream.read(1)
        if not c:
            raise EOFError(buf[-400:].decode(errors="replace"))
        buf += c
    return buf


def run_raw_repl(cmd: str, src: bytes) -> str:
    """Run `src` on the MicroPython behind `cmd`'s stdio (raw REPL: Ctrl-A,
    the program, Ctrl-D; the board answers OK, stdout, 0x04, stderr, 0x04)."""
    p = subprocess.Popen(shlex.split(cmd), stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
    assert p.stdin is not None and p.stdout is not None
    try:
        p.stdin.write(b"\r\x03\x03\x01")
        _read_until(p.stdout, b"raw REPL; CTRL-B to exit\r\n>")
        for i in range(0, len(src), 256):  # the UART's receive buffer is small
            p.stdin.write(src[i:i + 256])
            time.sleep(0.01)
        p.stdin.write(b"\x04")
        _read_until(p.stdout, b"OK")
        out = _read_until(p.stdout, b"\x04")[:-1].decode(errors="replace")
        err = _read_until(p.stdout, b"\x04")[:-1].decode(errors="replace")
    finally:
        p.kill()
        p.wait()
    if err.strip():
        raise SystemExit("MicroPython raised:\n" + err)
    return out


def rows(out: str) -> list[tuple[str, int]]:
    got = [line.split("|")[1:] for line in out.splitlines() if line.startswith("ROW|")]
    if "DONE" not in out:
        raise SystemExit("no table from MicroPython:\n" + out)
    return [(name, int(us)) for name, us in got]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--qemu", metavar="CMD", help="qemu command line booting the firmware (-icount shift=0)")
    g.add_argument("--micropython", metavar="PATH", help="a MicroPython executable (unix port)")
    a = ap.parse_args()
    if a.qemu:
        out = run_raw_repl(a.qemu, open(PROGRAM, "rb").read())
        unit, scale = "Cortex-M instructions", 1000
    else:
        out = subprocess.run([a.micropython, PROGRAM], capture_output=True, text=True, check=True).stdout
        unit, scale = "host microseconds", 1
    print(f"| message | {unit} (median of 5) | goal |")
    print("|---|---:|---:|")
    for name, us in rows(out):
        goal = GOALS.get(name)
        v = us * scale
        shown = f"{v / 1e6:.2f} M" if scale > 1 and v >= 1e6 else f"{v / 1e3:.0f} k" if scale > 1 else f"{v} us"
        gs = (f"{goal / 1e6:g} M" if goal >= 1e6 else f"{goal / 1e3:g} k") if goal and scale > 1 else "-"
        print(f"| {name} | {shown} | <= {gs} |" if gs != "-" else f"| {name} | {shown} | - |")


if __name__ == "__main__":
    main()
