"""SignedUpdateFirmware in the MicroPython VM: the station core with every
feature, a scripted CSMS, the download job under MicroPython's asyncio (a
fake socket serving the image), the signature check; heap measured."""
from __future__ import annotations

import base64
import json
import os

from fwkit import Pki, image

HERE = os.path.dirname(os.path.abspath(__file__))

# Separate VM calls (steps): a gc.collect() inside a call reclaims nothing
# in this VM, so the live heap is read at the start of each call. The
# download's Reader hands out one 512-byte piece per step; each step's growth
# is what that piece allocated. The signature check and the chain check run
# again alone, one call each: their growth is all they allocate (garbage
# included: an upper bound of their peak, as tools/bench_crypto.py reports).
SETUP = r"""
import asyncio, gc, json
from boards.sim.board import SimBoard
from evse.station import Station
from evse.store.storage import FileStorage
from evse import certificates, jobs
from scenarios.scripted import ScriptedCsms
from scenarios.vclock import VirtualClock

ARGS = json.loads(open("/args.json").read())
PIECE = 512
M = {"trace": [], "grow": [], "done": []}
LOGS = []
GATE = asyncio.Event()

class Reader:
    def __init__(self):
        self.f = open("/img.bin", "rb")
        self.head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % ARGS["size"]
    async def readinto(self, buf):
        await GATE.wait()
        GATE.clear()
        if self.head:
            k = len(self.head)
            buf[:k] = self.head
            self.head = b""
            return k
        return self.f.readinto(memoryview(buf)[:min(len(buf), PIECE)])

class Writer:
    def write(self, b):
        pass
    async def drain(self):
        pass
    def close(self):
        pass
    async def wait_closed(self):
        pass

async def opener(host, port, ssl=None, server_hostname=None):
    return Reader(), Writer()

asyncio.open_connection = opener
clk = VirtualClock()
st = Station(board=SimBoard(), clock=clk, storage=FileStorage("/data"),
             log=lambda lvl, text: LOGS.append(lvl + " " + text))
cs = ScriptedCsms(st, clk)
cs.record = True
certificates.provision(st, "ManufacturerRootCertificate", ARGS["root"])
st.connected(clk.ms())
cs.pump()
"""

PRE = "gc.collect()\nM['pre'] = gc.mem_alloc()"
# What a download and a signature check import (from .py sources here; frozen
# into the device image they cost next to no heap).
IMPORTS = ("from evse import fwimage\nfrom evse.link import http, tls\n"
           "from evse.pki import chain, verify, x509, ecdsa, p256, der, hashes")
BASE = "gc.collect()\nM['idle'] = gc.mem_alloc()\nM['imports'] = M['idle'] - M['pre']"

REQUEST = r"""
ANS = cs.call("u1", "SignedUpdateFirmware", {"requestId": 3, "firmware": {
    "location": "http://fw.example/fw.img", "retrieveDateTime": "2026-01-01T00:00:00Z",
    "signingCertificate": ARGS["cert"], "signature": ARGS["sig"]}})
M["request_grow"] = gc.mem_alloc() - M["idle"]
cs.run_for(0)
JOB = st.jobs.pop(0)
TASK = asyncio.create_task(jobs.run(st, JOB))
await asyncio.sleep(0)
"""

REQ_LIVE = "gc.collect()\nM['request_live'] = gc.mem_alloc() - M['idle']"

PIECE_STEP = r"""
gc.collect()
a = gc.mem_alloc()
M["trace"].append(a - M["idle"])
M["done"].append(TASK.done())
GATE.set()
for _ in range(4):
    await asyncio.sleep(0)
M["grow"].append(gc.mem_alloc() - a)
"""

SIGCHECK = r"""
import binascii, hashlib
CERT = x509.load_all(ARGS["cert"])
DIGEST = hashlib.sha256(open("/img.bin", "rb").read()).digest()
SIG = binascii.a2b_base64(ARGS["sig"].encode())
ROOTS = x509.load_all(ARGS["root"])
"""
# Each alone in a call: all it allocates (garbage included) shows.
VERIFY = "gc.collect()\na = gc.mem_alloc()\nOK = verify.check(CERT[0], DIGEST, SIG)\nM['verify'] = gc.mem_alloc() - a"
CHAIN = ("gc.collect()\na = gc.mem_alloc()\nWHY = chain.validate(CERT, ROOTS, 1767225600)\n"
         "M['chain'] = gc.mem_alloc() - a")

REPORT = r"""
assert OK is True and WHY is None
cs.run_for(1000)
print(json.dumps({"answer": ANS[2], "reboot": st.reboot, "logs": LOGS, "M": M,
                  "statuses": [e["msg"][3]["status"] for e in cs.transcript if e["dir"] == "cs"
                               and e["msg"][0] == 2 and e["msg"][2] == "SignedFirmwareStatusNotification"]}))
"""


def heap_figures(m: dict) -> dict[str, float]:
    """KB figures from the step traces. Each VM call with awaits leaks a few
    hundred bytes in the VM itself (the wasm asyncio bridge, measured by the
    idle steps after the download): that slope is taken out of the live heap."""
    trace, grow, done = m["trace"], m["grow"], m["done"]
    first_idle = done.index(True)
    tail = trace[first_idle + 1:]
    slope = (tail[-1] - tail[0]) / (len(tail) - 1)
    live = max(t - slope * i for i, t in enumerate(trace[:first_idle]))
    dl = grow[:first_idle - 1]  # one piece each: download, hash, write
    return {"imports_kb": m["imports"] / 1024, "request_alloc_kb": m["request_grow"] / 1024,
            "request_live_kb": m["request_live"] / 1024, "download_live_kb": live / 1024,
            "piece_alloc_max_kb": max(dl) / 1024,
            "vm_leak_per_call_b": slope}


def test_signed_update_in_the_vm_and_its_heap():
    import mpvm
    pki = Pki("ec")
    img = image("9.9.9", n=12, size=4000)  # 48 KB, 12 files
    args = {"root": pki.root_pem, "cert": pki.signer_pem, "sig": pki.sign(img), "size": len(img)}
    files = {"/args.json": json.dumps(args), "/img.bin": "base64:" + base64.b64encode(img).decode()}
    sdir = os.path.join(HERE, "scenarios")
    for n in ("scripted.py", "vclock.py", "__init__.py"):
        with open(os.path.join(sdir, n)) as f:
            files["/lib/scenarios/" + n] = f.read()
    pieces = len(img) // 512 + 3
    steps = ([SETUP, PRE, IMPORTS, BASE, REQUEST, REQ_LIVE] + [PIECE_STEP] * (pieces + 20)
             + [SIGCHECK, VERIFY, CHAIN, REPORT])
    out = mpvm.run(steps, extra=files, timeout=120, run_async=True)
    res = json.loads(out.strip().splitlines()[-1])
    kb = heap_figures(res["M"])
    kb["verify_alloc_kb"] = res["M"]["verify"] / 1024
    kb["chain_alloc_kb"] = res["M"]["chain"] / 1024
    print("heap:", {k: round(v, 1) for k, v in kb.items()})
    assert res["answer"] == {"status": "Accepted"}, res
    assert res["statuses"] == ["Downloading", "Downloaded", "SignatureVerified", "Installing", "InstallRebooting"]
    assert res["reboot"] == "Hard"
    # A running download keeps little live heap and makes little garbage per
    # piece (an ESP32 has ~100 KB in all); figures in docs/FIRMWARE_UPDATE.md.
    assert kb["download_live_kb"] < 24 and kb["piece_alloc_max_kb"] < 8
