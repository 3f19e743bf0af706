"""The web dashboard end to end in headless Chromium: tools/sim.py --http against the dev CSMS.

Load the page, press plug, swipe a card, see Charging, the message log and the
session plot grow (drawn current, start and status marks, then the stop); a
screenshot is kept in host_tests/artifacts/. Skipped only where no Chromium exists.
"""
from __future__ import annotations

import json
import os
import shutil
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone

import pytest
from ocpp.v16 import call

from live import CsmsThread, SimProcess, wait_for

ART = os.path.join(os.path.dirname(os.path.abspath(__file__)), "artifacts")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _chromium() -> str:
    path = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium") or ""
    if not path:
        pytest.skip(f"no Chromium at {CHROMIUM} (apt install chromium): browser test not run")
    return path


@pytest.fixture
def sim(tmp_path):
    csms = CsmsThread(tags={"04A2B3C4": "Accepted"})
    s = SimProcess(csms.url, "DASH1", str(tmp_path), "--http", "0", "--set", "MeterValueSampleInterval=1")
    try:
        url = s.wait_event(lambda e: e.get("event") == "dashboard", timeout=10)["url"]
        s.wait_event(lambda e: e.get("event") == "sent" and e.get("action") == "StatusNotification", timeout=10)
        yield url, csms, s
    finally:
        s.quit()
        csms.stop()


def test_state_endpoint_and_static_files(sim):
    url, _, _ = sim
    state = json.load(urllib.request.urlopen(url + "state", timeout=5))
    assert state["id"] == "DASH1" and state["connected"] and state["registration"] == "Accepted"
    c1 = state["connectors"][1]
    assert c1["status"] == "Available" and c1["schedule"]["status"] in ("Accepted", "Rejected")
    assert state["securityProfile"] == 0 and state["localListVersion"] == 0
    for name, ctype in (("", "text/html"), ("app.js", "text/javascript"), ("style.css", "text/css")):
        with urllib.request.urlopen(url + name, timeout=5) as r:
            assert r.headers["Content-Type"].startswith(ctype)
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(url + "../sim.py", timeout=5)


def test_history_samples_the_session(sim):
    url, _, proc = sim
    first = wait_for(lambda: (lambda h: h if len(h) >= 2 else None)(_history(url)), 10, "two samples")
    c1 = next(c for c in first[-1]["c"] if c["id"] == 1)
    assert c1["status"] == "Available" and c1["tx"] is None and c1["drawnA"] == 0
    assert set(c1) == {"id", "status", "tx", "offeredA", "drawnA", "powerW", "energyWh", "scheduleA"}
    proc.send("plug")
    proc.send("card 04A2B3C4")

    def charging():
        h = _history(url)
        last = next(c for c in h[-1]["c"] if c["id"] == 1)
        return h if last["tx"] is not None and last["drawnA"] > 0 else None
    h = wait_for(charging, 15, "a charging sample")
    assert len(h) > len(first) and h[-1]["t"] > first[-1]["t"]
    last = next(c for c in h[-1]["c"] if c["id"] == 1)
    assert last["status"] == "Charging" and last["powerW"] > 0 and last["offeredA"] >= last["drawnA"]


def _history(url):
    return json.load(urllib.request.urlopen(url + "history", timeout=5))


def _state(url):
    return json.load(urllib.request.urlopen(url + "state", timeout=5))


def _set_steps(csms, steps):
    prof = {"chargingProfileId": 5, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Relative", "chargingSchedule": {"chargingRateUnit": "A", "chargingSchedulePeriod": [
                {"startPeriod": t, "limit": a} for t, a in steps]}}
    assert csms.call("DASH1", call.SetChargingProfile(connector_id=1, cs_charging_profiles=prof)).status == "Accepted"


