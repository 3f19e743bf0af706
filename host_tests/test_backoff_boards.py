"""The reconnect backoff on the hardware boards (issue 18): a board polled
every 50 ms runs a timer round every 50 ms, and the backoff used to wait on
the event every round sets, so a station whose CSMS is down reconnected at
the poll rate. It must back off as on the simulator board."""
import asyncio
import socket

import pytest
from test_boards import BOARDS, Hw

from evse.clock import SystemClock
from evse.runtime import Runtime
from evse.station import Station
from evse.store.storage import FileStorage


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens: every connect is refused at once
    return port


@pytest.mark.parametrize("cls", BOARDS, ids=["esp32", "picow"])
def test_backoff_holds_on_a_board_polled_every_50_ms(cls, tmp_path):
    board = Hw().board(cls)
    assert board.poll_ms == 50
    st = Station(board=board, clock=SystemClock(), storage=FileStorage(str(tmp_path)),
                 log=lambda lvl, text: None)
    attempts = []
    st.on_connect_failed.append(lambda st, now, e: attempts.append(now))
    rt = Runtime(st, "ws://127.0.0.1:%d/ocpp" % closed_port(), "CP1", backoff_ms=(1000, 1000))

    async def go():
        task = asyncio.create_task(rt.run())
        await asyncio.sleep(1.5)
        rounds = st.now  # the timer loop kept running beside the backoff
        rt.stop()
        await asyncio.wait_for(task, 2)
        return rounds

    rounds = asyncio.run(go())
    # 1.5 s at a 1 s backoff (jitter: 0.5-1 s): 2 or 3 attempts, not one per 50 ms round.
    assert 2 <= len(attempts) <= 3 and rounds, attempts


def test_an_offline_reboot_ends_the_backoff_wait(tmp_path):
    """A reboot the core asks for while offline (a firmware install) is not
    held up by a long backoff."""
    board = Hw().board()
    st = Station(board=board, clock=SystemClock(), storage=FileStorage(str(tmp_path)),
                 log=lambda lvl, text: None)
    rt = Runtime(st, "ws://127.0.0.1:%d/ocpp" % closed_port(), "CP1", backoff_ms=(60000, 60000))

    async def go():
        task = asyncio.create_task(rt.run())
        await asyncio.sleep(0.3)
        st.reboot = "Soft"
        return await asyncio.wait_for(task, 2)

    assert asyncio.run(go()) == "Soft"
