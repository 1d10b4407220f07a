"""Benchmark: how fast the glucose dashboard renders on the demo lake (2 patients × 14 days).

Measures (1) a fresh Python process loading the overview and building every figure (`load_view`),
and (2) the Voila page in headless Chromium until the AGP, time-in-range and trend charts are drawn:
the first page right after `voila` starts (cold: the preheated kernel is still warming up), then
`--loads` more page loads once a preheated kernel waits. The target is a first render under 3 s on
the demo lake; it is measured and reported, not enforced.

    .venv/bin/python bench/bench_dashboard.py [--home DIR] [--loads 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import measure_child, save  # noqa: E402

LOAD_VIEW = """
import json, time
t = time.perf_counter()
from workbench.viz.view import load_view
imported = time.perf_counter() - t
view = load_view()
loaded = time.perf_counter() - t
figs = [view.agp_figure(), view.time_in_ranges_figure(), view.trend_figure()]
html = [f.to_json() for f in figs] + [view.cards_html(), view.stats_frame().to_html()]
print(json.dumps({"import_s": imported, "load_s": loaded, "figures_s": time.perf_counter() - t}))
"""

CHARTS_JS = """
return Array.from(document.querySelectorAll('.js-plotly-plot'))
  .filter(function (g) { return g._fullData && g._fullData.length > 0; })
  .map(function (g) { return g.layout.meta ? g.layout.meta.chart : null; });
"""


def render_time(driver: object, url: str, timeout_s: float = 300) -> float:
    """Seconds from navigation until the three charts are drawn with data."""
    started = time.perf_counter()
    driver.get(url)  # type: ignore[attr-defined]
    while time.perf_counter() - started < timeout_s:
        if {"agp", "time_in_ranges", "daily_trend"} <= set(driver.execute_script(CHARTS_JS)):  # type: ignore[attr-defined]
            return time.perf_counter() - started
        time.sleep(0.05)
    raise RuntimeError(f"charts not drawn within {timeout_s}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="an existing demo lake (default: build one in a temp dir)")
    parser.add_argument("--loads", type=int, default=3, help="warm page loads to time")
    args = parser.parse_args()

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    from workbench.demo.lake import demo_lake
    from workbench.viz.report import CHROMIUM_FLAGS
    from workbench.viz.serve import start_voila, stop_voila

    home = args.home or demo_lake(Path(tempfile.mkdtemp(prefix="cascade-bench-dash-")) / "home")
    env = {**os.environ, "CASCADE_HOME": str(home)}
    in_process = measure_child(LOAD_VIEW, env={"CASCADE_HOME": str(home)})

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in (
        *CHROMIUM_FLAGS,
        "--window-size=1400,2600",
        f"--user-data-dir={tempfile.mkdtemp(prefix='cascade-chromium-')}",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    started = time.perf_counter()
    proc, url = start_voila(env=env)
    server_up = time.perf_counter() - started
    try:
        cold = render_time(driver, url)
        warm = []
        for i in range(args.loads):
            time.sleep(15)  # let Voila refill its preheated kernel
            warm.append(render_time(driver, f"{url}?patient={'p002' if i % 2 == 0 else 'p001'}"))
    finally:
        driver.quit()
        stop_voila(proc)
    result = {
        "home": str(home),
        "load_view_process": in_process,
        "voila_server_up_s": server_up,
        "first_render_cold_s": cold,
        "render_warm_s": warm,
        "render_warm_median_s": statistics.median(warm) if warm else None,
        "target_first_render_s": 3.0,
    }
    print(json.dumps(result, indent=2))
    print(f"saved {save('dashboard', result)}")


if __name__ == "__main__":
    main()
