"""Time and heap of evse.pki operations on CPython and in the MicroPython VM.

  .venv/bin/python tools/bench_crypto.py [--runs N] [--mpy]

CPython: mean wall time per operation. VM (32-bit MicroPython 1.27 on
WebAssembly; an ESP32 is far slower, so read the VM times as relative):
time per operation, heap growth within the call (the VM's gc reclaims
nothing inside one runPython call, so this is every byte the operation
allocated: an upper bound of its peak) and the live heap it leaves after a
collection. Import costs are live heap after collection, from .py sources
(or .mpy files with --mpy).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for p in (HERE, os.path.join(ROOT, "firmware"), os.path.join(ROOT, "host_tests")):
    sys.path.insert(0, p)
import mpvm  # noqa: E402

IMPORTS = ["der", "pem", "x509", "p256", "hashes", "backend", "verify", "chain", "rsa", "ecdsa", "csr", "sha512"]

# name -> setup (run once), operation (timed; `r =` keeps its result)
OPS = [
    ("parse EC chain (3 PEM certs)", "", "r = x509.load_all(EC_PEM)"),
    ("verify ECDSA P-256", "ec = x509.load_all(EC_PEM)", "r = verify.check(ec[0], FW_DIGEST, EC_SIG)"),
    ("verify RSA-2048", "rc = x509.load_all(RSA_PEM)", "r = verify.check(rc[0], FW_DIGEST, RSA_SIG)"),
    ("verify RSA-2048 PSS (firmware: PKCS#1 tried first)", "",
     "r = verify.check(rc[0], FW_DIGEST, RSA_PSS_SIG, pss=True)"),
    ("chain validate EC (leaf+sub, root)", "", "r = chain.validate(ec[:2], [ec[2]], NOW)"),
    ("chain validate RSA (leaf+sub, root)", "", "r = chain.validate(rc[:2], [rc[2]], NOW)"),
    ("keygen P-256", "", "r = ecdsa.keygen(RNG)"),
    ("sign ECDSA (RFC 6979)", "D, PUB = ecdsa.keygen(RNG)", "r = ecdsa.sign(D, FW_DIGEST)"),
    ("CSR (make + sign)", "", "r = csr.make_csr(D, PUB, 'CP001', 'Acme')"),
    ("key PEM write + read", "", "r = csr.load_key(csr.key_pem(D, PUB))"),
    ("hash data SHA256", "", "r = chain.hash_data(ec[0], ec[1])"),
    ("hash data SHA384 (pure on VM)", "", "r = chain.hash_data(ec[0], ec[1], 'SHA384')"),
]

PRELUDE = """
import gc, hashlib, binascii
try:
    from time import ticks_ms, ticks_diff
except ImportError:
    import time
    ticks_ms = lambda: int(time.perf_counter() * 1000)
    ticks_diff = lambda a, b: a - b
_n = [0]
def RNG(k):
    _n[0] += 1
    return hashlib.sha256(('seed' + str(_n[0])).encode()).digest()[:k]
"""


def data_lines() -> str:
    import pki_factory as F
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding
    import hashlib
    msg = b"firmware image"
    return "\n".join([
        "EC_PEM = %r" % "".join(F.pem(c) for c in F.chain3("ec")),
        "RSA_PEM = %r" % "".join(F.pem(c) for c in F.chain3("rsa")),
        "NOW = %d" % F.NOW_S,
        "FW_DIGEST = %r" % hashlib.sha256(msg).digest(),
        "EC_SIG = %r" % F.key("ec", "leaf").sign(msg, ec.ECDSA(hashes.SHA256())),
        "RSA_SIG = %r" % F.key("rsa", "leaf").sign(msg, padding.PKCS1v15(), hashes.SHA256()),
        "RSA_PSS_SIG = %r" % F.key("rsa", "leaf").sign(
            msg, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256()),
    ])


def vm_steps(runs: int) -> list[str]:
    # A collect only frees what earlier steps left, so every reading is a
    # step of its own right after a collecting step.
    collect, read = "gc.collect()", "_m = gc.mem_alloc()"
    steps = [PRELUDE, collect, read + "; _base = _prev = _m"]
    for m in IMPORTS:
        steps += ["from evse.pki import %s" % m, collect, read,
                  "print('I|%s|%%d|%%d' %% (_m - _prev, _m - _base)); _prev = _m" % m]
    steps.append(data_lines())
    for name, setup, op in OPS:
        if setup:
            steps.append(setup)
        steps += ["r = None", collect, read + "; _live0 = _m",
                  "_m0 = gc.mem_alloc(); _t = ticks_ms()\nfor _ in range(%d):\n    %s\n"
                  "_dt = ticks_diff(ticks_ms(), _t) / %d; _grow = (gc.mem_alloc() - _m0) // %d"
                  % (runs, op, runs, runs),
                  collect, read, "print('O|%s|%%s|%%d|%%d' %% (_dt, _grow, _m - _live0))" % name]
    steps += [collect, read, "print('T|%d' % (_m - _base))"]
    return steps


def run_vm(runs: int, use_mpy: bool) -> str:
    if not use_mpy:
        return mpvm.run(vm_steps(runs), timeout=600)
    import build
    with tempfile.TemporaryDirectory() as d:
        build.compile_all(d, quiet=True, image=True)
        return mpvm.run(vm_steps(runs), extra=mpvm.mpy_files(d), source=False, timeout=600)


def run_cpython(runs: int) -> list[tuple[str, float]]:
    g: dict = {}
    exec(PRELUDE, g)
    exec("from evse.pki import " + ", ".join(IMPORTS), g)
    exec(data_lines(), g)
    out = []
    for name, setup, op in OPS:
        if setup:
            exec(setup, g)
        t = time.perf_counter()
        for _ in range(runs):
            exec(op, g)
        out.append((name, (time.perf_counter() - t) * 1000 / runs))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--mpy", action="store_true", help="VM imports .mpy files (mpy-cross) instead of .py")
    a = ap.parse_args()
    cp = dict(run_cpython(a.runs))
    out = run_vm(a.runs, a.mpy)
    print("import (VM, %s): module, own bytes, cumulative bytes" % ("mpy" if a.mpy else "py"))
    rows = [line.split("|") for line in out.splitlines() if "|" in line]
    for r in rows:
        if r[0] == "I":
            print("  %-10s %7s %7s" % tuple(r[1:]))
    print("\n%-38s %10s %10s %12s %10s" % ("operation", "CPython ms", "VM ms", "VM grow B", "VM kept B"))
    for r in rows:
        if r[0] == "O":
            print("%-38s %10.2f %10.1f %12s %10s" % (r[1], cp[r[1]], float(r[2]), r[3], r[4]))
        elif r[0] == "T":
            print("\nlive heap after imports, data and all operations (VM): %s B" % r[1])


if __name__ == "__main__":
    main()
