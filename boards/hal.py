"""The board HAL: the interfaces in one place, the `Board` base (sim and
hardware) and `HwBoard`, the HAL over real parts.

The station core calls (boards/sim/board.py and HwBoard both provide it):
  connectors, voltage, phases, max_current_da, has_lock, poll_ms,
  identity(), config_overrides(), poll(now) -> events,
  set_pilot(cid, da), set_relay(cid, on), meter(cid) -> (Wh, W, dA, dV, SoC).

The parts HwBoard drives (drivers in boards/drivers/, built from a board's
pin table by boards/parts.py; every one takes its machine objects by
injection, so host_tests/fakes.py can stand in at register level):
  pilot      set_da(da), set_f(), reconfirm(), sense() -> state;
             state ("A".."F", "?", None until debounced), diode_fault,
             permille (PWM duty now)                     drivers/pilot.py
  contactor  set(on), check(now) -> (code, info) | None, rearm()
                                                         drivers/relay.py
  meter      TYPE (identity meterType), poll(now) (non-blocking, call
             often), restore(wh), and the last good readings wh (integer
             register, never goes back), power_w, current_da, voltage_dv;
             failed = requests in a row without a good answer
                                 drivers/bl0942.py, drivers/ade7953.py
  reader     init() -> chip version | None, ok() -> bool,
             poll() -> idTag of a newly presented card | None
                                                         drivers/mfrc522.py
A driver module also has build(parts, cal=None) -> the driver, naming the
pin-table entries it needs; a new meter IC is its driver, its fake and
one pin-table line.

HwBoard (the ESP32 and Pico W boards, under MicroPython or CircuitPython):
nothing here imports `machine`.

poll(now) events, per connector in this order:
  ("fault", cid, code, info) / ("clear", cid)   when the active fault changes
  ("cp", cid, state)                            debounced pilot state change
then ("card", 1, idTag) for a newly presented card.

Faults, first one wins (OCPP 1.6 ChargePointErrorCode, 7.6):
  contactor welded / did not close   PowerSwitchFailure (drivers/relay.py)
  pilot at 0 V (state E)             EVCommunicationError, CP state "E"
  pilot level in no band             EVCommunicationError, CP state "E"
  EV diode missing                   EVCommunicationError (latched until A)
  pilot at -12 V while not driven F  InternalError (our pilot driver)
  5 meter requests unanswered       PowerMeterFailure

Safety interlock: the contactor closes only while the core asks for it
AND the EV requests energy (state C or D) AND the pilot is sound; an EV
that goes back to B opens it at that very poll, without waiting for the
core (IEC 61851-1 asks for it within 100 ms).

The energy register (Wh) is saved to `energy` (a store with load()/save(),
e.g. FileStorage.persist("meter")) at most once a minute while it moves and
when a charge ends, so it never goes back after a reboot (a power cut
loses at most a minute of counting).
"""
from evse.compat import const, ticks_diff

_SAMPLE_GAP_MS = const(20)  # the core polls several times per input: one burst per gap
_READ_MS = const(200)  # card presence check period
_SAVE_MS = const(60000)
_METER_FAILS = const(5)

_CP_SHORT = ("EVCommunicationError", "CP at 0 V (state E)")
_CP_LEVEL = ("EVCommunicationError", "CP level out of range")
_NO_DIODE = ("EVCommunicationError", "EV diode missing")
_CP_LOW = ("InternalError", "CP stuck at -12 V")
_METER = ("PowerMeterFailure", "meter does not answer")


class Port:
    """One connector: its drivers and what the core was last told."""

    def __init__(self, pilot, contactor, meter):
        self.pilot = pilot
        self.contactor = contactor
        self.meter = meter
        self.want = False  # contactor requested by the core
        self.cp = "A"  # CP state last reported
        self.fault = None  # (code, info) last reported


class Board:
    """What every board shares: HAL attributes, identity, overrides and
    connector lookup. Subclasses set `ports` and the class attributes."""

    connectors = 1
    voltage = 230
    phases = 1
    max_current_da = 320  # 32.0 A
    has_lock = False  # fixed cable
    poll_ms: "int | None" = 50
    name = "?"  # the board package (boards/<name>/), what firmware images are built for
    vendor = "OpenEVSE-Py"
    model = "?"
    firmware = "0.1.0"
    meter_type = "?"

    def __init__(self, ports, serial="0", overrides=None):
        self.ports = ports
        self.connectors = len(ports)
        self.serial = serial
        self.overrides = overrides

    def identity(self):
        return {
            "chargePointVendor": self.vendor,
            "chargePointModel": self.model,
            "chargePointSerialNumber": self.serial,
            "chargeBoxSerialNumber": self.serial,
            "firmwareVersion": self.firmware,
            "meterType": self.meter_type,
            "meterSerialNumber": "M-" + self.serial,
        }

    def config_overrides(self):
        return self.overrides

    def _port(self, cid):
        if type(cid) is not int or not 1 <= cid <= self.connectors:
            raise ValueError("unknown connector " + repr(cid))
        return self.ports[cid - 1]


