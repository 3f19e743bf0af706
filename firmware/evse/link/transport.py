"""The TCP/TLS stream opener: asyncio's streams, or on CircuitPython the
socketpool transport (evse.link.cpsocket), whose asyncio library has no usable
streams. Kept out of compat.py so that cpsocket can use compat without an
import circle."""
from evse import compat


async def open_connection(host, port, ssl=None, server_hostname=None):
    """(reader, writer) of a TCP stream; TLS when `ssl` is a context."""
    if compat.CIRCUITPYTHON:
        from evse.link.cpsocket import open_connection as opener
    else:
        import asyncio

        opener = asyncio.open_connection
    if ssl:
        return await opener(host, port, ssl=ssl, server_hostname=server_hostname)
    return await opener(host, port)
