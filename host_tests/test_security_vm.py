"""The security features in the MicroPython VM: certificate store, CSR from
the SignChargePointCertificate trigger, CertificateSigned validated there,
security events and the security log; the same script under CPython gives
the same answers, and the heap they take is printed (make test -s)."""
from __future__ import annotations

import datetime as dt
import json
import os
import sys
from typing import Any

import pki_factory as pf
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from test_vm_scenarios import scenario_files

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools"))
import mpvm  # noqa: E402

SCRIPT = """
import gc, json
from boards.sim.board import SimBoard
from evse.station import Station
from evse.store.storage import FileStorage
from evse import seclog
from scenarios.scripted import ScriptedCsms
from scenarios.vclock import VirtualClock

heap = {}
def mark(name):
    gc.collect()
    heap[name] = gc.mem_alloc() if hasattr(gc, "mem_alloc") else 0  # CPython has none

mark("start")
clock = VirtualClock()
st = Station(board=SimBoard(serial="VM-SEC"), clock=clock, storage=FileStorage(DATA))
cs = ScriptedCsms(st, clock)
cs.record = False
st.connected(clock.ms())
cs.pump()
#STEP
mark("booted")
n = [0]
def call(action, payload):
    n[0] += 1
    m = cs.call("s%d" % n[0], action, payload)
    return m[2] if m[0] == 3 else m[2:4]

out = []
CS = "CentralSystemRootCertificate"
out.append(call("InstallCertificate", {"certificateType": CS, "certificate": "-----BEGIN CERTIFICATE-----"}))
out.append(call("InstallCertificate", {"certificateType": CS, "certificate": ROOT}))
#STEP
mark("installed")
ids = call("GetInstalledCertificateIds", {"certificateType": CS})
out.append(sorted(ids["certificateHashData"][0].items()))
out.append(call("ExtendedTriggerMessage", {"requestedMessage": "SignChargePointCertificate"}))
#STEP
mark("csr")
csr = [e for e in cs.transcript if 0] or None
st.certs.set_pending(KEY)  # the key the host signed a certificate for
out.append(call("CertificateSigned", {"certificateChain": FOREIGN}))
out.append(call("CertificateSigned", {"certificateChain": LEAF}))
#STEP
mark("signed")
out.append([st.link.cert == LEAF, st.link.key == KEY])
st.connect_failed(clock.ms(), OSError(-9984, "MBEDTLS_ERR_X509_CERT_VERIFY_FAILED"))
st.connect_failed(clock.ms(), OSError(-9984, "MBEDTLS_ERR_X509_CERT_VERIFY_FAILED"))
out.append([l.split(" ", 2)[1] for l in seclog.lines(st)])
h = dict(ids["certificateHashData"][0])
out.append(call("DeleteCertificate", {"certificateHashData": h}))
out.append(call("DeleteCertificate", {"certificateHashData": h}))
#STEP
mark("end")
for o in out:
    print(json.dumps(o))
print("CSR " + json.dumps(CSRS[0] if CSRS else None))
print("HEAP " + json.dumps(heap))
"""


def _inputs() -> dict[str, Any]:
    ca_key = pf.key("ec", "vmroot")
    root = pf.cert(ca_key, ca_key, "VM Root", "VM Root", ca=True, days=(-400, 400), serial=9)
    other = pf.key("ec", "vmother")
    k = ec.generate_private_key(ec.SECP256R1())

    def leaf(issuer_key: Any, issuer: str) -> str:
        b = (x509.CertificateBuilder().subject_name(pf.name("VM-SEC", "Test")).issuer_name(pf.name(issuer, "Test"))
             .public_key(k.public_key()).serial_number(77)
             .not_valid_before(pf.NOW - dt.timedelta(days=300)).not_valid_after(pf.NOW + dt.timedelta(days=300)))
        return b.sign(issuer_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()
    key = k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                          serialization.NoEncryption()).decode()
    return {"ROOT": pf.pem(root), "KEY": key, "LEAF": leaf(ca_key, "VM Root"),
            "FOREIGN": leaf(other, "VM Other")}


def _script(data: str, inputs: dict[str, Any]) -> str:
    head = "".join("%s = %s\n" % (k, json.dumps(v)) for k, v in inputs.items())
    # The CSR the trigger queued, taken from the station's own outbox/frames.
    body = SCRIPT.replace('csr = [e for e in cs.transcript if 0] or None\n', "")
    body = body.replace("cs.record = False\n", "cs.record = True\n")
    body = body.replace('print("CSR "', 'CSRS = [e["msg"][3]["csr"] for e in cs.transcript '
                        'if e["dir"] == "cs" and e["msg"][0] == 2 and e["msg"][2] == "SignCertificate"]\n'
                        'print("CSR "')
    return "DATA = %r\n" % data + head + body


def _parse(out: str) -> tuple[list[Any], Any, dict[str, int]]:
    lines = out.strip().splitlines()
    res = [json.loads(x) for x in lines if x.startswith(("{", "[", '"'))]
    csr = next(json.loads(x[4:]) for x in lines if x.startswith("CSR "))
    heap = next(json.loads(x[5:]) for x in lines if x.startswith("HEAP "))
    return res, csr, heap


def test_security_in_the_vm_matches_cpython(tmp_path: Any, capsys: Any) -> None:
    inputs = _inputs()
    # Separate VM calls between the marks: the VM's gc reclaims only between
    # calls, so each mark is the live heap after that step.
    steps = _script("/data", inputs).split("#STEP\n")
    vm, vm_csr, vm_heap = _parse(mpvm.run(steps, scenario_files(), heap=8 << 20, timeout=300))
    ns: dict[str, Any] = {}
    exec(compile(_script(str(tmp_path), inputs), "security_script", "exec"), ns)  # noqa: S102 - our own script
    host, host_csr, _ = _parse(capsys.readouterr().out)
    assert vm == host
    assert vm[0] == {"status": "Rejected"} and vm[1] == {"status": "Accepted"}
    assert vm[4:7] == [{"status": "Rejected"}, {"status": "Accepted"}, [True, True]]
    assert vm[7] == ["ReconfigurationOfSecurityParameters", "InvalidChargePointCertificate",
                     "ReconfigurationOfSecurityParameters", "InvalidCentralSystemCertificate"]
    assert vm[8:] == [{"status": "Accepted"}, {"status": "NotFound"}]
    for text in (vm_csr, host_csr):  # a CSR made in the VM is valid for cryptography
        csr = x509.load_pem_x509_csr(text.encode())
        assert csr.is_signature_valid
        assert csr.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "VM-SEC"
    with capsys.disabled():
        base = vm_heap["start"]
        print("\nVM live heap above start (bytes):", {k: v - base for k, v in vm_heap.items()})
