"""Headless Chromium for the browser tests: one way to start it (the Debian chromium and
chromium-driver packages that .ci/system-deps.sh installs; the same flags as the PDF reports)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from workbench.viz.report import CHROMIUM_FLAGS

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
MISSING = "needs the Debian packages chromium and chromium-driver (.ci/system-deps.sh installs them)"
needs_chromium = pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()), reason=MISSING)


@contextmanager
def chromium(width: int = 1400, height: int = 1000, *, console: bool = False, timeout_s: float = 180) -> Iterator[Any]:
    """A headless Chromium WebDriver with a throw-away profile; `console` keeps the browser log
    (`driver.get_log("browser")`) for tests that look for JavaScript errors."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (*CHROMIUM_FLAGS, f"--window-size={width},{height}"):
        options.add_argument(arg)
    profile = tempfile.mkdtemp(prefix="cascade-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    if console:
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(timeout_s)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
