"""The board HAL on real hardware, shared by the ESP32 and Pico W boards.

`HwBoard` implements the interface the station core calls (the same one
as boards/sim/board.py): connectors, voltage, phases, max_current_da,
has_lock, poll_ms, identity(), config_overrides(), poll(now) -> events,
set_pilot(cid, da), set_relay(cid, on), meter(cid). The hardware sits in
drivers (boards/drivers/) that take their machine objects by injection;
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


class HwBoard:
    connectors = 1
    voltage = 230
    phases = 1
    max_current_da = 320  # 32.0 A
    has_lock = False  # fixed cable
    poll_ms = 50
    vendor = "OpenEVSE-Py"
    model = "HW-1P-32A"
    firmware = "0.1.0"
    meter_type = "BL0942"

    def __init__(self, ports, reader=None, serial="0", overrides=None, energy=None):
        self.ports = ports
        self.connectors = len(ports)
        self.reader = reader
        self.serial = serial
        self.overrides = overrides
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


def wlan_connect(ssid, key, wait_ms=20000, setup=None):
    """Join a Wi-Fi network in station mode; with wait_ms 0 only (re)start
    the connection and return. True if connected."""
    import network  # MicroPython only

    from evse.compat import ticks_ms
    import time

    wlan = network.WLAN(network.STA_IF)
    wlan.active(True)
    if setup is not None:
        setup(wlan)
    if wlan.isconnected():
        return True
    if wlan.status() != network.STAT_CONNECTING:
        wlan.connect(ssid, key)
    t0 = ticks_ms()
    while not wlan.isconnected() and ticks_diff(ticks_ms(), t0) < wait_ms:
        time.sleep_ms(100)
    return wlan.isconnected()


class OneConnectorBoard(HwBoard):
    """The reference station's hardware: one connector with a control pilot,
    a contactor with a mirror contact to GND (pull-up: 0 = closed), a BL0942
    meter and an MFRC522 reader. A board module subclasses it with its
    model, PILOT_CAL, OVERRIDES and part(name) -> the machine object; parts
    passed in (the tests' register-level fakes) are used as they are."""

    model = "?"
    PILOT_CAL = (4000, 60000)
    OVERRIDES: "dict[str, str]" = {}

    def part(self, name):
        raise NotImplementedError(name)

    def __init__(self, pwm=None, adc=None, relay=None, feedback=None, uart=None,
                 spi=None, cs=None, rst=None, serial=None, overrides=None,
                 energy=None, pilot_cal=None, debounce=2):
        from boards.drivers.bl0942 import Bl0942
        from boards.drivers.mfrc522 import Mfrc522
        from boards.drivers.pilot import Pilot
        from boards.drivers.relay import Contactor
        if pwm is None:  # on the device: build what was not injected
            adc = adc if adc is not None else self.part("adc")
            relay = relay if relay is not None else self.part("relay")
            feedback = feedback if feedback is not None else self.part("feedback")
            uart = uart if uart is not None else self.part("uart")
            spi = spi if spi is not None else self.part("spi")
            cs = cs if cs is not None else self.part("cs")
            rst = rst if rst is not None else self.part("rst")
            pwm = self.part("pwm")
        cal = pilot_cal or self.PILOT_CAL
        # debounce 2 bursts at poll_ms 50: a state counts within 50..100 ms.
        pilot = Pilot(pwm, adc, raw_n12=cal[0], raw_p12=cal[1], debounce=debounce)
        contactor = Contactor(relay, feedback, closed_level=0)
        ov = dict(self.OVERRIDES)
        if overrides:
            ov.update(overrides)
        HwBoard.__init__(self, [Port(pilot, contactor, Bl0942(uart))], reader=Mfrc522(spi, cs, rst),
                         serial=serial or self.part("serial"), overrides=ov, energy=energy)


def make_board(cls, cfg, energy=None):
    """A board of class `cls` from the device configuration (main.py)."""
    cal = cfg.get("pilot_cal")
    return cls(serial=cfg.get("serial"), overrides=cfg.get("overrides"), energy=energy,
               pilot_cal=tuple(cal) if cal else None)
