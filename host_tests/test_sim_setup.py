"""tools/sim.py stops at once on what it can tell is wrong before the first
connect (a malformed --url, a link that cannot work, a missing file): one
line, exit status 2, nothing retried. And the firmware's url parser that
check uses, on CPython and in the MicroPython VM."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import mpvm
from evse.runtime import parse_url
from live import SimProcess
from test_security_live import PW, Pki

SIM = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools", "sim.py")

GOOD = [
    ("ws://127.0.0.1:9/ocpp", [False, "127.0.0.1", 9, "/ocpp"]),
    ("wss://csms.example:8443/a/b/", [True, "csms.example", 8443, "/a/b/"]),
    ("ws://[::1]:9000", [False, "::1", 9000, "/"]),
    ("wss://h", [True, "h", 443, "/"]),
]
BAD = [
    ("notaurl", "not a ws:// or wss:// url"),
    ("http://127.0.0.1/ocpp", "not a ws:// or wss:// url"),
    ("ws://127.0.0.1:99999/ocpp", "bad port '99999'"),
    ("ws://127.0.0.1:/ocpp", "bad port ''"),
    ("ws://127.0.0.1:x/ocpp", "bad port 'x'"),
    ("ws://:9/ocpp", "no host"),
    ("ws:///ocpp", "no host"),
    ("ws://[::1/ocpp", "bad IPv6 host"),
    ("ws://::1/ocpp", "an IPv6 host goes in [brackets]"),
    ("ws://127.0.0.1/ocpp?x=1", "'?' not allowed"),
    ("ws://127.0.0.1/oc pp", "a space not allowed"),
    ("ws://user@127.0.0.1/ocpp", "'@' not allowed"),
]


@pytest.mark.parametrize("url,want", GOOD)
def test_parse_url(url: str, want: list[Any]) -> None:
    assert list(parse_url(url)) == want


@pytest.mark.parametrize("url,words", BAD)
def test_parse_url_refuses(url: str, words: str) -> None:
    with pytest.raises(ValueError, match=words.replace("?", r"\?").replace("[", r"\[")):
        parse_url(url)


def test_parse_url_in_the_vm() -> None:
    urls = [u for u, _ in GOOD + BAD]
    code = ("import json\nfrom evse.runtime import parse_url\nfor u in %r:\n"
            "    try:\n        print(json.dumps(list(parse_url(u))))\n"
            "    except ValueError as e:\n        print(json.dumps(str(e)))\n" % urls)
    got = [json.loads(x) for x in mpvm.run(code).splitlines() if x]
    want = [w for _, w in GOOD] + [str(pytest.raises(ValueError, parse_url, u).value) for u, _ in BAD]
    assert got == want


@pytest.fixture(scope="module")
def pki(tmp_path_factory: Any) -> Pki:
    p = Pki(tmp_path_factory.mktemp("setuppki"))
    p.write("ca.pem", p.pem(p.ca))
    return p


def run_sim(*args: str, url: str = "ws://127.0.0.1:9/ocpp") -> subprocess.CompletedProcess[str]:
    # No --quiet: the one line must be all the user sees.
    return subprocess.run([sys.executable, SIM, "--url", url, "--id", "CPS", *args],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)


def _one_line(p: subprocess.CompletedProcess[str], words: str) -> None:
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 2, p.stderr
    assert len(lines) == 1 and lines[0].startswith("sim.py: ") and words in lines[0], p.stderr
    assert "Traceback" not in p.stderr and p.stdout == ""


@pytest.mark.parametrize("url,words", BAD[:6] + BAD[9:10])
def test_bad_url_exits_2_with_one_line(url: str, words: str, tmp_path: Path) -> None:
    _one_line(run_sim("--data", str(tmp_path), url=url), f"--url {url}: {words}")


def test_link_that_cannot_connect_exits_2(pki: Pki, tmp_path: Path) -> None:
    ca = str(pki.d / "ca.pem")
    cases = [
        ("wss://127.0.0.1:9/ocpp", [], "a wss:// url needs the CSMS's root certificate to trust: give --ca FILE"),
        ("ws://127.0.0.1:9/ocpp", ["--set", "SecurityProfile=2", "--password", PW],
         "SecurityProfile 2 needs the CSMS's root certificate to trust: give --ca FILE"),
        ("ws://127.0.0.1:9/ocpp", ["--set", "SecurityProfile=3", "--ca", ca],
         "SecurityProfile 3 needs the station's certificate: give --cert FILE --key FILE"),
        ("ws://127.0.0.1:9/ocpp", ["--set", "SecurityProfile=1"],
         "SecurityProfile 1 needs the AuthorizationKey: give --password SECRET"),
    ]
    for i, (url, args, words) in enumerate(cases):
        _one_line(run_sim("--data", str(tmp_path / str(i)), *args, url=url), "sim.py: cannot connect: " + words)


def test_missing_files_exit_2(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    missing = str(tmp_path / "missing.pem")
    cases = [
        (["--ca", missing], f"--ca {missing}: no such file"),
        (["--cert", missing, "--key", missing], f"--cert {missing}: no such file"),
        (["--manufacturer-ca", str(tmp_path)], f"--manufacturer-ca {tmp_path}: is a directory"),
        (["--fleet", "2", "--scenario", missing], f"--scenario {missing}: no such file"),
        (["--fleet", "2", "--csv", str(tmp_path / "no" / "r.csv")], "--csv"),
    ]
    for args, words in cases:
        _one_line(run_sim("--data", str(tmp_path / "d"), *args), words)
    _one_line(run_sim("--data", str(tmp_path / "file")), f"--data {tmp_path / 'file'}: not a directory")


def test_profile_2_on_a_ws_url_with_a_root_is_tried(pki: Pki, tmp_path: Path) -> None:
    # The station connects with TLS to that host and port (no exit 2): the
    # connect is attempted and fails (nothing listens), and is retried.
    sim = SimProcess("ws://127.0.0.1:9/ocpp", "CPS2", str(tmp_path), "--ca", str(pki.d / "ca.pem"),
                     "--password", PW, "--set", "SecurityProfile=2")
    try:
        ev = sim.wait_event(lambda e: e.get("event") == "connect_failed", timeout=20)
        assert ev["retryMs"] > 0 and ev["target"] == "127.0.0.1:9"
        assert sim.proc.poll() is None
    finally:
        sim.quit()
    assert sim.proc.returncode == 0


def test_the_pause_told_is_the_pause_waited(tmp_path: Path) -> None:
    # The runtime draws the backoff when the connect fails and puts it in the
    # connect_failed event (the terminal's "next try in 4 s"): the wait is that one.
    import asyncio

    from boards.sim.board import SimBoard
    from evse.clock import SystemClock
    from evse.runtime import Runtime
    from evse.station import Station
    from evse.store.storage import FileStorage

    events: list[dict[str, Any]] = []
    st = Station(board=SimBoard(serial="RT1"), clock=SystemClock(), storage=FileStorage(str(tmp_path)),
                 trace=events.append)
    rt = Runtime(st, "ws://127.0.0.1:9/ocpp", "RT1")
    waits: list[int] = []

    async def wait(ms: int) -> None:
        waits.append(ms)
        if len(waits) == 4:
            rt.stop()

    rt._backoff_wait = wait  # type: ignore[method-assign]
    asyncio.run(rt.run())
    told = [e["retryMs"] for e in events if e["event"] == "connect_failed"]
    assert told == waits and len(told) == 4 and told[0] <= 1000 < told[3]
