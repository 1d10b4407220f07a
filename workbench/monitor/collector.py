"""What the pipeline and the lake look like to Prometheus, read on each scrape.

Sources, all read-only:
- the run history in the lake, `ops.pipeline_runs` on the branch `ops` (one commit per finished run);
- the run folders `CASCADE_HOME/runs/<run id>/audit/audit.json` (the audit's checks);
- the lake itself: `raw.glucose_entries` / `raw.glucose_entries_rejects` on the ingest branch (rows
  landed and rejected per site, newest reading per patient) and the ref log (commits per branch).

Reading the lake costs DuckDB scans, so a snapshot is cached until a branch head moves or a run folder
changes: scrapes between pipeline runs are cheap. Metric names are defined here once (`METRICS`), and
the alert rules in `stack/prometheus/rules/` use exactly these names (a test checks it).

```python
from prometheus_client import CollectorRegistry, generate_latest
registry = CollectorRegistry(); registry.register(PipelineCollector(settings))
print(generate_latest(registry).decode())
```
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from workbench.lake.api import DEV_BRANCH, RUN_HISTORY_BRANCH
from workbench.settings import Settings, get_settings

STATUSES = ("success", "failed", "running", "skipped")

# name -> help; the one list of the exporter's metrics (documented in docs/monitoring.md)
METRICS: dict[str, str] = {
    "cascade_exporter_source_up": "1 if the source could be read on the last refresh, 0 if reading it failed",
    "cascade_pipeline_runs_total": "Finished pipeline runs in the run history, by status",
    "cascade_pipeline_last_run_status": "Status of the most recent run (1 for its status, 0 for the others)",
    "cascade_pipeline_last_run_start_timestamp_seconds": "Start time of the most recent run (Unix seconds)",
    "cascade_pipeline_last_run_end_timestamp_seconds": "End time of the most recent run (Unix seconds)",
    "cascade_pipeline_last_run_duration_seconds": "Wall time of the most recent run",
    "cascade_pipeline_last_success_timestamp_seconds": "End time of the most recent successful run",
    "cascade_pipeline_task_duration_seconds": "Wall time of each task in the most recent run",
    "cascade_pipeline_task_status": "Status of each task in the most recent run (1 for its status)",
    "cascade_pipeline_task_rows": "Rows a task of the most recent run added to the lake",
    "cascade_pipeline_task_commits": "Lake commits a task of the most recent run made",
    "cascade_pipeline_task_runs_total": "Task executions in the run history, by task and status",
    "cascade_audit_passed": "1 if the most recent audit passed (promotion allowed), 0 if it failed",
    "cascade_audit_timestamp_seconds": "When the most recent audit ran (Unix seconds)",
    "cascade_audit_check_failed": "1 if an audit check of the most recent audit failed, else 0",
    "cascade_audit_checks": "Checks of the most recent audit, by status (pass, warn, fail)",
    "cascade_ingest_rows_total": "Readings landed in raw.glucose_entries, by site (all runs)",
    "cascade_ingest_rejects_total": "Readings quarantined in raw.glucose_entries_rejects, by site (all runs)",
    "cascade_ingest_last_run_rows": "Readings the most recent ingest landed, by site",
    "cascade_ingest_last_run_rejects": "Readings the most recent ingest quarantined, by site",
    "cascade_patient_newest_reading_timestamp_seconds": "Time of the newest reading of each patient",
    "cascade_patient_reading_age_seconds": "Seconds since the newest reading of each patient (at refresh)",
    "cascade_lake_commits_total": "Commits on each lake branch (first-parent history)",
    "cascade_lake_head_timestamp_seconds": "Time of the head commit of each lake branch",
}


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


@dataclass
class Snapshot:
    """Every sample of one refresh (counters named `*_total` are exported as counters)."""

    samples: list[Sample] = field(default_factory=list)

    def add(self, name: str, value: float | None, **labels: str) -> None:
        if name not in METRICS:
            raise KeyError(f"metric {name} is not declared in METRICS")
        if value is not None:
            self.samples.append(Sample(name, labels, float(value)))

    def value(self, name: str, **labels: str) -> float | None:
        """One sample's value (tests and `cascade monitor status`)."""
        for sample in self.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
        return None


