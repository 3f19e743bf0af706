"""The CircuitPython Pico W board: CpParts adapters over fake CircuitPython
modules (board/digitalio/pwmio/analogio/busio) that reach the
register-level fakes, the same events as the MicroPython boards, boot.py
and the entry point's TLS choice."""
import os
import runpy
import sys
import types

import pytest

import fakes
from boards.cp_picow import board as cp
from boards.picow.board import PINS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CARD = bytes.fromhex("04A1B2C3")


class Rig:
    def __init__(self, pins=PINS, meter=None):
        self.line = fakes.FakePilotLine()
        self.coil = fakes.FakePin()
        self.fb = fakes.MirrorPin(self.coil, closed_level=0)
        self.meter = meter or fakes.FakeBl0942()
        self.rf = fakes.FakeMfrc522()
        self.rst = fakes.FakePin()
        wiring = {13: self.line.pwm, 26: self.line.adc, 15: self.coil, 14: self.fb, 0: self.meter, 1: None,
                  18: self.rf, 19: None, 16: None, 17: self.rf.cs, 20: self.rst, 3: self.meter, 2: None}
        self.mods = fakes.circuitpython_modules(wiring)
        self.parts = cp.CpParts(pins, mods=self.mods)
        self.t = 0

    def board(self, **kw):
        self.b = cp.CpPicoWBoard(parts=self.parts, **kw)
        return self.b

    def run(self, ms):
        out = []
        for _ in range(ms // 50):
            self.t += 50
            out += self.b.poll(self.t)
        return out


def test_identity_from_the_cpu_uid_and_pico_w_defaults():
    b = Rig().board()
    ident = b.identity()
    assert ident["chargePointSerialNumber"] == "CPPICOW-0102030405060708"
    assert ident["chargePointModel"] == "CPPICOW-1P-32A" and ident["meterType"] == "BL0942"
    assert b.config_overrides()["ChargingScheduleMaxPeriods"] == "96"


def test_same_session_events_as_the_micropython_boards():
    r = Rig()
    b = r.board()
    assert r.line.pwm.f == 1000 and r.line.permille() == 1000  # DC +12 V until current is offered
    assert r.run(200) == []
    r.line.ev = "B"
    assert r.run(200) == [("cp", 1, "B")]
    r.rf.present(fakes.FakeCard(CARD))
    assert r.run(1000) == [("card", 1, "04A1B2C3")]
    b.set_relay(1, True)
    b.set_pilot(1, 160)
    assert r.line.permille() == 266
    assert r.run(100) == [("cp", 1, "C")] and r.coil.v == 1
    r.meter.regs[fakes.V_RMS] = 3653169
    r.run(1500)
    assert 2295 <= b.meter(1)[3] <= 2305  # the BL0942 answered through busio.UART
    r.line.ev = None
    assert r.run(100) == [("cp", 1, "A")] and r.coil.v == 0


def test_spi_and_i2c_transfers_hold_the_bus_lock():
    r = Rig(pins=dict(PINS, meter_i2c=(1, 3, 2)), meter=fakes.FakeAde7953())
    b = r.board(meter="ade7953", meter_cal={"e_cal": (1000, 1)})
    r.meter.add_energy(7000)
    r.run(1100)
    assert b.meter(1)[0] == 7 and b.meter_type == "ADE7953"
    assert r.meter.regs[0x120] == 0x30  # the start-up writes went over busio.I2C
    spi = r.parts.spi("rfid_spi", 1000000)
    assert isinstance(spi.bus, fakes._CpBus) and not spi.bus.locked


def test_digital_output_refuses_writes_as_an_input():
    r = Rig()
    pin = r.parts.inp("relay_fb")
    assert pin.value() == 1  # open contact, pull-up
    with pytest.raises(AttributeError):
        pin.value(0)


# -- boot.py ---------------------------------------------------------------------
def _boot(monkeypatch, jumper):
    remounts = []
    pin = fakes.FakePin(0 if jumper else 1)
    mods = fakes.circuitpython_modules({22: pin})
    monkeypatch.setitem(sys.modules, "board", mods["board"])
    monkeypatch.setitem(sys.modules, "digitalio", types.SimpleNamespace(
        DigitalInOut=type("D", (fakes._CpDigitalInOut,), {"deinit": lambda self: None}), Pull=fakes._CpPull))
    monkeypatch.setitem(sys.modules, "storage", types.SimpleNamespace(
        remount=lambda path, readonly=True: remounts.append((path, readonly))))
    runpy.run_path(os.path.join(ROOT, "boards", "cp_picow", "boot.py"))
    return remounts


def test_boot_makes_the_filesystem_writable_for_the_station(monkeypatch):
    assert _boot(monkeypatch, jumper=False) == [("/", False)]


def test_boot_keeps_usb_storage_with_the_maintenance_jumper(monkeypatch):
    assert _boot(monkeypatch, jumper=True) == []


# -- code.py ---------------------------------------------------------------------
def test_entry_point_builds_verifying_tls_contexts(monkeypatch, tmp_path):
    from boards.cp_picow import code
    from evse.link import tls
    made = []
    monkeypatch.setattr(tls, "client_context", lambda ca, cert=None, key=None: made.append((ca, cert, key)) or "ctx")
    monkeypatch.setattr(tls, "system_context", lambda: "system")
    assert code.tls_context({"url": "ws://csms/ocpp"}) is None
    assert code.tls_context({"url": "wss://csms/ocpp"}) == "system"
    ca = tmp_path / "ca.pem"
    ca.write_bytes(b"-----BEGIN CERTIFICATE-----\n")
    cfg = {"url": "wss://csms/ocpp", "ca": str(ca), "cert": "/tls/c.pem", "key": "/tls/c.key"}
    assert code.tls_context(cfg) == "ctx"
    assert made == [(b"-----BEGIN CERTIFICATE-----\n", "/tls/c.pem", "/tls/c.key")]


def test_entry_point_reports_a_read_only_filesystem(monkeypatch, capsys):
    from boards.cp_picow import code
    import main
    monkeypatch.setattr(main, "load_config", lambda: {"url": "ws://x/ocpp", "id": "CP1"})
    monkeypatch.setattr(code.cpboard, "storage_writable", lambda root: False)
    assert code.start() is False
    assert "read-only" in capsys.readouterr().out


# -- make build BOARD=cp_picow ----------------------------------------------------
def test_build_writes_the_circuitpy_tree(tmp_path):
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import build
    files = build.circuitpython_tree("cp_picow", str(tmp_path))
    assert {"code.py", "boot.py", "board.txt", "requirements-circup.txt", "lib/main.py", "lib/evse/link/cpsocket.py",
            "lib/evse/link/tls.py", "lib/boards/parts.py", "lib/boards/picow/board.py",
            "lib/boards/drivers/ade7953.py"} <= set(files)
    assert not any("fakes" in f or "esp32" in f or "/sim/" in f or f.endswith(".mpy") for f in files)
    assert (tmp_path / "requirements-circup.txt").read_text().split() == ["asyncio", "adafruit_ticks"]
    code = open(os.path.join(ROOT, "boards/cp_picow/code.py")).read()
    assert (tmp_path / "code.py").read_text() == build.strip_docstrings(code)
    # Sources run as they are on CircuitPython: written without docstrings
    # (they would cost heap there), and still valid Python.
    import ast
    kept = before = after = 0
    for f in files:
        if f.endswith(".py"):
            text = (tmp_path / f).read_text()
            tree = ast.parse(text)
            kept += sum(ast.get_docstring(n, clean=False) is not None for n in ast.walk(tree)
                        if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)))
            after += len(text)
            rel = f[4:] if f.startswith("lib/") else "boards/cp_picow/" + f
            before += len(open(os.path.join(ROOT, rel if rel.startswith("boards/") else "firmware/" + rel)).read())
    assert kept == 0 and after < before * 0.9
    with pytest.raises(SystemExit):
        build.circuitpython_tree("esp32", str(tmp_path / "x"))


