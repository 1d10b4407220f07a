"""The Superset time-in-ranges chart draws the five consensus ranges the way the dashboard and the
AGP report do (`workbench.viz.summary.RANGES`: very low at the bottom, the same labels, thresholds
and colours), so a change to the one definition that leaves the bundle behind fails here."""

from __future__ import annotations

import re

from workbench.superset.bundle import bundle_files
from workbench.viz.summary import RANGES


def test_time_in_ranges_chart_follows_the_one_definition_of_the_ranges() -> None:
    files = bundle_files()
    chart = next(c for n, c in files.items() if n.startswith("charts/") and c["slice_name"] == "Time in ranges")
    params = chart["params"]
    labels = [m["label"] for m in params["metrics"]]
    assert labels == [f"{i} {r.label}" for i, r in enumerate(RANGES, 1)]
    for metric, r in zip(params["metrics"], RANGES, strict=True):
        assert re.fullmatch(
            rf"SUM\({r.column} \* reading_count\) / NULLIF\(SUM\(reading_count\), 0\)", metric["sqlExpression"]
        )
    # Superset sorts stacked series (by their sum, by default): sorting by name, ascending, keeps the
    # numbered labels in clinical order, the first drawn at the bottom
    assert params["sort_series_type"] == "name" and params["sort_series_ascending"] is True
    assert sorted(labels) == labels
    dashboards = [c for n, c in files.items() if n.startswith("dashboards/")]
    overview = next(d for d in dashboards if chart["uuid"] in str(d["position"]))
    assert overview["metadata"]["label_colors"] == {label: r.color for label, r in zip(labels, RANGES, strict=True)}
