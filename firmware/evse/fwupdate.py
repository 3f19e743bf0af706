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
# (default _RETRY_S). A bad signature is not retried (the file is what it is).
# A second request while one runs (whitepaper 2.4, as OCPP 2.0.1 L01.FR.24):
# SignedUpdateFirmware cancels it and answers AcceptedCanceled, unless the
# install has begun (Rejected); a plain UpdateFirmware replaces it the same way.
#
# (Comments, not a docstring: compiled from source on the device, a
# docstring stays in RAM.)
from evse import timestamp
from evse.compat import const
from evse.jobs import Cancelled, Job

PROFILE = "FirmwareManagement"  # GetDiagnostics is diagnostics.py's (in FEATURES with this one)

_RETRY_S = const(60)
_TRIAL_MS = 600000  # a trial image must reach an accepted boot within this
_REBOOT_WAIT_MS = const(10000)  # let InstallRebooting go out first
_MAX_WAIT_S = const(3600)  # re-check wall-clock deadlines at least hourly

# Statuses the plain FirmwareStatusNotification has (the rest are signed only).
_PLAIN = " Downloaded DownloadFailed Downloading Idle InstallationFailed Installing Installed "
SIG_FAILED = "signature verification failed"  # fwimage.Installer's text


class FwState:
    """The feature's state: the persisted request, the slots, the last status."""

    def __init__(self, st):
        self.root = st.storage.root
        self.board = board_name(st.board)
        self._slots = None
        self.store = st.storage.persist("fwupdate")
        r = self.store.load()
        self.req = r if isinstance(r, dict) and r.get("ph") in ("wait", "dl", "ready", "boot") else None
        self.status = "Idle"
        self.signed = isinstance(r, dict) and r.get("s") is True  # the kind of the last request (triggers)
        self.job = None
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
        from evse.snapshot import Snapshot
        s = Snapshot(self.root + "/fwstate.json").load(None)
        return (s.get("trial"), s.get("boots") or 0) if isinstance(s, dict) else (None, 0)

    def save(self):
        self.store.save(self.req if self.req is not None else {"s": self.signed})


def board_name(board):
    """The board package name images are built for (mkimage --board)."""
    n = getattr(board, "name", None)
    if n:
        return n
    m = getattr(type(board), "__module__", "") or ""
    parts = m.split(".")
    return parts[1] if len(parts) > 2 and parts[0] == "boards" else "sim"


def install(st):
    fw = st.fwupdate = FwState(st)
    st.handlers["UpdateFirmware"] = _update
    st.handlers["SignedUpdateFirmware"] = _signed
    st.on_timer["fw"] = step
    st.on_timer["fwtrial"] = _trial_timeout
    st.on_accepted.append(_accepted)
    st.on_tx.append(_tx)
    st.triggers["FirmwareStatusNotification"] = _trigger
    trial, boots = fw.trial()
    if trial and boots:  # this boot runs the trial: it has _TRIAL_MS to be accepted
        st.timers.start("fwtrial", st.now, _TRIAL_MS)
    r = fw.req
    if r is not None and r["ph"] == "dl":
        _failed_try(st, "power lost while downloading")
    elif r is not None and r["ph"] != "boot":
        st.timers.start("fw", st.now, 0)


# ---- CSMS requests ---------------------------------------------------------

def _update(st, p):
    if _busy_installing(st):
        st.log("warn", "UpdateFirmware ignored: an install is under way")
        return {}
    _begin(st, False, None, p["location"], p, p["retrieveDate"], None, None, None)
    return {}


def _signed(st, p):
    f = p["firmware"]
    why = check_certificate(st, f["signingCertificate"])
    if why is not None:
        st.security_event("InvalidFirmwareSigningCertificate", why)
        return {"status": "InvalidCertificate"}
    if _busy_installing(st):
        return {"status": "Rejected"}
    status = "AcceptedCanceled" if st.fwupdate.req is not None else "Accepted"
    _begin(st, True, p["requestId"], f["location"], p, f["retrieveDateTime"], f.get("installDateTime"),
           f["signingCertificate"], f["signature"])
    return {"status": status}


def check_certificate(st, pem):
    """None if the signing certificate chains to a ManufacturerRootCertificate
    now, else the reason."""
    from evse.pki import chain, x509
    try:
        certs = x509.load_all(pem)
        return chain.validate(certs, manufacturer_roots(st), st.clock.unix())
    except Exception as e:  # noqa: BLE001 - unparsable is invalid
        return "unreadable certificate: " + repr(e)


