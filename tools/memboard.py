"""Heap per board in the MicroPython VM (32-bit, like ESP32/RP2040): the
figures issue 13 asks of `make memreport`, and the budgets test.

For each board (esp32 and picow on register-level fakes, sim): the import
heap of the core and the board from .mpy files (what /lib costs; frozen
modules run from flash, which the VM cannot show), the data heap after boot
(BootNotification accepted, statuses sent), and the certificate-limit
workload after it: a 100-entry SendLocalList, three SetChargingProfile at
the board's ChargingScheduleMaxPeriods, a StopTransaction with 20 meter
values encoded. The VM's gc reclaims nothing inside one call, so every
workload item is a call of its own: "peak" is the heap before collecting
after the call (live + every allocation of the call, an upper bound of the
real peak), "live" after collecting; both above the data heap after boot.
TLS is not in the VM: mbedTLS allocates outside the Python heap on ESP-IDF
and the unix port; on rp2 its 16+4 KiB come from the heap (docs/PERFORMANCE.md).
"""
from __future__ import annotations

import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import build  # noqa: E402
import mpvm  # noqa: E402

BOARDS = ("esp32", "picow", "sim")
SIM_PERIODS = 1000  # the sim board keeps the certificate's 86400: measured at this many

_M = "gc.collect()\nprint('M', gc.mem_alloc())"
_A = "print('A', gc.mem_alloc())"

_IMPORTS = """
import gc, json, os
from evse.station import Station, FEATURES
from evse.store.storage import FileStorage
from evse.wire import rpc, jsonstream
for f in FEATURES:
    __import__('evse.' + f)
from scenarios.scripted import ScriptedCsms
from scenarios.vclock import VirtualClock
"""
_BOARD = {
    "sim": "from boards.sim.board import SimBoard\nb = SimBoard(serial='VM')",
    "esp32": "import fakes\nfrom boards.esp32.board import Esp32Board as B\n",
    "picow": "import fakes\nfrom boards.picow.board import PicoWBoard as B\n",
}
_FAKES = """
line = fakes.FakePilotLine(); coil = fakes.FakePin(); fb = fakes.MirrorPin(coil)
meter = fakes.FakeBl0942(); rf = fakes.FakeMfrc522()
b = B(parts=fakes.FakeParts({"pilot_pwm": line.pwm, "pilot_adc": line.adc, "relay": coil, "relay_fb": fb,
                             "meter_uart": meter, "rfid_spi": rf, "rfid_cs": rf.cs}), serial="VM")
"""
_BOOT = """
try:
    os.mkdir('/data')
except OSError:
    pass
clock = VirtualClock()
st = Station(board=b, clock=clock, storage=FileStorage('/data'))
cs = ScriptedCsms(st, clock)
cs.record = False
st.connected(clock.ms())
cs.pump()
cs.run_for(3000)
assert st.registration == 'Accepted'
"""
_LIST = ("text = json.dumps([2, 'l1', 'SendLocalList', {'listVersion': 1, 'updateType': 'Full',"
         " 'localAuthorizationList': [{'idTag': 'TAG%017d' % i, 'idTagInfo': {'status': 'Accepted',"
         " 'expiryDate': '2030-01-01T00:00:00Z', 'parentIdTag': 'GROUP%015d' % (i % 5)}} for i in range(100)]}])")


def _profile(k: int) -> str:
    """Profile k (stack level k) at the board's period limit, capped at SIM_PERIODS."""
    return ("n = min(st.config.get('ChargingScheduleMaxPeriods'), %d)\n"
            "text = json.dumps([2, 'p%d', 'SetChargingProfile', {'connectorId': 1, 'csChargingProfiles':"
            " {'chargingProfileId': %d, 'stackLevel': %d, 'chargingProfilePurpose': 'TxDefaultProfile',"
            " 'chargingProfileKind': 'Relative', 'chargingSchedule': {'chargingRateUnit': 'A',"
            " 'chargingSchedulePeriod': [{'startPeriod': i * 60, 'limit': 6 + i %% 20} for i in range(n)]}}}])"
            % (SIM_PERIODS, k, k, k - 1))


_RECV = ("st.receive(text, clock.ms())\n" + _A + "\nf = st.take_frames()\nassert 'Accepted' in f[0], f[0][:200]"
         "\nf = None")
