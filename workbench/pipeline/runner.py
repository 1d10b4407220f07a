"""Running the Ploomber pipeline: one run at a time, a run id, a report folder, run history.

`run_pipeline()` takes the run lock, builds the DAG of `pipeline.yaml` with Ploomber (which skips
up-to-date tasks), records every task in the run history, and copies the executed notebooks
(`.ipynb`/`.html` products) into `settings.runs_dir/<run_id>/`, next to a `run.json` summary.
`run_every()` repeats that on a fixed interval; a run that finds the lock taken is skipped.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]  # no stubs pinned (types-PyYAML)

from workbench.errors import CascadeError, LockedError
from workbench.lake.api import RUN_HISTORY_BRANCH
from workbench.pipeline.errors import PipelineError
from workbench.pipeline.history import LakeRunStore, TaskRecord, history_store, lake_activity, record_task
from workbench.pipeline.lock import RunLock
from workbench.pipeline.recovery import recover_after_failed_audit
from workbench.pipeline.runs import new_run_id, run_dir
from workbench.settings import Settings, get_settings

PIPELINE_FILE = "pipeline.yaml"
REPORT_TEMPLATES = Path(__file__).resolve().parent / "templates"  # nbconvert: lab, without CDN scripts
_REPORT_SUFFIXES = (".ipynb", ".html", ".json")  # executed notebooks, renderings, small reports
NO_NEW_DATA = "no new data"


@dataclass(frozen=True)
class RunResult:
    """What one run did."""

    run_id: str
    run_dir: Path
    status: str  # success | failed
    tasks: tuple[TaskRecord, ...] = field(default_factory=tuple)
    error: str | None = None

    @property
    def note(self) -> str | None:
        """`no new data` when every task was up to date (nothing fetched, committed or promoted)."""
        if self.status == "success" and self.tasks and all(t.status == "skipped" for t in self.tasks):
            return NO_NEW_DATA
        return None

    def lines(self) -> list[str]:
        head = f"run {self.run_id}: {self.status}" + (f" — {self.note}" if self.note else "")
        out = [f"{head} (reports in {self.run_dir})"]
        for task in self.tasks:
            seconds = f"{task.seconds:.1f}s" if task.seconds is not None else "-"
            note = f"  {task.note}" if task.note else ""
            out.append(f"  {task.task:<30} {task.status:<8} {seconds}{note}")
        if self.error:
            out.append(f"  error: {self.error}")
        return out


def find_pipeline(start: Path | None = None) -> Path:
    """The nearest `pipeline.yaml` in the working directory or its parents."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / PIPELINE_FILE).is_file():
            return folder / PIPELINE_FILE
    raise PipelineError(f"no {PIPELINE_FILE} found in {here} or its parents")


@dataclass(frozen=True)
class TaskOutcome:
    """One task as a build left it: status, times, and report files to keep."""

    name: str
    status: str  # success | skipped | failed
    started_at: datetime
    ended_at: datetime
    reports: tuple[Path, ...] = ()

    @property
    def note(self) -> str | None:
        """What a task's JSON report says of the run in one line (its `note`), e.g. audit warnings."""
        for path in self.reports:
            if path.suffix != ".json" or not path.is_file():
                continue
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if isinstance(data, dict) and isinstance(data.get("note"), str):
                return str(data["note"])
        return None


BuildFunction = Callable[[Path, Path, bool], tuple[list[TaskOutcome], str | None]]


def _status_of(task: Any) -> str:
    from ploomber.constants import TaskStatus

    status = task.exec_status
    if status == TaskStatus.Executed:
        return "success"
    if status in (TaskStatus.Errored, TaskStatus.ErroredRender, TaskStatus.BrokenProcessPool):
        return "failed"
    return "skipped"  # up to date, or never ran because something upstream failed


def _report_files(task: Any) -> tuple[Path, ...]:
    product = task.product
    products = list(product.products) if hasattr(product, "products") else [product]
    files = []
    for item in products:
        if item.__class__.__name__ != "File":  # SQL relations etc. leave no report to keep
            continue
        path = Path(str(item))
        if (path.suffix in _REPORT_SUFFIXES and path.is_file()) or path.is_dir():
            files.append(path)  # a folder product (e.g. exported AGP reports) is kept whole
    return tuple(files)


