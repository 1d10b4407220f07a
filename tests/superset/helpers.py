"""Headless Chromium on Superset: log in through the form, open a dashboard, wait for every chart."""

from __future__ import annotations

import time
from contextlib import AbstractContextManager
from typing import Any

from tests.chromium import chromium as shared_chromium

RENDER_TIMEOUT_S = 240
PASSWORD = "superset-test-password"  # the admin password the session fixture sets

# Per chart holder: its title, whether it drew something (canvas/svg for ECharts, rows for tables),
# and any error or empty-state text Superset shows instead.
CHARTS_JS = """
return Array.from(document.querySelectorAll('[data-test="dashboard-component-chart-holder"]')).map(function (h) {
  var text = h.innerText || '';
  var rows = h.querySelectorAll('table tbody tr').length;
  var drawn = h.querySelectorAll('canvas, svg path').length;
  return {
    title: (h.querySelector('[data-test="editable-title"], .header-title, [data-test="slice-header"]') || {}).innerText || text.split('\\n')[0],
    rows: rows, drawn: drawn,
    loading: h.querySelectorAll('.loading, [data-test="loading-indicator"], [aria-label="Loading"]').length,
    empty: /No results/i.test(text),
    error: h.querySelectorAll('.alert-danger, [data-test="error-tooltip"], [role="alert"]').length > 0 || /Unexpected error|error occurred/i.test(text),
    text: text.slice(0, 300)
  };
});
"""


def chromium(width: int = 1600, height: int = 2200) -> AbstractContextManager[Any]:
    return shared_chromium(width, height, timeout_s=RENDER_TIMEOUT_S)


def login(driver: Any, url: str, user: str, password: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(url + "login/")
    deadline = time.monotonic() + 60
    while not driver.find_elements(By.CSS_SELECTOR, "input[name=username], #username"):
        if time.monotonic() > deadline:
            raise AssertionError("no login form: " + driver.find_element(By.TAG_NAME, "body").text[:500])
        time.sleep(0.3)
    driver.find_element(By.CSS_SELECTOR, "input[name=username], #username").send_keys(user)
    driver.find_element(By.CSS_SELECTOR, "input[name=password], #password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "button[type=submit], input[type=submit], [data-test=login-button]").click()
    while "/login" in driver.current_url:
        if time.monotonic() > deadline:
            raise AssertionError("login failed: " + driver.find_element(By.TAG_NAME, "body").text[:500])
        time.sleep(0.3)


def rendered_charts(driver: Any, expected: int, timeout_s: float = RENDER_TIMEOUT_S) -> list[dict[str, Any]]:
    """Wait until `expected` charts are present and each drew data (or shows an error / no results)."""
    deadline = time.monotonic() + timeout_s
    charts: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        charts = driver.execute_script(CHARTS_JS)
        done = [c for c in charts if c["error"] or c["empty"] or (not c["loading"] and (c["rows"] or c["drawn"]))]
        if len(charts) >= expected and len(done) == len(charts):
            time.sleep(1.0)  # let animations finish before the screenshot
            return list(driver.execute_script(CHARTS_JS))
        time.sleep(0.5)
    raise AssertionError(f"charts not rendered within {timeout_s:.0f} s: {charts}")