def test_state_shows_schedule_reservation_and_local_list(sim):
    url, csms, _ = sim
    _set_steps(csms, [(0, 16), (3600, 10)])
    expiry = (datetime.now(timezone.utc) + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert csms.call("DASH1", call.ReserveNow(connector_id=1, expiry_date=expiry, id_tag="AA",
                                              reservation_id=42)).status == "Accepted"
    assert csms.call("DASH1", call.SendLocalList(list_version=3, update_type="Full", local_authorization_list=[
        {"idTag": "AA", "idTagInfo": {"status": "Accepted"}}])).status == "Accepted"
    st = wait_for(lambda: (lambda s: s if s["localListVersion"] == 3 else None)(_state(url)), 5, "list version")
    c1 = st["connectors"][1]
    periods = c1["schedule"]["chargingSchedule"]["chargingSchedulePeriod"]
    assert [(p["startPeriod"], p["limit"]) for p in periods] == [(0, 16), (3600, 10)]
    assert c1["scheduleLimitA"] == 16 and c1["status"] == "Reserved"
    assert c1["reservation"]["reservationId"] == 42 and st["reservations"][0]["idTag"] == "AA"


def _plot(page):
    """The session canvas's own account of what it drew, and its pixels."""
    return page.evaluate("""() => { const c = document.querySelector('#session');
        return {points: c.dataset.points, drawnMax: c.dataset.drawnMax, marks: c.dataset.marks,
                image: c.toDataURL()}; }""")


def test_browser_plug_card_charging(sim):
    exe = _chromium()
    from playwright.sync_api import sync_playwright

    url, csms, proc = sim
    _set_steps(csms, [(0, 16), (5400, 10), (12600, 24)])
    os.makedirs(ART, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(url)
            card = page.locator('.connector[data-id="1"] .status')
            card.filter(has_text="Available").wait_for(timeout=10000)
            # The session plot: samples before the plug, nothing drawn yet.
            page.wait_for_function("document.querySelector('#session').dataset.points >= 2", timeout=10000)
            before = _plot(page)
            assert before["drawnMax"] == "0" and "start" not in before["marks"]
            page.click("#btn-plug")
            card.filter(has_text="Preparing").wait_for(timeout=10000)
            page.fill("#card-input", "04A2B3C4")
            page.click("#btn-card")
            card.filter(has_text="Charging").wait_for(timeout=10000)
            log = page.locator("#log tbody tr")
            log.filter(has_text="StartTransaction").first.wait_for(timeout=5000)
            log.filter(has_text="MeterValues").first.wait_for(timeout=5000)
            # The filter hides what does not match, the payload opens on click.
            page.fill("#log-filter", "authorize")
            assert page.locator("#log tbody tr:visible").count() >= 1
            assert all("uthorize" in t for t in page.locator("#log tbody tr:visible").all_inner_texts())
            page.fill("#log-filter", "")
            assert "3 period(s)" in page.inner_text("#sched-note")
            page.locator('.connector[data-id="1"] dd', has_text="16 A").first.wait_for(timeout=5000)
            # The plot grew, drew the current the EV takes, marked the start
            # and the status changes; the canvas itself changed.
            page.wait_for_function("document.querySelector('#session').dataset.drawnMax > 10", timeout=10000)
            during = _plot(page)
            assert int(during["points"]) > int(before["points"]) and during["image"] != before["image"]
            assert "start #" in during["marks"] and "Charging" in during["marks"], during["marks"]
            assert "drawn of" in page.inner_text("#plot-note")
            page.wait_for_timeout(3000)  # a few seconds of charging on the plot
            page.click("#btn-unplug")
            page.wait_for_function("document.querySelector('#session').dataset.marks.includes('stop #')",
                                   timeout=10000)
            page.wait_for_timeout(2000)
            after = _plot(page)
            assert int(after["points"]) > int(during["points"]) and after["image"] != during["image"]
            page.screenshot(path=os.path.join(ART, "dashboard.png"), full_page=True)
        finally:
            browser.close()
    start = csms.wait_call("StartTransaction", cp_id="DASH1")[0]
    assert start["idTag"] == "04A2B3C4"
    assert any(e.get("event") == "sent" and e.get("action") == "StartTransaction" for e in proc.events)
