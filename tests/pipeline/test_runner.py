"""Pipeline runs: Ploomber build under the run lock, history, report folders, --every loop."""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from workbench.errors import LockedError
from workbench.pipeline.history import list_runs
from workbench.pipeline.lock import RunLock
from workbench.pipeline.runner import RunResult, TaskOutcome, run_every, run_pipeline
from workbench.settings import Settings


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tiny Ploomber project: one task writes an HTML report, one fails, one is fine."""
    folder = tmp_path / "project"
    folder.mkdir()
    module = f"cascade_test_tasks_{tmp_path.name.replace('-', '_')}"
    (folder / f"{module}.py").write_text(
        textwrap.dedent(
            """
            from pathlib import Path

            def report(product):
                Path(str(product)).parent.mkdir(parents=True, exist_ok=True)
                Path(str(product)).write_text("<html>daily report</html>")

            def data(product):
                Path(str(product)).parent.mkdir(parents=True, exist_ok=True)
                Path(str(product)).write_text("1,2,3")

            def broken(product):
                raise ValueError("glucose out of range")

            def broken_after(product, upstream):
                raise ValueError("glucose out of range")

            def slow(product):
                import time

                time.sleep(0.3)
                Path(str(product)).parent.mkdir(parents=True, exist_ok=True)
                Path(str(product)).write_text("slow")

            def tracked(product, run_id):
                from workbench.pipeline.history import track_task

                with track_task(run_id, "tracked") as tracker:
                    Path(str(product)).parent.mkdir(parents=True, exist_ok=True)
                    Path(str(product)).write_text("ok")
                    tracker.rows, tracker.commit_ids = 3, ["c-tracked"]
            """
        )
    )
    (folder / "pipeline.yaml").write_text(
        textwrap.dedent(
            f"""
            tasks:
              - source: {module}.report
                name: report
                product: "{{{{products}}}}/report.html"
              - source: {module}.data
                name: data
                product: "{{{{products}}}}/data.csv"
            """
        )
    )
    (folder / "env.yaml").write_text('products: "{{root}}/out"\nrun_id: null\n')
    (folder / "tracked.yaml").write_text(
        f"tasks:\n  - source: {module}.tracked\n    name: tracked\n"
        '    product: "{{products}}/tracked.txt"\n    params:\n      run_id: "{{run_id}}"\n'
    )
    (folder / "failing.yaml").write_text(
        (folder / "pipeline.yaml").read_text()
        + f"  - source: {module}.broken\n    name: broken\n    product: out/broken.html\n"
    )
    (folder / "slow_then_broken.yaml").write_text(
        "meta:\n  extract_upstream: false\n"
        f"tasks:\n  - source: {module}.slow\n    name: slow\n    product: out/slow.txt\n"
        f"  - source: {module}.broken_after\n    name: broken\n    product: out/broken2.html\n    upstream: [slow]\n"
    )
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.chdir(folder)
    monkeypatch.setenv("PLOOMBER_STATS_ENABLED", "false")
    monkeypatch.setenv("PLOOMBER_VERSION_CHECK_DISABLED", "true")
    return folder


def test_ploomber_run_records_history_and_keeps_reports(run_home: Settings, project: Path) -> None:
    result = run_pipeline(settings=run_home)
    assert result.status == "success" and result.error is None
    assert {t.task: t.status for t in result.tasks} == {"report": "success", "data": "success"}
    assert result.run_dir == run_home.runs_dir / result.run_id
    assert (result.run_dir / "report" / "report.html").read_text() == "<html>daily report</html>"
    assert not (result.run_dir / "data").exists()  # data products are not reports
    # `cascade run` puts the products under CASCADE_HOME, not in the project folder
    assert (run_home.home / "pipeline" / "data.csv").read_text() == "1,2,3"
    assert not (project / "out").exists()
    meta = json.loads((result.run_dir / "run.json").read_text())
    assert meta["status"] == "success" and len(meta["tasks"]) == 2

    again = run_pipeline(settings=run_home)  # Ploomber skips up-to-date tasks
    assert {t.status for t in again.tasks} == {"skipped"} and again.status == "success"
    assert again.note == "no new data" and "no new data" in again.lines()[0]
    assert again.tasks[0].note and again.tasks[0].note.startswith("no new data")

    failed = run_pipeline(project / "failing.yaml", settings=run_home)
    assert failed.status == "failed"
    assert {t.task: t.status for t in failed.tasks}["broken"] == "failed"
    assert "ValueError: glucose out of range" in (failed.error or "")
    assert (failed.run_dir / "error.txt").exists()

    runs = list_runs(10, settings=run_home)
    assert [r.run_id for r in runs] == [failed.run_id, again.run_id, result.run_id]
    assert runs[0].status == "failed" and runs[2].status == "success"
    assert not RunLock.for_pipeline(run_home).info_path.exists()  # lock released


def test_a_failed_run_keeps_the_time_of_the_tasks_that_succeeded(run_home: Settings, project: Path) -> None:
    # regression: the summary showed 0.0 s for every task once one had failed (no Ploomber report)
    result = run_pipeline(project / "slow_then_broken.yaml", settings=run_home)
    assert result.status == "failed", result.error
    by_name = {t.task: t for t in result.tasks}
    assert set(by_name) == {"slow", "broken"}, result.error
    assert by_name["slow"].status == "success" and by_name["broken"].status == "failed"
    assert (by_name["slow"].seconds or 0) >= 0.3  # it slept 0.3 s
    assert by_name["broken"].started_at >= by_name["slow"].ended_at
    assert any(line.split()[:2] == ["slow", "success"] and not line.endswith(" 0.0s") for line in result.lines())


def test_notebook_gets_the_run_id_and_reports_rows(run_home: Settings, project: Path) -> None:
    from workbench.pipeline.history import get_run

    result = run_pipeline(project / "tracked.yaml", settings=run_home)
    assert result.status == "success", result.error
    (task,) = get_run(result.run_id, run_home).tasks
    assert task.task == "tracked" and task.status == "success"
    assert task.rows == 3 and task.commit_ids == ("c-tracked",)


def test_second_run_is_refused_while_one_holds_the_lock(run_home: Settings, project: Path) -> None:
    holder = RunLock.for_pipeline(run_home)
    holder.acquire(run_id="20261128T101500Z-aaaaaa")
    try:
        with pytest.raises(LockedError, match="run 20261128T101500Z-aaaaaa"):
            run_pipeline(settings=run_home)
    finally:
        holder.release()
    assert list_runs(settings=run_home) == []  # the refused run left no history


def test_bad_pipeline_is_a_failed_run(run_home: Settings, project: Path) -> None:
    (project / "bad.yaml").write_text("tasks:\n  - source: no_such_module.fn\n    product: out/x.html\n")
    result = run_pipeline(project / "bad.yaml", settings=run_home)
    assert result.status == "failed" and [t.task for t in result.tasks] == ["pipeline"]
    assert "cannot load the pipeline" in (result.error or "")


def _quick_build(pipeline: Path, folder: Path, force: bool) -> tuple[list[TaskOutcome], str | None]:
    now = datetime.now(UTC)
    return [TaskOutcome("only", "success", now, now)], None


def test_every_loop_goes_through_the_lock(run_home: Settings, project: Path) -> None:
    echoed: list[str] = []
    sleeps: list[float] = []

    def once() -> RunResult:
        return run_pipeline(settings=run_home, build=_quick_build)

    assert run_every(0.05, max_runs=3, run=once, echo=echoed.append, sleep=sleeps.append) == 3
    assert len(list_runs(10, settings=run_home)) == 3 and len(sleeps) == 2
    assert all(0 <= s <= 0.05 for s in sleeps)

    holder = RunLock.for_pipeline(run_home)
    holder.acquire(run_id="20261128T101500Z-bbbbbb")
    try:
        echoed.clear()
        run_every(0.01, max_runs=2, run=once, echo=echoed.append, sleep=lambda s: None)
    finally:
        holder.release()
    assert len([e for e in echoed if e.startswith("skipped: another pipeline run")]) == 2
    assert len(list_runs(10, settings=run_home)) == 3


def test_env_overrides(run_home: Settings, tmp_path: Path) -> None:
    from workbench.pipeline.runner import env_overrides

    pipeline = tmp_path / "pipeline.yaml"
    assert env_overrides(pipeline, run_home, "r1") == {}  # no env.yaml
    (tmp_path / "env.yaml").write_text("products: x\nrun_id: null\nbranch: dev\n")
    assert env_overrides(pipeline, run_home, "r1") == {"products": str(run_home.home / "pipeline"), "run_id": "r1"}
    (tmp_path / "env.yaml").write_text("branch: dev\n")
    assert env_overrides(pipeline, run_home, "r1") == {}


def test_rows_and_commits_reported_by_a_task_are_kept(run_home: Settings, project: Path) -> None:
    from workbench.pipeline.history import get_run, track_task

    def build(pipeline: Path, folder: Path, force: bool) -> tuple[list[TaskOutcome], str | None]:
        started = datetime.now(UTC)
        with track_task(folder.name, "publish", settings=run_home) as tracker:  # the run folder is the run id
            tracker.rows, tracker.commit_ids = 12, ["abc123"]
        return [TaskOutcome("publish", "success", started, datetime.now(UTC))], None

    result = run_pipeline(settings=run_home, build=build)
    (task,) = get_run(result.run_id, run_home).tasks
    assert task.status == "success" and task.rows == 12 and task.commit_ids == ("abc123",)
    assert result.tasks[0].rows == 12


def test_cli_run(run_home: Settings, project: Path, cli_app: typer.Typer) -> None:
    runner = CliRunner()
    ok = runner.invoke(cli_app, ["run"])
    assert ok.exit_code == 0, ok.output
    assert "success" in ok.output and "report" in ok.output
    failed = runner.invoke(cli_app, ["run", "--pipeline", str(project / "failing.yaml")])
    assert failed.exit_code == 1 and "glucose out of range" in failed.output
    looped = runner.invoke(cli_app, ["run", "--every", "1s", "--max-runs", "2"])
    assert looped.exit_code == 0 and looped.output.count("run 2") == 2
    assert len(list_runs(10, settings=run_home)) == 4
