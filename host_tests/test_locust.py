"""Locust: a master and two workers on loopback drive 20 stations (the real
core each) against the dev CSMS; stats arrive at the master from both."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import fleetscenario
from live import ROOT, CsmsThread

SMALL = os.path.join(ROOT, "tools", "scenarios", "small.json")


def test_master_and_two_workers(tmp_path):
    sc = fleetscenario.load_scenario(SMALL)
    csms = CsmsThread(tags={t: "Accepted" for t in sc["cards"]}, log_max=20000)
    report, prefix = tmp_path / "report.json", tmp_path / "run"
    try:
        out = subprocess.run(
            [sys.executable, os.path.join(ROOT, "tools", "locustdemo.py"), "--workers", "2", "--users", "20",
             "--rate", "20", "--seconds", "8", "--scenario", SMALL, "--url", csms.url,
             "--csv", str(prefix), "--report", str(report)],
            capture_output=True, text=True, timeout=90)
        booted = {e["cp"] for e in list(csms.csms.log) if e["dir"] == "in" and isinstance(e["msg"], list)
                  and e["msg"][0] == 2 and e["msg"][2] == "BootNotification"}
    finally:
        csms.stop()
    assert out.returncode == 0, out.stderr[-3000:]
    workers = json.loads(report.read_text())["workers"]
    assert len(workers) == 2
    assert sorted(w["index"] for w in workers.values()) == [0, 1]
    for w in workers.values():
        assert w["requests"] > 0 and w["stations_peak"] == 10 and w["sent"] > 0, w
    # 20 distinct identities, ten from each worker, all booted at the real CSMS.
    assert len(booted) == 20 and sum("SMALL-1-" in i for i in booted) == 10
    with open(f"{prefix}_stats.csv") as f:
        rows = {(r["Type"], r["Name"]): r for r in csv.DictReader(f)}
    total = int(rows[("", "Aggregated")]["Request Count"])
    assert total == sum(w["requests"] for w in workers.values())  # the master's total is both workers'
    assert int(rows[("OCPP", "BootNotification")]["Request Count"]) >= 20
    assert int(rows[("WS", "connect")]["Request Count"]) >= 20  # a first connect that failed is tried again
    assert "Aggregated" in out.stderr and "ocpp worker 1" in out.stderr  # Locust's summary, our lines
