"""Firmware Management: UpdateFirmware (OCPP 1.6 4.5, 5.19) and
SignedUpdateFirmware (Security Whitepaper ed.3, 2.4), over A/B slots."""
# One request at a time, persisted in the "fwupdate" snapshot so a power
# cut at any step resumes (or fails) it cleanly. Its phase:
#   wait   download due at r["get"] (retrieveDate, or the next retry)
#   dl     the download job runs (a power cut here counts as a failed try)
#   ready  the image is in the inactive slot, verified; install due at r["at"]
#   boot   the slot is activated for a trial boot; reboot, then confirm
# AQ-4: no download and no install while a transaction runs; a due step
# waits for the transaction to end (signed: DownloadPaused).
# The download is a job (evse/jobs.py): http.get streams into
# fwimage.Installer, whose verify callable checks the signature over the
# whole file. The boot loader (device main.py, tools/sim.py) picks the slot;
# here the accepted BootNotification confirms the trial; a trial that is
# not accepted within _TRIAL_MS reboots, and the boot loader rolls it back.
#
# Retries: `retries` more attempts after the first, `retryInterval` s apart
# (default 60 s). A bad signature is not retried (the file is what it is).
# A second request while one runs (whitepaper 2.4, as OCPP 2.0.1 L01.FR.24):
# SignedUpdateFirmware cancels it and answers AcceptedCanceled, unless the
# install has begun (Rejected); a plain UpdateFirmware replaces it the same way.
#
# L01.FR.20: a build with the secure firmware update (FwState.secure: the security
# or the certificates feature, which holds the ManufacturerRootCertificates)
# answers the 1.6 UpdateFirmware with CALLERROR NotSupported and starts
# nothing: an unsigned image is never installed beside the signed path. Only
# a build without both keeps the plain UpdateFirmware.
#
# This module is what every boot imports: the state, the hooks and the
# trigger. The request's life is evse/fwrequests.py, imported when a request
# comes or runs (heap: it is most of the code).

from evse.wire import rpc

PROFILE = "FirmwareManagement"  # GetDiagnostics is diagnostics.py's (in FEATURES with this one)

# L01 needs the key; the reference station (HS31007D, ORS-16) reports HTTP and
# HTTPS. Downloads (and the log uploads of diagnostics.py) use http.py.
_KEYS = """
SupportedFileTransferProtocols cr HTTP,HTTPS - 0
"""  # config.py's table format

_TRIAL_MS = 600000  # a trial image must reach an accepted boot within this
# Statuses the plain FirmwareStatusNotification has (the rest are signed only).
_PLAIN = " Downloaded DownloadFailed Downloading Idle InstallationFailed Installing Installed "
# Final statuses of a request that failed: a trigger repeats them (L01.FR.29/21).
_FAILED = " DownloadFailed InvalidSignature InstallVerificationFailed InstallationFailed "


class FwState:
    """The feature's state: the persisted request, the slots, the last status."""

    def __init__(self, st):
        self.root = st.storage.root
        self.board = st.board.name  # images are built for a board package (mkimage --board)
        self._slots = None
        self.store = st.storage.persist("fwupdate")
        r = self.store.load()
        # the phases of fwrequests._NEXT
        self.req = r if isinstance(r, dict) and r.get("ph") in ("wait", "dl", "ready", "boot") else None
        done = isinstance(r, dict) and self.req is None
        # The last status sent: a request's final failure is reported by a
        # trigger, with its requestId, until the next request (persisted).
        self.status = r.get("st") if done and isinstance(r.get("st"), str) else "Idle"
        self.last_id = r.get("id") if done and type(r.get("id")) is int else None
        self.signed = isinstance(r, dict) and r.get("s") is True  # the kind of the last request (triggers)
        self.job = None
        self.stale = None  # a cancelled download job whose work may still run
        self.reboot_since = None  # tick we asked for the reboot at (this core)

    @property
    def slots(self):
        # fwimage is imported on first use, not at every boot (heap).
        if self._slots is None:
            from evse.fwimage import Slots
            self._slots = Slots(self.root, self.board)
        return self._slots

    def trial(self):
        """(trial slot or None, boots it had) from the boot state, without fwimage."""
        from evse.store.snapshot import Snapshot
        s = Snapshot(self.root + "/fwstate.json").load(None)
        return (s.get("trial"), s.get("boots") or 0) if isinstance(s, dict) else (None, 0)

    def plain(self, status):
        """True if FirmwareStatusNotification (1.6) has this status."""
        return " " + status + " " in _PLAIN

    def secure(self, st):
        """True when this build has the secure firmware update (whitepaper 2.4):
        the security feature (st.link) or the certificate store (st.certs)."""
        return st.link is not None or st.certs is not None

    def save(self):
        self.store.save(self.req if self.req is not None else {"s": self.signed, "st": self.status,
                                                               "id": self.last_id})