def _ts(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def read_snapshot(settings: Settings, now: datetime | None = None) -> Snapshot:
    """Read every source once; a source that fails is reported by `cascade_exporter_source_up`."""
    now = now or datetime.now(UTC)
    snap = Snapshot()
    for source, reader in (("history", _history), ("audit", _audit), ("ingest", _ingest), ("lake", _lake_log)):
        try:
            reader(settings, snap, now)
            snap.add("cascade_exporter_source_up", 1, source=source)
        except Exception:  # a broken source must not take the others (or the endpoint) down
            snap.add("cascade_exporter_source_up", 0, source=source)
    return snap


def _open_lake(settings: Settings) -> Any:
    from workbench.lake.store import open_lake

    return open_lake(settings)


def _has_branch(settings: Settings, name: str) -> bool:
    if not settings.catalog_db.exists():
        return False
    return any(ref.name == name for ref in _open_lake(settings).refs())


def _history_records(settings: Settings) -> list[Any]:
    from workbench.pipeline.history import LakeRunStore

    if not _has_branch(settings, RUN_HISTORY_BRANCH):
        return []
    return list(LakeRunStore(settings, branch=RUN_HISTORY_BRANCH).records())


def _history(settings: Settings, snap: Snapshot, now: datetime) -> None:
    from workbench.pipeline.history import _summaries

    runs = _summaries(_history_records(settings))
    runs.sort(key=lambda r: (r.started_at, r.run_id))
    by_status = dict.fromkeys(STATUSES, 0)
    task_counts: dict[tuple[str, str], int] = {}
    for run in runs:
        by_status[run.status] = by_status.get(run.status, 0) + 1
        for task in run.tasks:
            task_counts[(task.task, task.status)] = task_counts.get((task.task, task.status), 0) + 1
    for status, count in by_status.items():
        snap.add("cascade_pipeline_runs_total", count, status=status)
    for (task_name, status), count in sorted(task_counts.items()):
        snap.add("cascade_pipeline_task_runs_total", count, task=task_name, status=status)
    successes = [r for r in runs if r.status == "success" and r.ended_at]
    if successes:
        snap.add("cascade_pipeline_last_success_timestamp_seconds", _ts(successes[-1].ended_at))
    if not runs:
        return
    last = runs[-1]
    for status in STATUSES:
        snap.add("cascade_pipeline_last_run_status", 1 if last.status == status else 0, status=status)
    snap.add("cascade_pipeline_last_run_start_timestamp_seconds", _ts(last.started_at))
    snap.add("cascade_pipeline_last_run_end_timestamp_seconds", _ts(last.ended_at))
    if last.ended_at:
        snap.add("cascade_pipeline_last_run_duration_seconds", (last.ended_at - last.started_at).total_seconds())
    for task in last.tasks:
        snap.add("cascade_pipeline_task_duration_seconds", task.seconds, task=task.task)
        for status in STATUSES:
            snap.add("cascade_pipeline_task_status", 1 if task.status == status else 0, task=task.task, status=status)
        snap.add("cascade_pipeline_task_rows", task.rows, task=task.task)
        snap.add("cascade_pipeline_task_commits", len(task.commit_ids), task=task.task)


def latest_audit_report(settings: Settings) -> Path | None:
    """The audit report of the newest run that has one (run ids sort by start time)."""
    if not settings.runs_dir.is_dir():
        return None
    reports = sorted(settings.runs_dir.glob("*/audit/audit.json"), key=lambda p: p.parent.parent.name)
    return reports[-1] if reports else None


def _audit(settings: Settings, snap: Snapshot, now: datetime) -> None:
    path = latest_audit_report(settings)
    if path is None:
        return
    report = json.loads(path.read_text())
    checks = report.get("checks") or []
    failed = [c for c in checks if c.get("status") == "fail"]
    snap.add("cascade_audit_passed", 0 if failed else 1)
    checked_at = report.get("checked_at")
    if checked_at:
        snap.add("cascade_audit_timestamp_seconds", datetime.fromisoformat(checked_at).timestamp())
    for status in ("pass", "warn", "fail"):
        snap.add("cascade_audit_checks", sum(1 for c in checks if c.get("status") == status), status=status)
    for check in checks:
        snap.add("cascade_audit_check_failed", 1 if check.get("status") == "fail" else 0, check=str(check["name"]))


def _ingest_window(settings: Settings) -> tuple[datetime, datetime] | None:
    """Start and end of the most recent run whose ingest task ran (not skipped). The run's window,
    not the task's: rows are stamped with the ingest's start time, inside the run either way."""
    from workbench.pipeline.history import _summaries

    runs = [
        r
        for r in _summaries(_history_records(settings))
        if r.ended_at and any(t.task == "ingest" and t.status != "skipped" for t in r.tasks)
    ]
    if not runs:
        return None
    last = max(runs, key=lambda r: r.started_at)
    assert last.ended_at is not None
    return last.started_at, last.ended_at


def _ingest(settings: Settings, snap: Snapshot, now: datetime) -> None:
    from workbench.lakehouse import Lakehouse

    if not _has_branch(settings, DEV_BRANCH):
        return
    lake = Lakehouse(DEV_BRANCH, settings=settings)
    tables = set(lake.tables())
    window = _ingest_window(settings)
    for table, total, last in (
        ("raw.glucose_entries", "cascade_ingest_rows_total", "cascade_ingest_last_run_rows"),
        ("raw.glucose_entries_rejects", "cascade_ingest_rejects_total", "cascade_ingest_last_run_rejects"),
    ):
        if table not in tables:
            continue
        if window is None:
            rows = lake.sql(f"select site_id, count(*) as n, 0 as recent from {table} group by 1 order by 1")
        else:
            rows = lake.sql(
                f"select site_id, count(*) as n, count(*) filter (where _ingested_at between ? and ?) as recent "
                f"from {table} group by 1 order by 1",
                [window[0], window[1]],
            )
        for row in rows.itertuples(index=False):
            snap.add(total, int(row.n), site_id=str(row.site_id))
            if window is not None:
                snap.add(last, int(row.recent), site_id=str(row.site_id))
    if "raw.glucose_entries" in tables:
        newest = lake.sql("select patient_id, max(date) as newest_ms from raw.glucose_entries group by 1 order by 1")
        for row in newest.itertuples(index=False):
            seconds = float(row.newest_ms) / 1000
            snap.add("cascade_patient_newest_reading_timestamp_seconds", seconds, patient_id=str(row.patient_id))
            snap.add("cascade_patient_reading_age_seconds", now.timestamp() - seconds, patient_id=str(row.patient_id))


def _lake_log(settings: Settings, snap: Snapshot, now: datetime) -> None:
    if not settings.catalog_db.exists():
        return
    lake = _open_lake(settings)
    for ref in lake.refs():
        if ref.kind != "branch":
            continue
        log = lake.log(ref.name)
        snap.add("cascade_lake_commits_total", len(log), branch=ref.name)
        if log:
            snap.add("cascade_lake_head_timestamp_seconds", _ts(log[0].created_at), branch=ref.name)


def _state_key(settings: Settings) -> tuple[Any, ...]:
    """Changes whenever something the snapshot reads may have changed (cheap: no table scans)."""
    heads: tuple[Any, ...] = ()
    if settings.catalog_db.exists():
        heads = tuple(sorted((r.name, r.commit_id) for r in _open_lake(settings).refs()))
    runs = settings.runs_dir
    folders = tuple(sorted(p.name for p in runs.iterdir())) if runs.is_dir() else ()
    audit = latest_audit_report(settings)
    return heads, folders, audit.stat().st_mtime_ns if audit else None


class PipelineCollector(Collector):
    """A prometheus_client collector over `read_snapshot`, refreshed when the lake or runs change.

    The age of the newest reading per patient is recomputed on every scrape (it grows with time
    even when nothing changes)."""

    def __init__(self, settings: Settings | None = None, clock: Callable[[], datetime] | None = None) -> None:
        self.settings = settings
        self.clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()
        self._key: tuple[Any, ...] | None = None
        self._snapshot: Snapshot | None = None
        self.refreshes = 0

    def snapshot(self) -> Snapshot:
        settings = self.settings or get_settings()
        with self._lock:
            try:
                key: tuple[Any, ...] | None = _state_key(settings)
            except Exception:
                key = None  # cannot tell: read everything again
            if self._snapshot is None or key is None or key != self._key:
                self._snapshot = read_snapshot(settings, self.clock())
                self._key = key
                self.refreshes += 1
            return self._snapshot

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot()
        now = self.clock().timestamp()
        families: dict[str, GaugeMetricFamily | CounterMetricFamily] = {}
        for sample in snap.samples:
            value = sample.value
            if sample.name == "cascade_patient_reading_age_seconds":
                newest = snap.value("cascade_patient_newest_reading_timestamp_seconds", **sample.labels)
                value = now - newest if newest is not None else value
            family = families.get(sample.name)
            if family is None:
                kind = CounterMetricFamily if sample.name.endswith("_total") else GaugeMetricFamily
                family = kind(sample.name, METRICS[sample.name], labels=sorted(sample.labels))
                families[sample.name] = family
            family.add_metric([sample.labels[k] for k in sorted(sample.labels)], value)
        yield from families.values()