def export_html(notebook: Path) -> Path:
    """A readable HTML copy of an executed notebook, beside it (reports people can open)."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(notebook, as_version=4)
    _plotly_outputs_as_html(nb)
    exporter = HTMLExporter(extra_template_basedirs=[str(REPORT_TEMPLATES)], template_name="cascade_report")
    body, _ = exporter.from_notebook_node(nb)
    target = notebook.with_suffix(".html")
    target.write_text(body, encoding="utf-8")
    return target


def _plotly_outputs_as_html(nb: Any) -> None:
    """Give plotly outputs (JSON only, as the offline mimetype renderer leaves them) an HTML form,
    with plotly.js inlined once, so the HTML report shows the charts without a CDN."""
    import plotly.io as pio

    first = True
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            spec = data.get("application/vnd.plotly.v1+json")
            if spec is None or "text/html" in data:
                continue
            data["text/html"] = pio.to_html(spec, include_plotlyjs=first, full_html=False)
            first = False


def _short_error(text: str) -> str:
    """The innermost `SomeError: message` line of a (Ploomber-wrapped) traceback."""
    found = [
        line.strip()
        for line in text.splitlines()
        if re.match(r"^[\w.]*(Error|Exception)\w*: ", line.strip()) and "ploomber" not in line.lower()
    ]
    if found:
        return found[-1][:500]
    return " ".join(text.split())[:500]


def products_dir(settings: Settings) -> Path:
    """Where `cascade run` keeps the pipeline's products (Ploomber compares them between runs)."""
    return settings.home / "pipeline"


def env_overrides(
    pipeline: Path,
    settings: Settings,
    run_id: str | None = None,
    audit: dict[str, Any] | None = None,
    backfill: bool = False,
) -> dict[str, Any]:
    """Placeholders `cascade run` sets over `env.yaml`, each only when env.yaml declares it
    (Ploomber rejects unknown keys): `products` goes under CASCADE_HOME, `run_id` is the current
    run (so a notebook can `track_task(run_id, ...)` its rows and commit ids), `audit` thresholds
    given with `--audit KEY=VALUE` replace env.yaml's one by one, and `--backfill` sets `backfill`
    and `full_resync`."""
    env_file = pipeline.with_name("env.yaml")
    if env_file.is_file() and pipeline.name == "pipeline.yaml":
        from workbench.config import validate_env

        # strict schema for Cascade's own pipeline: a misspelled parameter is one line, not a silent
        # default (other Ploomber projects run with `cascade run` declare parameters of their own)
        validate_env(env_file)
    try:
        declared = yaml.safe_load(env_file.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}
    if not isinstance(declared, dict):
        return {}
    overrides: dict[str, Any] = {}
    if "products" in declared:
        overrides["products"] = str(products_dir(settings))
    if "run_id" in declared and run_id is not None:
        overrides["run_id"] = run_id
    if audit:
        if not isinstance(declared.get("audit"), dict):
            raise PipelineError(f"{env_file} declares no audit: thresholds, so --audit cannot set them")
        overrides["audit"] = {**declared["audit"], **audit}
    if backfill:
        missing = [k for k in ("backfill", "full_resync") if k not in declared]
        if missing:
            raise PipelineError(f"{env_file} does not declare {', '.join(missing)}, so --backfill cannot be used")
        overrides.update(backfill=True, full_resync=True)
    return overrides


def parse_assignments(items: list[str] | None) -> dict[str, Any]:
    """`KEY=VALUE` pairs (values read as YAML scalars: 72, 1.5, warn, true) for `--audit`."""
    from workbench.quality.audit import Thresholds

    out: dict[str, Any] = {}
    known = set(Thresholds.__dataclass_fields__)
    for item in items or []:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise PipelineError(f"--audit {item!r}: expected KEY=VALUE, e.g. --audit max_staleness_hours=72")
        if key not in known:
            raise PipelineError(f"--audit {key}: unknown threshold; known: {', '.join(sorted(known))}")
        try:
            out[key] = yaml.safe_load(value)
        except yaml.YAMLError:
            out[key] = value
    return out


