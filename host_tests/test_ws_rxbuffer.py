"""Messages over 1 KB are received into the link's one kept buffer and read
in place (issue 18): a Frame, not a str; nothing after it is parsed until it
is released; the buffer grows to the biggest message and is reused."""
from test_ws import frame, opened

from evse.wire import rpc
from evse.wire.jsonstream import JsonError, Reader
from evse.link.ws import Frame, RxBuffer

BIG = ('[2,"1","DataTransfer",{"vendorId":"v","data":"%s"}]' % ("x" * 3000)).encode()


def test_big_message_is_a_frame_in_the_kept_buffer_and_parsing_waits_for_release():
    rx = RxBuffer()
    c = opened(rx=rx)
    c.receive_data(frame(1, BIG) + frame(1, b"small") + frame(9, b"p"))
    ev = c.events()
    assert len(ev) == 1 and isinstance(ev[0][1], Frame) and c.held
    f = ev[0][1]
    assert f.buf is rx.buf and bytes(f.mv()) == BIG and f == BIG.decode()
    assert c.events() == []  # the rest waits: the buffer is lent out
    c.release()
    assert c.events() == [("text", "small"), ("ping", b"p")] and not c.held
    size = len(rx.buf)
    c.receive_data(frame(1, BIG[:2000]))
    c.release()
    c.receive_data(frame(1, BIG))
    assert c.events()[-1][1].buf is rx.buf and len(rx.buf) == size  # reused, not made again


def test_fragmented_big_message_and_non_ascii_are_checked_in_place():
    c = opened()
    text = '["é%s"]' % ("y" * 2000)
    data = text.encode()
    c.receive_data(frame(1, data[:700], fin=False) + frame(0, data[700:]))
    (kind, f), = c.events()
    assert f == text
    c.release()
    c.receive_data(frame(1, b"[" + b"\xed\xa0\x80" * 600 + b"]"))  # surrogates: invalid UTF-8
    assert c.events()[-1][0] == "error"


def test_reader_and_decoders_stop_at_the_frame_end_not_the_buffer_end():
    buf = bytearray(b'[2,"7","Heartbeat",{}]' + b'garbage "tail" true')
    f = Frame(buf, 22)
    assert rpc.decode(f) == (rpc.CALL, "7", "Heartbeat", {})
    uid, action, r = rpc.decode_head(f)
    assert (uid, action) == ("7", "Heartbeat") and r.value() == {}
    r.frame_end()  # the stale bytes after n are not seen
    r = Reader(bytearray(b'[tru' + b'e]'), n=4)
    r._expect(0x5B)
    try:
        r.scalar()
        raise AssertionError("read past n")
    except JsonError:
        pass
    assert rpc.recover_id(Frame(bytearray(b'[2,"ab",'), 8)) == "ab"