# -- the whole CircuitPython stack: code.py + CpParts + cpsocket + Runtime ----------
def test_code_py_runs_the_station_until_a_hard_reset(monkeypatch, tmp_path):
    import threading

    from fake_socketpool import FakeSocketPool
    from live import CsmsThread, wait_for
    from ocpp.v16 import call

    import main
    from boards.cp_picow import code
    from evse import compat
    from evse.link import cpsocket
    csms = CsmsThread(tags={"AA": "Accepted"}, heartbeat=30)
    r = Rig()
    monkeypatch.setattr(cp, "modules", lambda: r.mods)  # the board's parts: fakes behind CircuitPython's API
    monkeypatch.setattr(compat, "CIRCUITPYTHON", True)  # streams through evse.link.cpsocket
    pool = FakeSocketPool()
    monkeypatch.setattr(cpsocket, "_pool", pool)
    monkeypatch.setattr(main, "DATA", str(tmp_path / "data"))
    monkeypatch.setattr(main, "load_config", lambda: {"url": csms.url, "id": "CPCP1"})
    result = []
    t = threading.Thread(target=lambda: result.append(code.start()), daemon=True)
    t.start()
    try:
        boot = csms.wait_call("BootNotification", timeout=10)[0]
        assert boot["chargePointModel"] == "CPPICOW-1P-32A"
        assert boot["chargePointSerialNumber"] == "CPPICOW-0102030405060708"
        csms.wait_call("StatusNotification", 2, cp_id="CPCP1")
        r.line.ev = "B"  # an EV plugs in: the pilot read through analogio reaches the CSMS
        csms.wait_call("StatusNotification", 1, cp_id="CPCP1", where=lambda p: p["status"] == "Preparing")
        assert csms.call("CPCP1", call.Reset(type="Hard")).status == "Accepted"
        wait_for(lambda: result, 10, "code.start() to return")
    finally:
        csms.stop()
    assert result == [True] and pool.sockets and pool.partial > 0
