"""workbench.transform.computed on a small lake with a pinned clock: period windows over complete
days, the partial day left out, data sufficiency, episodes and AGP tables, incremental skipping."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from workbench import metrics
from workbench.transform import computed

TZ = "America/New_York"


def _facts(days: int, start: date = date(2026, 10, 20), ingested: str = "2026-11-20 12:00") -> pd.DataFrame:
    rng = np.random.default_rng(3)
    first = datetime(start.year, start.month, start.day, 0, 2, tzinfo=ZoneInfo(TZ)).timestamp()
    n = days * 288
    t = first + np.arange(n) * 300.0
    g = np.clip(np.round(130 + 85 * np.sin(np.arange(n) / 40) + rng.normal(0, 6, n)), 40, 400)
    utc = pd.to_datetime(t, unit="s", utc=True)
    local = utc.tz_convert(TZ).tz_localize(None)
    return pd.DataFrame(
        {
            "patient_id": "p1",
            "patient_tz": TZ,
            "reading_ts_utc": utc.tz_localize(None),
            "reading_ts_local": local,
            "reading_date": local.date,
            "glucose_value": g.astype(int),
            "ingested_at": pd.Timestamp(ingested),
        }
    )


def test_periods_end_on_the_last_complete_day_and_skip_when_nothing_changed(lh) -> None:  # type: ignore[no-untyped-def]
    facts = _facts(31)  # 2026-10-20 .. 2026-11-19 (across the 2026-11-01 DST change)
    lh.write("silver.fct_glucose_readings", facts, mode="overwrite")
    as_of = datetime(2026, 11, 19, 15, 0, tzinfo=UTC)  # 10:00 in New York: 2026-11-19 is today so far
    result = computed.materialise("dev", as_of=as_of)
    assert set(result.tables) == {computed.DAILY, computed.WEEKLY, computed.PERIOD, computed.EPISODES, computed.AGP}
    period = lh.sql(f"select * from {computed.PERIOD} order by period_days").set_index("period")
    assert set(period.index) == {"14d", "30d", "90d", "all"}
    end = pd.Timestamp("2026-11-18")
    assert (pd.to_datetime(period["period_end"]) == end).all()
    assert pd.Timestamp(period.loc["14d", "period_start"]) == pd.Timestamp("2026-11-05")
    assert period.loc["all", "period_days"] == 30 and period.loc["30d", "days_with_data"] == 30
    assert period.loc["14d", "days_with_data"] == 14 and bool(period.loc["14d", "sufficient"])
    assert bool(period.loc["90d", "sufficient"])  # 30 days with data, 100 % active over the observed span
    # the 14-day row is exactly the metrics of those 14 days' readings
    window = facts[(facts["reading_date"] >= date(2026, 11, 5)) & (facts["reading_date"] <= date(2026, 11, 18))]
    assert period.loc["14d", "reading_count"] == len(window)
    assert period.loc["14d", "mean_glucose"] == pytest.approx(window["glucose_value"].mean(), rel=1e-12)
    # the AGP covers the same 14 days, every 5-minute time of day
    agp = lh.sql(f"select * from {computed.AGP}")
    assert len(agp) == 288 and (pd.to_datetime(agp["period_end"]) == end).all()
    # episodes only on complete days
    episodes = lh.sql(f"select * from {computed.EPISODES}")
    assert len(episodes) > 0
    assert pd.to_datetime(episodes["end_ts_utc"]).max() < pd.Timestamp("2026-11-19 05:00")  # NY midnight in UTC
    # nothing new, same clock: nothing rewritten
    again = computed.materialise("dev", as_of=as_of)
    assert again.tables == {} and computed.PERIOD in again.skipped
    # the clock moves past midnight: periods move by one day, the daily table is left alone
    later = computed.materialise("dev", as_of=datetime(2026, 11, 20, 6, 0, tzinfo=UTC))
    assert computed.PERIOD in later.tables and computed.DAILY not in later.tables
    moved = lh.sql(f"select period_end from {computed.PERIOD} where period = '14d'")
    assert pd.Timestamp(moved["period_end"][0]) == pd.Timestamp("2026-11-19")


def test_clock_defaults_to_the_latest_ingestion(lh) -> None:  # type: ignore[no-untyped-def]
    lh.write("silver.fct_glucose_readings", _facts(3, ingested="2026-10-22 18:00"), mode="overwrite")
    result = computed.materialise("dev")  # no demo clock pinned: as of the last ingestion
    assert result.as_of == datetime(2026, 10, 22, 18, 0, tzinfo=UTC)
    period = lh.sql(f"select * from {computed.PERIOD} where period = 'all'")
    assert pd.Timestamp(period["period_end"][0]) == pd.Timestamp("2026-10-21")  # the 22nd is in progress
    daily = lh.sql(f"select reading_date from {computed.DAILY} order by reading_date")
    assert len(daily) == 3  # the daily table keeps today so far


def test_daily_rows_equal_the_metrics_of_each_day(lh) -> None:  # type: ignore[no-untyped-def]
    facts = _facts(3)
    lh.write("silver.fct_glucose_readings", facts, mode="overwrite")
    computed.materialise("dev", as_of=datetime(2026, 11, 30, tzinfo=UTC))
    daily = lh.sql(f"select * from {computed.DAILY} order by reading_date")
    for _, row in daily.iterrows():
        day = facts[facts["reading_date"] == row["reading_date"].date()]
        assert row["reading_count"] == len(day)
        assert row["median_glucose"] == pytest.approx(float(np.median(day["glucose_value"])), rel=1e-12)
        assert row["mag"] >= 0 and row["hypo_lv1_per_day"] >= 0
    assert metrics.READINGS_PER_DAY == 288


def test_only_patients_with_new_data_get_new_periods(lh) -> None:  # type: ignore[no-untyped-def]
    """A new day for one patient: that patient's periods, episodes and AGP are recomputed (and equal
    what a full recomputation gives); the other patient's rows are left as they were."""
    first = pd.concat([_facts(20).assign(patient_id="p1"), _facts(20).assign(patient_id="p2")])
    lh.write("silver.fct_glucose_readings", first, mode="overwrite")
    as_of = datetime(2026, 11, 12, 12, 0, tzinfo=UTC)
    computed.materialise("dev", as_of=as_of)
    before = lh.sql(f"select * from {computed.PERIOD} where patient_id = 'p1' order by period")
    later = _facts(21, ingested="2026-11-21 12:00").assign(patient_id="p2")
    lh.write("silver.fct_glucose_readings", later[later["reading_date"] == date(2026, 11, 9)], mode="append")
    result = computed.materialise("dev", as_of=as_of)
    assert result.tables[computed.PERIOD] == 4  # p2's four periods only
    assert set(lh.sql(f"select distinct patient_id from {computed.AGP}")["patient_id"]) == {"p1", "p2"}
    after = lh.sql(f"select * from {computed.PERIOD} where patient_id = 'p1' order by period")
    pd.testing.assert_frame_equal(before, after)
    tables = (computed.PERIOD, computed.EPISODES, computed.AGP)
    incremental = {t: lh.sql(f"select * from {t}") for t in tables}
    computed.materialise("dev", as_of=as_of, full_refresh=True)
    for table, frame in incremental.items():
        full = lh.sql(f"select * from {table}")
        keys = list(full.columns)
        pd.testing.assert_frame_equal(
            frame.sort_values(keys).reset_index(drop=True), full.sort_values(keys).reset_index(drop=True)
        )


