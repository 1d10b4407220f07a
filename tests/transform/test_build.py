"""dbt build on the embedded lake: every layer as Iceberg tables on a branch, dbt tests, metrics
agreeing with workbench.metrics, incremental day replacement and full-refresh equivalence."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from workbench import metrics
from workbench.demo import raw as demo_raw
from workbench.transform import BuildResult, build

MODELS = {
    "bronze.stg_glucose_entries",
    "bronze.stg_treatments",
    "bronze.stg_patients",
    "silver.fct_glucose_readings",
    "gold.dim_date",
    "gold.dim_patient",
    "gold.glucose_computed",  # the Python metrics step (writes the computed gold tables, one row itself)
    "marts.mrt_glucose_overview",
    "marts.mrt_glucose_daily_metrics",
    "marts.mrt_glucose_period_metrics",
    "marts.mrt_agp_profile",
    "marts.mrt_glucose_weekly",
    "marts.mrt_glucose_episodes",
    "marts.mrt_treatments_daily",
}
DAY_KEYED = {
    "bronze.stg_glucose_entries",
    "silver.fct_glucose_readings",
    "marts.mrt_glucose_overview",
    "marts.mrt_glucose_daily_metrics",
}
UNIT_TESTS = 7
START = date(2026, 3, 1)
DAYS = 6
NEW_DAY = date(2026, 3, 7)


@dataclass
class Lake:
    home: Path
    first: BuildResult


def _lakehouse(ref: str = "dev"):  # type: ignore[no-untyped-def]
    from workbench.lakehouse import Lakehouse

    return Lakehouse(ref)


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lake]:
    """A lake with simulated raw data on dev (3 patients, 6 days incl. a DST change) built once."""
    from workbench.settings import get_settings

    home = tmp_path_factory.mktemp("transform") / "home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CASCADE_HOME", str(home))
        mp.setenv("CASCADE_PROFILE", "embedded")
        mp.delenv("CASCADE_WAREHOUSE", raising=False)
        get_settings.cache_clear()
        lh = _lakehouse()
        raw = demo_raw.generate(3, DAYS, start=START, seed=11)
        for name, table in raw.tables().items():
            lh.write(name, table, mode="append", message=f"test: seed {name}")
        first = build(branch="dev")
        yield Lake(home, first)
        get_settings.cache_clear()


def _table(name: str, ref: str = "dev") -> pd.DataFrame:
    frame = _lakehouse(ref).sql(f"select * from {name}")
    keys = [
        c
        for c in (
            "patient_id",
            "reading_date",
            "reading_ts_utc",
            "period",
            "minute_of_day",
            "episode_type",
            "episode_level",
            "start_ts_utc",
            "week_start",
            "date_day",
            "treatment_id",
            "treatment_date",
        )
        if c in frame.columns
    ]
    return frame.sort_values(keys).reset_index(drop=True)


def test_build_writes_every_model_as_an_iceberg_table_on_the_branch(lake: Lake) -> None:
    result = lake.first
    assert result.success, result.failures()
    assert {m.table for m in result.models if m.status == "success"} == MODELS
    assert all(m.write_mode == "replace_table" and m.rows_written for m in result.models)
    tables = set(_lakehouse().tables())
    assert tables >= MODELS
    assert not MODELS & set(_lakehouse("main").tables())  # nothing leaked to main
    for name in MODELS:
        assert len(_lakehouse().sql(f"select * from {name} limit 1")) == 1, name
    history = _lakehouse().history("silver.fct_glucose_readings")
    assert len(history) >= 1


def test_dbt_data_tests_and_unit_tests_pass(lake: Lake) -> None:
    tests = lake.first.tests
    unit = [t for t in tests if t.kind == "unit"]
    data = [t for t in tests if t.kind == "data"]
    assert len(unit) == UNIT_TESTS
    assert len(data) > 60
    assert {t.status for t in tests} == {"pass"}, [t.name for t in tests if t.status != "pass"]
    assert lake.first.tests_failed == 0 and lake.first.tests_passed == len(tests)


def test_bronze_dedupes_drops_invalid_and_cuts_days_at_local_midnight(lake: Lake) -> None:
    raw = _lakehouse().sql("select * from raw.glucose_entries")
    stg = _table("bronze.stg_glucose_entries")
    valid = raw[(raw["sgv"] >= 20) & (raw["sgv"] <= 600)]
    assert len(stg) == valid.drop_duplicates(["patient_id", "date"]).shape[0]
    assert len(stg) < len(raw)
    for row in stg.sample(50, random_state=1).itertuples():
        instant = datetime.fromtimestamp(row.reading_epoch_ms / 1000, UTC)
        local = instant.astimezone(ZoneInfo(row.patient_tz))
        assert pd.Timestamp(row.reading_ts_local) == pd.Timestamp(local.replace(tzinfo=None))
        assert pd.Timestamp(row.reading_date).date() == local.date()
    # simulated days start at local midnight, so each patient has exactly DAYS local days
    assert set(stg.groupby("patient_id")["reading_date"].nunique()) == {DAYS}


def _expected_daily(fct: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (pid, day), group in fct.groupby(["patient_id", "reading_date"]):
        seconds = pd.to_datetime(group["reading_ts_utc"]).astype("int64") / 1e6
        summary = metrics.summarize(group["glucose_value"].to_numpy(float), seconds.to_numpy(), [day] * len(group))
        rows.append({"patient_id": pid, "reading_date": day, **summary.as_dict()})
    return pd.DataFrame(rows)


def test_sql_metrics_agree_with_the_python_definitions(lake: Lake) -> None:
    fct = _table("silver.fct_glucose_readings")
    daily = _table("marts.mrt_glucose_daily_metrics")
    expected = _expected_daily(fct)
    merged = daily.merge(expected, on=["patient_id", "reading_date"], suffixes=("", "_py"))
    assert len(merged) == len(daily) == 3 * DAYS
    for column in (
        "reading_count",
        "mean_glucose",
        "sd_glucose",
        "cv_glucose",
        "gmi",
        "ea1c",
        "pct_very_low",
        "pct_low",
        "pct_in_range",
        "pct_high",
        "pct_very_high",
        "pct_below_70",
        "pct_above_180",
        "pct_tight_range",
        "gri",
        "lbgi",
        "hbgi",
        "j_index",
        "mage",
        "conga_1",
    ):
        np.testing.assert_allclose(merged[column], merged[f"{column}_py"], rtol=1e-9, err_msg=column)
    np.testing.assert_allclose(merged["daily_risk_range"], merged["adrr"], rtol=1e-9)
    assert merged["mage"].notna().all() and merged["modd"].isna().all()  # MODD needs two days


def _grouped(group: pd.DataFrame, tz: str) -> metrics.GroupedReadings:
    seconds = pd.to_datetime(group["reading_ts_utc"]).values.astype("datetime64[us]").astype("int64") / 1e6
    local = pd.to_datetime(group["reading_ts_local"]).values.astype("datetime64[us]").astype("int64") / 1e6
    days = pd.to_datetime(group["reading_date"]).values.astype("datetime64[D]").astype("int64")
    return metrics.GroupedReadings.build(
        np.zeros(len(group)), seconds, group["glucose_value"].to_numpy(float), days, local - seconds, group_tz=[tz]
    )


def test_period_metrics_agree_with_the_python_definitions(lake: Lake) -> None:
    fct = _table("silver.fct_glucose_readings")
    period = _table("marts.mrt_glucose_period_metrics")
    assert set(period["period"]) == {"14d", "30d", "90d", "all"} and len(period) == 12
    row = period[(period["patient_id"] == "p002") & (period["period"] == "14d")].iloc[0]
    # the data (6 days, ingested on 2026-06-01) lies wholly in every window
    group = fct[fct["patient_id"] == "p002"]
    seconds = pd.to_datetime(group["reading_ts_utc"]).values.astype("datetime64[us]").astype("int64") / 1e6
    expected = metrics.summarize(group["glucose_value"].to_numpy(float), seconds, group["reading_date"].to_numpy())
    for column in ("mean_glucose", "sd_glucose", "pct_in_range", "gri", "lbgi", "mage", "modd", "conga_1", "adrr"):
        assert row[column] == pytest.approx(getattr(expected, column), rel=1e-9), column
    every = metrics.all_metrics(_grouped(group, str(group["patient_tz"].iloc[0])))
    for column in ("median_glucose", "iqr_glucose", "grade", "m_value", "cogi", "gvp", "sd_b_dm", "auc_hourly",
                   "hypo_lv1_per_day", "pgs", "active_percent", "conga_24"):  # fmt: skip
        assert row[column] == pytest.approx(float(every[column][0]), rel=1e-9, nan_ok=True), column
    assert row["days_with_data"] == DAYS
    assert row["pct_readings_present"] == pytest.approx(100 * len(group) / (14 * 288))
    assert row["period_end"] == pd.Timestamp(START + timedelta(days=DAYS - 1))
    assert not row["sufficient"]  # 6 days are not enough (>= 14 days by consensus)
    whole = period[(period["patient_id"] == "p002") & (period["period"] == "all")].iloc[0]
    assert whole["period_days"] == DAYS and whole["reading_count"] == row["reading_count"]


def test_weekly_metrics_are_the_python_definitions(lake: Lake) -> None:
    fct = _table("silver.fct_glucose_readings")
    weekly = _table("marts.mrt_glucose_weekly")
    dates = pd.to_datetime(fct["reading_date"])
    fct["week_start"] = (dates - pd.to_timedelta(dates.dt.weekday, unit="D")).dt.date
    checked = 0
    for (pid, week), group in fct.groupby(["patient_id", "week_start"]):
        row = weekly[(weekly["patient_id"] == pid) & (pd.to_datetime(weekly["week_start"]).dt.date == week)]
        assert len(row) == 1, (pid, week)
        every = metrics.all_metrics(_grouped(group, str(group["patient_tz"].iloc[0])))
        for column in ("reading_count", "days_with_data", "mean_glucose", "sd_glucose", "pct_in_range", "gri",
                       "lbgi", "hbgi", "j_index", "mage", "conga_1"):  # fmt: skip
            assert row[column].iloc[0] == pytest.approx(float(every[column][0]), rel=1e-9, nan_ok=True), column
        checked += 1
    assert checked == len(weekly)


def test_episodes_mart_rows_give_the_period_rates(lake: Lake) -> None:
    episodes = _table("marts.mrt_glucose_episodes")
    period = _table("marts.mrt_glucose_period_metrics")
    assert len(episodes) > 0 and set(episodes["episode_type"]) <= {"hypo", "hyper"}
    assert (episodes["end_ts_utc"] >= episodes["start_ts_utc"]).all()
    lv1 = episodes[(episodes["episode_type"] == "hypo") & (episodes["episode_level"] == "1")]
    assert (lv1["extreme_glucose"] < 70).all()
    for pid, row in period[period["period"] == "all"].set_index("patient_id").iterrows():
        mine = episodes[episodes["patient_id"] == pid]
        counts = {
            (kind, level): int((mine["episode_type"].eq(kind) & mine["episode_level"].eq(level)).sum())
            for kind, level in (("hypo", "1"), ("hyper", "1"), ("hyper", "2"))
        }
        # one denominator (days of grid data) for every kind: rate / count is the same number
        ratios = {k: row[f"{k[0]}_lv{k[1]}_per_day"] / n for k, n in counts.items() if n}
        assert ratios and max(ratios.values()) == pytest.approx(min(ratios.values()), rel=1e-9), ratios


def test_seed_overview_and_agp(lake: Lake) -> None:
    overview = _table("marts.mrt_glucose_overview")
    fct = _table("silver.fct_glucose_readings")
    day = fct[(fct["patient_id"] == "p001") & (fct["reading_date"] == fct["reading_date"].min())]
    first = overview.iloc[0]
    assert first["reading_count"] == len(day)
    assert first["mean_glucose"] == pytest.approx(day["glucose_value"].mean())
    assert first["pct_below_70"] == pytest.approx(100 * (day["glucose_value"] < 70).mean())
    assert first["pct_above_180"] == pytest.approx(100 * (day["glucose_value"] > 180).mean())
    agp = _table("marts.mrt_agp_profile")
    assert set(agp.groupby("patient_id").size()) == {288}  # every 5-minute time of day
    assert (agp["p05"] <= agp["p50"]).all() and (agp["p50"] <= agp["p95"]).all()
    # p50 at 08:00 = the median of the interpolated grid values at 08:00 local over the days
    group = fct[fct["patient_id"] == "p001"]
    tz = str(group["patient_tz"].iloc[0])
    grid = metrics.build_grid(_grouped(group, tz))
    local = pd.to_datetime(grid.t, unit="s", utc=True).tz_convert(tz)
    at_eight = grid.v[(local.hour == 8) & (local.minute == 0) & ~np.isnan(grid.v)]
    p50 = agp[(agp["patient_id"] == "p001") & (agp["minute_of_day"] == 480)]["p50"].iloc[0]
    assert p50 == pytest.approx(float(np.percentile(at_eight, 50)), rel=1e-9)


@pytest.fixture(scope="module")
def incremental(lake: Lake) -> Iterator[dict[str, object]]:
    """Two incremental runs: a new day arrives, then a late correction of one reading of day 3."""
    from workbench.settings import get_settings

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CASCADE_HOME", str(lake.home))
        get_settings.cache_clear()
        before = {name: _table(name) for name in DAY_KEYED}
        lh = _lakehouse()
        new = demo_raw.generate(3, 1, start=NEW_DAY, seed=12, ingested_at=datetime(2026, 6, 2, tzinfo=UTC))
        lh.write("raw.glucose_entries", new.glucose_entries, mode="append", message="test: new day")
        new_day = build(branch="dev")
        after_new_day = {name: _table(name) for name in DAY_KEYED}

        stg = after_new_day["bronze.stg_glucose_entries"]
        target = stg[(stg["patient_id"] == "p002") & (stg["reading_date"] == pd.Timestamp(date(2026, 3, 3)))].iloc[10]
        raw = lh.sql(f"select * from raw.glucose_entries where _id = '{target['entry_id']}'")
        fixed = pa.Table.from_pandas(raw, preserve_index=False)
        fixed = fixed.set_column(fixed.schema.get_field_index("_id"), "_id", pa.array([f"{target['entry_id']}-fix"]))
        fixed = fixed.set_column(
            fixed.schema.get_field_index("sgv"), "sgv", pa.array([int(target["glucose_value"]) + 57])
        )
        fixed = fixed.set_column(
            fixed.schema.get_field_index("_ingested_at"),
            "_ingested_at",
            pa.array([datetime(2026, 6, 3, tzinfo=UTC)], pa.timestamp("us", tz="UTC")),
        )
        lh.write("raw.glucose_entries", fixed, mode="append", message="test: late correction")
        correction = build(branch="dev")
        after_correction = {name: _table(name) for name in DAY_KEYED}
        yield {
            "before": before,
            "new_day": new_day,
            "after_new_day": after_new_day,
            "correction": correction,
            "after_correction": after_correction,
            "target": target,
        }
        get_settings.cache_clear()


def _by_table(result: BuildResult) -> dict[str, object]:
    return {m.table: m for m in result.models}


def test_incremental_run_writes_only_the_new_day(incremental: dict[str, object]) -> None:
    result: BuildResult = incremental["new_day"]  # type: ignore[assignment]
    assert result.success, result.failures()
    models = _by_table(result)
    before: dict[str, pd.DataFrame] = incremental["before"]  # type: ignore[assignment]
    after: dict[str, pd.DataFrame] = incremental["after_new_day"]  # type: ignore[assignment]
    for name in DAY_KEYED:
        model = models[name]
        new_rows = after[name][after[name]["reading_date"] == pd.Timestamp(NEW_DAY)]
        assert model.write_mode == "replace_keys", name  # type: ignore[attr-defined]
        assert model.rows_written == len(new_rows) > 0, name  # type: ignore[attr-defined]
        assert model.rows_deleted == 0, name  # type: ignore[attr-defined]
        old = after[name][after[name]["reading_date"] != pd.Timestamp(NEW_DAY)].reset_index(drop=True)
        pd.testing.assert_frame_equal(old, before[name], check_like=True)
    weekly = models["marts.mrt_glucose_weekly"]
    # 2026-03-07 is a Saturday: only the week starting Monday 2026-03-02 is rebuilt, for all 3 patients
    assert (weekly.write_mode, weekly.keys_replaced, weekly.rows_written) == ("replace_keys", 1, 3)  # type: ignore[attr-defined]
    assert models["marts.mrt_glucose_daily_metrics"].keys_replaced == 1  # type: ignore[attr-defined]


def test_incremental_run_replaces_only_the_corrected_day(incremental: dict[str, object]) -> None:
    result: BuildResult = incremental["correction"]  # type: ignore[assignment]
    assert result.success, result.failures()
    target = incremental["target"]
    day = pd.Timestamp(date(2026, 3, 3))
    before: dict[str, pd.DataFrame] = incremental["after_new_day"]  # type: ignore[assignment]
    after: dict[str, pd.DataFrame] = incremental["after_correction"]  # type: ignore[assignment]
    models = _by_table(result)
    for name in DAY_KEYED:
        day_rows = after[name][after[name]["reading_date"] == day]
        model = models[name]
        assert model.rows_written == len(day_rows), name  # type: ignore[attr-defined]
        assert model.rows_deleted == len(before[name][before[name]["reading_date"] == day]), name  # type: ignore[attr-defined]
        others_before = before[name][before[name]["reading_date"] != day].reset_index(drop=True)
        others_after = after[name][after[name]["reading_date"] != day].reset_index(drop=True)
        pd.testing.assert_frame_equal(others_after, others_before, check_like=True)
    fct = after["silver.fct_glucose_readings"]
    corrected = fct[(fct["patient_id"] == "p002") & (fct["reading_ts_utc"] == target["reading_ts_utc"])]  # type: ignore[index]
    assert corrected["glucose_value"].tolist() == [int(target["glucose_value"]) + 57]  # type: ignore[index]
    assert corrected["reading_id"].tolist() == [f"{target['entry_id']}-fix"]  # type: ignore[index]


def test_full_refresh_equals_the_incremental_result(incremental: dict[str, object]) -> None:
    incremental_state = {name: _table(name) for name in MODELS}
    result = build(branch="dev", full_refresh=True)
    assert result.success, result.failures()
    assert {m.write_mode for m in result.models} == {"replace_table"}
    for name in MODELS:
        pd.testing.assert_frame_equal(_table(name), incremental_state[name], check_like=True, obj=name)


def test_a_run_with_nothing_new_leaves_every_table_untouched(lake: Lake, incremental: dict[str, object]) -> None:
    """Nothing new since the last build: no model writes (whole-table models whose result equals the
    stored table are left as they are), so the branch keeps every table's snapshot."""
    from workbench.lake.store import open_lake
    from workbench.settings import load_settings

    store = open_lake(load_settings(home=lake.home))
    state = store.state("dev")
    result = build(branch="dev")
    assert result.success, result.failures()
    assert {m.name: m.write_mode for m in result.models} == {m.name: "unchanged" for m in result.models}
    assert store.state("dev") == state


