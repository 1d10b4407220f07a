"""Figure builders: the right traces, bands, ranges and values, rendered offline."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from workbench.viz import figures
from workbench.viz.summary import RANGES, PeriodSummary, headline_cards


def _summary() -> PeriodSummary:
    return PeriodSummary(
        patient_id="p1",
        start=date(2026, 1, 1),
        end=date(2026, 1, 14),
        days=14,
        days_with_data=14,
        reading_count=4000,
        mean_glucose=150.0,
        sd_glucose=50.0,
        cv_glucose=33.3,
        gmi=6.9,
        pct_very_low=0.5,
        pct_low=2.5,
        pct_in_range=72.0,
        pct_high=20.0,
        pct_very_high=5.0,
        pct_below_70=3.0,
        pct_above_180=25.0,
        gri=30.0,
        pct_readings_present=99.2,
    )


def _daily(n: int = 10) -> pd.DataFrame:
    dates = pd.date_range("2026-01-01", periods=n, freq="D")
    return pd.DataFrame(
        {
            "patient_id": "p1",
            "reading_date": dates,
            "reading_count": 288,
            "pct_readings_present": 100.0,
            "mean_glucose": np.arange(n) * 10.0 + 100,
            "sd_glucose": 30.0,
            "cv_glucose": 25.0,
            "gmi": 6.5,
            "pct_very_low": 1.0,
            "pct_low": 2.0,
            "pct_in_range": 80.0,
            "pct_high": 12.0,
            "pct_very_high": 5.0,
            "gri": 20.0,
        }
    )


def _agp() -> pd.DataFrame:
    minutes = np.arange(0, 1440, 15)
    base = 140 + 30 * np.sin(minutes / 1440 * 2 * np.pi)
    return pd.DataFrame(
        {
            "minute_of_day": minutes[::-1],
            "p05": base - 60,
            "p25": base - 25,
            "p50": base,
            "p75": base + 25,
            "p95": base + 70,
        }
    )


def test_agp_has_median_and_both_percentile_bands_over_24_hours() -> None:
    profile = _agp()
    fig = figures.agp_figure(profile)
    assert fig.layout.meta == {"chart": "agp"}
    traces = {t.name: t for t in fig.data if t.name}
    assert set(traces) == {"5–95 %", "25–75 %", "median"}
    median = traces["median"]
    ordered = profile.sort_values("minute_of_day")
    np.testing.assert_allclose(median.x, ordered["minute_of_day"] / 60)
    np.testing.assert_allclose(median.y, ordered["p50"])
    assert [t.fill for t in fig.data[:4]] == [None, "tonexty", None, "tonexty"]
    np.testing.assert_allclose(fig.data[0].y, ordered["p95"])
    np.testing.assert_allclose(fig.data[1].y, ordered["p05"])
    np.testing.assert_allclose(fig.data[3].y, ordered["p25"])
    assert tuple(fig.layout.xaxis.range) == (0, 24)
    assert sorted(s.y0 for s in fig.layout.shapes) == [70, 180]


def test_time_in_ranges_stacks_the_five_consensus_ranges_bottom_up() -> None:
    fig = figures.time_in_ranges_figure(_summary())
    assert fig.layout.meta == {"chart": "time_in_ranges"} and fig.layout.barmode == "stack"
    assert [t.name for t in fig.data] == [f"{r.label}: {getattr(_summary(), r.column):.1f} %" for r in RANGES]
    assert fig.layout.legend.traceorder == "reversed"  # legend top to bottom like the bar
    assert [t.y[0] for t in fig.data] == [0.5, 2.5, 72.0, 20.0, 5.0]
    assert sum(t.y[0] for t in fig.data) == pytest.approx(100.0)
    assert fig.data[0].name.startswith("Very low (<54)") and fig.data[4].name.startswith("Very high (>250)")


def test_daily_trend_has_target_band_and_calendar_rolling_mean() -> None:
    daily = _daily(10).drop(index=[4])  # a missing day: the rolling window is by calendar days
    fig = figures.daily_trend_figure(daily, rolling_days=3)
    assert fig.layout.meta == {"chart": "daily_trend"}
    band = fig.layout.shapes[0]
    assert (band.y0, band.y1) == (70, 180)
    rolling = fig.data[1]
    # 3 calendar days: on day 5 the window holds days 3 and 5 (day 4 is missing), on day 6 days 5 and 6
    assert list(np.round(rolling.y, 6))[:6] == [100.0, 105.0, 110.0, 120.0, 140.0, 155.0]
    np.testing.assert_allclose(fig.data[0].error_y.array, 30.0)


def test_daily_stats_frame_and_table_figure() -> None:
    frame = figures.daily_stats_frame(_daily(3))
    assert list(frame.columns) == list(figures.STATS_COLUMNS.values())
    assert frame["mean"].tolist() == [100.0, 110.0, 120.0]
    fig = figures.daily_stats_figure(_daily(3))
    assert fig.layout.meta == {"chart": "daily_stats"}
    assert list(fig.data[0].header.values) == list(frame.columns)


def test_cards_html_shows_every_card_with_target_status() -> None:
    cards = headline_cards(_summary())
    page = figures.cards_html(cards)
    for card in cards:
        assert f'data-card="{card.key}"' in page
    assert "target &gt;70 % ✓" in page  # TIR 72 %
    assert "target &lt;25 % ✗" in page  # TAR 25 % is not below 25 %
    assert page.count("✓") + page.count("✗") == sum(c.met is not None for c in cards)


def test_figures_render_offline_without_a_cdn() -> None:
    html = figures.agp_figure(_agp()).to_html(include_plotlyjs=False, full_html=False)
    assert "cdn" not in html.lower()
