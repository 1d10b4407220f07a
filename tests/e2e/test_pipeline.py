"""The whole write-audit-publish pipeline, end to end, on a temporary lake with the demo server.

Real components throughout: `ploomber build` / `cascade run` in subprocesses, papermill kernels, dbt,
Iceberg tables, the embedded PostgreSQL. 2 simulated patients × 14 days, clock pinned so repeated
builds see the same source data.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.e2e.homes import e2e_home

ROOT = Path(__file__).resolve().parents[2]
MARTS = {
    "marts.mrt_glucose_overview",
    "marts.mrt_glucose_daily_metrics",
    "marts.mrt_glucose_period_metrics",
    "marts.mrt_agp_profile",
    "marts.mrt_glucose_weekly",
    "marts.mrt_glucose_episodes",
    "marts.mrt_treatments_daily",
}
LAYERS = {"raw.glucose_entries", "raw.treatments", "bronze.stg_glucose_entries", "silver.fct_glucose_readings"}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def home() -> Iterator[Path]:
    end = dt.datetime(2026, 1, 14, 9, 40, tzinfo=dt.UTC)  # pinned: nothing depends on the hour
    with e2e_home(CASCADE_DEMO_END=end.isoformat()) as home:
        yield home


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "PLOOMBER_STATS_ENABLED": "false", "CASCADE_HOME": str(home)}


def _ploomber_build(home: Path) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("ploomber")
    return subprocess.run(
        [str(exe), "build", "--env--products", str(home / "pipeline")],  # where `cascade run` keeps them
        cwd=ROOT,
        env=_env(home),
        capture_output=True,
        text=True,
        timeout=1800,
    )


def _cascade_run(home: Path) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("cascade")
    return subprocess.run([str(exe), "run"], cwd=ROOT, env=_env(home), capture_output=True, text=True, timeout=1800)


def _norm(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return None
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, (pd.Timestamp, dt.datetime)):
        ts = pd.Timestamp(value)
        if ts.tzinfo is None and ts == ts.normalize():  # DuckDB hands DATE columns to pandas as midnight
            return ts.date().isoformat()
        return (ts.tz_convert("UTC") if ts.tzinfo else ts).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return _norm(value.item())
    if isinstance(value, (list, tuple)) or hasattr(value, "tolist"):
        return str([_norm(v) for v in list(value)])
    return value


def _rows(frame: pd.DataFrame) -> list[tuple[Any, ...]]:
    frame = frame[sorted(frame.columns)]
    return sorted((tuple(_norm(v) for v in row) for row in frame.itertuples(index=False)), key=repr)


def _lake_counts(ref: str) -> dict[str, int]:
    from workbench.lakehouse import Lakehouse

    lh = Lakehouse(ref)
    return {t: int(lh.sql(f"select count(*) as n from {t}")["n"][0]) for t in lh.tables() if not t.startswith("ops.")}


def _postgres_tables() -> dict[str, pd.DataFrame]:
    from workbench.publish.postgres import connect
    from workbench.publish.publisher import load_config

    config = load_config()
    out = {}
    with connect() as con:
        for spec in config.tables:
            cur = con.execute(f'select * from "{config.schema}"."{spec.name}"')
            out[spec.source] = pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])
    return out


def test_first_build_promotes_and_publishes_every_mart(home: Path) -> None:
    proc = _ploomber_build(home)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    from workbench.lakehouse import Lakehouse

    main = Lakehouse("main")
    assert set(main.tables()) >= MARTS | LAYERS
    assert main.log(limit=1)[0].operation == "merge"
    counts = _lake_counts("main")
    assert counts["raw.glucose_entries"] > 2 * 14 * 250  # ~288 readings a day, minus gaps
    assert all(counts[m] > 0 for m in MARTS)

    published = _postgres_tables()
    assert set(published) == MARTS | {"silver.fct_glucose_readings", "gold.dim_patient"}
    for table, frame in published.items():
        lake = main.sql(f"select * from {table}")
        assert sorted(frame.columns) == sorted(lake.columns), table
        assert _rows(frame) == _rows(lake), f"{table}: PostgreSQL differs from the lake's main"


def test_second_run_with_nothing_new_does_nothing(home: Path) -> None:
    from workbench.lakehouse import Lakehouse

    before, pg_before = _lake_counts("main"), {t: len(f) for t, f in _postgres_tables().items()}
    heads = {ref: Lakehouse(ref).log(limit=1)[0].id for ref in ("dev", "main")}
    proc = _cascade_run(home)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "no new data" in proc.stdout.splitlines()[0]
    assert _lake_counts("main") == before
    assert {t: len(f) for t, f in _postgres_tables().items()} == pg_before
    assert {ref: Lakehouse(ref).log(limit=1)[0].id for ref in ("dev", "main")} == heads  # no commit, no promotion
    runs = sorted(p for p in (home / "runs").iterdir() if p.is_dir())
    history = Lakehouse("ops").sql(f"select task, status, note from ops.pipeline_runs where run_id = '{runs[-1].name}'")
    assert set(history["status"]) == {"skipped"}
    assert history.set_index("task").loc["ingest", "note"].startswith("no new data")
    listing = subprocess.run(
        [str(Path(sys.executable).with_name("cascade")), "runs"], env=_env(home), capture_output=True, text=True
    )
    assert runs[-1].name in listing.stdout


def test_the_readmes_ploomber_examples_work_right_after_a_build(home: Path) -> None:
    # regression: `ploomber task audit` failed after a successful build ("upstream dependencies are
    # missing") because `fetched_at: {{now}}` made every task outdated
    exe = str(Path(sys.executable).with_name("ploomber"))
    products = ["--env--products", str(home / "pipeline")]
    for args in (["task", "audit", "--force"], ["build", "--partially", "silver"]):
        proc = subprocess.run(
            [exe, *args, *products], cwd=ROOT, env=_env(home), capture_output=True, text=True, timeout=1800
        )
        assert proc.returncode == 0, f"ploomber {' '.join(args)}: {proc.stdout[-2000:]}{proc.stderr[-2000:]}"


def test_new_data_runs_every_task_and_keeps_reports(home: Path) -> None:
    from workbench.lakehouse import Lakehouse

    before = _lake_counts("main")
    os.environ["CASCADE_DEMO_END"] = "2026-01-14T10:40:00+00:00"  # the demo clock moved an hour
    proc = _cascade_run(home)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert _lake_counts("main")["raw.glucose_entries"] > before["raw.glucose_entries"]
    runs = sorted(p for p in (home / "runs").iterdir() if p.is_dir())
    kept = {p.name for p in runs[-1].rglob("*") if p.is_file()}
    assert {
        "10_ingest_nightscout.ipynb",
        "10_ingest_nightscout.html",
        "60_audit.html",
        "audit.json",
        "ingest.json",
        "run.json",
    } <= kept
    history = Lakehouse("ops").sql(
        f"select task, status, commit_ids from ops.pipeline_runs where run_id = '{runs[-1].name}'"
    )
    assert set(history["task"]) == {
        "ingest",
        "bronze",
        "silver",
        "gold",
        "marts",
        "audit",
        "promote",
        "publish",
        "reports",
    }
    assert set(history["status"]) == {"success"}
    promote_commits = history.set_index("task").loc["promote", "commit_ids"]
    assert len(promote_commits) >= 1  # the promotion's merge commit on main
    agp = sorted((runs[-1] / "reports" / "reports").glob("agp_*.html"))
    assert [p.name.split("_")[1] for p in agp] == ["p001", "p002"]  # one shareable AGP report per patient
    html = agp[0].read_text()
    assert "Plotly.newPlot" in html and not re.search(r"<script[^>]+src=[\"']https?://", html)  # self-contained


def test_failed_audit_leaves_main_and_postgres_unchanged(home: Path) -> None:
    from workbench.lakehouse import Lakehouse
    from workbench.publish.publisher import published_commits

    main_head = Lakehouse("main").log(limit=1)[0].id
    pg_before = _postgres_tables()
    commits_before = published_commits()
    # bad data arrives on dev: far more quarantined records than the audit allows
    Lakehouse("dev").write(
        "raw.glucose_entries_rejects",
        pd.DataFrame({"_id": [f"bad{i}" for i in range(5000)], "patient_id": "p001", "reason": "sgv out of range"}),
        message="inject bad records",
    )
    os.environ["CASCADE_DEMO_END"] = "2026-01-14T11:40:00+00:00"  # and new readings arrive
    proc = _cascade_run(home)
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert "audit failed" in output and "rejects ratio" in output
    assert Lakehouse("main").log(limit=1)[0].id == main_head
    assert published_commits() == commits_before
    after = _postgres_tables()
    assert {t: _rows(f) for t, f in after.items()} == {t: _rows(f) for t, f in pg_before.items()}
