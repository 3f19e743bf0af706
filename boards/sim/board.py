"""Host simulator board: identity, defaults and the hardware model.

Models the certified HS31007D: one AC connector, 1 phase, fixed cable,
one RFID reader. Behind the board HAL sit a virtual EV and meter
(boards/sim/ev.py) that the station core drives like real hardware:
set_pilot / set_relay in, poll() events and meter() readings out.

Timing: poll(now) first integrates the interval since the previous poll
with what the EV was drawing at that poll, then applies what changed in
between (pilot, relay, commands) and reports the resulting events. So a
change made between polls takes effect at the next poll, as a real EV
reacts some time after the pilot changes.
"""
from evse.compat import const, ticks_diff
from boards.pilotduty import da_for_duty, duty_for_da

from boards.hal import Board
from boards.sim.ev import EV, Meter, valid_energy

_MAX_PENDING = const(16)  # command events waiting for a poll; more are refused
_MAX_TAG = const(20)  # OCPP 1.6 IdToken is CiString20Type

# OCPP 1.6 ChargePointErrorCode without NoError (spaces for one `in` test).
_CODES = (" ConnectorLockFailure EVCommunicationError GroundFailure HighTemperature"
          " InternalError LocalListConflict OtherError OverCurrentFailure OverVoltage"
          " PowerMeterFailure PowerSwitchFailure ReaderFailure ResetFailure"
          " UnderVoltage WeakSignal ")

# Commands that take only an optional connector.
_CONN_CMDS = " plug unplug ev-suspend ev-resume clear "


class _Port:
    """One connector: its EV, meter, contactor, pilot offer, fault and CP state."""

    def __init__(self, ev, meter):
        self.ev = ev
        self.meter = meter
        self.relay = False
        self.offered_da = 0  # what the EV decodes from the PWM duty
        self.fault = None  # active error code
        self.cp = "A"


