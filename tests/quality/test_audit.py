"""Audit checks and promotion: failures block the merge and leave main untouched."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from workbench.lakehouse import Lakehouse
from workbench.quality import AuditFailedError, AuditReport, Thresholds, promote, run_audit

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
    assert status["freshness p2"] == "fail" and status["freshness p1"] == "pass"
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