def ploomber_build(
    pipeline: Path, folder: Path, force: bool, env: dict[str, Any] | None = None
) -> tuple[list[TaskOutcome], str | None]:
    """Build the Ploomber DAG of `pipeline` (placeholders in `env` override env.yaml) in a child
    process; returns every task's outcome and the build error.

    The child (`workbench.pipeline.builder`) builds every task in itself. Ploomber's own serial
    executor builds a Python task in a forked `multiprocessing.Pool` worker, and a worker that dies
    (a segfault in a C extension, the OOM killer) leaves the Pool waiting for ever, with the run lock
    held and every scheduled run after it skipped. A child that dies here ends the run as failed,
    with the signal named, and the next run starts normally."""
    from workbench.pipeline.builder import build_in_child

    return build_in_child(pipeline, folder, force, env)


def build_in_this_process(
    pipeline: Path, folder: Path, force: bool, env: dict[str, Any] | None = None
) -> tuple[list[TaskOutcome], str | None]:
    """`ploomber_build`'s work, in the calling process (the builder child runs this)."""
    from ploomber.executors import Serial
    from ploomber.spec import DAGSpec

    try:
        dag = DAGSpec(str(pipeline), env=env or None).to_dag()
    except Exception as exc:  # Ploomber raises many types for spec problems
        raise PipelineError(f"{pipeline}: cannot load the pipeline: {' '.join(str(exc).split())}") from None
    executor = dag.executor
    if isinstance(executor, Serial) and executor._build_in_subprocess:
        # this process is already the isolated one: no fork pool, whose dead worker would hang it
        dag.executor = Serial(
            build_in_subprocess=False,
            catch_exceptions=executor._catch_exceptions,
            catch_warnings=executor._catch_warnings,
        )
    build_start = datetime.now(UTC)
    error = None
    seconds: dict[str, float] = {}
    try:
        report = dag.build(force=force, show_progress=False)
        values = report.to_dict()
        for name, elapsed in zip(values.get("name", []), values.get("Elapsed (s)", []), strict=False):
            seconds[str(name)] = float(elapsed or 0.0)
    except Exception as exc:
        (folder / "error.txt").write_text("".join(traceback.format_exception(exc)))
        error = f"{_short_error(str(exc))} (full traceback in {folder / 'error.txt'})"
    build_end = datetime.now(UTC)
    # Ploomber reports elapsed seconds, not start times (and hooks would have to be picklable):
    # tasks run one after another in DAG order, so their starts are the running sum. A failed build
    # gives no report at all: then a task that ran ends when Ploomber stamped its product's metadata.
    outcomes = []
    clock = build_start
    for name in dag:
        task = dag[name]
        status = _status_of(task)
        start = min(clock, build_end)
        if status == "failed":
            end = build_end
        elif name in seconds:
            end = min(start + timedelta(seconds=seconds[name]), build_end)
        elif status == "success":
            end = min(max(_finished_at(task) or start, start), build_end)
        else:
            end = start
        clock = end
        reports = _report_files(task) if status == "success" else ()
        outcomes.append(TaskOutcome(name, status, start, end, reports))
    return outcomes, error


def _finished_at(task: Any) -> datetime | None:
    """When Ploomber recorded a task's successful build (its product metadata timestamp)."""
    try:
        stamp = task.product.metadata.timestamp
    except Exception:  # a product without metadata
        return None
    return datetime.fromtimestamp(float(stamp), tz=UTC) if stamp is not None else None