def test_failing_data_test_fails_the_build_on_its_own_branch(lake: Lake) -> None:
    from workbench.transform.errors import TransformError

    lh = _lakehouse()
    lh.branch("broken", from_ref="dev")
    broken = _lakehouse("broken")
    stray = demo_raw.generate(1, 1, start=NEW_DAY, seed=3, ingested_at=datetime(2026, 6, 9, tzinfo=UTC))
    entries = stray.glucose_entries.set_column(
        stray.glucose_entries.schema.get_field_index("patient_id"),
        "patient_id",
        pa.array(["ghost"] * stray.glucose_entries.num_rows),
    )
    broken.write("raw.glucose_entries", entries, mode="append", message="test: readings of an unknown patient")
    result = build(branch="broken")
    assert not result.success
    failed = [t.name for t in result.tests if t.status == "fail"]
    assert any(name.startswith("relationships_fct_glucose_readings_patient_id") for name in failed), failed
    with pytest.raises(TransformError, match="relationships"):
        result.raise_for_failures()
    # dev is untouched by the broken branch's build
    assert (
        _lakehouse("dev").sql("select count(*) as n from silver.fct_glucose_readings where patient_id = 'ghost'")["n"][
            0
        ]
        == 0
    )
    assert (
        _lakehouse("broken").sql("select count(*) as n from silver.fct_glucose_readings where patient_id = 'ghost'")[
            "n"
        ][0]
        > 0
    )


def test_docs_generate_and_cli(lake: Lake) -> None:
    import json

    from typer.testing import CliRunner

    from workbench.cli import app
    from workbench.transform import docs_generate

    target = docs_generate(branch="dev")
    catalog = json.loads((target / "catalog.json").read_text())
    assert {f"model.cascade.{name.split('.')[1]}" for name in MODELS} <= set(catalog["nodes"])
    assert (target / "index.html").is_file()
    outcome = CliRunner().invoke(app, ["transform", "build", "--select", "gold", "--branch", "dev"])
    assert outcome.exit_code == 0, outcome.output
    assert "gold.dim_patient" in outcome.output and "0 failed" in outcome.output


def test_treatments_daily_sums_the_treatments(lake: Lake) -> None:
    treatments = _table("bronze.stg_treatments")
    daily = _table("marts.mrt_treatments_daily")
    assert len(daily) > 0
    assert daily["carbs_grams"].sum() == pytest.approx(treatments["carbs_grams"].fillna(0).sum())
    assert daily["bolus_units"].sum() == pytest.approx(treatments["insulin_units"].fillna(0).sum())
    assert (daily["total_insulin_units"] == daily["bolus_units"] + daily["basal_units"]).all()