class HwBoard(Board):
    """The HAL over real parts: `ports` (Port per connector), an optional
    card `reader` and an optional `energy` store for the meter registers."""

    model = "HW-1P-32A"

    def __init__(self, ports, reader=None, serial="0", overrides=None, energy=None):
        Board.__init__(self, ports, serial, overrides)
        self.meter_type = getattr(ports[0].meter, "TYPE", "?")
        self.reader = reader
        self._sampled = None
        self._read_at = None
        self.reader_version = reader.init() if reader is not None else None
        if reader is not None and not reader.ok():
            self.reader = None  # no chip answers: no cards, the rest works
        self._energy = energy
        self._saved = None
        self._saved_at = None
        self._flush = False
        if energy is not None:
            data = energy.load()
            if isinstance(data, list):
                for p, wh in zip(ports, data):
                    if type(wh) is int and wh >= 0:
                        p.meter.restore(wh)
            self._saved = self._whs()

    def resync(self):
        """Before a new station core starts (soft reset): it believes nothing
        is plugged and nothing is wrong, so open the contactor, stop the PWM
        and report the present pilot state and fault again at the next poll."""
        for p in self.ports:
            p.want = False
            p.pilot.set_da(0)
            p.pilot.reconfirm()  # a state read under the old PWM is stale
            self._drive(p)
            p.cp = "A"
            p.fault = None

    # -- driven by the core ------------------------------------------------
    def set_pilot(self, cid, da):
        """Offer `da` deci-amps on the PWM; 0 (or < 6 A): DC +12 V."""
        if da < 0:
            raise ValueError("negative pilot current")
        self._port(cid).pilot.set_da(da)

    def set_relay(self, cid, on):
        p = self._port(cid)
        if p.want and not on:
            self._flush = True  # a charge ended: save the register soon
        p.want = bool(on)
        self._drive(p)

    def meter(self, cid):
        """(energy_wh, power_w, current_da, voltage_dv, soc): no SoC over IEC 61851."""
        m = self._port(cid).meter
        return (m.wh, m.power_w, m.current_da, m.voltage_dv, None)

    def poll(self, now):
        out = []
        fresh = self._sampled is None or ticks_diff(now, self._sampled) >= _SAMPLE_GAP_MS
        if fresh:
            self._sampled = now
        for cid, p in enumerate(self.ports, 1):
            if fresh:
                p.pilot.sense()
            self._port_events(cid, p, now, out)
        r = self.reader
        if r is not None and (self._read_at is None or ticks_diff(now, self._read_at) >= _READ_MS):
            self._read_at = now
            tag = r.poll()
            if tag:
                out.append(("card", 1, tag))
        self._persist(now)
        return out

    # -- internals ----------------------------------------------------------
    def _pilot_fault(self, pl):
        s = pl.state
        if s == "E":
            return _CP_SHORT
        if s == "?":
            return _CP_LEVEL
        if pl.diode_fault:
            return _NO_DIODE
        if s == "F" and pl.permille != 0:
            return _CP_LOW
        return None

    def _drive(self, p):
        pl = p.pilot
        p.contactor.set(p.want and pl.state in ("C", "D") and self._pilot_fault(pl) is None)

    def _port_events(self, cid, p, now, out):
        pl = p.pilot
        s = pl.state
        if s == "A":
            p.contactor.rearm()
        self._drive(p)
        p.meter.poll(now)
        fault = p.contactor.check(now) or self._pilot_fault(pl)
        if fault is None and p.meter.failed >= _METER_FAILS:
            fault = _METER
        if fault != p.fault:
            p.fault = fault
            out.append(("clear", cid) if fault is None else ("fault", cid, fault[0], fault[1]))
        if s is None:
            return  # not debounced yet
        cp = "E" if s == "?" else s
        if cp != p.cp:
            if p.cp == "A" and cp in ("C", "D"):
                out.append(("cp", cid, "B"))  # the core sees a connect first
            p.cp = cp
            out.append(("cp", cid, cp))

    def _whs(self):
        return [p.meter.wh for p in self.ports]

    def _persist(self, now):
        if self._energy is None:
            return
        if self._whs() == self._saved:
            self._flush = False
            return
        if not self._flush and self._saved_at is not None and ticks_diff(now, self._saved_at) < _SAVE_MS:
            return
        self._saved_at = now
        self._flush = False
        self.save_energy()

    def save_energy(self):
        """Persist the energy registers now (also before a hard reset)."""
        if self._energy is None:
            return
        whs = self._whs()
        try:
            self._energy.save(whs)
            self._saved = whs
        except OSError:
            pass  # flash full or worn: counting goes on in RAM
