"""The glucose dashboard in a real browser: `cascade dashboard` serves it with Voila, headless
Chromium opens it, the charts must be drawn with data and follow the patient picker."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.chromium import chromium, needs_chromium

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
RENDER_TIMEOUT_S = 240

# Browser-log errors that are not ours, each with the reason it is tolerated; anything else fails.
KNOWN_NOISE = (
    # jupyterlab-plotly stores a PNG snapshot through `model.setData` after drawing; Voila 0.5's output
    # model has no setData. The chart is already drawn when this fires.
    re.compile(r"jupyterlab-plotly/static/\S+ \d+:\d+ Uncaught TypeError: r\.setData is not a function"),
    # Leaving a page (the picker reloads it) makes Voila's page ask the server to shut its kernel down;
    # the server refuses that call (403) and culls the idle kernel itself (see workbench/viz/serve.py).
    re.compile(r"/voila/api/shutdown/[0-9a-f-]+ - Failed to load resource: .* 403 \(Forbidden\)"),
    # Voila's widget manager announces comms that have no ipywidgets counterpart in the kernel.
    re.compile(r'"Comm not found for comm id [0-9a-f-]+"'),
)

CHARTS_JS = """
return Array.from(document.querySelectorAll('.js-plotly-plot')).map(function (g) {
  return {
    chart: g.layout && g.layout.meta ? g.layout.meta.chart : null,
    traces: (g._fullData || []).map(function (t) {
      return {name: t.name || '', y: Array.from(t.y || []).map(Number)};
    })
  };
});
"""

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def dashboard_url(demo_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`cascade dashboard --port 0 --no-browser` on the demo lake; yields the URL it prints."""
    log = tmp_path_factory.mktemp("voila") / "cascade-dashboard.log"
    cascade = Path(sys.executable).with_name("cascade")
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [str(cascade), "dashboard", "--port", "0", "--no-browser"],
            env={**demo_env, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=out,
            text=True,
            start_new_session=True,
        )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        match = re.match(r"dashboard: (http://127\.0\.0\.1:\d+/)$", first.strip())
        assert match, f"unexpected output {first!r}; log: {log.read_text()[-3000:]}"
        yield match.group(1)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.fixture
def browser() -> Iterator[Any]:
    with chromium(1400, 3300, console=True, timeout_s=RENDER_TIMEOUT_S) as driver:
        driver.set_script_timeout(RENDER_TIMEOUT_S)  # a busy page (a loaded machine) answers late, not never
        yield driver


