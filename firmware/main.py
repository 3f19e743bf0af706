"""Device entry point: build the station on the board and run it forever.

Files on the device:
  /board.txt     the board package name ("esp32", "picow"); BOARD below wins
  /config.json   a CRC'd snapshot (evse.store.snapshot.Snapshot) with
                 {"url": "wss://csms.example/ocpp", "id": "CP001",
                  "password": the plain Basic-auth password or null (stored
                  as the hex AuthorizationKey), optional "authorization_key":
                  the key as hex instead, "ssid": ..., "wifi_key": ...,
                  optional "ca": PEM file of the CSMS root, "country": "DE",
                  "serial", "pilot_cal": [raw at -12 V, raw at +12 V],
                  "overrides": {configuration key: value}}
                 written from the REPL with `import main; main.provision(...)`
  /data/         the station's storage (FileStorage)

A Soft reset (OCPP Reset, or the core's own reboot) builds a new core on
the same board and storage; a Hard reset restarts the MCU (machine.reset).

Fail safe: if the core cannot go on (an exception out of the runtime), the
relay opens and the PWM stops (board.resync()) before the MCU restarts
after a pause, rather than leaving an unattended station at the REPL. A
hardware watchdog is fed only while the core's timer loop completes rounds.
Every boot counts in /crashes.txt; a clean reset or a stable run clears it.
After SAFE_AFTER boots in a row that did neither, the station boots in safe
mode: relay open, and only the link to the CSMS (boot, heartbeat, Reset,
configuration) until the CSMS resets it.
"""
import sys

BOARD = None  # e.g. "esp32" to ignore /board.txt
BOARD_FILE = "/board.txt"
CONFIG = "/config.json"
DATA = "/data"
_PAUSE_MS = 10000  # before restarting after a crash
_WIFI_CHECK_S = 10
CRASHES = "/crashes.txt"
SAFE_AFTER = 3  # unclean boots in a row before safe mode
SAFE_FEATURES = ("boot", "security")
_WDT_MS = 30000  # hardware watchdog timeout
_ALIVE_MS = 20000  # the core must have completed a timer round this recently
_FEED_MS = 1000
_STABLE_MS = 600000  # this long with the boot accepted: not a crash loop


def board_name():
    if BOARD:
        return BOARD
    try:
        with open(BOARD_FILE) as f:
            return f.read().strip() or "esp32"
    except OSError:
        return "esp32"


def board_module(name):
    """boards.<name>.board: make(cfg, energy) and wifi(ssid, key, ...)."""
    return __import__("boards." + name + ".board", None, None, ["make"])


def load_config(path=None):
    """The device configuration dict, or None if missing or corrupt."""
    from evse.store.snapshot import Snapshot

    cfg = Snapshot(path or CONFIG).load(None)
    if not isinstance(cfg, dict) or not cfg.get("url") or not cfg.get("id"):
        return None
    return cfg


def provision(url, cp_id, password=None, ssid=None, wifi_key=None, path=CONFIG, **extra):
    """Write the configuration snapshot (from the REPL or a setup tool)."""
    from evse.store.snapshot import Snapshot

    cfg = {"url": url, "id": cp_id, "password": password, "ssid": ssid, "wifi_key": wifi_key}
    cfg.update(extra)
    Snapshot(path).save(cfg)


def _log(level, text):
    print(level, text)


def _read(path):
    if not path:
        return None
    with open(path) as f:
        return f.read()


def boot_count(path=None):
    """Count this boot as unclean until proven otherwise; returns the count."""
    path = path or CRASHES
    try:
        with open(path) as f:
            n = int(f.read() or 0)
    except (OSError, ValueError):
        n = 0
    set_boot_count(n + 1, path)
    return n + 1


def set_boot_count(n, path=None):
    try:
        with open(path or CRASHES, "w") as f:
            f.write(str(n))
    except OSError:
        pass  # a full flash must not stop the station


def choose_slot(board, data=None):
    """A/B firmware slot for this boot (docs/FIRMWARE_IMAGE.md): a slot's
    .mpy files shadow the factory ones, so forget what was imported.
    Returns the version it runs (BootNotification firmwareVersion), or None
    for the factory image."""
    try:
        from evse.fwimage import Slots

        slots = Slots(data or DATA, board)
        slot, version, failure = slots.boot()
    except Exception as e:  # noqa: BLE001 - the factory image still runs
        _log("error", "slot choice: " + repr(e))
        return None
    if failure:
        _log("warn", failure)
    if slot:
        for name in list(sys.modules):
            if name.split(".")[0] in ("evse", "boards"):
                del sys.modules[name]
        sys.path.insert(0, slots.dir(slot))
    return version


def safe_station(board, cfg, clock):
    """The safe-mode core: no charging features, only the CSMS link."""
    from evse.station import Station
    from evse.store.storage import FileStorage

    st = Station(board=board, clock=clock, storage=FileStorage(DATA), log=_log, features=SAFE_FEATURES)
    _provision(st, cfg, ca=_read(cfg.get("ca")))
    st.handlers["Reset"] = _safe_reset
    return st


def _safe_reset(st, p):
    st.reboot = p["type"]  # either kind leaves safe mode through a clean restart
    return {"status": "Accepted"}


