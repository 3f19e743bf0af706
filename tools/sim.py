"""Station simulator: the firmware core on the host simulator board.

  .venv/bin/python tools/sim.py --url ws://HOST:PORT/PATH --id CP001 [--data DIR]
                                [--set KEY=VALUE ...] [--password SECRET] [--json]
                                [--http PORT] [--verbose] [--no-color]
  .venv/bin/python tools/sim.py --fleet N [--url ...] [--scenario FILE]   (tools/fleet.py)

Connects to <url>/<id>. Commands on stdin, one per line (see --help). Logs
to stderr one line per OCPP message and per event, each a time, a mark and
words (tools/simview.py); with --json one JSON object per event on stdout;
with --http a web dashboard (tools/simweb.py). What the command line shows
to be wrong before the first connect is one line and exit status 2. A
reboot (command, Reset) restarts the core in-process from --data; SIGKILL
is a power cut.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import threading
import time
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "firmware"), ROOT]

from boards.sim.board import SimBoard  # noqa: E402
from evse.clock import SystemClock  # noqa: E402
from evse import remote  # noqa: E402
from evse.runtime import Runtime, parse_url  # noqa: E402
from evse.station import Station  # noqa: E402
from evse.store.storage import FileStorage  # noqa: E402

sys.path.insert(0, os.path.join(ROOT, "tools"))
from simstate import link_problem, security_profile, snapshot, target  # noqa: E402
from simview import Pairing, TermView, summary  # noqa: E402

HELP = ("commands: plug [C] | unplug [C] | card IDTAG | ev-suspend [C] | ev-resume [C] | "
        "fault [C] ERRORCODE | clear [C] | status | reboot | quit")
COMMANDS = (
    ("plug [C]", "an EV plugs into connector C (default 1)"),
    ("unplug [C]", "the EV leaves connector C"),
    ("card IDTAG", "an RFID card is presented to the reader"),
    ("ev-suspend [C]", "the EV stops drawing current (SuspendedEV)"),
    ("ev-resume [C]", "the EV draws current again"),
    ("fault [C] ERRORCODE", "a hardware fault, e.g. GroundFailure, on connector C"),
    ("clear [C]", "the fault on connector C clears"),
    ("status", "per connector: OCPP status, transaction, current limit, power, energy"),
    ("reboot", "soft reboot of the core (stops transactions, reason Reboot)"),
    ("help", "list these commands"),
    ("quit", "stop the simulator (also end of stdin)"),
)


class Sim:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.data = args.data or os.path.join(ROOT, ".sim", args.id)
        self.seeds = _seeds(args.set)
        self.clock = SystemClock()  # kept across reboots: the RTC survives a soft reboot
        self.station: Station | None = None
        self.board: SimBoard
        self.runtime: Runtime | None = None
        self.quit = False
        self.out_lock = threading.Lock()
        self.pairing = Pairing()
        self.view = TermView(sys.stderr, color=False if args.no_color else None, verbose=args.verbose,
                             ident=args.id)
        self.web: Any = None  # simweb.Dashboard with --http

    # -- output --
    def emit(self, ev: dict[str, Any]) -> None:
        self.pairing.annotate(ev)
        if ev.get("event") in ("connect_failed", "connected", "disconnected"):
            ev["target"] = self.view.target = target(self.station, self.args.url)
        if self.args.json:
            with self.out_lock:
                sys.stdout.write(json.dumps(ev) + "\n")
                sys.stdout.flush()
        if not self.args.quiet:
            self.view.show(ev)
        if self.web is not None:
            frame = ev.get("event") in ("sent", "received") and ev.get("type") != "invalid"
            self.web.publish(dict(ev, summary=summary(ev) if frame else self.view.words(ev)[1]))

    def log(self, level: str, text: str) -> None:
        if not self.args.quiet:
            with self.out_lock:
                self.view.log(level, text)

    # -- commands --
    def command(self, line: str) -> None:
        words = line.split()
        if not words:
            return
        cmd, rest = words[0], words[1:]
        st = self.station
        if cmd == "quit":
            self.quit = True
            if self.runtime:
                self.runtime.stop()
        elif cmd == "reboot":
            if st:
                remote.reboot(st, "Soft")  # stops transactions (reason Reboot) first
                st.tick(st.clock.ms())
        elif cmd == "status":
            self._fresh()
            self.emit(self.status())
        elif cmd in ("help", "?"):
            self.log("info", "commands:\n" + "\n".join(f"  {c:<20} {d}" for c, d in COMMANDS))
        elif cmd in ("plug", "unplug", "card", "ev-suspend", "ev-resume", "fault", "clear"):
            err = self.board.command(cmd, rest)
            if err:
                self.emit({"event": "error", "command": cmd, "error": err})
        else:
            self.emit({"event": "error", "command": cmd, "error": "unknown command"})
            self.log("info", HELP)
        if self.runtime:
            self.runtime.poke()  # the core polls the board on its next tick

    def status(self) -> dict[str, Any]:
        ev = snapshot(self.station, getattr(self, "board", None), schedule=False)
        return dict(ev, event="status")

    def _fresh(self) -> None:
        """Let the core poll the board now, so the meter reads up to this instant."""
        st = self.station
        if st is not None:
            st.tick(st.clock.ms())
            if self.runtime:
                self.runtime.poke()  # sends whatever the tick queued

    def web_state(self) -> dict[str, Any]:
        """What the dashboard shows: the snapshot with schedules, plus the link."""
        self._fresh()
        ev = snapshot(self.station, self.board)
        ev.update(id=self.args.id, url=self.args.url, time=time.time())
        if self.station is not None:
            ev["securityProfile"] = security_profile(self.station, self.args.url, self.args.password)
        return ev

    async def _start_web(self) -> None:
        from simweb import Dashboard
        self.web = Dashboard(self.web_state, self.command)
        try:
            port = await self.web.start(self.args.http)
        except OSError as e:  # port taken: any free one
            self.log("warn", f"port {self.args.http}: {e.strerror}; using a free port")
            port = await self.web.start(0)
        url = f"http://127.0.0.1:{port}/"
        if self.args.quiet:  # no log, but where the dashboard is
            sys.stderr.write(f"dashboard: {url}\n")
        self.emit({"event": "dashboard", "url": url})

    # -- main loop --
    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        threading.Thread(target=self._stdin, args=(loop,), daemon=True).start()
        # One board for the process: the EV and the meter outlive a reboot
        # of the core; the meter register also survives a power cut (file).
        self.board = SimBoard(serial=self.args.id, overrides=self.seeds)
        self._load_meter()
        asyncio.ensure_future(self._save_meter_loop())
        if self.args.http is not None:
            await self._start_web()
        while not self.quit:
            failure = boot_firmware(self.data, self.board)
            if failure:
                self.log("warn", failure)
            self.board.resync()  # as firmware/main.py does before each core
            st = _station(board=self.board, clock=self.clock, storage=FileStorage(self.data),
                          log=self.log, trace=self.emit)
            st.poll_hw()  # the board's present state before the first message
            _factory_certs(st, self.args)
            _security_setup(st, self.args)
            self.station = st
            first = self.runtime is None  # the process started: the device powered up
            self.runtime = Runtime(st, self.args.url, self.args.id, password=self.args.password)
            problem = link_problem(st, self.args.url) if first else None
            if problem:  # it would only fail and retry for ever
                raise SetupError("cannot connect: " + problem)
            if first:
                st.security_event("StartupOfTheDevice")
            kind = await self.runtime.run()
            if kind and not self.quit:
                self.emit({"event": "reboot", "kind": kind})

    def _meter_file(self) -> str:
        return os.path.join(self.data, "sim-meter.json")

    def _load_meter(self) -> None:
        try:
            with open(self._meter_file()) as f:
                self.board.restore_meter(json.load(f))
        except (OSError, ValueError):
            pass

    async def _save_meter_loop(self) -> None:
        while True:
            await asyncio.sleep(1)
            tmp = self._meter_file() + ".tmp"
            os.makedirs(self.data, exist_ok=True)
            with open(tmp, "w") as f:
                json.dump(self.board.meter_state(), f)
            os.replace(tmp, self._meter_file())

    def _stdin(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            for line in sys.stdin:
                loop.call_soon_threadsafe(self.command, line.strip())
            loop.call_soon_threadsafe(self.command, "quit")
        except RuntimeError:  # the loop ended (a `quit` came first): nothing left to tell
            pass


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The whole command line, in one place: add new flags here."""
    epilog = "stdin commands:\n" + "\n".join(f"  {c:<22} {d}" for c, d in COMMANDS)
    ap = argparse.ArgumentParser(description="OCPP 1.6-J station simulator", epilog=epilog,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", help="CSMS endpoint; the station id is appended (required but with --fleet)")
    ap.add_argument("--id", default="CP001", help="charge point identity (default CP001)")
    ap.add_argument("--data", help="the station's flash (default .sim/<id>)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="seed a configuration key (repeatable)")
    ap.add_argument("--password", help="the plain Basic-auth password (security profiles 1, 2); seeds the "
                    "AuthorizationKey (stored hex-encoded), the CSMS's wins")
    ap.add_argument("--authorization-key", metavar="HEX",
                    help="the AuthorizationKey itself, as hex (what ChangeConfiguration sets); instead of --password")
    ap.add_argument("--ca", metavar="FILE",
                    help="PEM of the CentralSystemRootCertificate (wss://), replaces the one of the last start")
    ap.add_argument("--cert", metavar="FILE", help="PEM ChargePointCertificate (security profile 3), with --key")
    ap.add_argument("--key", metavar="FILE", help="PEM private key of --cert")
    ap.add_argument("--json", action="store_true", help="JSON event lines on stdout")
    ap.add_argument("--quiet", action="store_true", help="no log on stderr")
    ap.add_argument("--verbose", action="store_true", help="full payloads under each message line")
    ap.add_argument("--no-color", action="store_true", help="no ANSI colour (also NO_COLOR=1)")
    ap.add_argument("--http", type=int, metavar="PORT", help="serve the web dashboard on localhost:PORT (0: any)")
    ap.add_argument("--fleet", type=int, metavar="N", help="run N virtual stations (tools/fleet.py)")
    ap.add_argument("--scenario", metavar="FILE", help="fleet scenario JSON (docs/SIMULATOR.md)")
    ap.add_argument("--prefix", help="fleet identities <prefix>0001... (default from the scenario)")
    ap.add_argument("--duration", type=float, metavar="S", help="fleet run time in seconds")
    ap.add_argument("--csv", metavar="FILE", help="fleet per-second report as CSV")
    ap.add_argument("--mem-flash", action="store_true",
                    help="fleet: each station's flash in memory (evse.store.storage.MemStorage), no data folders")
    ap.add_argument("--manufacturer-ca", metavar="FILE",
                    help="PEM of the ManufacturerRootCertificate firmware signers chain to (factory)")
    args = ap.parse_args(argv)
    if not args.url and not args.fleet:
        ap.error("--url is required")
    return args


class SetupError(Exception):
    """A start-up problem the user can fix: one line, exit status 2."""


_FILES = ("ca", "cert", "key", "manufacturer_ca", "scenario")  # flags naming a file to read


def check_args(args: argparse.Namespace) -> None:
    """What the command line alone says is wrong, before anything starts
    (the link as a whole is checked once the station is built: link_problem)."""
    if args.url:
        try:
            parse_url(args.url)  # the firmware's own parser
        except ValueError as e:
            raise SetupError(f"--url {args.url}: {e}") from None
    for name in _FILES:
        path = getattr(args, name, None)
        if path and not os.path.isfile(path):
            why = "is a directory" if os.path.isdir(path) else "no such file"
            raise SetupError(f"--{name.replace('_', '-')} {path}: {why}")
    if args.data and os.path.exists(args.data) and not os.path.isdir(args.data):
        raise SetupError(f"--data {args.data}: not a directory")
    out = os.path.dirname(os.path.abspath(args.csv)) if args.csv else ""
    if out and not os.path.isdir(out):
        raise SetupError(f"--csv {args.csv}: no directory {out}")


def _seeds(items: list[str]) -> dict[str, str]:
    out = {}
    for kv in items:
        if "=" not in kv:
            raise SetupError(f"--set {kv}: expected KEY=VALUE")
        k, v = kv.split("=", 1)
        out[k] = v
    return out


def _station(**kw: Any) -> Station:
    """The core, or a SetupError naming the --set key it refused."""
    try:
        st = Station(**kw)
    except ValueError as e:  # a value the station refuses, e.g. a measurand its meter lacks
        raise SetupError(f"--set {e}") from None
    if st.config.unclaimed:
        raise SetupError("--set " + ", ".join(st.config.unclaimed) + ": unknown configuration key")
    return st


FACTORY_VERSION = SimBoard.firmware  # the version of the firmware in the simulator itself


def boot_firmware(data: str, board: SimBoard) -> str | None:
    """The simulator's boot loader (the device's main.py does the same):
    pick the slot to run (a pending trial, or the rollback of one that was
    not confirmed) and run its version, which BootNotification reports.
    Returns the rollback reason, if any. docs/FIRMWARE_UPDATE.md"""
    from evse.fwimage import Slots
    _slot, version, failure = Slots(data, board.name).boot()
    board.firmware = version or FACTORY_VERSION
    return failure


def _factory_certs(st: Station, args: argparse.Namespace) -> None:
    """--manufacturer-ca: the factory's ManufacturerRootCertificate."""
    path = getattr(args, "manufacturer_ca", None)
    if not path:
        return
    from evse import certificates
    try:
        with open(path) as f:
            certificates.provision(st, "ManufacturerRootCertificate", f.read(), replace=True)
    except (OSError, ValueError) as e:
        raise SetupError(f"--manufacturer-ca {path}: {e}") from None


def _read_pem(flag: str, path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except (OSError, UnicodeError) as e:
        raise SetupError(f"{flag} {path}: cannot read ({getattr(e, 'strerror', None) or e})") from None


def _security_setup(st: Station, args: argparse.Namespace) -> None:
    """--ca, --cert/--key: factory provisioning of the link's trust anchor
    and client certificate (--set SecurityProfile=N and --password seed the
    link too: security.py, Runtime). Problems are a SetupError (exit 2)."""
    from evse import certificates, security
    ca, cert, key = getattr(args, "ca", None), getattr(args, "cert", None), getattr(args, "key", None)
    hexkey = getattr(args, "authorization_key", None)
    if hexkey:
        if getattr(args, "password", None):
            raise SetupError("--password and --authorization-key: give one of them")
        try:
            security.provision(st, authkey=hexkey)
        except ValueError as e:
            raise SetupError(f"--authorization-key: {e}") from None
    if ca:
        try:
            certificates.provision(st, certificates.CS_ROOT, _read_pem("--ca", ca), replace=True)
        except ValueError as e:
            raise SetupError(f"--ca {ca}: {e}") from None
    if bool(cert) != bool(key):
        raise SetupError("--cert and --key go together")
    if cert and key:
        cert_pem, key_pem = _read_pem("--cert", cert), _read_pem("--key", key)
        _check_pair(cert, cert_pem, key, key_pem)
        security.provision(st, cert=cert_pem, key=key_pem)


def _check_pair(cert: str, cert_pem: str, key: str, key_pem: str) -> None:
    """The key must be the private half of the certificate's public key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization as ser
    try:
        pub = x509.load_pem_x509_certificate(cert_pem.encode()).public_key()
    except ValueError:
        raise SetupError(f"--cert {cert}: not a PEM certificate") from None
    try:
        priv = ser.load_pem_private_key(key_pem.encode(), password=None)
    except (ValueError, TypeError):
        raise SetupError(f"--key {key}: not an unencrypted PEM private key") from None
    raw = (ser.Encoding.DER, ser.PublicFormat.SubjectPublicKeyInfo)
    if priv.public_key().public_bytes(*raw) != pub.public_bytes(*raw):
        raise SetupError(f"--key {key} does not match the certificate in --cert {cert}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        check_args(args)
        if args.fleet:
            import fleet
            fleet.run_from_args(args)
        else:
            asyncio.run(Sim(args).run())
    except KeyboardInterrupt:
        pass
    except SetupError as e:
        sys.stderr.write(f"sim.py: {e}\n")
        sys.exit(2)


if __name__ == "__main__":
    main()
