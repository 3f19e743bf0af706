"""CircuitPython entry point (the build copies it to /code.py).

The same start as firmware/main.py (/config.json, /data, the board's
make() and wifi()), with what differs on CircuitPython: TLS contexts from
evse.link.tls, a read-only filesystem reported instead of raised (see
boot.py), and microcontroller.reset() for a Hard reset or a crash.
Needs Adafruit's asyncio and ticks libraries in /lib (circup).
"""
import main  # firmware/main.py, installed as /lib/main.py

from boards.cp_picow import board as cpboard

_PAUSE_MS = 10000


def tls_context(cfg):
    """None for ws://; for wss:// a verifying context: the CSMS root from
    cfg["ca"] (a file), else the built-in roots; cfg["cert"]/cfg["key"]:
    client certificate and key files (security profile 3)."""
    if not cfg["url"].startswith("wss://"):
        return None
    from evse.link import tls

    if not cfg.get("ca"):
        return tls.system_context()
    with open(cfg["ca"], "rb") as f:
        ca = f.read()
    return tls.client_context(ca, cert=cfg.get("cert"), key=cfg.get("key"))


async def run(board, cfg, clock):
    """Station cores until a Hard reset is asked for."""
    from evse.runtime import Runtime

    ctx = tls_context(cfg)
    while True:
        board.resync()
        st = main.make_station(board, cfg, clock)
        kind = await Runtime(st, cfg["url"], cfg["id"], password=cfg.get("password"), ssl=ctx).run()
        main._log("info", "reset " + str(kind))
        if kind == "Hard":
            return


def start():
    """Run the station; returns only when it cannot (reported on the console)."""
    import asyncio

    from evse.clock import SystemClock
    from evse.store.storage import FileStorage

    cfg = main.load_config()
    if cfg is None:
        main._log("error", "no valid " + main.CONFIG + ": run main.provision(url, id, ...)")
        return False
    if not cpboard.storage_writable(main.DATA):
        main._log("error", "filesystem read-only (USB storage is on): see boot.py; station not started")
        return False
    if cfg.get("ssid"):
        cpboard.wifi(cfg["ssid"], cfg.get("wifi_key"))
    board = cpboard.make(cfg, energy=FileStorage(main.DATA).persist("meter"))
    asyncio.run(run(board, cfg, SystemClock()))
    board.save_energy()
    return True


if __name__ == "__main__":  # CircuitPython runs /code.py as __main__
    import microcontroller

    from evse.compat import sleep_ms

    try:
        if start():
            microcontroller.reset()  # a Hard reset was asked for
    except Exception as e:  # noqa: BLE001 - never stay at the REPL unattended
        import traceback

        traceback.print_exception(e)
        sleep_ms(_PAUSE_MS)
        microcontroller.reset()
