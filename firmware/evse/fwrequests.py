"""The life of a firmware update request (fwupdate.py installs the feature
and imports this module only when a request comes or runs)."""
# The request's phases, AQ-4, retries and the second request: see
# fwupdate.py and docs/FIRMWARE_UPDATE.md. State: st.fwupdate (FwState).
from evse import timestamp
from evse.compat import const, ticks_diff
from evse.jobs import Cancelled, Job

_RETRY_S = const(60)
_REBOOT_WAIT_MS = const(10000)  # let InstallRebooting go out first
_MAX_WAIT_S = const(3600)  # re-check wall-clock deadlines at least hourly
SIG_FAILED = "signature verification failed"  # fwimage.Installer's text

# The request's phases (r["ph"], persisted) and what moves each on: a
# request starts in "wait", and only these transitions exist (the end of a
# request, _end, drops it from any phase).
_START = "wait"
_NEXT = {
    "wait": {"download": "dl"},  # the retrieve time came, no transaction (AQ-4)
    "dl": {"downloaded": "ready", "retry": "wait"},  # verified into a slot; or a failed try
    "ready": {"installed": "boot"},  # the slot is the trial for the next boot
    "boot": {},  # rebooting; confirmed on the accepted BootNotification
}


def _go(r, event):
    """Move request `r` on by `event` (its phase table above)."""
    nxt = _NEXT[r["ph"]].get(event)
    if nxt is None:
        raise ValueError("firmware request: %s in phase %s" % (event, r["ph"]))
    r["ph"] = nxt


# ---- CSMS requests ---------------------------------------------------------

def update(st, p):
    if _busy_installing(st):
        st.log("warn", "UpdateFirmware ignored: an install is under way")
        return {}
    _begin(st, False, None, p["location"], p, p["retrieveDate"], None, None, None)
    return {}


def signed(st, p):
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
              "at": timestamp.parse(at) if at else None, "cert": cert, "sig": sig, "ph": _START, "tries": 0}
    fw.signed = signed
    fw.status = "Idle"  # nothing sent for this request yet (the last one's status is not its own)
    fw.save()
    st.log("info", "firmware update requested: " + loc)
    st.timers.start("fw", st.now, 0)  # after the .conf: the handler's answer goes first


def _cancel(st):
    fw = st.fwupdate
    job = fw.job
    if job is not None:
        job.cancelled = True
        if job in st.jobs:
            st.jobs.remove(job)  # never started
        else:
            fw.stale = job  # the next download waits until its work is over
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
    if not r["s"] and ph != "boot":
        if fw.secure(st):  # a plain request persisted by an older build: never an unsigned install
            st.log("warn", "unsigned firmware request dropped (L01.FR.20)")
            return _end(st, "InstallationFailed")
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
        if waiting and ticks_diff(now, fw.reboot_since) < _REBOOT_WAIT_MS:
            st.timers.start("fw", now, 200)
        else:
            st.log("info", "rebooting into the new firmware")
            st.reboot = "Hard"


def _start_download(st, r):
    fw = st.fwupdate
    if fw.stale is not None and not fw.stale.ended:
        st.timers.start("fw", st.now, 200)  # its abort would clear the slot under us
        return
    fw.stale = None
    _go(r, "download")
    r["tries"] += 1
    fw.save()  # before the slot is touched: a power cut from here is a failed try
    _notify(st, "Downloading")
    try:
        fw.job = download_job(st, r)
    except Exception as e:  # noqa: BLE001 - e.g. no TLS context: this try failed
        return failed_try(st, repr(e))
    st.jobs.append(fw.job)


def download_job(st, r):
    """The Job that streams r["loc"] into the inactive slot; its result is
    (slot, None) or (slot, error text)."""
    slots = st.fwupdate.slots
    verify = _verifier(r) if r["s"] else None
    ctx = _ssl_for(st, r["loc"])
    url = r["loc"]

    async def work():
        from evse.link import http
        if job.cancelled:
            raise Cancelled()
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
    return lambda digest: bool(sig) and verify.check(cert, digest, sig, pss=True)  # L01.FR.04: PSS too


def _ssl_for(st, url):
    if not url.startswith("https:"):
        return None
    from evse.link import tls
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
        _go(r, "downloaded")
        r["slot"] = result[0]
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
        failed_try(st, err)


def failed_try(st, err):
    fw = st.fwupdate
    r = fw.req
    st.log("warn", "firmware download failed: " + err)
    if r["left"] > 0:
        r["left"] -= 1
        _go(r, "retry")
        r["get"] = st.clock.unix() + r["iv"]
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
    _go(r, "installed")  # after the activation: a cut between the two still confirms (accepted)
    fw.save()
    if r["s"]:
        _notify(st, "InstallRebooting")
    fw.reboot_since = st.now
    st.timers.start("fw", st.now, 0)


def _end(st, status):
    fw = st.fwupdate
    _notify(st, status)
    fw.last_id = fw.req["id"]
    fw.req = None
    fw.save()
    st.timers.cancel("fw")


def accepted(st):
    fw = st.fwupdate
    r = fw.req
    if fw.slots.confirm():
        ver = fw.slots.state["version"]
        st.log("info", "firmware " + str(ver) + " confirmed")
        st.security_event("FirmwareUpdated", "version " + str(ver))
        if r is not None:
            _end(st, "Installed")
    elif r is not None and r["ph"] == "boot" and fw.reboot_since is None:
        st.log("warn", "firmware update failed: " + str(fw.slots.state["failure"] or "the trial did not run"))
        _end(st, "InstallationFailed")



def _notify(st, status):
    fw = st.fwupdate
    r = fw.req
    if fw.status == status and status in ("DownloadPaused", "DownloadScheduled", "InstallScheduled"):
        return  # said once while it lasts
    fw.status = status
    if r is not None and r["s"]:
        st.send("SignedFirmwareStatusNotification", {"status": status, "requestId": r["id"]})
    elif fw.plain(status):
        st.send("FirmwareStatusNotification", {"status": status})
