"""Firmware-update test kit: small images, a manufacturer PKI, signatures,
a job runner for the sans-IO rig, the simulator's boot loader."""
from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import sys
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

import pki_factory as pf
from evse import fwimage, jobs, station

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import sim  # noqa: E402

FEATURES = station.FEATURES + tuple(f for f in ("diagnostics", "fwupdate") if f not in station.FEATURES)
DAYS = (-3000, 3650)  # valid around the rig's clock (2026-01-01) and the wall clock


def image(version: str, board: str = "sim", n: int = 3, size: int = 3000) -> bytes:
    """A firmware image with n small files (the content depends on the version)."""
    files = []
    for i in range(n):
        data = (version * (size // len(version) + 1)).encode()[:size - i]
        files.append((f"evse/m{i}.mpy", data))
    ents = [(p, len(d), hashlib.sha256(d).hexdigest()) for p, d in files]
    m = fwimage.manifest(version, board, ents)
    return fwimage.header(m) + m + b"".join(d for _, d in files)


class Pki:
    """A manufacturer root, a firmware signer under it, and a stranger."""

    def __init__(self, kind: str = "ec") -> None:
        self.kind = kind
        rk, sk, xk = pf.key(kind, "fwroot"), pf.key(kind, "fwsign"), pf.key(kind, "fwother")
        self.root = pf.cert(rk, rk, "Maker Root", "Maker Root", ca=True, days=DAYS, serial=11)
        self.signer = pf.cert(sk, rk, "Maker Firmware", "Maker Root", days=DAYS, serial=12)
        self.other = pf.cert(xk, xk, "Other Root", "Other Root", ca=True, days=DAYS, serial=13)
        self.stranger = pf.cert(sk, xk, "Maker Firmware", "Other Root", days=DAYS, serial=14)
        self.key = sk
        self.root_pem = pf.pem(self.root)
        self.signer_pem = pf.pem(self.signer)

    def sign(self, data: bytes) -> str:
        """What `openssl dgst -sha256 -sign key.pem FILE | base64 -w0` prints."""
        if isinstance(self.key, rsa.RSAPrivateKey):
            sig = self.key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        else:
            sig = self.key.sign(data, ec.ECDSA(hashes.SHA256()))
        return base64.b64encode(sig).decode()


    def sign_pss(self, data: bytes, salt: Any = 32) -> str:
        """RSASSA-PSS (SHA-256, MGF1-SHA256) with `salt` octets of salt, as
        `openssl dgst -sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32` signs."""
        sig = self.key.sign(data, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=salt), hashes.SHA256())
        return base64.b64encode(sig).decode()


class _Store:
    """Stand-in for certificates.Store where the build lacks it."""

    def __init__(self) -> None:
        self.pems: list[str] = []

    def roots(self, kind: str) -> list[str]:
        return list(self.pems) if kind == "ManufacturerRootCertificate" else []


def provision_root(st: Any, pem: str) -> None:
    if st.certs is None:
        st.certs = _Store()
        st.certs.pems.append(pem)
        return
    from evse import certificates
    certificates.provision(st, "ManufacturerRootCertificate", pem, replace=True)


def run_jobs(rig: Any, limit: int = 10) -> int:
    """Run the rig station's queued jobs to the end (real I/O), then tick."""
    n = 0
    while rig.st.jobs and n < limit:
        job = rig.st.jobs.pop(0)
        asyncio.run(jobs.run(rig.st, job))
        rig.st.tick(rig.clock.ms())
        rig.cs.pump()
        n += 1
    return n


def boot(rig: Any) -> str | None:
    """A power cycle through the simulator's boot loader: slot choice, then
    a new core that reports the running version."""
    failure = sim.boot_firmware(rig.data, rig.board)
    rig.reboot()
    return failure


def fw_statuses(rig: Any, signed: bool = True) -> list[str]:
    action = "SignedFirmwareStatusNotification" if signed else "FirmwareStatusNotification"
    return [p["status"] for p in rig.sent(action)]


def events(rig: Any) -> list[str]:
    return [p["type"] for p in rig.sent("SecurityEventNotification")]


def https_server(tmp: str) -> tuple[Any, str]:
    """(HttpServer over TLS for 127.0.0.1, PEM of the CA that signed its certificate)."""
    import ipaddress
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from httpserver import HttpServer
    ck, sk = pf.key("ec", "webca"), pf.key("ec", "web")
    ca = pf.cert(ck, ck, "Web CA", "Web CA", ca=True, days=DAYS, serial=21)
    san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    leaf = pf.cert(sk, ck, "127.0.0.1", "Web CA", days=DAYS, serial=22, extra=[(san, False)])
    cert_path, key_path = os.path.join(tmp, "web.pem"), os.path.join(tmp, "web.key")
    with open(cert_path, "w") as f:
        f.write(pf.pem(leaf))
    with open(key_path, "wb") as f:
        f.write(sk.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption()))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_path, key_path)
    return HttpServer(ssl=ctx), pf.pem(ca)
