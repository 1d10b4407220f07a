"""Run the dbt project in ``transforms/`` in-process (``dbt.cli.main.dbtRunner``) on a branch.

``build(select="silver", branch="dev")`` is what the layer notebooks and ``cascade transform build``
call. Settings reach dbt as ``--vars`` (``branch``, DuckDB memory limit, Trino endpoint); dbt runs
with ``--profiles-dir transforms`` and a target/log folder under ``CASCADE_HOME`` that is locked per
invocation, so concurrent runs (other processes, parallel tests) never share one.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import importlib.util
import json
import os
import sys
import tempfile
import threading
import time
import types
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.lake.api import DEV_BRANCH
from workbench.settings import Settings, get_settings
from workbench.transform.errors import TransformError

PROJECT_DIR = Path(__file__).resolve().parents[2] / "transforms"
LAYERS = ("bronze", "silver", "gold", "marts")

_INVOCATION_LOCK = threading.Lock()  # dbt keeps global state: one invocation per process at a time


@dataclass(frozen=True)
class ModelResult:
    """One model of a run."""

    name: str
    unique_id: str
    table: str
    status: str
    rows_written: int | None
    rows_deleted: int | None
    write_mode: str | None
    keys_replaced: int | None
    seconds: float
    message: str | None
    cpu_seconds: float | None = None  # process CPU (all threads) while the plugin stored the model
    peak_rss_mb: float | None = None  # the process's peak RSS so far, after the model was stored


@dataclass(frozen=True)
class TestResult:
    """One data test or unit test of a run."""

    name: str
    unique_id: str
    kind: str  # "data" or "unit"
    status: str  # pass, fail, warn, error, skipped
    failures: int | None
    message: str | None


@dataclass
class BuildResult:
    """Summary of a dbt invocation: models built, rows written, tests passed/failed."""

    command: str
    branch: str
    target: str
    success: bool
    seconds: float
    models: list[ModelResult] = field(default_factory=list)
    tests: list[TestResult] = field(default_factory=list)
    other: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    target_path: Path | None = None
    settings: Settings | None = field(default=None, repr=False)
    computed: Any = None  # workbench.transform.computed.ComputeResult when the metrics were computed

    @property
    def models_built(self) -> int:
        """Models that succeeded."""
        return sum(1 for m in self.models if m.status == "success")

    @property
    def rows_written(self) -> int:
        """Rows written over all models."""
        return sum(m.rows_written or 0 for m in self.models)

    @property
    def tests_passed(self) -> int:
        """Tests with status pass."""
        return sum(1 for t in self.tests if t.status == "pass")

    @property
    def tests_failed(self) -> int:
        """Tests that failed or errored (warnings are not failures)."""
        return sum(1 for t in self.tests if t.status in ("fail", "error"))

    def summary(self) -> dict[str, Any]:
        """A one-line dict for displays and logs."""
        return {
            "command": self.command,
            "branch": self.branch,
            "success": self.success,
            "models_built": self.models_built,
            "models_failed": sum(1 for m in self.models if m.status not in ("success", "skipped")),
            "rows_written": self.rows_written,
            "tests_passed": self.tests_passed,
            "tests_failed": self.tests_failed,
            "seconds": round(self.seconds, 2),
        }

    def models_frame(self) -> Any:
        """Models as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame([m.__dict__ for m in self.models])

    def tests_frame(self) -> Any:
        """Tests as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame([t.__dict__ for t in self.tests])

    def raise_for_failures(self) -> None:
        """Raise `TransformError` naming what failed (pipeline notebooks call this after displaying)."""
        if not self.success:
            problems = self.failures() or ["see the dbt log under CASCADE_HOME/dbt"]
            raise TransformError(f"dbt {self.command} on '{self.branch}' failed: " + "; ".join(problems[:5]))

    def sample(self, table: str, limit: int = 5) -> Any:
        """A few rows of a table the run wrote, read from the branch."""
        from workbench.lakehouse import Lakehouse

        return Lakehouse(ref=self.branch, settings=self.settings).sql(f"select * from {table} limit {int(limit)}")

    def failures(self) -> list[str]:
        """Human-readable lines for everything that did not pass."""
        lines = [f"model {m.name}: {m.status}: {m.message}" for m in self.models if m.status == "error"]
        lines += [
            f"{t.kind} test {t.name}: {t.status}: {t.message}" for t in self.tests if t.status in ("fail", "error")
        ]
        if self.error:
            lines.append(self.error)
        return lines


def default_target(settings: Settings) -> str:
    """``trino`` for the stack profile, ``duckdb`` (embedded Iceberg) otherwise (see `workbench.profiles`)."""
    from workbench.profiles import dbt_target

    return dbt_target(settings)


def glucose_limits() -> dict[str, float]:
    """The consensus range limits (mg/dL) the SQL macros use (`glucose_limit(name)`), from their one
    definition in workbench.metrics: very low < 54, low < 70, high > 180, very high > 250, and the
    tight range's upper limit 140 (TITR 70–140)."""
    from workbench import metrics

    return {
        "very_low": metrics.HYPO_LV2,
        "low": metrics.HYPO_LV1,
        "high": metrics.HYPER_LV1,
        "very_high": metrics.HYPER_LV2,
        "tight_high": metrics.GRADE_EU_HIGH,  # 140: the upper limit of GRADE's euglycaemia and of TITR
    }


