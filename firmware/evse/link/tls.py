"""TLS client contexts: the one place they are built, per platform.

client_context(cadata, cert=None, key=None) verifies the CSMS against
`cadata` (PEM bytes of its root) and, given a client certificate and key
(PEM bytes or text, security profile 3), presents them. It refuses to build a
context without a trust anchor: an unverified wss:// link would hand the
AuthorizationKey to whoever answers.

  CPython        ssl.SSLContext(PROTOCOL_TLS_CLIENT): CERT_REQUIRED and
                 hostname check by default; TLS 1.2 at least; the cipher
                 suites below; VERIFY_X509_PARTIAL_CHAIN (a trusted CA that
                 is not self-signed, a rotated root, is a trust anchor:
                 whitepaper 7.1 note); cadata as PEM text; the cert and key
                 go through a private temporary file (its load_cert_chain
                 reads paths only).
  MicroPython    tls.SSLContext(PROTOCOL_TLS_CLIENT) (ssl.SSLContext on a
                 build without `tls`) with verify_mode set to CERT_REQUIRED
                 explicitly (the frozen ssl.py defaults to CERT_NONE);
                 cadata, cert and key as bytes; set_ciphers with the suites
                 below that the build has (get_ciphers). mbedTLS takes any
                 trusted certificate as a trust anchor (partial chains by
                 design); it has no TLS version API.
  CircuitPython  ssl.create_default_context() (verifies; no verify_mode),
                 load_verify_locations(cadata=PEM text, one certificate);
                 load_cert_chain takes paths, so PEM bytes are written to
                 `certdir` (client.pem, client.key; rewritten only when they
                 change, to spare the flash). A str cert/key is taken as a
                 path already on the device. No cipher control (its
                 defaults), and one trust anchor only: the first root given.

Cipher suites (TLS 1.2; TLS 1.3 keeps its own): the whitepaper's
ECDHE-ECDSA pair, ECDHE-RSA with AES-GCM, and the reference station's
TLS_RSA_WITH_AES_128_GCM_SHA256 / TLS_RSA_WITH_AES_256_GCM_SHA384 (C-12).
system_context() is the platform's default verifying context (its own
root store), for wss:// without a configured root.
"""
import sys

_IMPL = sys.implementation.name

# The suites, as OpenSSL and as mbedTLS spell them (see above).
CIPHERS = ("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
           "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:"
           "AES128-GCM-SHA256:AES256-GCM-SHA384")
MBEDTLS_CIPHERS = ("TLS1-3-AES-128-GCM-SHA256", "TLS1-3-AES-256-GCM-SHA384",
                   "TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256", "TLS-ECDHE-ECDSA-WITH-AES-256-GCM-SHA384",
                   "TLS-ECDHE-RSA-WITH-AES-128-GCM-SHA256", "TLS-ECDHE-RSA-WITH-AES-256-GCM-SHA384",
                   "TLS-RSA-WITH-AES-128-GCM-SHA256", "TLS-RSA-WITH-AES-256-GCM-SHA384")


def client_context(cadata, cert=None, key=None, certdir="/tls"):
    """A verifying TLS client context; ValueError without `cadata` or
    with only one of `cert` and `key`."""
    if not cadata:
        raise ValueError("no trust anchor: refusing an unverified TLS context")
    if (cert is None) != (key is None):
        raise ValueError("a client certificate needs its key, and a key its certificate")
    cadata, cert, key = _pem(cadata), _pem(cert), _pem(key)
    if _IMPL == "circuitpython":
        return _circuitpython(cadata, cert, key, certdir)
    if _IMPL == "micropython":
        return _micropython(cadata, cert, key)
    return _cpython(cadata, cert, key)


def _pem(x):
    """PEM text as bytes; bytes and file paths (other str) as they are."""
    if isinstance(x, str) and "-----BEGIN" in x:
        return x.encode()
    return x


def system_context():
    """The platform's verifying default context (built-in roots)."""
    import ssl

    if _IMPL == "micropython":
        raise ValueError("MicroPython has no root store: give the CSMS root")
    return ssl.create_default_context()


def _micropython(cadata, cert, key):
    try:
        import tls as m  # MicroPython 1.23+: the context with set_ciphers
    except ImportError:
        import ssl as m

    ctx = m.SSLContext(m.PROTOCOL_TLS_CLIENT)
    ctx.verify_mode = m.CERT_REQUIRED  # the frozen ssl.py defaults to CERT_NONE
    ctx.load_verify_locations(cadata)
    if cert is not None:
        ctx.load_cert_chain(cert, key)
    if hasattr(ctx, "set_ciphers"):
        have = ctx.get_ciphers()
        mine = [c for c in MBEDTLS_CIPHERS if c in have]
        if mine:  # set_ciphers refuses a name the build lacks
            ctx.set_ciphers(mine)
    return ctx


def _same(path, data):
    try:
        with open(path, "rb") as f:
            return f.read() == data
    except OSError:
        return False


def _as_file(data, path):
    """`data` as a file path: a str is one already; bytes are written there."""
    if isinstance(data, str):
        return data
    if not _same(path, data):
        with open(path, "wb") as f:
            f.write(data)
    return path


def _circuitpython(cadata, cert, key, certdir):
    import ssl

    ctx = ssl.create_default_context()
    ctx.load_verify_locations(cadata=cadata.decode())
    if cert is not None:
        try:
            import os

            os.mkdir(certdir)
        except OSError:
            pass  # exists (or read-only: the write below says so)
        ctx.load_cert_chain(_as_file(cert, certdir + "/client.pem"), _as_file(key, certdir + "/client.key"))
    return ctx


def _cpython(cadata, cert, key):
    import os
    import ssl
    import tempfile

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED, check_hostname
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(CIPHERS)
    ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    ctx.load_verify_locations(cadata=cadata.decode())
    if cert is not None:
        if isinstance(cert, str):
            ctx.load_cert_chain(cert, key)
            return ctx
        fd, path = tempfile.mkstemp(suffix=".pem")  # mode 0600
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(cert + b"\n" + key)
            ctx.load_cert_chain(path)
        finally:
            os.unlink(path)
    return ctx
