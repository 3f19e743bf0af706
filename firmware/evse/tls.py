"""TLS client contexts: the one place they are built, per platform.

client_context(cadata, cert=None, key=None) verifies the CSMS against
`cadata` (PEM bytes of its root) and, given a client certificate and key
(PEM bytes or text, security profile 3), presents them. It refuses to build a
context without a trust anchor: an unverified wss:// link would hand the
AuthorizationKey to whoever answers.

  CPython        ssl.SSLContext(PROTOCOL_TLS_CLIENT): CERT_REQUIRED and
                 hostname check by default; cadata as PEM text; the cert
                 and key go through a private temporary file (its
                 load_cert_chain reads paths only).
  MicroPython    ssl.SSLContext(PROTOCOL_TLS_CLIENT) with verify_mode set
                 to CERT_REQUIRED explicitly (the frozen ssl.py defaults to
                 CERT_NONE); cadata, cert and key as bytes.
  CircuitPython  ssl.create_default_context() (verifies; no verify_mode),
                 load_verify_locations(cadata=PEM text, one certificate);
                 load_cert_chain takes paths, so PEM bytes are written to
                 `certdir` (client.pem, client.key; rewritten only when they
                 change, to spare the flash). A str cert/key is taken as a
                 path already on the device.
system_context() is the platform's default verifying context (its own
root store), for wss:// without a configured root.
"""
import sys

_IMPL = sys.implementation.name


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
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.verify_mode = ssl.CERT_REQUIRED  # the frozen ssl.py defaults to CERT_NONE
    ctx.load_verify_locations(cadata=cadata)
    if cert is not None:
        ctx.load_cert_chain(cert, key)
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