def manufacturer_roots(st):
    """The installed ManufacturerRootCertificates, parsed (certificates.py's store)."""
    certs = getattr(st, "certs", None)
    if certs is None:
        return []
    if hasattr(certs, "parsed"):
        return certs.parsed("ManufacturerRootCertificate")
    from evse.pki import x509
    out = []
    for c in certs.roots("ManufacturerRootCertificate"):
        if isinstance(c, (str, bytes)):
            out.extend(x509.load_all(c))
        else:
            out.append(c)
    return out


def _busy_installing(st):
    r = st.fwupdate.req
    return r is not None and r["ph"] == "boot"


def _begin(st, signed, req_id, loc, p, get, at, cert, sig):
    fw = st.fwupdate
    _cancel(st)
    now = st.clock.unix()
    fw.req = {"s": signed, "id": req_id, "loc": loc, "left": max(0, p.get("retries") or 0),
              "iv": p.get("retryInterval") or _RETRY_S, "get": timestamp.parse(get) or now,
              "at": timestamp.parse(at) if at else None, "cert": cert, "sig": sig, "ph": "wait", "tries": 0}
    fw.signed = signed
    fw.save()
    st.log("info", "firmware update requested: " + loc)
    st.timers.start("fw", st.now, 0)  # after the .conf: the handler's answer goes first


def _cancel(st):
    fw = st.fwupdate
    if fw.job is not None:
        fw.job.cancelled = True
        fw.job = None
    fw.req = None
    st.timers.cancel("fw")


# ---- the steps -------------------------------------------------------------

def _busy(st):
    for c in st.connectors[1:]:
        if c.tx is not None:
            return True
    return False


def _later(st, due):
    """Arm the step timer for wall time `due`; True if it is still ahead."""
    left = due - st.clock.unix()
    if left <= 0:
        return False
    st.timers.start("fw", st.now, 1000 * min(left, _MAX_WAIT_S))
    return True


def step(st, now):
    """Move the request on as far as time and transactions allow."""
    fw = st.fwupdate
    r = fw.req
    if r is None:
        return
    ph = r["ph"]
    if ph == "wait":
        if _later(st, r["get"]):
            if not r["tries"]:
                _notify(st, "DownloadScheduled")
        elif _busy(st):
            _notify(st, "DownloadPaused")  # _tx() steps again when it ends
        else:
            _start_download(st, r)
    elif ph == "ready":
        if r["at"] is not None and _later(st, r["at"]):
            _notify(st, "InstallScheduled")
        elif not _busy(st):
            _install(st, r)
    elif ph == "boot" and fw.reboot_since is not None:
        # Reboot once the status is out (or the CSMS is not there to hear it).
        action = "SignedFirmwareStatusNotification" if r["s"] else "FirmwareStatusNotification"
        waiting = st.online and (st.queued(action) is not None or st.rpc_pending(action))
        from evse.compat import ticks_diff
        if waiting and ticks_diff(now, fw.reboot_since) < _REBOOT_WAIT_MS:
            st.timers.start("fw", now, 200)
        else:
            st.log("info", "rebooting into the new firmware")
            st.reboot = "Hard"


def _start_download(st, r):
    fw = st.fwupdate
    r["ph"] = "dl"
    r["tries"] += 1
    fw.save()  # before the slot is touched: a power cut from here is a failed try
    _notify(st, "Downloading")
    try:
        fw.job = download_job(st, r)
    except Exception as e:  # noqa: BLE001 - e.g. no TLS context: this try failed
        return _failed_try(st, repr(e))
    st.jobs.append(fw.job)


def download_job(st, r):
    """The Job that streams r["loc"] into the inactive slot; its result is
    (slot, None) or (slot, error text)."""
    slots = st.fwupdate.slots
    verify = _verifier(r) if r["s"] else None
    ctx = _ssl_for(st, r["loc"])
    url = r["loc"]

    async def work():
        from evse import http
        inst = slots.begin_install(verify)

        def sink(mv):
            if job.cancelled:
                raise Cancelled()
            inst.feed(mv)

        try:
            await http.get(url, sink, ssl=ctx)
        except BaseException:
            inst.abort()  # frees the slot (also when the task is cancelled)
            raise
        return inst.slot, inst.finish()

    job = Job("firmware", work, _downloaded)
    return job


