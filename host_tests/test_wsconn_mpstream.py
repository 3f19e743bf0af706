"""WsConnection.peer_certs on MicroPython's asyncio Stream, whose
get_extra_info() knows only "peername" and raises KeyError for anything
else (extmod/asyncio/stream.py): the peer's certificate comes from the
stream's SSLSocket, and the link is not lost over it (on real MicroPython
every wss:// connect failed with KeyError('ssl_object'), seen by
tools/mcucheck.py)."""
from evse.link.wsconn import WsConnection
from evse.link.ws import WsClient


class SslSocket:
    def getpeercert(self, binary):
        return b"DER" if binary else {}


class MpStream:
    """The shape of MicroPython's asyncio.Stream."""

    def __init__(self, s):
        self.s = s
        self.e = {"peername": ("127.0.0.1", 1)}

    def get_extra_info(self, v):
        return self.e[v]


def test_peer_certs_on_a_micropython_stream():
    conn = WsConnection(MpStream(SslSocket()), MpStream(SslSocket()), WsClient("h", "/"))
    assert conn.peer_certs() == [b"DER"]