def _charts(driver: Any, timeout_s: float = RENDER_TIMEOUT_S) -> dict[str, list[dict[str, Any]]]:
    """Wait until the AGP, time-in-ranges, daily profiles and trend charts are drawn; chart name -> traces."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        charts = {c["chart"]: c["traces"] for c in driver.execute_script(CHARTS_JS)}
        if {"agp", "time_in_ranges", "daily_profiles", "daily_trend"} <= set(charts):
            return charts
        time.sleep(0.2)
    raise AssertionError(
        f"charts not drawn within {timeout_s}s; page text: {driver.find_element('tag name', 'body').text[:2000]}"
    )


def _errors(driver: Any) -> list[str]:
    return [
        e["message"]
        for e in driver.get_log("browser")
        if e["level"] == "SEVERE" and not any(p.search(e["message"]) for p in KNOWN_NOISE)
    ]


def test_dashboard_draws_the_charts_and_follows_the_patient_picker(dashboard_url: str, browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    started = time.monotonic()
    browser.get(dashboard_url)
    charts = _charts(browser)
    first_render = time.monotonic() - started
    print(f"\nfirst render of the dashboard: {first_render:.1f}s (Voila cold start included)")

    agp = {t["name"]: t["y"] for t in charts["agp"]}
    assert {"median", "25–75 %", "5–95 %"} <= set(agp)
    assert len(agp["median"]) == 288 and all(40 <= v <= 400 for v in agp["median"])  # the 5-minute grid
    ranges = {t["name"]: t["y"][0] for t in charts["time_in_ranges"]}
    assert len(ranges) == 5 and sum(ranges.values()) == pytest.approx(100.0, abs=0.01)
    assert len(charts["daily_trend"][0]["y"]) == 14
    assert len(browser.find_elements(By.CSS_SELECTOR, ".cascade-card")) == 10
    assert "p001" in browser.find_element(By.TAG_NAME, "h2").text
    # the day in progress apart from the period, and treatment markers on the daily profiles
    today = browser.find_element(By.ID, "cascade-today").text
    assert today.startswith("Today so far") and ("readings so far" in today or "no readings" in today), today
    profiles = charts["daily_profiles"]
    assert sum(1 for t in profiles if t["name"] == "glucose") == 14
    assert sum(len(t["y"]) for t in profiles if t["name"] == "bolus") > 0
    assert sum(len(t["y"]) for t in profiles if t["name"] == "carbs") > 0
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "dashboard_glucose_overview.png"))
    assert _errors(browser) == []

    started = time.monotonic()
    Select(browser.find_element(By.ID, "cascade-patient")).select_by_value("p002")
    deadline = time.monotonic() + RENDER_TIMEOUT_S
    while "patient=p002" not in browser.current_url and time.monotonic() < deadline:
        time.sleep(0.2)
    changed = _charts(browser)
    print(f"patient change re-rendered in {time.monotonic() - started:.1f}s")
    assert "p002" in browser.find_element(By.TAG_NAME, "h2").text
    new_agp = {t["name"]: t["y"] for t in changed["agp"]}
    new_ranges = {t["name"]: t["y"][0] for t in changed["time_in_ranges"]}
    assert new_agp["median"] != agp["median"]
    assert new_ranges != ranges
    browser.save_screenshot(str(ARTIFACTS / "dashboard_glucose_overview_p002.png"))
    assert _errors(browser) == []


LOCAL_ONLY_JS = """
return performance.getEntriesByType('resource').map(function (e) { return e.name; })
  .concat(Array.from(document.querySelectorAll('link[href],script[src]')).map(function (e) {
    return e.href || e.src; }));
"""


def test_bad_input_shows_a_notice_with_the_controls_and_nothing_from_the_network(
    dashboard_url: str, browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    browser.get(dashboard_url + "?patient=nobody&ref=nope&start=2026-11-30&end=2026-11-01")
    _charts(browser)
    notices = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".cascade-notice")]
    assert any("unknown ref 'nope'" in n for n in notices), notices
    assert any("unknown patient 'nobody'" in n for n in notices), notices
    assert any("after it ends" in n for n in notices), notices
    assert "Traceback" not in browser.find_element(By.TAG_NAME, "body").text
    assert browser.find_element(By.ID, "cascade-patient").is_enabled()
    refs = [o.get_attribute("value") for o in browser.find_elements(By.CSS_SELECTOR, "#cascade-ref option")]
    assert refs[0] == "main" and "ops" not in refs
    assert "ref main @ " in browser.find_element(By.ID, "cascade-provenance").text
    origin = dashboard_url.rstrip("/")
    remote = [u for u in browser.execute_script(LOCAL_ONLY_JS) if u and not u.startswith((origin, "data:", "blob:"))]
    assert remote == [], remote
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "dashboard_bad_input.png"))
    assert _errors(browser) == []


def test_a_short_period_warns_that_the_data_are_not_sufficient(dashboard_url: str, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    browser.get(dashboard_url + "?patient=p002&days=7")
    charts = _charts(browser)
    assert len(charts["daily_trend"][0]["y"]) == 7
    warning = browser.find_element(By.ID, "cascade-insufficient").text
    assert "Not enough data" in warning and "≥ 14 needed" in warning, warning
    assert browser.find_element(By.ID, "cascade-today").text.startswith("Today so far")
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "dashboard_short_period.png"))
    assert _errors(browser) == []
