"""Run history: one record per task of each pipeline run (start, end, status, rows, commits).

Stored behind the small `RunHistoryStore` interface. Today it is a JSON-lines file,
`settings.runs_dir/history.jsonl` (appends are whole lines under an exclusive `flock`); it is meant
to move into the Iceberg table `ops.pipeline_runs` once the lake API is available, by adding a
store and choosing it in `history_store()`; callers of `record_task`/`list_runs` do not change.

```python
record_task(run_id, "publish", started_at=t0, ended_at=t1, status="success", rows=120,
            commit_ids=["a1b2c3"])
for run in list_runs(limit=10): print(run.run_id, run.status)
```
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa

from workbench.pipeline.errors import RunHistoryError
from workbench.pipeline.runs import is_run_id
from workbench.settings import MAIN_BRANCH, Settings, get_settings

STATUSES = ("running", "success", "failed", "skipped")


@dataclass(frozen=True)
class TaskRecord:
    """One task of one run."""

    run_id: str
    task: str
    started_at: datetime
    ended_at: datetime | None
    status: str
    rows: int | None = None
    commit_ids: tuple[str, ...] = ()
    error: str | None = None
    note: str | None = None  # what the run should know without failing: audit warnings, "no new data"

    @property
    def seconds(self) -> float | None:
        return None if self.ended_at is None else (self.ended_at - self.started_at).total_seconds()

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "task": self.task,
            "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "status": self.status,
            "rows": self.rows,
            "commit_ids": list(self.commit_ids),
            "error": self.error,
            "note": self.note,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> TaskRecord:
        return cls(
            run_id=str(raw["run_id"]),
            task=str(raw["task"]),
            started_at=datetime.fromisoformat(raw["started_at"]),
            ended_at=datetime.fromisoformat(raw["ended_at"]) if raw.get("ended_at") else None,
            status=str(raw["status"]),
            rows=None if raw.get("rows") is None else int(raw["rows"]),
            commit_ids=tuple(str(c) for c in raw.get("commit_ids") or ()),
            error=raw.get("error"),
            note=raw.get("note"),
        )


@dataclass(frozen=True)
class RunSummary:
    """A run, summarised from its task records (the latest record per task wins)."""

    run_id: str
    started_at: datetime
    ended_at: datetime | None
    status: str
    tasks: tuple[TaskRecord, ...] = field(default_factory=tuple)

    @property
    def rows(self) -> int | None:
        counts = [t.rows for t in self.tasks if t.rows is not None]
        return sum(counts) if counts else None

    @property
    def commit_ids(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for task in self.tasks:
            seen.update(dict.fromkeys(task.commit_ids))
        return tuple(seen)


class RunHistoryStore(Protocol):
    """Where task records live (JSON lines now; the Iceberg table `ops.pipeline_runs` later)."""

    def append(self, record: TaskRecord) -> None:
        """Store one record durably."""
        ...

    def records(self) -> Iterator[TaskRecord]:
        """Every stored record, oldest first."""
        ...


class JsonLinesStore:
    """Task records as JSON lines in one file; safe for concurrent writers (flock + O_APPEND)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, record: TaskRecord) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = (json.dumps(record.to_json(), sort_keys=True) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)  # closing releases the flock

    def records(self) -> Iterator[TaskRecord]:
        try:
            with open(self.path, encoding="utf-8") as handle:
                fcntl.flock(handle, fcntl.LOCK_SH)
                lines = handle.readlines()
        except FileNotFoundError:
            return
        for line in lines:
            if not line.strip():
                continue
            try:
                yield TaskRecord.from_json(json.loads(line))
            except (ValueError, KeyError, TypeError):
                continue  # a torn or foreign line must not hide the rest of the history


