"""The station on a real MicroPython binary against the dev CSMS (issue 18).

    MICROPY=/path/to/micropython .venv/bin/python tools/mcucheck.py [--quick]

Runs tools/mcu_station.py under `MICROPY -X heapsize=N` against
tools/csms.py over ws:// and wss:// on loopback, drives each workload
through the CSMS (the station's own DataTransfer vendor "mcucheck" plugs,
swipes and reports its heap) and bisects the smallest heap each workload
completes in: every CALL answered as expected, no fault the runtime had to
survive, no error logged, no reconnect. Figures are gc.mem_alloc() (the
whole Python heap, the interpreter's own objects included); meaningful as
MCU figures on a 32-bit build (it checks sys.maxsize) with the core frozen.
Prints the issue's table (`make mcu-check MICROPY=...`).
"""
from __future__ import annotations

import argparse
import asyncio
import datetime
import ipaddress
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Callable

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import csms as csms_mod  # noqa: E402
from ocpp.v16 import call  # noqa: E402

KB = 1024
CP = "MCU1"
TAG = "04A2B3C4"
DRIVER = os.path.join(HERE, "mcu_station.py")


class Fail(Exception):
    """The workload did not complete at this heap."""


# ---- TLS for the CSMS ------------------------------------------------------
def make_pki(d: str) -> tuple[str, ssl.SSLContext]:
    """(CA PEM path, server context) for 127.0.0.1, EC P-256."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def cert(key: Any, cn: str, issuer: Any, issuer_cn: str, ca: bool) -> bytes:
        b = (x509.CertificateBuilder()
             .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
             .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_cn)]))
             .public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(hours=1))
             .not_valid_after(now + datetime.timedelta(days=2))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if not ca:
            b = b.add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        return b.sign(issuer, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)

    ca_k, srv_k = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    paths = {n: os.path.join(d, n) for n in ("ca.pem", "srv.pem", "srv.key")}
    with open(paths["ca.pem"], "wb") as f:
        f.write(cert(ca_k, "mcucheck root", ca_k, "mcucheck root", True))
    with open(paths["srv.pem"], "wb") as f:
        f.write(cert(srv_k, "127.0.0.1", ca_k, "mcucheck root", False))
    with open(paths["srv.key"], "wb") as f:
        f.write(srv_k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(paths["srv.pem"], paths["srv.key"])
    return paths["ca.pem"], ctx


# ---- the CSMS in a thread --------------------------------------------------
class Csms:
    def __init__(self, tls: ssl.SSLContext | None) -> None:
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.csms = csms_mod.Csms(tags={TAG: "Accepted"})
        self.port = self.run(self.csms.start(ssl=tls))
        self.url = "%s://127.0.0.1:%d/ocpp" % ("wss" if tls else "ws", self.port)

    def run(self, coro: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, request: Any, timeout: float = 20) -> Any:
        try:
            r = self.run(self.csms.call(CP, request, timeout), timeout + 1)
        except Exception as e:  # noqa: BLE001 - CALLERROR, timeout, link gone
            raise Fail("%s: %r" % (type(request).__name__, e)) from None
        if r is None:  # the ocpp package's answer to a CALLERROR
            raise Fail(type(request).__name__ + ": CALLERROR")
        return r

    def calls(self, action: str) -> list[dict[str, Any]]:
        return self.csms.calls(action, CP)

    def connects(self) -> int:
        return len(self.csms.peers.get(CP, []))

    def reset(self) -> None:
        self.csms.log.clear()
        self.csms.peers.clear()

    def stop(self) -> None:
        self.run(self.csms.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)


def _env() -> dict[str, str]:
    """Frozen modules first, then firmware/ (main.py is a file on the device)."""
    return dict(os.environ, MICROPYPATH=".frozen:" + os.path.join(ROOT, "firmware"))


# ---- one run ---------------------------------------------------------------
class Run:
    """One driver process at one heap size, and the CSMS's view of it."""

    def __init__(self, cs: Csms, micropy: str, heap: int, kind: str, ca: str | None,
                 lib: str | None = None) -> None:
        self.cs = cs
        self.data = tempfile.mkdtemp(prefix="mcucheck-")
        cs.reset()
        args = [micropy, "-X", "heapsize=%d" % heap, DRIVER, kind, cs.url, self.data, ca or "-"]
        if lib:
            args.append(lib)
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     cwd=ROOT, env=_env())
        self.lines: list[str] = []
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()
        self.figures: dict[str, int] = {}

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait(self, pred: Callable[[], Any], what: str, timeout: float = 30) -> Any:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            v = pred()
            if v:
                return v
            if self.proc.poll() is not None:
                time.sleep(0.2)  # the last lines
                raise Fail("station exited (%s) waiting for %s" % (self.proc.returncode, what))
            self.check()
            time.sleep(0.02)
        raise Fail("timed out waiting for " + what)

    def check(self) -> None:
        for line in self.lines:
            if line.startswith("LOG error") or "MemoryError" in line or line.startswith("Traceback"):
                raise Fail(line)

    def mcu(self, msg: str, data: str | None = None) -> str:
        r = self.cs.call(call.DataTransfer(vendor_id="mcucheck", message_id=msg, data=data))
        if r.status != "Accepted":
            raise Fail("%s %s: %s %s" % (msg, data, r.status, r.data))
        return r.data or ""

    def mem(self, stage: str) -> int:
        alloc, _free, faults = (int(x) for x in self.mcu("mem").split())
        if faults:
            raise Fail("%d faults survived" % faults)
        self.figures[stage] = alloc
        return alloc

    def booted(self, boots: int = 1) -> None:
        self.wait(lambda: len(self.cs.calls("BootNotification")) >= boots and CP in self.cs.csms.stations,
                  "BootNotification")
        self.wait(lambda: len(self.cs.calls("StatusNotification")) >= 2 * boots, "StatusNotification")
        time.sleep(0.3)  # the boot's last writes

    def answers(self) -> bool:
        """The station still answers the CSMS (within 15 s, over any link)."""
        try:
            self.wait(lambda: CP in self.cs.csms.stations, "the link", 15)
            self.mcu("info")
            return True
        except Fail:
            return False

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self._t.join(5)
        shutil.rmtree(self.data, ignore_errors=True)