class SimBoard(Board):
    name = "sim"
    model = "SIM-1P-32A"
    meter_type = "SIM-METER"
    # Events come from commands; the simulator wakes the core after each one,
    # so the core need not poll on a timer (a real board sets e.g. 50 ms).
    poll_ms = None

    def __init__(self, serial="SIM-0001", overrides=None, ev_max_da=320,
                 battery_wh=40000, soc=20, meter_wh=0):
        ports = [_Port(EV(max_da=ev_max_da, battery_wh=battery_wh, soc=soc),
                       Meter(voltage_dv=self.voltage * 10, wh=meter_wh))
                 for _ in range(self.connectors)]
        Board.__init__(self, ports, serial, dict(overrides or {}))
        self._pending = []  # events raised by commands, oldest first
        self._last = None  # tick of the previous poll

    # -- HAL driven by the station core --------------------------------

    def poll(self, now_ms):
        """Advance the model to tick `now_ms`; hardware events since the last poll."""
        dt = 0 if self._last is None else ticks_diff(now_ms, self._last)
        self._last = now_ms
        out = self._pending
        self._pending = []
        for cid, p in enumerate(self.ports, 1):
            if dt > 0 and p.meter.current_da:
                self._integrate(p, dt)
            self._settle(p, cid, out)
        return out

    def _integrate(self, p, ms):
        cw = p.meter.power_cw()
        # The battery may fill inside the interval: stop drawing there.
        ms = min(ms, p.ev.ms_to_full(cw))
        p.meter.reg.add(cw, ms)
        p.ev.charged.add(cw, ms)

    def _settle(self, p, cid, out):
        """Recompute what the EV draws and its CP state (IEC 61851-1 A/B/C/E)."""
        ev = p.ev
        draw = 0 if p.fault or not p.relay else ev.demand_da(p.offered_da)
        p.meter.current_da = draw
        if not ev.plugged:
            cp = "A"
        elif p.fault == "EVCommunicationError":
            cp = "E"  # pilot fault seen by the station (e.g. diode missing)
        else:
            cp = "C" if draw else "B"
        if cp != p.cp:
            if p.cp == "A" and cp == "C":
                out.append(("cp", cid, "B"))  # an EV always connects in B first
            p.cp = cp
            out.append(("cp", cid, cp))

    def set_pilot(self, cid, da):
        """Offer `da` deci-amps on the pilot PWM; 0 switches PWM off (DC +12 V)."""
        if da < 0:
            raise ValueError("negative pilot current")
        # The EV reads the current back from the duty, rounding included.
        self._port(cid).offered_da = da_for_duty(duty_for_da(da)) if da else 0

    def set_relay(self, cid, on):
        self._port(cid).relay = bool(on)

    def meter(self, cid):
        """(energy_wh, power_w, current_da, voltage_dv, soc or None when unplugged)."""
        p = self._port(cid)
        m = p.meter
        return (m.reg.wh, m.power_w(), m.current_da, m.voltage_dv,
                p.ev.soc() if p.ev.plugged else None)

    # -- simulator side ---------------------------------------------------

    def command(self, cmd, args):
        """Run a simulator command; None on success, else an error text."""
        args = list(args)
        if cmd == "card":
            if len(args) != 1 or not args[0]:
                return "usage: card IDTAG"
            if len(args[0]) > _MAX_TAG:
                return "idTag longer than 20 characters"
            return self._queue(("card", 1, args[0]))
        if cmd == "fault":
            if not 1 <= len(args) <= 2:
                return "usage: fault [C] ERRORCODE"
            code = args[-1]
            if not code or " " in code or (" " + code + " ") not in _CODES:
                return "unknown error code " + code
            return self._conn_cmd(cmd, args[:-1], code)
        if cmd and " " not in cmd and (" " + cmd + " ") in _CONN_CMDS:
            if len(args) > 1:
                return "usage: " + cmd + " [C]"
            return self._conn_cmd(cmd, args, None)
        return "unknown command " + str(cmd)

    def resync(self):
        """Before a new station core starts (reboot, Reset): it believes
        nothing is plugged and nothing is wrong. Like HwBoard.resync() on the
        device: drop the contactor and the PWM, and report the EV and any
        fault again at the next poll, so the core starts from the real state."""
        for cid, p in enumerate(self.ports, 1):
            p.relay, p.offered_da = False, 0
            p.cp = "A"  # the next poll reports B (or C, E) again
            if p.fault is not None:
                self._queue(("fault", cid, p.fault, "simulated"))

    def _queue(self, ev):
        if len(self._pending) >= _MAX_PENDING:
            return "event queue full"
        self._pending.append(ev)
        return None

    def _conn_cmd(self, cmd, args, code):
        cid = 1
        if args:
            try:
                cid = int(args[0])
            except ValueError:
                return "unknown connector " + args[0]
        if not 1 <= cid <= self.connectors:
            return "unknown connector " + str(cid)
        p = self.ports[cid - 1]
        ev = p.ev
        if cmd == "fault":
            # The fault stops the EV drawing at the next poll; the core decides
            # what to do with the relay and the transaction.
            err = self._queue(("fault", cid, code, "simulated"))
            if err is None:
                p.fault = code
            return err
        if cmd == "clear":
            if p.fault is None:
                return "no fault on connector " + str(cid)
            err = self._queue(("clear", cid))
            if err is None:
                p.fault = None
            return err
        if cmd == "plug":
            if ev.plugged:
                return "connector " + str(cid) + " already plugged"
            ev.plugged = True
            ev.plug_wh = ev.charged.wh
            return None
        if not ev.plugged:
            return "no EV on connector " + str(cid)
        if cmd == "unplug":
            ev.plugged = False
            ev.suspended = False  # the driver's pause ends with the session
        else:
            ev.suspended = cmd == "ev-suspend"
        return None

    def ev_state(self, cid):
        """The EV as the simulator's `status` shows it."""
        p = self._port(cid)
        ev = p.ev
        return {
            "plugged": ev.plugged,
            "suspended": ev.suspended or (ev.plugged and ev.full()),
            "full": ev.full(),
            "cp": p.cp,
            "relay": p.relay,
            "fault": p.fault,
            "offered_da": p.offered_da,
            "drawing_da": p.meter.current_da,
            "energy_wh": p.meter.reg.wh,  # the meter register, as meter()
            "session_wh": ev.session_wh(),  # into this EV since it was plugged
            "soc": ev.soc(),
        }

    def meter_state(self):
        """The meter registers, to persist: {"1": [wh, remainder], ...}."""
        st = {}
        for cid, p in enumerate(self.ports, 1):
            st[str(cid)] = [p.meter.reg.wh, p.meter.reg.rem]
        return st

    def restore_meter(self, state):
        """Load registers saved by meter_state(); bad entries are skipped.

        Returns True if every connector's register was restored.
        """
        ok = True
        for cid, p in enumerate(self.ports, 1):
            v = state.get(str(cid)) if isinstance(state, dict) else None
            if isinstance(v, (list, tuple)) and len(v) == 2 and valid_energy(v[0], v[1]):
                p.meter.reg.wh = v[0]
                p.meter.reg.rem = v[1]
            else:
                ok = False
        return ok
