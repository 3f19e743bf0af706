"""Replay of the coverage-guided fuzz corpus (tools/fuzz.py long): every kept
input, and every input that once broke a surface (the crash-* files, each
with the firmware fix it needed), still keeps the surface's invariant."""
import os

import pytest

import fuzz_targets

CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fuzz_corpus")


def _inputs():
    for surface in sorted(fuzz_targets.TARGETS):
        d = os.path.join(CORPUS, surface)
        names = sorted(os.listdir(d)) if os.path.isdir(d) else []
        yield surface, [os.path.join(d, n) for n in names]


@pytest.mark.parametrize("surface,paths", list(_inputs()), ids=[s for s, _ in _inputs()])
def test_corpus_replays(surface, paths):
    assert paths, "no corpus kept for " + surface
    for p in paths:
        with open(p, "rb") as f:
            data = f.read()
        try:
            fuzz_targets.TARGETS[surface](data)
        except Exception as e:
            raise AssertionError("%s/%s: %r" % (surface, os.path.basename(p), e)) from e


def test_corpus_stays_small():
    total = sum(os.path.getsize(p) for _, paths in _inputs() for p in paths)
    assert total < 400 * 1024, total
