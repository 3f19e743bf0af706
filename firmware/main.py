"""Device entry point: build the station on the board and run it forever.

Files on the device:
  /board.txt     the board package name ("esp32", "picow"); BOARD below wins
  /config.json   a CRC'd snapshot (evse.snapshot.Snapshot) with
                 {"url": "wss://csms.example/ocpp", "id": "CP001",
                  "password": AuthorizationKey or null, "ssid": ..., "wifi_key": ...,
                  optional "ca": PEM file of the CSMS root, "country": "DE",
                  "serial", "pilot_cal": [raw at -12 V, raw at +12 V],
                  "overrides": {configuration key: value}}
                 written from the REPL with `import main; main.provision(...)`
  /data/         the station's storage (FileStorage)

A Soft reset (OCPP Reset, or the core's own reboot) builds a new core on
the same board and storage; a Hard reset restarts the MCU (machine.reset).
An unexpected exception also restarts the MCU after a pause rather than
leaving an unattended station at the REPL.
"""
import sys

BOARD = None  # e.g. "esp32" to ignore /board.txt
BOARD_FILE = "/board.txt"
CONFIG = "/config.json"
DATA = "/data"
_PAUSE_MS = 10000  # before restarting after a crash
_WIFI_CHECK_S = 10


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


def load_config(path=CONFIG):
    """The device configuration dict, or None if missing or corrupt."""
    from evse.snapshot import Snapshot

    cfg = Snapshot(path).load(None)
    if not isinstance(cfg, dict) or not cfg.get("url") or not cfg.get("id"):
        return None
    return cfg


def provision(url, cp_id, password=None, ssid=None, wifi_key=None, path=CONFIG, **extra):
    """Write the configuration snapshot (from the REPL or a setup tool)."""
    from evse.snapshot import Snapshot

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


def make_station(board, cfg, clock):
    from evse.station import Station
    from evse.storage import FileStorage

    from evse import security

    st = Station(board=board, clock=clock, storage=FileStorage(DATA), log=_log)
    # Factory seeding: what the CSMS changed later (key, profile) stays.
    security.provision(st, url=cfg["url"], cp_id=cfg["id"], password=cfg.get("password"),
                       ca=_read(cfg.get("ca")))
    return st


async def _keep_wifi(mod, cfg):
    import asyncio

    while True:
        await asyncio.sleep(_WIFI_CHECK_S)
        try:
            mod.wifi(cfg.get("ssid"), cfg.get("wifi_key"), 0)  # reconnect, never block
        except Exception as e:  # noqa: BLE001 - the station runs on without the link
            _log("warn", "wifi: " + repr(e))


async def run(mod, board, cfg, clock):
    """Run station cores until a Hard reset is asked for; returns "Hard"."""
    import asyncio

    from evse.runtime import Runtime

    wifi = asyncio.create_task(_keep_wifi(mod, cfg)) if cfg.get("ssid") else None
    try:
        while True:
            board.resync()  # the new core starts from "unplugged, no fault"
            st = make_station(board, cfg, clock)
            kind = await Runtime(st).run()  # reads st.link before every connect
            _log("info", "reset " + str(kind))
            if kind == "Hard":
                return kind
    finally:
        if wifi is not None:
            wifi.cancel()


def main():
    import asyncio

    import machine

    from evse.clock import SystemClock
    from evse.storage import FileStorage

    try:
        cfg = load_config()
        if cfg is None:
            _log("error", "no valid " + CONFIG + ": run main.provision(url, id, ...)")
            return
        mod = board_module(board_name())
        if cfg.get("ssid"):
            mod.wifi(cfg["ssid"], cfg.get("wifi_key"), country=cfg.get("country"))
        board = mod.make(cfg, energy=FileStorage(DATA).persist("meter"))
        asyncio.run(run(mod, board, cfg, SystemClock()))
        board.save_energy()
    except Exception as e:  # noqa: BLE001 - never stay at the REPL unattended
        pe = getattr(sys, "print_exception", None)
        if pe is not None:
            pe(e)
        else:
            _log("error", repr(e))
        import time

        time.sleep_ms(_PAUSE_MS)
    machine.reset()


if __name__ == "__main__":
    main()
