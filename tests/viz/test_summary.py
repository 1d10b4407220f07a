"""Period summaries from daily rows must equal the metrics of all readings at once."""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from workbench import metrics
from workbench.viz.errors import NoGlucoseDataError
from workbench.viz.summary import gri, gri_zone, headline_cards, summarize_period


def _daily_rows(days: dict[date, np.ndarray], patient: str = "p1") -> pd.DataFrame:
    """Daily mart rows computed with the reference metrics (what dbt writes)."""
    rows = []
    for day, g in days.items():
        s = metrics.summarize(g, np.arange(len(g)) * 300.0, [day] * len(g))
        rows.append(
            {
                "patient_id": patient,
                "reading_date": pd.Timestamp(day),
                "reading_count": len(g),
                "mean_glucose": s.mean_glucose,
                "sd_glucose": s.sd_glucose if len(g) > 1 else None,
                "pct_very_low": s.pct_very_low,
                "pct_low": s.pct_low,
                "pct_in_range": s.pct_in_range,
                "pct_high": s.pct_high,
                "pct_very_high": s.pct_very_high,
            }
        )
    return pd.DataFrame(rows)


def test_period_summary_equals_metrics_over_all_readings() -> None:
    rng = np.random.default_rng(3)
    start = date(2026, 1, 1)
    days = {
        start + timedelta(days=i): rng.normal(150, 60, n).clip(40, 400).round()
        for i, n in enumerate([288, 120, 1, 250])
    }
    daily = pd.concat([_daily_rows(days), _daily_rows({start: np.linspace(280.0, 320.0, 10)}, patient="other")])
    summary = summarize_period(daily, "p1", start, start + timedelta(days=3))
    everything = np.concatenate(list(days.values()))
    reference = metrics.summarize(everything, np.arange(len(everything)) * 300.0, [0] * len(everything))
    assert summary.reading_count == len(everything) == 659
    for field in (
        "mean_glucose",
        "sd_glucose",
        "cv_glucose",
        "gmi",
        "pct_in_range",
        "pct_very_low",
        "pct_low",
        "pct_high",
        "pct_very_high",
        "pct_below_70",
        "pct_above_180",
        "gri",
    ):
        assert getattr(summary, field) == pytest.approx(getattr(reference, field), rel=1e-12, abs=1e-9), field
    assert summary.days == 4 and summary.days_with_data == 4
    assert summary.pct_readings_present == pytest.approx(100 * 659 / (4 * 288))


def test_period_bounds_are_inclusive_and_filter_other_days() -> None:
    start = date(2026, 3, 1)
    daily = _daily_rows({start + timedelta(days=i): np.array([100.0, 101, 99, 100]) + 50 * i for i in range(5)})
    summary = summarize_period(daily, "p1", start + timedelta(days=1), start + timedelta(days=2))
    assert summary.reading_count == 8
    assert summary.mean_glucose == pytest.approx(175.0)
    assert summary.pct_in_range == pytest.approx(50.0) and summary.pct_high == pytest.approx(50.0)


def test_empty_and_reversed_periods_raise() -> None:
    daily = _daily_rows({date(2026, 1, 1): np.array([100.0, 110.0, 105.0])})
    with pytest.raises(NoGlucoseDataError, match="no glucose readings"):
        summarize_period(daily, "p1", date(2026, 2, 1), date(2026, 2, 14))
    with pytest.raises(NoGlucoseDataError, match="before it starts"):
        summarize_period(daily, "p1", date(2026, 1, 2), date(2026, 1, 1))


def test_gri_formula_cap_and_zones() -> None:
    assert gri(1, 2, 10, 5) == pytest.approx(3 + 4.8 + 8 + 8)
    assert gri(30, 10, 0, 0) == 100.0
    assert [gri_zone(v) for v in (0, 20, 20.1, 55, 79.9, 95)] == ["A", "A", "B", "C", "D", "E"]


def _summary_with(**values: float):  # type: ignore[no-untyped-def]
    daily = _daily_rows({date(2026, 1, 1): np.linspace(80.0, 160.0, 288)})
    base = summarize_period(daily, "p1", date(2026, 1, 1), date(2026, 1, 1))
    return base.__class__(**{**base.as_dict(), **values})


def test_cards_compare_with_consensus_targets_at_the_boundaries() -> None:
    at_limits = _summary_with(
        pct_in_range=70.0,
        pct_below_70=4.0,
        pct_very_low=1.0,
        pct_above_180=25.0,
        cv_glucose=36.0,
        pct_readings_present=70.0,
    )
    met = {c.key: c.met for c in headline_cards(at_limits)}
    assert met == {
        "mean": None,
        "gmi": None,
        "cv": True,
        "tir": False,
        "tbr70": False,
        "tbr54": False,
        "tar180": False,
        "tar250": True,
        "gri": None,
        "present": True,
    }
    good = _summary_with(
        pct_in_range=85.0,
        pct_below_70=2.0,
        pct_very_low=0.5,
        pct_above_180=13.0,
        pct_very_high=2.0,
        cv_glucose=30.0,
        pct_readings_present=95.0,
    )
    assert all(c.met in (None, True) for c in headline_cards(good))
    assert {c.key for c in headline_cards(good)} >= {"mean", "gmi", "cv", "tir", "tbr70", "gri", "present"}


def test_card_text_formats_and_handles_nan() -> None:
    cards = {c.key: c for c in headline_cards(_summary_with(mean_glucose=131.6, cv_glucose=math.nan))}
    assert cards["mean"].text == "132 mg/dL"
    assert cards["cv"].text == "–"
    assert cards["tir"].target == ">70 %"
