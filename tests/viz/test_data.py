"""Mart access on a real demo lake: patients, periods, AGP from the mart or from readings."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from workbench.errors import RefNotFoundError
from workbench.lakehouse import Lakehouse
from workbench.settings import Settings
from workbench.viz.data import GlucoseData
from workbench.viz.errors import NoGlucoseDataError, UnknownPatientError, VizError
from workbench.viz.summary import summarize_period
from workbench.viz.view import load_view, query_params


def test_patients_from_the_daily_mart_with_display_names(demo_settings: Settings) -> None:
    data = GlucoseData("main", settings=demo_settings)
    patients = data.patients()
    assert patients["patient_id"].tolist() == ["p001", "p002"]
    assert patients["display_name"].tolist() == ["Demo patient 1", "Demo patient 2"]
    assert (patients["latest_date"] - patients["first_date"]).map(lambda d: d.days).tolist() == [14, 14]
    # the last complete day: the day before the demo's day in progress
    assert (patients["latest_date"] - patients["last_date"]).map(lambda d: d.days).isin([0, 1]).all()
    assert data.source_of("marts.mrt_glucose_daily_metrics") == "lake@main"  # no PostgreSQL running


def test_period_summary_matches_the_period_metrics_mart(demo_settings: Settings) -> None:
    data = GlucoseData("main", settings=demo_settings)
    mart = Lakehouse("main", settings=demo_settings).sql(
        "select * from marts.mrt_glucose_period_metrics where period_days = 14 order by patient_id"
    )
    for row in mart.itertuples():
        start, end = row.period_start.date(), row.period_end.date()
        daily = data.daily_metrics(row.patient_id, start, end)
        assert daily["reading_date"].min() >= start and daily["reading_date"].max() <= end
        summary = summarize_period(daily, row.patient_id, start, end)
        assert summary.reading_count == row.reading_count
        for field in (
            "mean_glucose",
            "sd_glucose",
            "cv_glucose",
            "gmi",
            "pct_in_range",
            "pct_very_low",
            "pct_above_180",
            "gri",
            "pct_readings_present",
        ):
            assert getattr(summary, field) == pytest.approx(getattr(row, field), rel=1e-9), field


def test_agp_uses_the_mart_for_its_window_and_readings_otherwise(demo_settings: Settings) -> None:
    data = GlucoseData("main", settings=demo_settings)
    last = data.patient("p002")["last_date"]
    start = last - timedelta(days=13)
    mart, source = data.agp_profile("p002", start, last)
    assert source == "lake@main" and len(mart) == 288
    computed = data.agp_from_readings("p002", start, last)
    columns = ["p05", "p25", "p50", "p75", "p95"]
    np.testing.assert_allclose(computed[columns], mart[columns], rtol=1e-12)  # one definition
    assert computed["grid_points"].tolist() == mart["grid_points"].tolist()
    week, source = data.agp_profile("p002", last - timedelta(days=6), last)
    assert "silver.fct_glucose_readings" in source
    assert week["grid_points"].sum() < mart["grid_points"].sum()


def test_last_date_is_the_last_complete_day_of_the_period_mart(demo_settings: Settings) -> None:
    data = GlucoseData("main", settings=demo_settings)
    row = data.patient("p002")
    ends = data.query("marts.mrt_glucose_period_metrics", "select period_end from marts.mrt_glucose_period_metrics "
                      "where patient_id = 'p002' and period = 'all'")  # fmt: skip
    assert row["last_date"] == pd.to_datetime(ends["period_end"]).dt.date.iloc[0]
    assert row["last_date"] <= row["latest_date"]


def test_load_view_defaults_to_the_last_14_days_of_the_first_patient(demo_settings: Settings) -> None:
    view = load_view(settings=demo_settings)
    assert view.patient_id == "p001" and view.days == 14 and view.error is None
    assert view.end == view.patients.iloc[0]["last_date"]
    assert view.summary is not None and view.summary.reading_count > 3000
    other = load_view(patient="p002", start=str(view.start), days=7, settings=demo_settings)
    assert (other.start, other.end) == (view.start, view.start + timedelta(days=6))
    assert other.summary is not None and other.summary.mean_glucose != view.summary.mean_glucose
    assert 'value="p002" selected' in other.controls_html()


def test_empty_period_gives_a_notice_not_a_crash(demo_settings: Settings) -> None:
    view = load_view(start="2001-01-01", end="2001-01-14", settings=demo_settings)
    assert view.summary is None and "no glucose readings" in (view.error or "")
    assert "no glucose readings" in view.show("cards").data  # the notice once, the other parts empty
    assert view.show("agp").data == ""


def test_refs_and_errors(demo_settings: Settings) -> None:
    data = GlucoseData("dev", settings=demo_settings)
    assert data.refs()[:2] == ["main", "dev"]
    assert data.source_of("marts.mrt_glucose_daily_metrics") == "lake@dev"
    with pytest.raises(UnknownPatientError, match="known: p001, p002"):
        data.patient("nobody")
    with pytest.raises(RefNotFoundError):
        GlucoseData("no-such-branch", settings=demo_settings)
    with pytest.raises(NoGlucoseDataError, match="published marts come from main"):
        GlucoseData("dev", source="postgres", settings=demo_settings)
    with pytest.raises(VizError, match="must be a date"):
        load_view(start="yesterday", settings=demo_settings)


def test_query_string_overrides_notebook_parameters() -> None:
    chosen = query_params("patient=p002&start=2026-01-01&end=&ref=dev&days=7", patient="p001")
    assert chosen == {"ref": "dev", "patient": "p002", "days": 7, "start": "2026-01-01", "end": None, "source": "auto"}
    assert query_params("", ref="main")["ref"] == "main"
    with pytest.raises(VizError, match="whole number"):
        query_params("days=two")
