"""Fleet mode: a small fleet with outages and power cuts against the dev CSMS, and the CLI end to end."""
from __future__ import annotations

import asyncio
import csv
import json
import os
import random
import subprocess
import sys

import pytest

import fleet
import fleetscenario
from fleetstats import Stats, percentile
from live import ROOT, CsmsThread

SMALL = os.path.join(ROOT, "tools", "scenarios", "small.json")


def test_scenario_defaults_file_and_overrides():
    sc = fleetscenario.load_scenario(SMALL, {"stations": 3, "prefix": None})
    assert sc["stations"] == 3 and sc["prefix"] == "SMALL"  # None overrides nothing
    assert sc["ev"]["max_a"] == 32  # nested defaults kept under a partial section
    assert len(sc["cards"]) == 10 and sc["cards"][0] == "CARD0001"
    with pytest.raises(ValueError, match="unknown key"):
        fleetscenario.load_scenario(None, {"stationz": 1})
    demo = fleetscenario.load_scenario(os.path.join(ROOT, "tools", "scenarios", "demo.json"))
    assert demo["stations"] == 1000 and demo["meter_interval_s"] == 10


def test_session_length_distributions_are_bounded():
    rng = random.Random(1)
    for spec in ({"dist": "fixed", "value": 2}, {"dist": "uniform", "min": 1, "max": 3},
                 {"dist": "lognormal", "median": 20, "sigma": 2, "min": 1, "max": 60},
                 {"dist": "exponential", "mean": 5, "max": 30}):
        vals = [fleetscenario.sample_s(spec, rng) for _ in range(200)]
        assert min(vals) >= 60 * spec.get("min", 0) and max(vals) <= 60 * spec.get("max", spec.get("value", 99))
    with pytest.raises(ValueError):
        fleetscenario.sample_s({"dist": "zipf"}, rng)


def test_percentiles_and_reservoir():
    assert percentile([], 0.5) == 0.0
    assert percentile([1.0, 2.0, 3.0, 4.0, 100.0], 0.5) == 3.0
    s = Stats(1)
    for i in range(1000):
        s.latency("Heartbeat", float(i))
    a = s.actions()[0]
    assert a["n"] == 1000 and a["max_ms"] == 999.0 and 450 <= a["p50_ms"] <= 550


def test_small_fleet_with_outages_and_power_cuts(tmp_path):
    sc = fleetscenario.load_scenario(SMALL)
    csms = CsmsThread(tags={t: "Accepted" for t in sc["cards"]}, log_max=5000)
    try:
        f = fleet.Fleet(sc, csms.url, str(tmp_path), {}, out=None)
        s = asyncio.run(f.run())
        starts = csms.calls("StartTransaction")
    finally:
        csms.stop()
    assert s["stations"] == 20 and s["connected"] >= 10
    assert {m.connects > 0 for m in f.members} == {True}  # every station came up
    assert s["sessions"] >= 10 and len(starts) >= 5
    assert s["power_cuts"] > 0 and s["offline_periods"] > 0 and s["reconnects"] > 0
    assert s["callerrors_sent"] == 0 and s["callerrors_received"] == 0 and s["core_errors"] == 0
    actions = {a["action"]: a for a in s["latency"]}
    assert actions["BootNotification"]["n"] >= 20 and actions["StartTransaction"]["p50_ms"] > 0
    assert 0 < s["core_cpu_s"] <= s["process_cpu_s"] and s["kb_per_station"] > 0 and 5 < s["core_heap_kb"] < 2000
    assert {m.ident for m in f.members} == {f"SMALL{i:04d}" for i in range(1, 21)}
    assert sorted(os.listdir(tmp_path)) == sorted(m.ident for m in f.members)  # one data folder each
    assert len(f.stats.rows) >= 4


def test_cli_fleet_against_the_bundled_csms(tmp_path):
    out = tmp_path / "fleet.csv"
    r = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "sim.py"), "--fleet", "5", "--duration", "3",
                        "--scenario", SMALL, "--prefix", "CLI", "--json", "--csv", str(out)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    events = [json.loads(line) for line in r.stdout.splitlines()]
    assert [e["event"] for e in events].count("fleet") >= 3
    summary = events[-1]
    assert summary["event"] == "fleet-summary" and summary["stations"] == 5 and summary["csms_cpu_s"] > 0
    rows = list(csv.DictReader(open(out)))
    assert rows and set(rows[0]) >= {"t_s", "connected", "sent_per_s", "recv_per_s", "p99_ms", "core_cpu_pct"}
    lat = list(csv.DictReader(open(tmp_path / "fleet-latency.csv")))
    assert "BootNotification" in {x["action"] for x in lat}
    assert "CSMS latency per action" in r.stderr and "per station" in r.stderr


def test_mem_flash_fleet_keeps_no_folders_and_boots_from_memory(tmp_path):
    sc = fleetscenario.load_scenario(SMALL, {"stations": 6})
    csms = CsmsThread(tags={t: "Accepted" for t in sc["cards"]}, log_max=5000)
    try:
        f = fleet.Fleet(sc, csms.url, str(tmp_path), {}, out=None, mem_flash=True)
        s = asyncio.run(f.run())
    finally:
        csms.stop()
    assert os.listdir(tmp_path) == []  # nothing on disk
    assert s["power_cuts"] > 0 and s["sessions"] > 0 and s["core_errors"] == 0
    for m in f.members:
        assert m.station.storage is m.storage  # every core (after power cuts too) on the station's own memory
    saved = [sorted(n for n, p in m.storage.opened if p.text) for m in f.members]
    assert sum("tx" in names for names in saved) >= 3, saved  # transactions were kept in memory