# ---- workloads -------------------------------------------------------------
def local_list(n: int) -> Any:
    entries = [{"idTag": "TAG%017d" % i, "idTagInfo": {"status": "Accepted", "expiryDate": "2030-01-01T00:00:00Z",
                                                        "parentIdTag": "GROUP%015d" % (i % 5)}} for i in range(n)]
    return call.SendLocalList(list_version=1, update_type="Full", local_authorization_list=entries)


def profile(k: int, periods: int = 192) -> Any:
    sched = {"chargingRateUnit": "A", "chargingSchedulePeriod": [
        {"startPeriod": i * 60, "limit": 6 + i % 20} for i in range(periods)]}
    prof = {"chargingProfileId": k, "stackLevel": k - 1, "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Relative", "chargingSchedule": sched}
    return call.SetChargingProfile(connector_id=1, cs_charging_profiles=prof)


def _accepted(r: Any, what: str) -> None:
    if r.status != "Accepted":
        raise Fail("%s: %s" % (what, r.status))


def w_boot(r: Run) -> None:
    r.booted()
    r.mem("after boot")


def _session(r: Run, samples: int = 0) -> None:
    r.mcu("board", "plug")
    r.mcu("board", "card " + TAG)
    r.wait(lambda: r.cs.calls("StartTransaction"), "StartTransaction")
    if samples:
        r.mcu("samples", str(samples))
    r.mcu("board", "card " + TAG)
    stop = r.wait(lambda: r.cs.calls("StopTransaction"), "StopTransaction")[0]
    if samples and len(stop.get("transactionData") or []) < samples:
        raise Fail("StopTransaction with %d meter values" % len(stop.get("transactionData") or []))
    r.mcu("board", "unplug")
    time.sleep(0.3)


def w_session(r: Run) -> None:
    r.booted()
    _session(r)
    r.mem("after session")


def w_cert(r: Run) -> None:
    r.booted()
    _accepted(r.cs.call(local_list(100)), "SendLocalList")
    for k in (1, 2, 3):
        _accepted(r.cs.call(profile(k)), "SetChargingProfile %d" % k)
    _session(r, samples=20)
    r.mem("after workload")