class LakeRunStore:
    """Task records in the Iceberg table `ops.pipeline_runs` on a lake branch (one commit each).

    Not the default yet: choosing it needs a setting (see `history_store`). The branch's head
    moves with every record, so a branch other than the one marts are published from keeps
    "which commit was published" meaningful."""

    TABLE = "ops.pipeline_runs"
    SCHEMA = pa.schema(
        [
            pa.field("run_id", pa.string(), nullable=False),
            pa.field("task", pa.string(), nullable=False),
            pa.field("started_at", pa.timestamp("us", tz="UTC"), nullable=False),
            pa.field("ended_at", pa.timestamp("us", tz="UTC")),
            pa.field("status", pa.string(), nullable=False),
            pa.field("rows", pa.int64()),
            pa.field("commit_ids", pa.list_(pa.string())),
            pa.field("error", pa.string()),
            pa.field("note", pa.string()),
            pa.field("recorded_at", pa.timestamp("us", tz="UTC"), nullable=False),
        ]
    )

    def __init__(self, settings: Settings | None = None, branch: str = MAIN_BRANCH) -> None:
        self.settings = settings
        self.branch = branch

    def _lake(self) -> Any:
        from workbench.errors import CascadeError, RefNotFoundError
        from workbench.lakehouse import Lakehouse
        from workbench.profiles import open_lake
        from workbench.settings import get_settings

        lake = open_lake(self.settings or get_settings())
        try:
            lake.resolve(self.branch)
        except RefNotFoundError:  # the history branch is made on first use
            try:
                lake.create_branch(self.branch, MAIN_BRANCH)
            except CascadeError:  # another process made it meanwhile
                lake.resolve(self.branch)
        return Lakehouse(self.branch, settings=self.settings)

    def append(self, record: TaskRecord) -> None:
        self.append_many([record])

    def append_many(self, records: Sequence[TaskRecord]) -> None:
        """Store several records (e.g. every task of a run) as ONE lake commit."""
        if not records:
            return
        now = datetime.now(UTC)
        rows = []
        for record in records:
            row = {**record.to_json(), "recorded_at": now}
            row["started_at"], row["ended_at"] = record.started_at, record.ended_at
            rows.append(row)
        table = pa.Table.from_pylist(rows, schema=self.SCHEMA)
        runs = sorted({r.run_id for r in records})
        message = f"run history: {', '.join(runs)} ({len(records)} task record(s))"
        self._lake().write(self.TABLE, table, mode="append", message=message)

    def records(self) -> Iterator[TaskRecord]:
        lake = self._lake()
        if self.TABLE not in lake.tables():
            return
        rows = lake.sql_arrow(f"select * from {self.TABLE} order by recorded_at").to_pylist()
        for row in rows:
            yield TaskRecord(
                run_id=row["run_id"],
                task=row["task"],
                started_at=row["started_at"].astimezone(UTC),
                ended_at=row["ended_at"].astimezone(UTC) if row["ended_at"] else None,
                status=row["status"],
                rows=row["rows"],
                commit_ids=tuple(row["commit_ids"] or ()),
                error=row["error"],
                note=row.get("note"),
            )


def lake_activity(start: datetime, end: datetime, settings: Settings | None = None) -> tuple[tuple[str, ...], int]:
    """Lake commits made in [start, end] and the rows they added (merges add none: they move pointers)."""
    from pyiceberg.io import load_file_io
    from pyiceberg.serializers import FromInputFile

    from workbench.profiles import open_lake

    settings = settings or get_settings()
    lake = open_lake(settings)
    ids, rows = [], 0
    props = lake.io_properties()
    for commit, changes in lake.commits_between(start, end):
        ids.append(commit.id)
        if commit.operation == "merge":
            continue
        for location in changes.values():
            if location is None:
                continue
            metadata = FromInputFile.table_metadata(load_file_io(props, location).new_input(location))
            snapshot = metadata.snapshot_by_id(metadata.current_snapshot_id) if metadata.current_snapshot_id else None
            if snapshot is not None and snapshot.summary is not None:
                rows += int(snapshot.summary.get("added-records") or 0)
    return tuple(ids), rows


def history_store(settings: Settings | None = None) -> RunHistoryStore:
    """The configured history store (the one place that chooses the implementation)."""
    settings = settings or get_settings()
    return JsonLinesStore(settings.runs_dir / "history.jsonl")


def record_task(
    run_id: str,
    task: str,
    *,
    started_at: datetime,
    ended_at: datetime | None = None,
    status: str = "success",
    rows: int | None = None,
    commit_ids: Iterable[str] = (),
    error: str | None = None,
    note: str | None = None,
    settings: Settings | None = None,
    store: RunHistoryStore | None = None,
) -> TaskRecord:
    """Record one task of a run. A later record for the same (run, task) supersedes earlier ones,
    so a task can be recorded as `running` first and `success`/`failed` when it ends."""
    if not is_run_id(run_id):
        raise RunHistoryError(f"{run_id!r} is not a run id (make one with new_run_id())")
    if status not in STATUSES:
        raise RunHistoryError(f"status {status!r} is not one of {', '.join(STATUSES)}")
    if not task:
        raise RunHistoryError("a task name is required")
    if started_at.tzinfo is None or (ended_at is not None and ended_at.tzinfo is None):
        raise RunHistoryError("started_at/ended_at must be timezone-aware datetimes")
    if rows is not None and rows < 0:
        raise RunHistoryError(f"rows must be >= 0, got {rows}")
    record = TaskRecord(
        run_id=run_id,
        task=task,
        started_at=started_at.astimezone(UTC),
        ended_at=ended_at.astimezone(UTC) if ended_at else None,
        status=status,
        rows=rows,
        commit_ids=tuple(commit_ids),
        error=error,
        note=note,
    )
    (store or history_store(settings)).append(record)
    return record


