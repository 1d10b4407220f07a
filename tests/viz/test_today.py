"""The day in progress ("today so far"), data sufficiency and treatment markers on the shared demo lake.

Everything is judged against the demo's pinned clock (`demo_end()`), never the wall clock;
tests/e2e/test_clocks.py reruns this file at midnight in each patient's zone and across a DST change.
"""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from tests.conftest import demo_end
from workbench.lakehouse import Lakehouse
from workbench.metrics import is_sufficient
from workbench.settings import Settings
from workbench.viz.data import GlucoseData
from workbench.viz.errors import VizError
from workbench.viz.view import load_view

PATIENTS = ("p001", "p002")


def _lake_readings(settings: Settings, patient: str) -> pd.DataFrame:
    """The patient's readings straight from the lake (an independent look at what today holds)."""
    frame = Lakehouse("main", settings=settings).sql(
        "select reading_ts_utc, reading_ts_local, glucose_value, patient_tz from silver.fct_glucose_readings "
        "where patient_id = ?",
        [patient],
    )
    frame["local"] = pd.to_datetime(frame["reading_ts_local"])
    return frame


@pytest.mark.parametrize("patient", PATIENTS)
def test_today_so_far_is_the_local_day_of_the_pinned_clock(demo_settings: Settings, patient: str) -> None:
    readings = _lake_readings(demo_settings, patient)
    day = demo_end().astimezone(ZoneInfo(readings["patient_tz"].iloc[0])).date()
    mine = readings[readings["local"].dt.date == day]
    today = GlucoseData("main", settings=demo_settings).today_so_far(patient)
    assert today is not None
    assert today.day == day and today.as_of == demo_end()
    assert today.reading_count == len(mine)
    assert today.latest_reading == readings["local"].max()
    if len(mine):
        g = mine["glucose_value"].astype(float)
        assert today.mean_glucose == pytest.approx(g.mean(), rel=1e-12)
        assert today.pct_in_range == pytest.approx(100 * ((g >= 70) & (g <= 180)).mean(), rel=1e-12)
        assert today.pct_below_70 == pytest.approx(100 * (g < 70).mean(), rel=1e-12)
        assert today.last_reading == mine["local"].max()
    else:  # just after midnight: nothing yet today
        assert np.isnan(today.mean_glucose) and today.last_reading is None


@pytest.mark.parametrize("patient", PATIENTS)
def test_the_day_in_progress_is_in_no_period_agp_or_trend(demo_settings: Settings, patient: str) -> None:
    view = load_view(patient=patient, settings=demo_settings)
    assert view.today is not None and view.end < view.today.day
    assert view.daily["reading_date"].max() <= view.end
    # asking for a period through today gets the last complete day, and says so
    asked = load_view(patient=patient, end=str(view.today.day), days=7, settings=demo_settings)
    assert asked.end == view.today.day - timedelta(days=1)
    assert any("today so far" in n for n in asked.notices), asked.notices
    with pytest.raises(VizError, match="not before today"):
        load_view(patient=patient, start=str(view.today.day), settings=demo_settings)
    page = view.today_html()
    assert 'id="cascade-today"' in page and "Today so far" in page and f"{view.today.day:%d %b %Y}" in page
    expected = f"<b>{view.today.reading_count}</b> readings so far" if view.today.reading_count else "no readings"
    assert expected in page


def test_sufficiency_comes_from_the_period_mart_and_warns(demo_settings: Settings) -> None:
    view = load_view(patient="p001", settings=demo_settings)
    assert view.sufficiency is not None
    mart = GlucoseData("main", settings=demo_settings).period_metrics("p001").set_index("period")
    if (mart.loc["14d", "period_start"], mart.loc["14d", "period_end"]) == (view.start, view.end):
        assert view.sufficiency.source.endswith("(14d)")
        assert view.sufficiency.days_with_data == mart.loc["14d", "days_with_data"]
    for row in mart.itertuples():  # the mart's flag and the dashboards' rule are one definition
        assert bool(row.sufficient) == is_sufficient(int(row.days_with_data), float(row.active_percent))
    week = load_view(patient="p001", days=7, settings=demo_settings)
    assert week.sufficiency is not None and not week.sufficiency.sufficient
    assert week.sufficiency.days_with_data <= 7
    assert 'id="cascade-insufficient"' in week.header_html() and "≥ 14 needed" in week.header_html()
    if view.sufficiency.sufficient:
        assert "cascade-insufficient" not in view.header_html()


def test_is_sufficient_follows_the_consensus() -> None:
    assert is_sufficient(14, 70.0) and not is_sufficient(13, 100.0) and not is_sufficient(30, 69.9)
    assert not is_sufficient(14, float("nan"))


@pytest.mark.parametrize("patient", PATIENTS)
def test_profiles_carry_one_marker_per_bolus_and_carb_entry(demo_settings: Settings, patient: str) -> None:
    view = load_view(patient=patient, settings=demo_settings)
    fig = view.profiles_figure()
    assert fig.layout.meta == {"chart": "daily_profiles"}
    days = view.profile_days
    assert len(days) == 14 and days[-1] == view.end
    glucose = [t for t in fig.data if t.name == "glucose"]
    assert len(glucose) == 14
    daily = view.data.treatments_daily(patient, days[0], days[-1])
    assert len(daily) > 0  # the demo has treatments
    bolus = [t for t in fig.data if t.name == "bolus"]
    carbs = [t for t in fig.data if t.name == "carbs"]
    assert len(bolus) == len(carbs) == 14  # one marker trace of each per day
    by_day = daily.assign(day=pd.to_datetime(daily["treatment_date"]).dt.date).set_index("day")
    for i, day in enumerate(days):
        expected_boluses = int(by_day.loc[day, "bolus_count"]) if day in by_day.index else 0
        expected_carbs = float(by_day.loc[day, "carbs_grams"]) if day in by_day.index else 0.0
        assert len(bolus[i].x) == expected_boluses, day  # the mart's count of boluses
        assert sum(carbs[i].customdata if carbs[i].customdata is not None else []) == pytest.approx(expected_carbs)
        assert all(0 <= x <= 24 for x in [*bolus[i].x, *carbs[i].x])


def test_without_a_pinned_clock_today_is_the_day_of_the_latest_ingestion(demo_settings: Settings) -> None:
    from datetime import UTC

    unpinned = demo_settings.model_copy(update={"demo_end": None})
    latest = Lakehouse("main", settings=unpinned).sql("select max(ingested_at) as m from silver.fct_glucose_readings")
    expected = pd.Timestamp(latest["m"].iloc[0]).to_pydatetime()
    expected = expected if expected.tzinfo else expected.replace(tzinfo=UTC)
    data = GlucoseData("main", settings=unpinned)
    assert data.clock() == expected  # what the lake knows, as the transforms decide (never the wall clock)
    today = data.today_so_far("p001")
    assert today is not None and today.as_of == expected
