"""Audit checks and promotion: failures block the merge and leave main untouched."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from workbench.lakehouse import Lakehouse
from workbench.quality import AuditFailedError, AuditReport, SourceState, Thresholds, promote, run_audit
from workbench.quality.audit import write_metrics

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def _entries(n: int, end: datetime, patient: str = "p1", step_min: int = 5) -> pd.DataFrame:
    ts = [end - timedelta(minutes=step_min * i) for i in range(n)][::-1]
    return pd.DataFrame(
        {
            "_id": [f"{patient}-{t.timestamp():.0f}" for t in ts],
            "patient_id": patient,
            "date": [int(t.timestamp() * 1000) for t in ts],
            "sgv": 120,
        }
    )


def _facts(entries: pd.DataFrame, glucose: int = 120) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "patient_id": entries["patient_id"],
            "reading_ts_utc": pd.to_datetime(entries["date"], unit="ms", utc=True),
            "glucose_value": glucose,
        }
    )


def _overview(pct: float = 80.0) -> pd.DataFrame:
    return pd.DataFrame({"patient_id": ["p1"], "pct_below_70": [5.0], "pct_in_range": [pct], "pct_above_180": [15.0]})


def _build(lh: Lakehouse, entries: pd.DataFrame, glucose: int = 120, pct: float = 80.0) -> None:
    lh.write("raw.glucose_entries", entries, mode="insert_new", key="_id")
    lh.write("silver.fct_glucose_readings", _facts(entries, glucose), mode="overwrite")
    lh.write("marts.mrt_glucose_overview", _overview(pct), mode="overwrite")


def _status(report: AuditReport) -> dict[str, str]:
    return {c.name: c.status for c in report.checks}


def test_clean_data_passes_and_promotes(lh: Lakehouse, tmp_path: Path) -> None:
    _build(lh, _entries(100, NOW))
    report = run_audit(now=NOW, dbt_results=[{"name": "not_null_x", "status": "pass"}])
    assert report.passed, report.to_frame()
    assert set(_status(report)) >= {"required tables", "freshness p1", "glucose range", "rejects ratio", "dbt tests"}
    path = report.save(tmp_path / "audit.json")
    assert AuditReport.load(path).passed
    assert promote(AuditReport.load(path)) is not None
    assert Lakehouse("main").tables() == lh.tables()


def test_each_failure_blocks_promotion_and_main_is_untouched(lh: Lakehouse) -> None:
    _build(lh, _entries(100, NOW))
    promote(run_audit(now=NOW))
    main_head = Lakehouse("main").log(limit=1)[0].id

    # stale data, a glucose value out of range, a bad percentage, a failed dbt test
    _build(lh, _entries(10, NOW - timedelta(hours=30), patient="p2"), glucose=900, pct=130.0)
    report = run_audit(now=NOW, dbt_results=[{"name": "unique_reading_id", "status": "fail"}])
    status = _status(report)
    # a stale patient is a warning (it never holds back the others); the rest are failures
    assert status["freshness p2"] == "warn" and status["freshness p1"] == "pass"
    assert status["glucose range"] == "fail"
    assert status["percent range marts.mrt_glucose_overview"] == "fail"
    assert status["dbt tests"] == "fail"
    with pytest.raises(AuditFailedError, match="main was not changed"):
        promote(report)
    assert Lakehouse("main").log(limit=1)[0].id == main_head


def test_row_drop_and_rejects_ratio(lh: Lakehouse) -> None:
    _build(lh, _entries(100, NOW))
    promote(run_audit(now=NOW))
    lh.write("raw.glucose_entries", _entries(50, NOW), mode="overwrite")  # dev lost rows
    lh.write("raw.glucose_entries_rejects", pd.DataFrame({"_id": ["x"] * 10, "reason": "bad sgv"}))
    status = _status(run_audit(now=NOW))
    assert status["row count raw.glucose_entries"] == "fail"
    assert status["rejects ratio"] == "fail"
    assert (
        _status(run_audit(now=NOW, thresholds=Thresholds(max_row_drop_pct=60, max_rejects_pct=100)))[
            "row count raw.glucose_entries"
        ]
        == "pass"
    )


def test_a_row_drop_of_re_cut_patients_warns_and_others_still_fail(lh: Lakehouse) -> None:
    """A corrected zone cuts the patient's days anew, so a day table may hold fewer of their rows: a
    warning naming them, not a failure; a drop among the other patients still fails."""
    _build(lh, _entries(100, NOW))
    days = pd.DataFrame({"patient_id": ["p1", "p1", "p2"], "reading_date": pd.to_datetime(["2026-11-27"] * 3).date})
    days.loc[1, "reading_date"] = pd.Timestamp("2026-11-28").date()
    lh.write("marts.mrt_glucose_daily_metrics", days, mode="overwrite")
    zones = pd.DataFrame({"patient_id": ["p1", "p2"], "time_zone": ["Europe/Berlin", "Asia/Tokyo"]})
    lh.write("raw.patients", zones, mode="overwrite")
    promote(run_audit(now=NOW))

    lh.write("raw.patients", zones.assign(time_zone=["America/Los_Angeles", "Asia/Tokyo"]), mode="overwrite")
    lh.write("marts.mrt_glucose_daily_metrics", days.drop(index=1), mode="overwrite")  # p1's 28th is gone
    check = {c.name: c for c in run_audit(now=NOW).checks}["row count marts.mrt_glucose_daily_metrics"]
    assert check.status == "warn" and "zone corrected: p1" in check.detail

    lh.write("marts.mrt_glucose_daily_metrics", days.drop(index=[1, 2]), mode="overwrite")  # p2 lost a day too
    assert _status(run_audit(now=NOW))["row count marts.mrt_glucose_daily_metrics"] == "fail"


def test_gaps_in_new_data_warn_by_default(lh: Lakehouse) -> None:
    first = _entries(12, NOW - timedelta(hours=10))
    later = _entries(12, NOW)
    _build(lh, pd.concat([first, later]))
    report = run_audit(now=NOW)
    gap = next(c for c in report.checks if c.name == "gaps p1")
    assert gap.status == "warn" and gap.value is not None and gap.value > 8
    assert report.passed  # warnings do not block
    strict = run_audit(now=NOW, thresholds=Thresholds(gap_severity="fail"))
    assert not strict.passed


def test_promotion_refuses_when_dev_moved_after_audit(lh: Lakehouse) -> None:
    _build(lh, _entries(20, NOW))
    report = run_audit(now=NOW)
    lh.write("raw.other", pd.DataFrame({"x": [1]}))
    with pytest.raises(AuditFailedError, match="moved"):
        promote(report)
    assert Lakehouse("main").tables() == []


def test_unknown_threshold_is_a_clear_error() -> None:
    with pytest.raises(Exception, match="unknown audit threshold"):
        Thresholds.from_params({"max_staleness": 3})


def test_table_names_are_quoted_in_the_audit_sql(lh: Lakehouse) -> None:
    _build(lh, _entries(100, NOW))
    odd = 'raw.my "odd" table'
    lh.write(odd, pd.DataFrame({"x": [1, 2]}), mode="append")
    lh.merge("dev", "main")
    lh.write(odd, pd.DataFrame({"x": [3]}), mode="append")
    report = run_audit(now=NOW)
    assert _status(report)[f"row count {odd}"] == "pass"


@pytest.mark.parametrize(
    "when",
    [datetime(2001, 1, 1, tzinfo=UTC), NOW + timedelta(minutes=9)],
    ids=["2001-01-01", "9-minutes-ahead"],
)
def test_an_implausible_reading_date_never_reaches_main(lh: Lakehouse, when: datetime) -> None:
    entries = _entries(100, NOW)
    odd = _entries(1, when, patient="p1")
    _build(lh, pd.concat([entries, odd], ignore_index=True))
    report = run_audit(now=NOW)
    assert _status(report)["reading dates"] == "fail"
    with pytest.raises(AuditFailedError):
        promote(report)
    assert "raw.glucose_entries" not in Lakehouse("main").tables()


def test_one_new_reading_is_checked_against_mains_last_reading(lh: Lakehouse) -> None:
    # regression: `check_gaps` crashed (boolean value of NA is ambiguous) on a patient with exactly
    # one new reading, and never saw the gap between main's last reading and the first new one
    history = _entries(12, NOW - timedelta(hours=10))
    _build(lh, history)
    promote(run_audit(now=NOW))
    one_new = _entries(1, NOW)
    _build(lh, pd.concat([history, one_new]))
    report = run_audit(now=NOW)
    gap = next(c for c in report.checks if c.name == "gaps p1")
    assert gap.status == "warn" and gap.value == 10.0, gap
    assert "1 new readings" in gap.detail


def test_a_new_patient_with_a_single_reading_has_no_gap(lh: Lakehouse) -> None:
    _build(lh, _entries(12, NOW))
    promote(run_audit(now=NOW))
    _build(lh, pd.concat([_entries(12, NOW), _entries(1, NOW, patient="p2")]))
    checks = {c.name: c for c in run_audit(now=NOW).checks}
    assert checks["gaps p2"].status == "pass" and checks["gaps p2"].value == 0.0
    assert "gaps p1" not in checks  # nothing new for p1


def test_a_stale_site_warns_and_the_other_patients_are_promoted(lh: Lakehouse, tmp_path: Path) -> None:
    # regression: freshness was judged against the wall clock and a stale site failed the audit
    _build(lh, pd.concat([_entries(20, NOW), _entries(20, NOW - timedelta(hours=30), patient="p2")]))
    report = run_audit(now=NOW)
    fresh = {c.name: c for c in report.checks if c.name.startswith("freshness")}
    assert fresh["freshness p2"].status == "warn" and "stale" in fresh["freshness p2"].detail
    assert report.passed and "freshness p2" in (report.note() or "")
    assert promote(report) is not None
    assert (
        int(Lakehouse("main").sql("select count(*) as n from raw.glucose_entries where patient_id = 'p1'")["n"][0])
        == 20
    )
    metrics = write_metrics(report, tmp_path / "audit.prom").read_text()
    assert 'cascade_site_stale{site="p2"} 1' in metrics and 'cascade_site_stale{site="p1"} 0' in metrics
    assert "cascade_audit_passed 1" in metrics


def test_freshness_is_judged_against_the_sources_clock_and_backfill_is_not_stale(lh: Lakehouse) -> None:
    year_ago = NOW - timedelta(days=365)
    _build(lh, _entries(20, year_ago))
    # the source's own clock says it is a year ago there too (a replayed history): fresh
    sources = [SourceState("p1", "p1", source_time=year_ago + timedelta(minutes=5))]
    check = next(c for c in run_audit(now=NOW, sources=sources).checks if c.name == "freshness p1")
    assert check.status == "pass" and "source's clock" in check.detail
    # against a source whose clock is now, old data is stale ... unless this run is a backfill
    now_source = [SourceState("p1", "p1", source_time=NOW)]
    assert next(c for c in run_audit(now=NOW, sources=now_source).checks if c.name == "freshness p1").status == "warn"
    backfill = run_audit(now=NOW, sources=now_source, backfill=True)
    check = next(c for c in backfill.checks if c.name == "freshness p1")
    assert check.status == "pass" and check.detail.startswith("backfill") and backfill.passed


def test_a_site_sets_its_own_thresholds(lh: Lakehouse) -> None:
    _build(lh, _entries(20, NOW - timedelta(hours=30)))
    relaxed = [SourceState("p1", "p1", source_time=NOW, audit={"max_staleness_hours": 48, "max_gap_hours": 1})]
    checks = {c.name: c for c in run_audit(now=NOW, sources=relaxed).checks}
    assert checks["freshness p1"].status == "pass" and checks["freshness p1"].threshold == 48
    assert Thresholds().for_site({"max_gap_hours": 1}).max_gap_hours == 1


def test_the_layer_tasks_test_outcomes_count_only_while_dev_is_as_they_left_it(lh: Lakehouse, tmp_path: Path) -> None:
    """The audit re-runs only the cross-layer tests when the layer tasks' outcomes describe `dev` as
    it is; after any later write (or with a file missing, or for another branch) it runs them all."""
    from types import SimpleNamespace

    from workbench.quality.audit import _layer_results, save_layer_tests

    _build(lh, _entries(10, NOW))
    test = SimpleNamespace(name="not_null_x", status="pass", failures=0)
    paths = [save_layer_tests(SimpleNamespace(tests=[test]), tmp_path / f"{n}.json", "dev") for n in ("b", "m")]
    assert (paths[0].stat().st_mode & 0o077) == 0  # private, like every file Cascade writes
    results = _layer_results("dev", paths)
    assert results == [{"name": "not_null_x", "status": "pass", "failures": 0}] * 2
    assert _layer_results("main", paths) is None
    assert _layer_results("dev", [*paths, tmp_path / "missing.json"]) is None
    assert _layer_results("dev", None) is None
    lh.write("marts.mrt_glucose_overview", _overview(70.0), mode="overwrite")  # dev moved after the layers
    assert _layer_results("dev", paths) is None