def test_new_readings_of_today_so_far_leave_periods_untouched(lh) -> None:  # type: ignore[no-untyped-def]
    """A run every few minutes: readings of the current partial day change only its daily and weekly
    rows; periods, episodes and the AGP (complete days only) are not recomputed, and every table
    still equals a full recomputation. A late reading on a complete day recomputes that patient."""
    facts = _facts(21)  # 2026-10-20 .. 2026-11-09
    today = facts["reading_date"] == date(2026, 11, 9)
    position = facts.groupby("reading_date").cumcount()  # reading number within its local day
    lh.write("silver.fct_glucose_readings", facts[~today | (position < 100)], mode="overwrite")
    as_of = datetime(2026, 11, 9, 20, 0, tzinfo=UTC)  # 15:00 in New York: the 9th is today so far
    computed.materialise("dev", as_of=as_of)
    later = facts[today & (position >= 100) & (position < 150)].assign(ingested_at=pd.Timestamp("2026-11-21 12:00"))
    lh.write("silver.fct_glucose_readings", later, mode="append")
    result = computed.materialise("dev", as_of=as_of)
    assert set(result.tables) == {computed.DAILY, computed.WEEKLY}
    assert {computed.PERIOD, computed.EPISODES, computed.AGP} <= set(result.skipped)
    daily = lh.sql(f"select reading_count from {computed.DAILY} where reading_date = date '2026-11-09'")
    assert int(daily["reading_count"][0]) == 150
    tables = (computed.DAILY, computed.WEEKLY, computed.PERIOD, computed.EPISODES, computed.AGP)
    incremental = {t: lh.sql(f"select * from {t}") for t in tables}
    computed.materialise("dev", as_of=as_of, full_refresh=True)
    for table, frame in incremental.items():
        full = lh.sql(f"select * from {table}")
        keys = [c for c in full.columns if c != "source_ingested_at"]
        pd.testing.assert_frame_equal(
            frame.sort_values(keys).reset_index(drop=True)[keys], full.sort_values(keys).reset_index(drop=True)[keys]
        )
    # a late reading on a complete day (the 2nd): that patient's periods are recomputed
    late = (
        facts[facts["reading_date"] == date(2026, 11, 2)]
        .head(1)
        .assign(ingested_at=pd.Timestamp("2026-11-22 12:00"), glucose_value=399)
    )
    lh.write("silver.fct_glucose_readings", late, mode="append")
    again = computed.materialise("dev", as_of=as_of)
    assert computed.PERIOD in again.tables and computed.EPISODES in again.tables