def _requests():
    """The feature's request half, fwrequests.py, imported with the first request
    (the same idiom in certificates, diagnostics and fwupdate)."""
    from evse import fwrequests
    return fwrequests


def install(st):
    fw = st.fwupdate = FwState(st)
    st.config.add_keys(_KEYS)
    st.handlers["UpdateFirmware"] = _update
    st.handlers["SignedUpdateFirmware"] = lambda st, p: _requests().signed(st, p)
    st.on_timer["fw"] = _step
    st.on_timer["fwtrial"] = _trial_timeout
    st.on_accepted.append(_accepted)
    st.on_tx.append(_tx)
    st.triggers["FirmwareStatusNotification"] = _trigger
    st.triggers["SignedFirmwareStatusNotification"] = _trigger_signed  # ExtendedTriggerMessage
    trial, boots = fw.trial()
    if trial and boots:  # this boot runs the trial: it has _TRIAL_MS to be accepted
        st.timers.start("fwtrial", st.now, _TRIAL_MS)
    r = fw.req
    if r is not None and r["ph"] == "dl":
        _requests().failed_try(st, "power lost while downloading")
    elif r is not None and r["ph"] != "boot":
        st.timers.start("fw", st.now, 0)


def _update(st, p):
    if st.fwupdate.secure(st):
        # L01.FR.20; nothing starts, a running signed request goes on.
        st.log("warn", "UpdateFirmware refused: this build installs signed firmware only")
        raise rpc.CallError("NotSupported", "use SignedUpdateFirmware")
    return _requests().update(st, p)


def _step(st, now):
    if st.fwupdate.req is not None:
        _requests().step(st, now)


def _accepted(st):
    fw = st.fwupdate
    st.timers.cancel("fwtrial")
    if fw.req is not None or fw.trial()[0]:  # the usual boot imports nothing
        _requests().accepted(st)


def _trial_timeout(st, now):
    if st.fwupdate.trial()[0]:
        st.log("error", "trial firmware not accepted in time: rebooting (rollback)")
        st.reboot = "Hard"


def _tx(st, c, started):
    if not started and st.fwupdate.req is not None:
        st.timers.start("fw", st.now, 0)


def current(st):
    """(status, requestId or None) a trigger reports: the running request's
    last status; after a request that failed, its final status and id until
    the next request (L01.FR.29/21); else Idle (also after Installed)."""
    fw = st.fwupdate
    if fw.req is not None:
        return fw.status, fw.req["id"]
    if " " + fw.status + " " in _FAILED:
        return fw.status, fw.last_id
    return "Idle", None


def _send_signed(st, status, req_id):
    p = {"status": status}
    if req_id is not None:
        p["requestId"] = req_id
    st.send("SignedFirmwareStatusNotification", p)


def _trigger(st, cid):
    # TriggerMessage: the message of the last request's kind.
    fw = st.fwupdate
    status, req_id = current(st)
    if fw.signed:
        _send_signed(st, status, req_id)
    else:
        st.send("FirmwareStatusNotification", {"status": status if fw.plain(status) else "Idle"})


def _trigger_signed(st, cid):
    # ExtendedTriggerMessage FirmwareStatusNotification (whitepaper 6.16):
    # always SignedFirmwareStatusNotification, also on a fresh station.
    _send_signed(st, *current(st))