def make_station(board, cfg, clock):
    from evse.station import Station
    from evse.store.storage import FileStorage

    st = Station(board=board, clock=clock, storage=FileStorage(DATA), log=_log)
    # Factory seeding: what the CSMS changed later (key, profile, client
    # certificate, roots it installed) stays. "ca", "cert", "key" name PEM
    # files; "profile" is the SecurityProfile to start with.
    _provision(st, cfg, cert=_read(cfg.get("cert")), key=_read(cfg.get("key")), profile=cfg.get("profile"))
    ca = _read(cfg.get("ca"))
    if ca and st.certs is not None:
        from evse import certificates

        certificates.provision(st, certificates.CS_ROOT, ca, replace=True)
    return st


def _provision(st, cfg, **extra):
    """Seed the link (the security feature) from the configuration; a build
    without that feature connects with the configuration as it is (run)."""
    if st.link is None:
        return
    from evse import security

    security.provision(st, url=cfg["url"], cp_id=cfg["id"], password=cfg.get("password"),
                       authkey=cfg.get("authorization_key"), **extra)


async def _keep_wifi(mod, cfg):
    import asyncio

    while True:
        await asyncio.sleep(_WIFI_CHECK_S)
        try:
            mod.wifi(cfg.get("ssid"), cfg.get("wifi_key"), 0)  # reconnect, never block
        except Exception as e:  # noqa: BLE001 - the station runs on without the link
            _log("warn", "wifi: " + repr(e))


async def watchdog(wdt, cores, clock, path=None):
    """Feed `wdt` while the running core ticks; clear the boot count once a
    normal core has run _STABLE_MS with its boot accepted. cores[0] is the
    Runtime, cores[1] True in safe mode."""
    import asyncio

    from evse.compat import ticks_diff

    since = None
    while True:
        rt = cores[0]
        now = clock.ms()
        if rt is not None and rt.alive(now, _ALIVE_MS):
            wdt.feed()
            if since is None and not cores[1] and rt.st.registration == "Accepted":
                since = now
            if since is not None and ticks_diff(now, since) >= _STABLE_MS:
                set_boot_count(0, path)
                since = -1  # once
                _log("info", "stable: boot count cleared")
        await asyncio.sleep(_FEED_MS / 1000)


async def run(mod, board, cfg, clock, wdt=None, safe=False, cores=None):
    """Run station cores until a Hard reset is asked for (any reset in safe
    mode restarts into a normal boot); returns the reset kind."""
    import asyncio
    import gc

    from evse.runtime import Runtime
    from evse.link.ws import RxBuffer

    cores = cores if cores is not None else [None, safe]
    rx = RxBuffer()  # the link buffers, made once: every core reuses them
    tasks = []
    if cfg.get("ssid"):
        tasks.append(asyncio.create_task(_keep_wifi(mod, cfg)))
    if wdt is not None:
        tasks.append(asyncio.create_task(watchdog(wdt, cores, clock)))
    started = False
    try:
        while True:
            board.resync()  # the new core starts from "unplugged, no fault"
            st = safe_station(board, cfg, clock) if safe else make_station(board, cfg, clock)
            if not started:  # the MCU itself started (a soft reset only rebuilds the core)
                st.security_event("StartupOfTheDevice", "safe mode" if safe else None)
                started = True
            if st.link is not None:  # reads st.link before every connect
                cores[0] = Runtime(st, rx=rx)
            else:  # a build without the security feature
                cores[0] = Runtime(st, cfg["url"], cfg["id"], cfg.get("password"), rx=rx)
            st = None  # the runtime holds the core; nothing else may (see below)
            kind = await cores[0].run()  # reads st.link before every connect
            # A Soft reset must not hold two cores at once: the old one is
            # garbage before the next is built.
            cores[0] = None
            gc.collect()
            _log("info", "reset " + str(kind))
            if kind == "Hard" or safe:
                return kind
    finally:
        for t in tasks:
            t.cancel()


def fail_safe(board):
    """The core cannot go on: open the relay and stop the PWM."""
    if board is None:
        return
    try:
        board.resync()
    except Exception as e:  # noqa: BLE001 - the reset follows anyway
        _log("error", "fail safe: " + repr(e))


def main():
    import asyncio

    import machine

    board = None
    try:
        cfg = load_config()
        if cfg is None:
            _log("error", "no valid " + CONFIG + ": run main.provision(url, id, ...)")
            return
        name = board_name()
        version = choose_slot(name)
        from evse.clock import SystemClock
        from evse.store.storage import FileStorage

        safe = boot_count() > SAFE_AFTER
        if safe:
            _log("error", "safe mode: relay stays open, CSMS link only")
        mod = board_module(name)
        if cfg.get("ssid"):
            mod.wifi(cfg["ssid"], cfg.get("wifi_key"), country=cfg.get("country"))
        board = mod.make(cfg, energy=FileStorage(DATA).persist("meter"))
        if version:
            board.firmware = version  # the slot's image: BootNotification reports it
        board.resync()
        wdt = machine.WDT(timeout=_WDT_MS) if hasattr(machine, "WDT") else None
        asyncio.run(run(mod, board, cfg, SystemClock(), wdt, safe))
        set_boot_count(0)  # a reset the core asked for: clean
        board.save_energy()
    except Exception as e:  # noqa: BLE001 - never stay at the REPL unattended
        fail_safe(board)
        pe = getattr(sys, "print_exception", None)
        if pe is not None:
            pe(e)
        else:
            _log("error", repr(e))
        from evse.compat import sleep_ms

        sleep_ms(_PAUSE_MS)  # the watchdog (30 s) is not fed here: a reset either way
    machine.reset()


if __name__ == "__main__":
    main()
