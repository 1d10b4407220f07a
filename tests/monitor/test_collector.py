"""The exporter's metrics from real sources: Ploomber runs recorded in `ops.pipeline_runs`, an audit
report in the run folder, the demo lake's raw tables; served over HTTP and mounted in an ASGI app."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from workbench.lakehouse import Lakehouse
from workbench.monitor.collector import PipelineCollector, read_snapshot
from workbench.monitor.exporter import start_exporter
from workbench.pipeline.runner import run_pipeline
from workbench.quality.audit import AuditReport, Check
from workbench.settings import Settings

PINNED = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_failed_then_successful_run(run_home: Settings, project: Path) -> None:
    failed = run_pipeline(project / "failing.yaml", settings=run_home)
    assert failed.status == "failed"
    AuditReport(
        "dev", "main", PINNED.isoformat(), "abc123",
        [Check("freshness p001", "fail", "old", 30.0, 24.0), Check("glucose range", "pass", "ok")],
    ).save(failed.run_dir / "audit" / "audit.json")  # fmt: skip
    collector = PipelineCollector(run_home, clock=lambda: PINNED)
    snap = collector.snapshot()
    assert snap.value("cascade_pipeline_last_run_status", status="failed") == 1
    assert snap.value("cascade_pipeline_last_run_status", status="success") == 0
    assert snap.value("cascade_pipeline_task_status", task="broken", status="failed") == 1
    assert snap.value("cascade_pipeline_task_status", task="report", status="success") == 1
    assert snap.value("cascade_pipeline_runs_total", status="failed") == 1
    assert snap.value("cascade_audit_passed") == 0
    assert snap.value("cascade_audit_check_failed", check="freshness p001") == 1
    assert snap.value("cascade_audit_check_failed", check="glucose range") == 0
    assert snap.value("cascade_audit_timestamp_seconds") == PINNED.timestamp()
    assert snap.value("cascade_lake_commits_total", branch="ops") >= 1
    assert {s.labels["source"]: s.value for s in snap.samples if s.name == "cascade_exporter_source_up"} == {
        "history": 1, "audit": 1, "ingest": 1, "lake": 1,
    }  # fmt: skip
    assert collector.snapshot() is snap and collector.refreshes == 1  # nothing moved: cached

    ok = run_pipeline(project / "pipeline.yaml", settings=run_home, force=True)
    assert ok.status == "success"
    snap = collector.snapshot()
    assert collector.refreshes == 2  # the ops branch moved
    assert snap.value("cascade_pipeline_last_run_status", status="failed") == 0
    assert snap.value("cascade_pipeline_last_run_status", status="success") == 1
    assert snap.value("cascade_pipeline_runs_total", status="success") == 1
    assert snap.value("cascade_pipeline_last_success_timestamp_seconds") == ok.tasks[-1].ended_at.timestamp()
    assert snap.value("cascade_pipeline_task_duration_seconds", task="report") >= 0


def test_empty_home_exports_without_errors(run_home: Settings) -> None:
    snap = read_snapshot(run_home, PINNED)
    sources = {s.labels["source"]: s.value for s in snap.samples if s.name == "cascade_exporter_source_up"}
    assert sources == {"history": 1, "audit": 1, "ingest": 1, "lake": 1}
    rest = [s for s in snap.samples if s.name != "cascade_exporter_source_up"]
    assert {s.name for s in rest} == {"cascade_pipeline_runs_total"} and {s.value for s in rest} == {0}
    assert not run_home.catalog_db.exists()  # reading never creates a lake


def test_ingest_and_freshness_from_the_demo_lake(demo_settings: Settings) -> None:
    snap = read_snapshot(demo_settings, PINNED)
    dev = Lakehouse("dev", settings=demo_settings)
    per_site = dev.sql("select site_id, count(*) as n from raw.glucose_entries group by 1")
    assert len(per_site) == 2
    for row in per_site.itertuples(index=False):
        assert snap.value("cascade_ingest_rows_total", site_id=row.site_id) == row.n
    newest = dev.sql("select patient_id, max(date) / 1000.0 as s from raw.glucose_entries group by 1")
    for row in newest.itertuples(index=False):
        assert snap.value("cascade_patient_newest_reading_timestamp_seconds", patient_id=row.patient_id) == row.s
        age = snap.value("cascade_patient_reading_age_seconds", patient_id=row.patient_id)
        assert age == pytest.approx(PINNED.timestamp() - row.s)


def test_http_endpoint(run_home: Settings, project: Path) -> None:
    run_pipeline(project / "failing.yaml", settings=run_home)
    server, port = start_exporter(0, run_home)
    try:
        answer = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30)
    finally:
        server.shutdown()
    assert answer.status_code == 200
    samples = _samples(answer.text)
    assert samples[("cascade_pipeline_last_run_status", (("status", "failed"),))] == 1


def test_api_middleware_and_mounted_metrics(api_app: Any) -> None:
    from fastapi.testclient import TestClient

    app = api_app
    before = _samples(TestClient(app).get("/metrics/").text)
    client = TestClient(app, raise_server_exceptions=False)
    for pid in ("p001", "p002"):
        assert client.get(f"/patients/{pid}").status_code == 200
    assert client.get("/boom").status_code == 500
    after = _samples(client.get("/metrics/").text)

    def delta(route: str, status: str) -> float:
        key = ("cascade_api_requests_total", (("method", "GET"), ("route", route), ("status", status)))
        return after.get(key, 0) - before.get(key, 0)

    assert delta("/patients/{patient_id}", "200") == 2  # the route template, not the patient id
    assert delta("/boom", "500") == 1
    count = ("cascade_api_request_duration_seconds_count", (("route", "/patients/{patient_id}"),))
    assert after[count] - before.get(count, 0) == 2