def _w_list(n: int) -> Callable[[Run], None]:
    def w(r: Run) -> None:
        r.booted()
        _accepted(r.cs.call(local_list(n)), "SendLocalList %d" % n)
        r.mem("after list")
    return w


def w_device(r: Run) -> None:
    r.booted()
    r.mem("after boot")
    _accepted(r.cs.call(call.Reset(type="Soft")), "Reset Soft")
    r.booted(2)
    _accepted(r.cs.call(call.Reset(type="Hard")), "Reset Hard")
    r.booted(3)
    r.mem("after resets")


WORKLOADS: dict[str, tuple[str, Callable[[Run], None]]] = {
    "boot": ("sim", w_boot),
    "session": ("sim", w_session),
    "device": ("device", w_device),
    "cert": ("sim", w_cert),
    "list0": ("sim", _w_list(0)),
    "list100": ("sim", _w_list(100)),
}


class Checker:
    def __init__(self, micropy: str, verbose: bool = False) -> None:
        self.micropy = micropy
        self.verbose = verbose
        self.tmp = tempfile.mkdtemp(prefix="mcucheck-pki-")
        self.ca, tls = make_pki(self.tmp)
        self.cs = {"ws": Csms(None), "wss": Csms(tls)}

    def attempt(self, name: str, transport: str, heap: int, lib: str | None = None) -> tuple[bool, Run]:
        kind, fn = WORKLOADS[name]
        r = Run(self.cs[transport], self.micropy, heap, kind, self.ca if transport == "wss" else None, lib)
        ok = True
        try:
            fn(r)
            r.check()
            if r.cs.connects() != {"device": 3}.get(name, 1):
                raise Fail("%d connects" % r.cs.connects())
        except Fail as e:
            ok = False
            r.figures["why"] = str(e)  # type: ignore[assignment]
        finally:
            try:
                r.mcu("exit") if ok else None
            except Fail:
                pass
            r.close()
        if self.verbose:
            print("  %-8s %-3s heap %7d: %s %s" % (name, transport, heap, "ok" if ok else "FAIL",
                                                   r.figures.get("why", "")), file=sys.stderr)
            if not ok:
                print("\n".join("    | " + x for x in r.lines[-8:]), file=sys.stderr)
        return ok, r

    def smallest(self, name: str, transport: str, lo: int = 16 * KB, hi: int = 512 * KB,
                 step: int = 2 * KB) -> int | None:
        """Smallest heap (to `step`) the workload completes in; None if not in hi."""
        ok, _ = self.attempt(name, transport, hi)
        if not ok:
            return None
        while hi - lo > step:
            mid = (lo + hi) // 2 // step * step
            if self.attempt(name, transport, mid)[0]:
                hi = mid
            else:
                lo = mid
        return hi

    def inject(self, name: str, transport: str, heaps: list[int]) -> list[tuple[int, str, str]]:
        """The workload in heaps too small for it: a real MemoryError at
        whichever allocation fails first (frames in and out, the streamed
        list and profiles, handlers, the stop card, storage). Each row is
        (heap, what failed, what the station did next): "answers" when it
        still answers the CSMS afterwards (over the link it kept or a new
        one), "exited" when the exception left the core (the device then
        fails safe and resets, main.py)."""
        rows = []
        kind, fn = WORKLOADS[name]
        for heap in heaps:
            r = Run(self.cs[transport], self.micropy, heap, kind, self.ca if transport == "wss" else None)
            why, after = "completed", "answers"
            try:
                fn(r)
                r.check()
            except Fail as e:
                why = str(e)[:90]
                if not r.answers():
                    after = "exited" if r.proc.poll() is not None else "silent"
            finally:
                r.close()
            rows.append((heap, why, after))
            if self.verbose:
                print("  inject %s %s %d: %s -> %s" % (name, transport, heap, why, after), file=sys.stderr)
        return rows

    def imports(self, lib: str | None = None) -> int:
        p = subprocess.run([self.micropy, DRIVER, "imports", "-", "-", "-"] + ([lib] if lib else []),
                           capture_output=True, text=True, cwd=ROOT, timeout=60, env=_env())
        got = [int(x.split()[2]) for x in p.stdout.splitlines() if x.startswith("MEM imports")]
        if not got:
            raise RuntimeError(p.stdout + p.stderr)
        start = [int(x.split()[2]) for x in p.stdout.splitlines() if x.startswith("MEM start")][0]
        return got[0] + start

    def stop(self) -> None:
        for c in self.cs.values():
            c.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


