"""Host test setup: firmware/, the repo root (boards/) and tools/ on sys.path."""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for p in (os.path.join(ROOT, "firmware"), ROOT, os.path.join(ROOT, "tools")):
    if p not in sys.path:
        sys.path.insert(0, p)


@pytest.fixture
def make(tmp_path):
    """Conformance cases: make(name, **kw) -> an Env (CSMS + station), all
    closed after the test."""
    from test_conformance_harness import Env
    envs = []

    def new(name="a", **kw):
        e = Env(str(tmp_path / name), **kw)
        envs.append(e)
        return e
    yield new
    for e in envs:
        e.close()


@pytest.fixture
def srv():
    """A loopback HTTP(S) file server for downloads and uploads (httpserver.py)."""
    from httpserver import HttpServer
    s = HttpServer()
    yield s
    s.close()