def _verifier(r):
    # The certificate chain was checked when the request came; here only
    # the signature over the whole file (its SHA-256 from the installer).
    import binascii

    from evse.pki import verify, x509
    cert = x509.load_all(r["cert"])[0]
    try:
        sig = binascii.a2b_base64(r["sig"].encode())  # bytes: MicroPython's binascii wants them
    except (ValueError, TypeError):
        sig = b""
    return lambda digest: bool(sig) and verify.check(cert, digest, sig)


def _ssl_for(st, url):
    if not url.startswith("https:"):
        return None
    from evse import tls
    link = st.link
    return tls.client_context(link.ca) if link is not None and link.ca else tls.system_context()


def _downloaded(st, result, error):
    fw = st.fwupdate
    r = fw.req
    if r is None or r["ph"] != "dl":
        return
    fw.job = None
    err = repr(error) if error is not None else result[1]
    if err is None:
        r["ph"], r["slot"] = "ready", result[0]
        fw.save()
        _notify(st, "Downloaded")
        if r["s"]:
            _notify(st, "SignatureVerified")
        step(st, st.now)
    elif err == SIG_FAILED:
        _notify(st, "Downloaded")
        st.security_event("InvalidFirmwareSignature", r["loc"][:200])
        _end(st, "InvalidSignature")
    else:
        _failed_try(st, err)


def _failed_try(st, err):
    fw = st.fwupdate
    r = fw.req
    st.log("warn", "firmware download failed: " + err)
    if r["left"] > 0:
        r["left"] -= 1
        r["ph"], r["get"] = "wait", st.clock.unix() + r["iv"]
        fw.save()
        st.timers.start("fw", st.now, 0)
    else:
        _end(st, "DownloadFailed")


def _install(st, r):
    fw = st.fwupdate
    _notify(st, "Installing")
    err = fw.slots.activate_trial(r.get("slot"))  # re-verifies every file of the slot
    if err:
        st.log("warn", "install failed: " + err)
        return _end(st, "InstallVerificationFailed" if r["s"] else "InstallationFailed")
    r["ph"] = "boot"  # after the activation: a cut between the two still confirms (_accepted)
    fw.save()
    if r["s"]:
        _notify(st, "InstallRebooting")
    fw.reboot_since = st.now
    st.timers.start("fw", st.now, 0)


def _end(st, status):
    fw = st.fwupdate
    _notify(st, status)
    fw.req = None
    fw.save()
    st.timers.cancel("fw")


def _accepted(st):
    fw = st.fwupdate
    r = fw.req
    st.timers.cancel("fwtrial")
    if r is None and not fw.trial()[0]:
        return  # the usual boot: fwimage stays unimported
    if fw.slots.confirm():
        ver = fw.slots.state["version"]
        st.log("info", "firmware " + str(ver) + " confirmed")
        st.security_event("FirmwareUpdated", "version " + str(ver))
        if r is not None:
            _end(st, "Installed")
    elif r is not None and r["ph"] == "boot" and fw.reboot_since is None:
        st.log("warn", "firmware update failed: " + str(fw.slots.state["failure"] or "the trial did not run"))
        _end(st, "InstallationFailed")


def _trial_timeout(st, now):
    if st.fwupdate.trial()[0]:
        st.log("error", "trial firmware not accepted in time: rebooting (rollback)")
        st.reboot = "Hard"


def _tx(st, c, started):
    if not started and st.fwupdate.req is not None:
        st.timers.start("fw", st.now, 0)


# ---- status ----------------------------------------------------------------

def _notify(st, status):
    fw = st.fwupdate
    r = fw.req
    if fw.status == status and status in ("DownloadPaused", "DownloadScheduled", "InstallScheduled"):
        return  # said once while it lasts
    fw.status = status
    if r is not None and r["s"]:
        st.send("SignedFirmwareStatusNotification", {"status": status, "requestId": r["id"]})
    elif " " + status + " " in _PLAIN:
        st.send("FirmwareStatusNotification", {"status": status})


def current_status(st):
    """What a trigger reports: the running request's last status, else Idle."""
    fw = st.fwupdate
    return fw.status if fw.req is not None else "Idle"


def _trigger(st, cid):
    fw = st.fwupdate
    status = current_status(st)
    if fw.signed:
        p = {"status": status}
        if fw.req is not None and fw.req["id"] is not None:
            p["requestId"] = fw.req["id"]
        st.send("SignedFirmwareStatusNotification", p)
    else:
        st.send("FirmwareStatusNotification", {"status": status if " " + status + " " in _PLAIN else "Idle"})
