"""Run ids, run folders and the run history (JSON lines behind a store interface)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
import typer
from typer.testing import CliRunner

from workbench.pipeline.errors import PipelineError, RunHistoryError
from workbench.pipeline.history import (
    JsonLinesStore,
    format_runs,
    get_run,
    history_store,
    list_runs,
    record_task,
    track_task,
)
from workbench.pipeline.runs import is_run_id, new_run_id, run_dir
from workbench.settings import Settings

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


def test_run_ids_are_sortable_unique_and_validated(run_home: Settings) -> None:
    ids = [new_run_id(T0 + timedelta(seconds=i)) for i in range(3)]
    assert ids == sorted(ids) and all(is_run_id(i) for i in ids)
    assert ids[0].startswith("20261128T100000Z-")
    assert len({new_run_id(T0) for _ in range(50)}) == 50
    folder = run_dir(ids[0], run_home)
    assert folder == run_home.runs_dir / ids[0] and folder.is_dir()
    with pytest.raises(PipelineError, match="not a run id"):
        run_dir("../../etc", run_home)


def test_record_and_list_round_trip(run_home: Settings) -> None:
    first, second = new_run_id(T0), new_run_id(T0 + timedelta(hours=1))
    record_task(first, "ingest", started_at=T0, ended_at=T0 + timedelta(seconds=5), rows=100, commit_ids=["c1"])
    record_task(
        first,
        "publish",
        started_at=T0 + timedelta(seconds=5),
        ended_at=T0 + timedelta(seconds=9),
        rows=20,
        commit_ids=["c2", "c1"],
    )
    later = T0 + timedelta(hours=1)
    record_task(second, "ingest", started_at=later, status="running")
    record_task(second, "ingest", started_at=later, ended_at=later + timedelta(seconds=2), status="failed", error="x")

    runs = list_runs(10)
    assert [r.run_id for r in runs] == [second, first]
    newest, oldest = runs
    assert newest.status == "failed" and len(newest.tasks) == 1 and newest.tasks[0].error == "x"
    assert oldest.status == "success" and oldest.rows == 120 and oldest.commit_ids == ("c1", "c2")
    assert oldest.started_at == T0 and oldest.ended_at == T0 + timedelta(seconds=9)
    assert [t.task for t in oldest.tasks] == ["ingest", "publish"]
    assert oldest.tasks[1].seconds == 4.0
    assert list_runs(1) == [newest]
    assert get_run(first) == oldest
    with pytest.raises(RunHistoryError, match="no run"):
        get_run(new_run_id())

    text = "\n".join(format_runs(runs))
    assert first in text and "failed" in text and "120" in text
    # the file is plain JSON lines, one per record
    assert len((run_home.runs_dir / "history.jsonl").read_text().splitlines()) == 4


def test_running_run_has_no_end(run_home: Settings) -> None:
    run = new_run_id(T0)
    record_task(run, "ingest", started_at=T0, ended_at=T0 + timedelta(seconds=1))
    record_task(run, "dbt", started_at=T0 + timedelta(seconds=1), status="running")
    (summary,) = list_runs()
    assert summary.status == "running" and summary.ended_at is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"status": "done"}, "status"),
        ({"started_at": datetime(2026, 1, 1)}, "timezone-aware"),
        ({"rows": -1}, "rows"),
    ],
)
def test_invalid_records_are_refused(run_home: Settings, kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"started_at": T0, **kwargs}
    with pytest.raises(RunHistoryError, match=message):
        record_task(new_run_id(), "task", **args)  # type: ignore[arg-type]
    with pytest.raises(RunHistoryError, match="run id"):
        record_task("nope", "task", started_at=T0)
    assert list_runs() == []


def test_concurrent_writers_keep_every_line(run_home: Settings) -> None:
    store = history_store(run_home)
    assert isinstance(store, JsonLinesStore)

    def write(worker: int) -> None:
        run = new_run_id(T0 + timedelta(minutes=worker))
        for i in range(40):
            record_task(run, f"task_{i}", started_at=T0, ended_at=T0, rows=i, store=store)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    runs = list_runs(100, store=store)
    assert len(runs) == 4 and all(len(r.tasks) == 40 and r.rows == sum(range(40)) for r in runs)


def test_torn_line_does_not_hide_history(run_home: Settings) -> None:
    run = new_run_id(T0)
    record_task(run, "ingest", started_at=T0, ended_at=T0)
    with open(run_home.runs_dir / "history.jsonl", "a") as handle:
        handle.write('{"run_id": "broken\n')
    record_task(run, "publish", started_at=T0, ended_at=T0)
    assert [t.task for t in get_run(run).tasks] == ["ingest", "publish"]


def test_cli_runs(run_home: Settings, cli_app: typer.Typer) -> None:
    runner = CliRunner()
    assert "no runs recorded yet" in runner.invoke(cli_app, ["runs"]).output
    run = new_run_id(T0)
    record_task(run, "publish", started_at=T0, ended_at=T0 + timedelta(seconds=3), rows=7, commit_ids=["abc"])
    listing = runner.invoke(cli_app, ["runs", "-n", "5"])
    assert listing.exit_code == 0 and run in listing.output and "success" in listing.output
    detail = runner.invoke(cli_app, ["runs", run])
    assert "publish" in detail.output and "rows=7" in detail.output and "commits=abc" in detail.output


def test_track_task_records_running_then_outcome(run_home: Settings) -> None:
    run = new_run_id()
    with track_task(run, "publish") as tracker:
        (during,) = list_runs()
        assert during.status == "running" and during.ended_at is None
        tracker.rows, tracker.commit_ids = 42, ["c9"]
    (done,) = list_runs()
    assert done.status == "success" and done.rows == 42 and done.commit_ids == ("c9",)
    assert done.ended_at is not None and done.ended_at >= done.started_at

    with pytest.raises(ZeroDivisionError), track_task(run, "audit"):
        1 / 0  # noqa: B018
    audit = {t.task: t for t in get_run(run).tasks}["audit"]
    assert audit.status == "failed" and audit.error is not None and "ZeroDivisionError" in audit.error
    assert get_run(run).status == "failed"


def test_lake_store_round_trip(run_home: Settings) -> None:
    from workbench.lakehouse import Lakehouse
    from workbench.pipeline.history import LakeRunStore

    store = LakeRunStore(run_home, branch="dev")
    assert list_runs(store=store) == []
    run = new_run_id(T0)
    record_task(run, "ingest", started_at=T0, status="running", store=store)
    record_task(
        run,
        "ingest",
        started_at=T0,
        ended_at=T0 + timedelta(seconds=3),
        rows=5,
        commit_ids=["c1", "c2"],
        store=store,
    )
    record_task(run, "publish", started_at=T0 + timedelta(seconds=3), status="failed", error="boom", store=store)
    (summary,) = list_runs(store=store)
    assert summary.status == "failed" and summary.rows == 5 and summary.commit_ids == ("c1", "c2")
    ingest = summary.tasks[0]
    assert ingest.started_at == T0 and ingest.ended_at == T0 + timedelta(seconds=3) and ingest.status == "success"
    assert summary.tasks[1].error == "boom" and summary.tasks[1].ended_at is None
    lake = Lakehouse("dev", settings=run_home)
    assert "ops.pipeline_runs" in lake.tables()
    assert lake.sql("select count(*) as n from ops.pipeline_runs")["n"][0] == 3
    assert "ops.pipeline_runs" not in Lakehouse("main", settings=run_home).tables()
