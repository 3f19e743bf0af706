"""Contactor with an optional feedback (mirror) contact.

The coil pin is driven on set(); check(now) compares the mirror contact with
the command. A disagreement that outlasts `settle_ms` (the contactor's
operate/release time plus contact bounce) is a fault:

  commanded open, contact closed  -> welded contactor
  commanded closed, contact open  -> contactor did not close

Both are reported as OCPP 1.6 ChargePointErrorCode PowerSwitchFailure
("Failure of power switch", the closest code; 7.6), with the detail in
`info`. A welded contactor clears once the contact has been seen open for
`clear_ms`. One that did not close stays faulted until rearm() (the board
calls it when the EV leaves, state A): the station opens it on the fault,
so the contact then agrees and nothing new could be learnt before the next
attempt, which would otherwise repeat every few hundred ms.
"""
from evse.compat import ticks_diff

WELDED = ("PowerSwitchFailure", "contactor welded")
NOT_CLOSED = ("PowerSwitchFailure", "contactor did not close")


class Contactor:
    """`pin`: value(v) drives the coil; `feedback`: value() reads the mirror
    contact, or None when there is none (then no fault is ever raised)."""

    def __init__(self, pin, feedback=None, settle_ms=300, clear_ms=1000,
                 on_level=1, closed_level=1):
        self.pin = pin
        self.feedback = feedback
        self.settle_ms = settle_ms
        self.clear_ms = clear_ms
        self.on_level = on_level
        self.closed_level = closed_level
        self.on = False
        self.fault = None  # WELDED | NOT_CLOSED | None
        self._since = None  # tick when the current (dis)agreement began
        pin.value(1 - on_level)

    def set(self, on):
        on = bool(on)
        if on != self.on:
            self.on = on
            self.pin.value(self.on_level if on else 1 - self.on_level)
            self._since = None  # the contact gets settle_ms to follow

    def closed(self):
        """The mirror contact says closed (None without feedback)."""
        if self.feedback is None:
            return None
        return self.feedback.value() == self.closed_level

    def rearm(self):
        """A new session may try again after a contactor that did not close."""
        if self.fault is NOT_CLOSED:
            self.fault = None
            self._since = None

    def check(self, now):
        """The active fault (code, info) or None; call on every poll."""
        closed = self.closed()
        if closed is None:
            return None
        if self.fault is None:
            if closed == self.on:
                self._since = None
            elif self._since is None:
                self._since = now
            elif ticks_diff(now, self._since) >= self.settle_ms:
                self.fault = WELDED if closed else NOT_CLOSED
                self._since = None
        elif self.fault is WELDED:
            if closed:
                self._since = None
            elif self._since is None:
                self._since = now
            elif ticks_diff(now, self._since) >= self.clear_ms:
                self.fault = None
                self._since = None
        return self.fault