def check_32bit(micropy: str) -> tuple[bool, str]:
    p = subprocess.run([micropy, "-c", "import sys; print(sys.maxsize == 2**31 - 1, sys.version)"],
                       capture_output=True, text=True, timeout=30)
    out = p.stdout.strip()
    return out.startswith("True"), out


def mpy_lib(d: str) -> str:
    """The core and boards compiled to .mpy (tools/build.py), as a /lib."""
    import build
    build.compile_all(d, quiet=True)
    return d


def table(ch: Checker, quick: bool = False) -> list[tuple[str, str]]:
    rows = []
    k = lambda n: "%.1f KB" % (n / KB)  # noqa: E731
    sm = lambda n: "-" if n is None else "%d KB" % (n // KB)  # noqa: E731
    rows.append(("heap after imports, frozen", k(ch.imports())))
    boots = [ch.attempt("boot", t, 1024 * KB)[1].figures.get("after boot") for t in ("ws", "wss")]
    rows.append(("after boot, ws / wss", " / ".join(k(b) if b else "-" for b in boots)))
    names = [("boot + one session", "session"), ("device path with a Soft and a Hard reset", "device"),
             ("certificate-limit workload", "cert")]
    for label, name in names:
        rows.append(("smallest heap, %s, ws / wss" % label,
                     " / ".join(sm(ch.smallest(name, t)) for t in ("ws", "wss"))))
    l0, l100 = ch.smallest("list0", "wss"), ch.smallest("list100", "wss")
    rows.append(("SendLocalList 100 entries: smallest heap above 0 entries (wss)",
                 "-" if l0 is None or l100 is None else "+%d KB" % ((l100 - l0) // KB)))
    if not quick:
        with tempfile.TemporaryDirectory() as d:
            lib = mpy_lib(d)
            ok, r = ch.attempt("boot", "wss", 1024 * KB, lib)
            rows.append(("`.mpy` in /lib (not frozen): after imports / after boot (wss)",
                         k(ch.imports(lib)) + " / " + (k(r.figures["after boot"]) if ok else "-")))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--micropython", default=os.environ.get("MICROPY"), help="the binary (default $MICROPY)")
    ap.add_argument("--workload", choices=sorted(WORKLOADS), help="bisect only this one")
    ap.add_argument("--transport", choices=("ws", "wss"), default="wss")
    ap.add_argument("--heap", type=int, help="one run at this heap (bytes) instead of a bisection")
    ap.add_argument("--quick", action="store_true", help="skip the .mpy row")
    ap.add_argument("--inject", action="store_true",
                    help="with --workload: run it in heaps from --heap down (4 KB steps, 12 runs), report what failed")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args(argv)
    if not a.micropython:
        print("mcucheck: no MicroPython binary: give MICROPY=/path/to/micropython", file=sys.stderr)
        return 2
    is32, ver = check_32bit(a.micropython)
    print("MicroPython: %s%s" % (ver, "" if is32 else "  (NOT 32-bit: sys.maxsize != 2**31-1)"))
    ch = Checker(a.micropython, a.verbose)
    try:
        if a.workload and a.inject:
            top = a.heap or ch.smallest(a.workload, a.transport) or 0
            print("| heap | MemoryError at | then |\n|---:|---|---|")
            for heap, why, after in ch.inject(a.workload, a.transport, [top - 4 * KB * i for i in range(1, 13)]):
                print("| %d KB | %s | %s |" % (heap // KB, why.replace("|", "/"), after), flush=True)
            return 0
        if a.workload and a.heap:
            ok, r = ch.attempt(a.workload, a.transport, a.heap)
            print(a.workload, a.transport, a.heap, "ok" if ok else "FAIL", r.figures)
            print("\n".join(r.lines[-30:]))
            return 0 if ok else 1
        if a.workload:
            print(a.workload, a.transport, "smallest heap:", ch.smallest(a.workload, a.transport))
            return 0
        print("| figure | measured |\n|---|---:|")
        for label, v in table(ch, a.quick):
            print("| %s | %s |" % (label, v), flush=True)
    finally:
        ch.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
