"""Both dashboards in headless Chromium: log in, open each, every chart drawn with data (no
"No results", no error box); screenshots in test-artifacts/."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chromium import CHROMEDRIVER, CHROMIUM
from tests.superset.helpers import PASSWORD, chromium, login, rendered_charts
from workbench.settings import Settings
from workbench.superset import server
from workbench.superset.bundle import bundle_files

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
        reason="needs the Debian packages chromium and chromium-driver (.ci/system-deps.sh installs them)",
    ),
]


def test_every_dashboard_renders_every_chart_with_data(superset: Settings) -> None:
    url = server.status(superset).url
    assert url
    dashboards = {c["slug"]: c for n, c in bundle_files().items() if n.startswith("dashboards/")}
    assert set(dashboards) == {"glucose-overview", "clinical-metrics"}
    ARTIFACTS.mkdir(exist_ok=True)
    with chromium() as driver:
        login(driver, url, "admin", PASSWORD)
        for slug, content in dashboards.items():
            expected = [
                i["meta"]["sliceName"]
                for i in content["position"].values()
                if isinstance(i, dict) and i.get("type") == "CHART"
            ]
            driver.get(f"{url}superset/dashboard/{slug}/")
            charts = rendered_charts(driver, len(expected))
            driver.save_screenshot(str(ARTIFACTS / f"superset-{slug}.png"))
            assert sorted(c["title"] for c in charts) == sorted(expected), slug
            for chart in charts:
                assert not chart["error"], f"{slug} / {chart['title']}: {chart['text']}"
                assert not chart["empty"], f"{slug} / {chart['title']}: No results"
                assert chart["rows"] or chart["drawn"], f"{slug} / {chart['title']} drew nothing"
