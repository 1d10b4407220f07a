"""A failed audit never wedges the pipeline: the next run restarts dev from main plus the raw data
not yet promoted, and the failed batch stays inspectable as a tag."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
from typer.testing import CliRunner

from workbench.lakehouse import Lakehouse
from workbench.pipeline.history import record_task
from workbench.pipeline.recovery import failed_tag, recover_after_failed_audit

RUN = "20261201T100000Z-abc123"


def _entries(ids: list[str]) -> pa.Table:
    return pa.table({"site_id": ["s"] * len(ids), "_id": ids, "sgv": [100] * len(ids)})


def test_recovery_after_a_failed_audit(cascade_home: Path) -> None:
    dev = Lakehouse("dev")
    dev.write("raw.glucose_entries", _entries(["a", "b"]), mode="append")
    dev.write("marts.daily", pa.table({"day": [1], "tir": [70.0]}), mode="append")
    dev.merge("dev", "main")
    # the next batch: new raw rows and a broken mart, then the audit fails
    dev.write("raw.glucose_entries", _entries(["c", "d"]), mode="insert_new", key=["site_id", "_id"])
    dev.write("marts.daily", pa.table({"day": [1], "tir": [-5.0]}), mode="overwrite")
    rejects = pa.table({"site_id": ["s"], "_id": ["bad"], "reason": ["sgv_out_of_range"]})
    dev.write("raw.glucose_entries_rejects", rejects, mode="append")
    at = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    record_task(RUN, "audit", started_at=at, ended_at=at, status="failed", error="tir out of range")
    assert recover_after_failed_audit() is not None

    tag = failed_tag(RUN)
    fresh = Lakehouse("dev")
    assert sorted(fresh.sql("select _id from raw.glucose_entries")["_id"]) == ["a", "b", "c", "d"]
    assert fresh.sql("select tir from marts.daily")["tir"].tolist() == [70.0]  # from main again
    assert "raw.glucose_entries_rejects" not in fresh.tables()  # quarantined records stay in the tag
    kept = Lakehouse(tag)
    assert kept.sql("select tir from marts.daily")["tir"].tolist() == [-5.0]  # inspectable
    assert kept.sql("select _id from raw.glucose_entries_rejects")["_id"].tolist() == ["bad"]
    assert recover_after_failed_audit() is None  # once per failed run

    # a later passing audit ends it; `cascade runs <id>` shows how to look at the batch
    from workbench.cli import app

    shown = CliRunner().invoke(app, ["runs", RUN])
    assert shown.exit_code == 0, shown.output
    assert f"tag {tag}" in shown.output and f"cascade log {tag}" in shown.output


def test_no_recovery_when_the_last_audit_passed(cascade_home: Path) -> None:
    dev = Lakehouse("dev")
    dev.write("raw.glucose_entries", _entries(["a"]), mode="append")
    at = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    record_task(RUN, "audit", started_at=at, ended_at=at, status="failed")
    record_task("20261201T110000Z-abc124", "audit", started_at=at.replace(hour=11), ended_at=at, status="success")
    assert recover_after_failed_audit() is None