def run_pipeline(
    pipeline: Path | None = None,
    *,
    force: bool = False,
    settings: Settings | None = None,
    run_id: str | None = None,
    lock_wait_s: float = 0.0,
    build: BuildFunction | None = None,
    audit: dict[str, Any] | None = None,
    backfill: bool = False,
) -> RunResult:
    """Run the pipeline once under the run lock (`LockedError` if another run holds it).

    `build` replaces the Ploomber build (another runner, or tests); it gets (pipeline, run
    folder, force) and returns (task outcomes, error) like `ploomber_build`.
    """
    settings = settings or get_settings()
    pipeline = pipeline or find_pipeline()
    run_id = run_id or new_run_id()
    lock = RunLock.for_pipeline(settings)
    lock.acquire(run_id, wait_s=lock_wait_s)
    try:
        folder = run_dir(run_id, settings)
        started = datetime.now(UTC)
        meta: dict[str, Any] = {"run_id": run_id, "pipeline": str(pipeline), "started_at": started.isoformat()}
        recovery = recover_after_failed_audit(settings)  # a failed audit never wedges the next runs
        if recovery is not None:
            meta["recovery"] = recovery.line()
            force = True  # dev restarted from main: its derived layers are gone, so every task runs again
        (folder / "run.json").write_text(json.dumps(meta, indent=2))
        if build is None:
            env = env_overrides(pipeline, settings, run_id, audit=audit, backfill=backfill)
            build = functools.partial(ploomber_build, env=env)
        try:
            outcomes, error = build(pipeline, folder, force)
        except PipelineError as exc:
            outcomes, error = [], str(exc)
        # rows/commit ids a task recorded itself (track_task) are kept in the runner's record
        reported = {r.task: r for r in history_store(settings).records() if r.run_id == run_id}
        records = []
        first_task = outcomes[0].name if outcomes else None
        for outcome in outcomes:
            own = reported.get(outcome.name)
            for path in outcome.reports:
                target = folder / outcome.name / path.name
                target.parent.mkdir(exist_ok=True)
                if path.is_dir():
                    shutil.copytree(path, target, dirs_exist_ok=True)
                    continue
                shutil.copy2(path, target)
                if target.suffix == ".ipynb":
                    export_html(target)
            note = outcome.note
            if outcome.status == "skipped" and outcome.name == first_task:
                note = f"{NO_NEW_DATA}: the sources and the code are as at the last run"
            if own is not None and (own.rows is not None or own.commit_ids):
                commit_ids, rows = own.commit_ids, own.rows
            elif outcome.status == "skipped":
                commit_ids, rows = (), None
            else:  # what the task did to the lake: the commits made while it ran
                commit_ids, rows = lake_activity(outcome.started_at, outcome.ended_at, settings)
            records.append(
                record_task(
                    run_id,
                    outcome.name,
                    started_at=outcome.started_at,
                    ended_at=outcome.ended_at,
                    status=outcome.status,
                    rows=rows,
                    commit_ids=commit_ids,
                    error=error if outcome.status == "failed" else None,
                    note=note,
                    settings=settings,
                )
            )
        ended = datetime.now(UTC)
        if error and not any(r.status == "failed" for r in records):
            # the pipeline itself failed (bad spec, render error): record it as a task of its own
            records.append(
                record_task(
                    run_id,
                    "pipeline",
                    started_at=started,
                    ended_at=ended,
                    status="failed",
                    error=error,
                    settings=settings,
                )
            )
        status = "failed" if error or any(r.status == "failed" for r in records) else "success"
        # the run's history also goes into the lake: `ops.pipeline_runs` on its own branch `ops`, one
        # commit per run, so `main` only ever moves by promotion
        LakeRunStore(settings, branch=RUN_HISTORY_BRANCH).append_many(records)
        result = RunResult(run_id, folder, status, tuple(records), error)
        meta.update(
            ended_at=ended.isoformat(),
            status=status,
            note=result.note,
            error=error,
            tasks=[r.to_json() for r in records],
        )
        (folder / "run.json").write_text(json.dumps(meta, indent=2))
        return result
    finally:
        lock.release()


def run_every(
    interval_s: float,
    *,
    max_runs: int | None = None,
    run: Callable[[], RunResult] | None = None,
    echo: Callable[[str], None] = print,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Run, then wait until the next tick, forever (or `max_runs` times); returns runs attempted.

    Ticks stay on the interval grid from the first start; a tick missed because a run took longer
    is skipped. A run that finds the lock taken, or fails, is reported and the loop goes on.
    """
    if interval_s <= 0:
        raise PipelineError("the interval must be positive")
    run = run or run_pipeline
    first = time.monotonic()
    attempts = 0
    while max_runs is None or attempts < max_runs:
        attempts += 1
        try:
            for line in run().lines():
                echo(line)
        except LockedError as exc:
            echo(f"skipped: {exc}")
        except CascadeError as exc:
            echo(f"run failed: {exc}")
        if max_runs is not None and attempts >= max_runs:
            break
        elapsed = time.monotonic() - first
        next_tick = (int(elapsed // interval_s) + 1) * interval_s
        sleep(max(0.0, next_tick - elapsed))
    return attempts
