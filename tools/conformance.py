"""Conformance table: runs the OCTT-named suite (host_tests/test_conformance_*.py,
the station against the real CSMS peer over WebSockets) and prints one row
per test case: id, title, profile, result; then the cases that cannot run on
the host, with the reason.

  .venv/bin/python tools/conformance.py [--markdown] [pytest args...]

Exit status 1 if any case failed.
"""
from __future__ import annotations

import argparse
import glob
import os
import sys
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(ROOT, "host_tests")
# Suites of the Firmware Management and Security work whose tests carry OCTT ids.
EXTRA = ("test_live_link.py", "test_security_live.py", "test_fwupdate.py", "test_fwupdate_live.py",
         "test_diagnostics_live.py")


class _Collector:
    """pytest plugin: test name -> outcome, and the case of each test."""

    def __init__(self) -> None:
        self.outcome: dict[str, str] = {}
        self.order: list[str] = []

    def pytest_collection_modifyitems(self, items: list[Any]) -> None:
        self.order = [i.name for i in items]

    def pytest_runtest_logreport(self, report: Any) -> None:
        name = report.nodeid.rsplit("::", 1)[-1]
        if report.failed:
            self.outcome[name] = "FAIL"
        elif report.skipped:
            self.outcome.setdefault(name, "SKIP")
        elif report.when == "call":
            self.outcome.setdefault(name, "PASS")


def rows(collector: _Collector, cases: dict[str, tuple[str, str, str]],
         not_run: list[tuple[str, str, str, str]]) -> list[tuple[str, str, str, str]]:
    out: list[tuple[str, str, str, str]] = []
    seen: dict[str, int] = {}  # a parametrized case is one row: FAIL if any run failed
    for name in collector.order:
        base = name.split("[", 1)[0]
        if base not in cases:
            continue
        result = collector.outcome.get(name, "NOT RUN")
        if base in seen:
            row = out[seen[base]]
            if result == "FAIL" or row[3] != "PASS":
                out[seen[base]] = row[:3] + ("FAIL" if "FAIL" in (result, row[3]) else result,)
            continue
        cid, title, profile = cases[base]
        seen[base] = len(out)
        out.append((cid, title, profile, result))
    for cid, title, profile, why in not_run:
        out.append((cid, title, profile, "NOT RUN: " + why))
    return out


def render(table: list[tuple[str, str, str, str]], markdown: bool) -> str:
    head = ("Test case", "Title", "Profile", "Result")
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * 4]
        lines += ["| " + " | ".join(r) + " |" for r in table]
        return "\n".join(lines)
    w = [max(len(r[i]) for r in table + [head]) for i in range(3)]
    fmt = "{:<%d}  {:<%d}  {:<%d}  {}" % tuple(w)
    return "\n".join([fmt.format(*head)] + [fmt.format(*r) for r in table])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--markdown", action="store_true", help="a Markdown table")
    a, rest = ap.parse_known_args(argv)
    import pytest

    for p in (os.path.join(ROOT, "firmware"), ROOT, os.path.join(ROOT, "tools"), TESTS):
        if p not in sys.path:
            sys.path.insert(0, p)
    files = sorted(glob.glob(os.path.join(TESTS, "test_conformance_*.py")))
    files += [os.path.join(TESTS, n) for n in EXTRA]
    collector = _Collector()
    code = pytest.main(["-q", "-p", "no:cacheprovider", *files, *rest], plugins=[collector])
    from test_conformance_harness import CASES, NOT_RUN

    table = rows(collector, CASES, NOT_RUN)
    print()
    print(render(table, a.markdown))
    n = sum(1 for r in table if r[3] == "PASS")
    bad = sum(1 for r in table if r[3] == "FAIL")
    print(f"\n{n} passed, {bad} failed, {len(table) - n - bad} not run")
    return 1 if bad or code not in (0, 5) else 0


if __name__ == "__main__":
    sys.exit(main())