@dataclass
class TaskTracker:
    """What a task reports while it runs (see `track_task`)."""

    rows: int | None = None
    commit_ids: list[str] = field(default_factory=list)


@contextlib.contextmanager
def track_task(
    run_id: str, task: str, *, settings: Settings | None = None, store: RunHistoryStore | None = None
) -> Iterator[TaskTracker]:
    """Record a task as `running`, then `success` (with the rows/commit ids set on the tracker) or
    `failed` (with the error, which is re-raised).

    ```python
    with track_task(run_id, "publish") as t:
        summary = publish_marts(MAIN_BRANCH)
        t.rows, t.commit_ids = summary.rows, [summary.commit_id]
    ```
    """
    store = store or history_store(settings)
    started = datetime.now(UTC)
    record_task(run_id, task, started_at=started, status="running", store=store)
    tracker = TaskTracker()
    try:
        yield tracker
    except BaseException as exc:
        record_task(
            run_id,
            task,
            started_at=started,
            ended_at=datetime.now(UTC),
            status="failed",
            rows=tracker.rows,
            commit_ids=tracker.commit_ids,
            error=f"{type(exc).__name__}: {exc}"[:2000],
            store=store,
        )
        raise
    record_task(
        run_id,
        task,
        started_at=started,
        ended_at=datetime.now(UTC),
        status="success",
        rows=tracker.rows,
        commit_ids=tracker.commit_ids,
        store=store,
    )


def _summaries(records: Iterable[TaskRecord]) -> list[RunSummary]:
    latest: dict[str, dict[str, TaskRecord]] = {}
    for record in records:  # oldest first: later records replace earlier ones
        latest.setdefault(record.run_id, {})[record.task] = record
    runs = []
    for run_id, by_task in latest.items():
        tasks = tuple(sorted(by_task.values(), key=lambda t: t.started_at))
        statuses = {t.status for t in tasks}
        status = next(s for s in ("failed", "running", "success", "skipped") if s in statuses)
        ends = [t.ended_at for t in tasks]
        ended = None if any(e is None for e in ends) else max(e for e in ends if e is not None)
        runs.append(RunSummary(run_id, min(t.started_at for t in tasks), ended, status, tasks))
    return runs


def list_runs(
    limit: int = 20, settings: Settings | None = None, store: RunHistoryStore | None = None
) -> list[RunSummary]:
    """The most recent runs first (by run start), at most `limit`."""
    runs = _summaries((store or history_store(settings)).records())
    runs.sort(key=lambda r: (r.started_at, r.run_id), reverse=True)
    return runs[: max(0, limit)]


def get_run(run_id: str, settings: Settings | None = None, store: RunHistoryStore | None = None) -> RunSummary:
    """One run with its tasks; `RunHistoryError` if it has no records."""
    records = [r for r in (store or history_store(settings)).records() if r.run_id == run_id]
    if not records:
        raise RunHistoryError(f"no run {run_id!r} in the run history (see `cascade runs`)")
    return _summaries(records)[0]


def format_runs(runs: Sequence[RunSummary]) -> list[str]:
    """A plain table for `cascade runs`."""
    if not runs:
        return ["no runs recorded yet"]
    lines = [f"{'run id':<24} {'started (UTC)':<20} {'seconds':>8} {'status':<8} {'tasks':>5} {'rows':>9}  commits"]
    for run in runs:
        seconds = f"{(run.ended_at - run.started_at).total_seconds():.1f}" if run.ended_at else "-"
        rows = "-" if run.rows is None else str(run.rows)
        commits = ",".join(c[:10] for c in run.commit_ids) or "-"
        lines.append(
            f"{run.run_id:<24} {run.started_at:%Y-%m-%d %H:%M:%S} {seconds:>8} {run.status:<8} "
            f"{len(run.tasks):>5} {rows:>9}  {commits}"
        )
    return lines