def dbt_vars(branch: str, settings: Settings, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``--vars`` every invocation gets (how settings reach profiles.yml and the models)."""
    values: dict[str, Any] = {
        "branch": branch,
        "cascade_home": str(settings.home),
        "cascade_warehouse": settings.warehouse or "",
        "cascade_demo_end": settings.demo_end.isoformat() if settings.demo_end else "",
        "duckdb_memory_limit": settings.duckdb_memory_limit,
        "trino_host": settings.trino_host,
        "trino_port": settings.trino_port,
        "trino_user": settings.trino_user,
        "trino_http_scheme": "https" if settings.trino_password is not None else "http",
        "trino_ca": str(settings.trino_ca or _system_ca()),
    }
    values["glucose_limits"] = glucose_limits()
    if default_target(settings) == "trino":  # the Trino catalog that shows the branch (see workbench.sql.trino)
        from workbench.sql.trino import branch_catalog

        values["trino_catalog"] = branch_catalog(settings, branch)
        # Trino is a server: independent models and tests overlap their round trips (Nessie commits
        # per table, so concurrent models on one branch do not conflict)
        values["threads"] = TRINO_DBT_THREADS
    values.update(extra or {})
    return values


def _system_ca() -> str:
    import certifi

    return certifi.where()


TRINO_DBT_THREADS = 4

#: how Trino's password reaches profiles.yml: dbt keeps DBT_ENV_SECRET_* values out of logs and artifacts
TRINO_PASSWORD_ENV = "DBT_ENV_SECRET_TRINO_PASSWORD"
#: requests prefers these to a session's own CA (psf/requests#3829), so during an invocation they name
#: the CA Trino is verified against
CA_BUNDLE_ENV = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


@contextlib.contextmanager
def _trino_env(settings: Settings) -> Iterator[None]:
    """Trino's password (never in --vars, which dbt records) and CA in the environment for one dbt
    invocation."""
    values = {TRINO_PASSWORD_ENV: settings.trino_password.get_secret_value() if settings.trino_password else ""}
    if settings.trino_password is not None and settings.trino_ca is not None:
        values.update(dict.fromkeys(CA_BUNDLE_ENV, str(settings.trino_ca)))
    previous = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def _target_dir(settings: Settings) -> Iterator[Path]:
    """``HOME/dbt/target`` when free (kept: partial parsing, docs), else a private temp folder."""
    base = settings.ensure_home() / "dbt"
    base.mkdir(parents=True, exist_ok=True)
    lock_path = base / "target.lock"
    with open(lock_path, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            with tempfile.TemporaryDirectory(prefix="target-", dir=base) as tmp:
                yield Path(tmp)
            return
        try:
            yield base / "target"
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _reset_duckdb_environment() -> None:
    """Drop dbt-duckdb's cached in-memory database so each run attaches the branch afresh."""
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # pragma: no cover - dbt-duckdb is a pinned dependency
        return
    env = DuckDBConnectionManager._ENV
    if env is not None:
        with contextlib.suppress(Exception):
            env.close()
    DuckDBConnectionManager.close_all_connections()


def _defer_iri_grammar() -> None:
    """dbt imports jsonschema, whose format checkers import ``rfc3987_syntax``, which compiles two
    Lark grammars when imported — a third of dbt's start (5 s under load) for the "iri" formats
    that no dbt schema uses. Until something imports it, a stand-in whose ``is_valid_syntax`` loads
    the real module on first use takes its place, so iri validation still works where it is used."""
    if "rfc3987_syntax" in sys.modules or importlib.util.find_spec("rfc3987_syntax") is None:
        return
    real: list[Any] = []

    def is_valid_syntax(term: str, value: str) -> bool:
        if not real:
            del sys.modules["rfc3987_syntax"]
            real.append(importlib.import_module("rfc3987_syntax"))
        return bool(real[0].is_valid_syntax(term, value))

    stand_in = types.ModuleType("rfc3987_syntax", "stand-in: loads the real module on first use")
    stand_in.is_valid_syntax = is_valid_syntax  # type: ignore[attr-defined]
    sys.modules["rfc3987_syntax"] = stand_in


def _selection_args(select: str | Sequence[str] | None, flag: str) -> list[str]:
    if not select:
        return []
    items = [select] if isinstance(select, str) else list(select)
    return [flag, *items]


def run_dbt(
    command: str,
    *,
    branch: str = DEV_BRANCH,
    select: str | Sequence[str] | None = None,
    exclude: str | Sequence[str] | None = None,
    full_refresh: bool = False,
    target: str | None = None,
    extra_vars: dict[str, Any] | None = None,
    extra_args: Sequence[str] = (),
    settings: Settings | None = None,
) -> BuildResult:
    """Run one dbt command (build, run, test, docs generate, source freshness, ...) in-process."""
    _defer_iri_grammar()
    from dbt.cli.main import dbtRunner

    from workbench.transform import plugin

    settings = settings or get_settings()
    target = target or default_target(settings)
    args = command.split()
    with _INVOCATION_LOCK, _target_dir(settings) as target_path:
        args += [
            "--project-dir",
            str(PROJECT_DIR),
            "--profiles-dir",
            str(PROJECT_DIR),
            "--target",
            target,
            "--target-path",
            str(target_path),
            "--log-path",
            str(target_path / "logs"),
            "--vars",
            json.dumps(dbt_vars(branch, settings, extra_vars)),  # JSON is YAML
        ]
        args += _selection_args(select, "--select") + _selection_args(exclude, "--exclude")
        if full_refresh:
            args.append("--full-refresh")
        args += list(extra_args)
        _reset_duckdb_environment()
        plugin.clear_writes()
        started = time.perf_counter()
        try:
            with _trino_env(settings):
                outcome = dbtRunner().invoke(["--quiet", "--no-use-colors", *args])
        finally:
            writes = {w.model: w for w in plugin.recorded_writes()}
            computed = plugin.recorded_compute()
            _reset_duckdb_environment()
        seconds = time.perf_counter() - started
        result = BuildResult(
            command=command,
            branch=branch,
            target=target,
            success=bool(outcome.success),
            seconds=seconds,
            target_path=target_path,
            settings=settings,
            computed=computed,
        )
        if outcome.exception is not None:
            result.error = f"dbt {command} failed: {outcome.exception}"
        _collect(result, outcome.result, writes)
    return result


def _collect(result: BuildResult, run_result: Any, writes: dict[str, Any]) -> None:
    rows = getattr(run_result, "results", None) or []
    for item in rows:
        node = item.node
        status = str(getattr(item.status, "value", item.status))
        resource = getattr(node, "resource_type", None)
        resource = str(getattr(resource, "value", resource))
        if resource == "model":
            write = writes.get(node.unique_id)
            result.models.append(
                ModelResult(
                    name=node.name,
                    unique_id=node.unique_id,
                    table=f"{node.schema}.{node.alias}",
                    status=status,
                    rows_written=write.rows_written if write else None,
                    rows_deleted=write.rows_deleted if write else None,
                    write_mode=write.mode if write else None,
                    keys_replaced=write.keys_replaced if write else None,
                    seconds=float(item.execution_time or 0.0),
                    message=item.message if status == "error" else None,
                    cpu_seconds=write.cpu_seconds if write else None,
                    peak_rss_mb=write.peak_rss_mb if write else None,
                )
            )
        elif resource in ("test", "unit_test"):
            result.tests.append(
                TestResult(
                    name=node.name,
                    unique_id=node.unique_id,
                    kind="unit" if resource == "unit_test" else "data",
                    status=status,
                    failures=getattr(item, "failures", None),
                    message=item.message if status != "pass" else None,
                )
            )
        else:
            result.other.append({"name": getattr(node, "name", "?"), "type": resource, "status": status})


def build(
    select: str | Sequence[str] | None = None,
    branch: str = DEV_BRANCH,
    full_refresh: bool = False,
    *,
    exclude: str | Sequence[str] | None = None,
    target: str | None = None,
    extra_vars: dict[str, Any] | None = None,
    settings: Settings | None = None,
    command: str = "build",
) -> BuildResult:
    """``dbt build`` (models + data tests + unit tests) on ``branch``; ``select`` may be a layer
    name (``bronze``/``silver``/``gold``/``marts``) or any dbt selector. ``command="run"`` builds
    the models without tests (benchmarks).

    The marts read the Python metrics (model ``glucose_computed``). On duckdb that model computes
    them inside the dbt run, so a build starts dbt once; on other engines (trino) dbt runs up to
    gold, the runner computes the metrics, and a second dbt run builds the marts."""
    settings = settings or get_settings()
    selectors = [select] if isinstance(select, str) else list(select or [])
    selectors = [f"path:models/{s}" if s in LAYERS else s for s in selectors]
    # A layer's relationships tests point at a later layer (fact -> dimension), so a layer build
    # leaves them out; the audit step's full `dbt test` runs every test, these included.
    excluded = [exclude] if isinstance(exclude, str) else list(exclude or [])
    if selectors:
        excluded.append("test_name:relationships")
    kwargs: dict[str, Any] = {
        "branch": branch,
        "full_refresh": full_refresh,
        "target": target,
        "extra_vars": extra_vars,
        "settings": settings,
    }
    in_dbt = (target or default_target(settings)) != "trino"
    reads_computed = not selectors or any(_reads_computed(s) for s in selectors)
    if in_dbt:
        if selectors and reads_computed:
            selectors.append(COMPUTED_MODEL)  # the marts' inputs first, in the same run
        return run_dbt(command, select=selectors or None, exclude=excluded or None, **kwargs)
    if not selectors:
        # The whole project: layers up to gold, the Python metrics, then the marts that read them.
        before = run_dbt(command, exclude=[*excluded, MARTS_PATH], **kwargs)
        if not before.success:
            return before
        computed = _compute(branch, full_refresh, settings, extra_vars)
        after = run_dbt(command, select=[MARTS_PATH], exclude=excluded or None, **kwargs)
        return _merge(before, after, computed)
    computed = _compute(branch, full_refresh, settings, extra_vars) if reads_computed else None
    result = run_dbt(command, select=selectors, exclude=excluded or None, **kwargs)
    return _merge(None, result, computed)


MARTS_PATH = "path:models/marts"
COMPUTED_MODEL = "glucose_computed"


def _reads_computed(selector: str) -> bool:
    """Whether a selector can build a mart (which reads the Python-computed gold tables)."""
    return "marts" in selector or "mrt_" in selector or selector.startswith("+") or selector.startswith("tag:")


def _compute(branch: str, full_refresh: bool, settings: Settings | None, extra_vars: dict[str, Any] | None) -> Any:
    from workbench.transform.computed import AGP_DAYS, materialise

    agp_days = int((extra_vars or {}).get("agp_days", AGP_DAYS))
    return materialise(branch, settings=settings or get_settings(), full_refresh=full_refresh, agp_days=agp_days)


def _merge(before: BuildResult | None, after: BuildResult, computed: Any) -> BuildResult:
    """One result for a build done in parts (dbt before the metrics, the metrics, dbt after)."""
    if before is not None:
        after.models = before.models + after.models
        after.tests = before.tests + after.tests
        after.other = before.other + after.other
        after.seconds += before.seconds
        after.success = before.success and after.success
    if computed is not None:
        after.computed = computed
        after.seconds += computed.seconds
    return after


def docs_generate(branch: str = DEV_BRANCH, *, settings: Settings | None = None) -> Path:
    """``dbt docs generate`` on ``branch``; returns the folder holding index.html and catalog.json."""
    result = run_dbt("docs generate", branch=branch, settings=settings)
    if not result.success or result.target_path is None:
        raise TransformError(result.error or "dbt docs generate failed; see the dbt log in CASCADE_HOME/dbt")
    return result.target_path
