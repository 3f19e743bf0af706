"""The TLS seam of the runtime (security profile 2 arrives with the security
issue): the same station over wss:// to the dev CSMS with a test CA, and a
refused connection when the CSMS certificate is not trusted."""
import ssl
import subprocess

import pytest

from live import CsmsThread, StationThread, wait_for


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")

    def sh(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)
    sh("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
       "-subj", "/CN=Test CSMS Root", "-keyout", "ca.key", "-out", "ca.pem")
    sh("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=127.0.0.1",
       "-keyout", "srv.key", "-out", "srv.csr")
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    sh("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
       "-days", "2", "-extfile", "ext.cnf", "-out", "srv.pem")
    return d


def server_ctx(pki):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki / "srv.pem", pki / "srv.key")
    return ctx


def test_wss_with_trusted_csms_root(pki, tmp_path):
    c = CsmsThread(ssl=server_ctx(pki), heartbeat=30)
    client = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    s = StationThread(c.url, "TLS1", str(tmp_path), ssl=client)
    try:
        assert c.url.startswith("wss://")
        c.wait_call("BootNotification")
        c.wait_call("StatusNotification", 2)
    finally:
        s.stop()
        c.stop()


def test_untrusted_csms_certificate_is_refused(pki, tmp_path):
    c = CsmsThread(ssl=server_ctx(pki), heartbeat=30)
    s = StationThread(c.url, "TLS2", str(tmp_path), ssl=ssl.create_default_context())
    try:
        wait_for(lambda: any("connect failed" in t and "CERTIFICATE" in t.upper() for _, t in s.logs), 5,
                 "certificate failure logged")
        assert c.calls("BootNotification") == []
    finally:
        s.stop()
        c.stop()