_STOP = ("mv = [{'timestamp': '2026-01-01T00:%02d:00Z', 'sampledValue': [{'value': str(1000 * i + k),"
         " 'measurand': m, 'unit': u} for k, (m, u) in enumerate((('Energy.Active.Import.Register', 'Wh'),"
         " ('Power.Active.Import', 'W'), ('Current.Import', 'A'), ('Voltage', 'V')))]} for i in range(20)]\n"
         "p = {'transactionId': 1, 'idTag': 'AA', 'meterStop': 20000, 'timestamp': '2026-01-01T00:20:00Z',"
         " 'reason': 'Local', 'transactionData': mv}")


def scenario_files() -> dict[str, str]:
    return mpvm.scenario_files()


def _vals(out: str, tag: str) -> list[int]:
    return [int(x.split()[1]) for x in out.splitlines() if x.startswith(tag + " ")]


def import_heap(board: str, mpy: bool = True) -> int:
    """Heap taken by importing the core, its features and the board."""
    code = ["import gc", _M, _IMPORTS + _BOARD[board].split("\n", 1)[0] + "\n" + _BOARD[board], _M]
    if mpy:
        with tempfile.TemporaryDirectory() as d:
            build.compile_all(d, quiet=True)
            files = mpvm.mpy_files(d)
            files.update(scenario_files())
            out = mpvm.run(code, files, source=False)
    else:
        out = mpvm.run(code, scenario_files())
    m = _vals(out, "M")
    return m[1] - m[0]


def _settled(code: list[str]) -> list[str]:
    """A call of its own before each reading: the VM keeps the objects of the
    call just before alive a little longer (seen as a one-step lag)."""
    out = []
    for c in code:
        out += ["pass", "pass", c] if c == _M else [c]
    return out


def workload(board: str) -> dict[str, int]:
    """Data heap after boot and the certificate-limit workload (bytes)."""
    make = _BOARD[board] + (_FAKES if board != "sim" else "")
    code = [_IMPORTS + make, _M, _BOOT, _M, _LIST, _M, _RECV, _M, "text = None", _M]
    for k in (1, 2, 3):
        code += [_profile(k), _M, _RECV, _M, "text = None", _M]
    code += [_STOP, _M, "s = rpc.encode_call('x1', 'StopTransaction', p)\n" + _A + "\nprint('L', len(s))\ns = None", _M,
             "print('N', st.config.get('ChargingScheduleMaxPeriods'))"]
    out = mpvm.run(_settled(code), scenario_files(), timeout=300)
    m, a = _vals(out, "M"), _vals(out, "A")
    base, boot = m[0], m[1]
    # m: 0 imports, 1 boot, 2 list text, 3 list done, 4 text gone; then per
    # profile i: 5+3i text, 6+3i done, 7+3i text gone; 14 stop payload, 15 encoded.
    return {
        "data after boot": boot - base,
        "list: frame in hand": m[2] - boot,
        "list: all allocations (peak bound)": a[0] - m[2],
        "profile: all allocations (largest)": max(a[1 + i] - m[5 + 3 * i] for i in range(3)),
        "live after the workload": m[13] - boot,
        "StopTransaction: json.dumps allocations": a[4] - m[14],
        "StopTransaction: frame bytes": _vals(out, "L")[0],
        "periods per profile": min(_vals(out, "N")[0], SIM_PERIODS),
    }


def report() -> dict[str, dict[str, int]]:
    out = {}
    for b in BOARDS:
        r = {"import heap, .mpy in /lib": import_heap(b)}
        r.update(workload(b))
        out[b] = r
    return out


def main() -> None:
    rep = report()
    keys = list(rep[BOARDS[0]])
    print("Heap per board, MicroPython VM (32-bit), bytes; peaks are upper bounds (see tools/memboard.py):")
    print("  %-40s" % "" + "".join("%10s" % b for b in BOARDS))
    for k in keys:
        print("  %-40s" % k + "".join("%10d" % rep[b][k] for b in BOARDS))


def list_report() -> None:
    sys.path.insert(0, os.path.join(ROOT, "host_tests"))
    import memsteps

    print("SendLocalList, 100 entries (14,996-byte frame), step by step above idle with the frame in hand:")
    for name, streamed in (("streamed (jsonstream)", True), ("json.loads tree", False)):
        r = memsteps.send_local_list(100, streamed)
        print("  %-22s live max %6d   step peak max %6d (upper bound)   live at end %6d"
              % (name, r["live max"], r["step peak max (upper bound)"], r["live at end"]))


if __name__ == "__main__":
    main()
