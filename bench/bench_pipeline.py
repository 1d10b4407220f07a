"""Benchmark: a full pipeline run on a fresh demo lake, then a rerun with no new data.

Prints, per task, the wall time Ploomber measured, split into kernel start + notebook overhead
(task time minus the time spent in cells) and cell time, with dbt's own time for the layer tasks;
plus the Iceberg commits each run made and the measured cost of one commit on this machine (a
micro-benchmark in the same run), so the fixed overhead of a run is visible.

    .venv/bin/python bench/bench_pipeline.py [--patients 2] [--days 14]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import save  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
COMMIT_PROBE = """
import json, time, pandas as pd
from workbench.lakehouse import Lakehouse
lh = Lakehouse("dev")
lh.write("ops.bench_probe", pd.DataFrame({"i": [0]}))
start = time.perf_counter()
for i in range(20):
    lh.write("ops.bench_probe", pd.DataFrame({"i": [i]}))
print(json.dumps({"commit_s": (time.perf_counter() - start) / 20}))
"""


def _run(home: Path, env: dict[str, str]) -> tuple[float, Path]:
    start = time.perf_counter()
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("cascade")), "run"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"pipeline failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return wall, sorted(p for p in (home / "runs").iterdir() if p.is_dir())[-1]


def _split(run_folder: Path) -> list[dict[str, object]]:
    meta = json.loads((run_folder / "run.json").read_text())
    rows = []
    for task in meta.get("tasks", []):
        name = task["task"]
        ended = task.get("ended_at")
        seconds = (
            (datetime.fromisoformat(ended) - datetime.fromisoformat(task["started_at"])).total_seconds()
            if ended
            else 0.0
        )
        notebooks = list((run_folder / name).glob("*.ipynb"))
        cells = dbt = 0.0
        if notebooks:
            nb = nbformat.read(notebooks[0], as_version=4)
            for cell in nb.cells:
                cells += float(cell.get("metadata", {}).get("papermill", {}).get("duration") or 0.0)
                for out in cell.get("outputs", []):
                    text = str(out.get("data", {}).get("text/plain", "")) + str(out.get("text", ""))
                    found = re.search(r"'seconds': ([0-9.]+)", text)
                    if found and "models_built" in text:
                        dbt += float(found.group(1))
        rows.append(
            {
                "task": name,
                "total_s": round(seconds, 2),
                "kernel_and_overhead_s": round(max(0.0, seconds - cells), 2),
                "cells_s": round(cells, 2),
                "dbt_s": round(dbt, 2),
                "status": task.get("status"),
            }
        )
    return rows


PHASES = """
import json, time
t0 = time.perf_counter()
from ploomber.spec import DAGSpec
import workbench.pipeline.state  # noqa: F401
t1 = time.perf_counter()
dag = DAGSpec("pipeline.yaml", env={"products": __import__("sys").argv[1]}).to_dag()  # probes the sources
t2 = time.perf_counter()
dag.render(show_progress=False)
t3 = time.perf_counter()
ran = [name for name in dag if dag[name].exec_status.name != "Skipped"]
print(json.dumps({"imports_s": t1 - t0, "load_and_probe_s": t2 - t1, "render_s": t3 - t2, "outdated": ran}))
"""


def _no_new_data_phases(home: Path, env: dict[str, str]) -> dict[str, object]:
    """Where a run with nothing new spends its time: imports, loading the DAG (which probes the
    sources), Ploomber's up-to-date check; the rest of `cascade run` is the lock, run folder and history."""
    proc = subprocess.run(
        [sys.executable, "-c", PHASES, str(home / "pipeline")], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise SystemExit(f"phase probe failed:\n{proc.stderr[-2000:]}")
    return {
        k: (round(v, 2) if isinstance(v, float) else v) for k, v in json.loads(proc.stdout.splitlines()[-1]).items()
    }


def _commits_between(env: dict[str, str], start: datetime, end: datetime) -> int:
    code = (
        "import json,sys; from datetime import datetime; from workbench.lakehouse import Lakehouse;"
        "s,e=datetime.fromisoformat(sys.argv[1]),datetime.fromisoformat(sys.argv[2]);"
        "print(json.dumps(sum(1 for r in ('main','dev') for c in Lakehouse(r).log(limit=None) if s<=c.created_at<=e)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, start.isoformat(), end.isoformat()], env=env, capture_output=True, text=True
    )
    return int(out.stdout.strip() or 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=2)
    parser.add_argument("--days", type=float, default=14)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="cascade-bench-pipeline-")) / "home"
    home.mkdir(mode=0o700)  # `cascade run` wants an existing home
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    env = {
        **os.environ,
        "CASCADE_HOME": str(home),
        "CASCADE_DEMO_PATIENTS": str(args.patients),
        "CASCADE_DEMO_DAYS": str(args.days),
        "CASCADE_DEMO_END": end.isoformat(),
        "PLOOMBER_STATS_ENABLED": "false",
    }
    try:
        results: dict[str, object] = {"patients": args.patients, "days": args.days}
        for label in ("full", "no_new_data"):
            started = datetime.now(UTC)
            wall, folder = _run(home, env)
            tasks = _split(folder)
            commits = _commits_between(env, started, datetime.now(UTC))
            results[label] = {"wall_s": round(wall, 2), "tasks": tasks, "iceberg_commits": commits}
            print(f"\n{label} run: {wall:.1f} s wall, {commits} lake commits")
            print(f"  {'task':<10} {'total':>7} {'kernel+nb':>10} {'cells':>7} {'dbt':>7}")
            for t in tasks:
                print(
                    f"  {t['task']:<10} {t['total_s']:>7.1f} {t['kernel_and_overhead_s']:>10.1f} "
                    f"{t['cells_s']:>7.1f} {t['dbt_s']:>7.1f}"
                )
        phases = _no_new_data_phases(home, env)
        results["no_new_data_phases"] = phases
        print(f"no new data, by phase: {phases}")
        probe = subprocess.run([sys.executable, "-c", COMMIT_PROBE], env=env, capture_output=True, text=True)
        commit_s = json.loads(probe.stdout.strip().splitlines()[-1])["commit_s"]
        results["one_commit_s"] = round(commit_s, 4)
        for label in ("full", "no_new_data"):
            r = results[label]
            assert isinstance(r, dict)
            est = r["iceberg_commits"] * commit_s
            print(f"{label}: ~{est:.1f} s of {r['wall_s']} s in Iceberg commits ({commit_s * 1000:.0f} ms each)")
        full, rerun = results["full"], results["no_new_data"]
        assert isinstance(full, dict) and isinstance(rerun, dict)
        results["ratio_rerun_to_full"] = round(rerun["wall_s"] / full["wall_s"], 3)
        print(f"rerun / full wall time: {results['ratio_rerun_to_full']:.2f}")
        print(f"saved {save('pipeline', results)}")
    finally:
        subprocess.run(
            [str(Path(sys.executable).with_name("cascade")), "postgres", "stop"], env=env, capture_output=True
        )
        shutil.rmtree(home.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
