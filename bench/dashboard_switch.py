"""How long the glucose dashboard's kernel takes to answer a patient, ref or period switch once warm
(target, issue 10: ≤ 2 s), against the cold first load in the same run. A switch is what one page
load runs after Voila's preheated kernel got the request: `dashboard_view` for the query string plus
every displayed part (cards, time in ranges, AGP, trend, daily statistics). Runs on a demo lake
(built once under --home, default a temporary folder; pinned clock).

    .venv/bin/python bench/dashboard_switch.py [--home /tmp/cascade-bench-demo] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="cascade-bench-dash-")) / "home"
    os.environ.setdefault("CASCADE_DEMO_END", "2026-11-30T12:00:00+00:00")
    from workbench.demo.lake import demo_lake
    from workbench.settings import load_settings

    if not (home / "catalog.db").is_file():
        demo_lake(home)
    settings = load_settings(home=home, profile="embedded", postgres_url=None)
    from workbench.viz.view import dashboard_view, warm_up

    def page(query: str, data: object) -> float:
        start = time.perf_counter()
        view = dashboard_view(query, data=data)  # type: ignore[arg-type]
        for part in ("cards", "ranges", "agp", "trend", "stats"):
            view.show(part)
        return time.perf_counter() - start

    start = time.perf_counter()
    data = warm_up(ref="main", settings=settings)
    cold = time.perf_counter() - start + page("", data)
    cases = {
        "patient switch": "patient=p002",
        "ref switch (dev)": "ref=dev&patient=p001",
        "period switch": "patient=p001&start=2026-11-20&end=2026-11-26",
        "unknown patient": "patient=nobody",
    }
    print(f"{'page load':22} {'median s':>9} {'x cold':>7} {'target':>7}")
    print(f"{'cold first load':22} {cold:9.2f} {1.0:7.2f}")
    for name, query in cases.items():
        times = [page(query, data) for _ in range(args.runs)]
        median = statistics.median(times)
        verdict = "OK" if median <= 2.0 else "SLOW"
        print(f"{name:22} {median:9.2f} {median / cold:7.2f} {'2.0 ' + verdict:>7}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory {peak:.0f} MiB; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
