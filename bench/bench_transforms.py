"""Benchmark the dbt transforms on the embedded lake against the same SQL in plain DuckDB.

    .venv/bin/python bench/bench_transforms.py                      # 100 patient-years (~10.5M readings)
    .venv/bin/python bench/bench_transforms.py --patients 10 --days 90

Steps, each in a fresh child process (so peak RSS is per step):
1. synthetic raw data for N patients x D days written to raw.* on `dev` (and to Parquet);
2. full build as `workbench.transform.runner.build` does it (on duckdb one dbt invocation: bronze,
   silver, gold, the Python metrics step `gold.glucose_computed`, the marts; `run`, no tests); later
   a `dbt build` with no new data (incremental models replace nothing, small table models rebuilt,
   all data and unit tests run over the full tables) for reference (`--skip-test-build` leaves it out);
3. reference: the seed's stg -> fct -> daily overview SQL (bench/seed_reference.py) executed by plain
   DuckDB over the Parquet files, each model a table in a DuckDB database file, no dbt, no Iceberg;
4. incremental: one more day for every patient is ingested (the morning after it, UTC, when that day
   has ended in every patient's zone), then the build runs again;
5. today so far: the next day's readings up to 10:00 UTC (a part of the current local day in every
   zone) are ingested, then the build runs again — a scheduled run every few minutes: today's
   daily and weekly rows change, no period, episode or AGP row does;
6. dbt's floor: two runs with nothing new in one process, cold and warm.
Peak RSS includes DuckDB's buffer pool: set CASCADE_DUCKDB_MEMORY_LIMIT to bound it.
Prints wall time and peak RSS of each step and the ratios (targets: full build <= 2x the seed-SQL
reference, peak RSS <= 1.5 GB, incremental one day <= 10 % of the full build).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
START = date(2025, 1, 1)
LANDED = timedelta(
    hours=8, minutes=30
)  # after midnight UTC: every demo zone (Los Angeles .. Sydney) has ended the day before
TODAY_SO_FAR = timedelta(hours=10)  # after midnight UTC: the same local date in every demo zone, a part of it gone
LAYER_ORDER = ("bronze", "silver", "gold", "marts")


def _settings(home: str) -> Any:
    from workbench.settings import load_settings

    return load_settings(home=home)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_s() -> float:
    """CPU seconds of this step's process (all threads): steadier than wall time on a shared machine."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# ---- child steps ---------------------------------------------------------------------------------


def step_generate(home: str, patients: int, days: int, parquet_dir: str) -> dict[str, Any]:
    """Write synthetic raw tables to the lake (chunks of patients, one commit each) and Parquet."""
    import pyarrow.parquet as pq

    from workbench.demo import raw as demo_raw
    from workbench.lakehouse import Lakehouse

    started = time.perf_counter()
    lake = Lakehouse("dev", settings=_settings(home))
    out = Path(parquet_dir)
    rows = 0
    chunk = 10
    for first in range(0, patients, chunk):
        count = min(chunk, patients - first)
        raw = demo_raw.generate(
            count, days, start=START, seed=first + 1, duplicate_share=0.0005, ingested_at=_landed(days)
        )
        for name, table in raw.tables().items():
            if name == "raw.patients":
                ids = [f"p{first + i + 1:03d}" for i in range(count)]
                table = table.set_column(0, "patient_id", __import__("pyarrow").array(ids))
            else:
                table = _renumber(table, first)
            lake.write(name, table, mode="append", message=f"bench: {name} patients {first + 1}..{first + count}")
            folder = out / name.split(".")[1]
            folder.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, folder / f"part-{first:05d}.parquet")
            if name == "raw.glucose_entries":
                rows += table.num_rows
    return {"seconds": time.perf_counter() - started, "rows": rows, "peak_rss_mb": _peak_rss_mb()}


def _landed(day_offset: int) -> datetime:
    """When the data up to START + ``day_offset`` (exclusive) lands: the next morning, UTC."""
    return _midnight_utc(START + timedelta(days=day_offset)) + LANDED


def _midnight_utc(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _renumber(table: Any, offset: int) -> Any:
    """Give each chunk's patients distinct ids (demo_raw.generate numbers from p001)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    ids = table.column("patient_id").to_pylist()
    mapping = {f"p{i + 1:03d}": f"p{offset + i + 1:03d}" for i in range(1000)}
    new_ids = pa.array([mapping[v] for v in ids])
    table = table.set_column(table.schema.get_field_index("patient_id"), "patient_id", new_ids)
    if "_id" in table.column_names:
        prefixed = pc.binary_join_element_wise(pa.array([f"c{offset}"] * table.num_rows), table.column("_id"), "-")
        table = table.set_column(table.schema.get_field_index("_id"), "_id", prefixed)
    return table


def step_lake(home: str, command: str, full_refresh: bool = False) -> dict[str, Any]:
    """One build on the lake as the runner does it (`workbench.transform.runner.build`: on duckdb one
    dbt invocation whose `glucose_computed` step computes the Python metrics before the marts),
    `run` (models only) or `build` (with every test)."""
    from workbench.transform.runner import build

    settings = _settings(home)
    started = time.perf_counter()
    result = build(branch="dev", settings=settings, command=command, full_refresh=full_refresh)
    seconds = time.perf_counter() - started
    if not result.success:
        raise SystemExit(f"dbt {command} failed: {result.failures()[:3]}")
    computed = result.computed
    step = next((m for m in result.models if m.name == "glucose_computed"), None)
    return {
        "seconds": seconds,
        "dbt_invocations": 1 if result.target == "duckdb" else 2,
        "computed_s": step.seconds if step else (computed.seconds if computed else 0.0),
        "computed_tables": computed.tables if computed else {},
        "computed_skipped": computed.skipped if computed else [],
        "models": [
            [
                m.name,
                m.write_mode,
                m.rows_written,
                round(m.seconds, 2),
                round(m.cpu_seconds or 0.0, 2),
                round(m.peak_rss_mb or 0),
            ]
            for m in result.models
        ],
        "tests": len(result.tests),
        "rows_written": result.rows_written,
        "peak_rss_mb": _peak_rss_mb(),
        "cpu_s": _cpu_s(),
    }


def step_nothing_new(home: str) -> dict[str, Any]:
    """dbt's floor: a run with nothing new, twice in one process — cold (dbt imported, the project
    parsed) and warm (as the pipeline's warm dbt process runs its layer tasks)."""
    from workbench.transform.runner import build

    settings = _settings(home)
    out: dict[str, Any] = {}
    for name in ("cold", "warm"):
        started, cpu = time.perf_counter(), _cpu_s()
        result = build(branch="dev", settings=settings, command="run")
        if not result.success:
            raise SystemExit(f"dbt run failed: {result.failures()[:3]}")
        out[f"{name}_s"] = time.perf_counter() - started
        out[f"{name}_cpu_s"] = _cpu_s() - cpu
        out[f"{name}_models_s"] = sum(m.seconds for m in result.models)
    return out


def step_seed(parquet_dir: str, memory_limit: str) -> dict[str, Any]:
    """The seed's stg -> fct -> daily overview SQL (bench/seed_reference.py) in plain DuckDB over the
    raw Parquet files, each model a table in a DuckDB database file."""
    import duckdb

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from seed_reference import SEED_MODELS

    database = Path(parquet_dir).parent / "seed.duckdb"
    database.unlink(missing_ok=True)
    started = time.perf_counter()
    con = duckdb.connect(str(database), config={"memory_limit": memory_limit, "preserve_insertion_order": False})
    con.execute("create schema raw")
    path = str(Path(parquet_dir) / "glucose_entries" / "*.parquet")
    con.execute(f"create view raw.glucose_entries as select * from read_parquet('{path}', union_by_name = true)")
    timings = []
    for name, sql in SEED_MODELS:
        t0 = time.perf_counter()
        con.execute(f"create schema if not exists {name.split('.')[0]}")
        con.execute(f"create table {name} as {sql}")
        timings.append([name, round(time.perf_counter() - t0, 2)])
    return {
        "seconds": time.perf_counter() - started,
        "models": timings,
        "peak_rss_mb": _peak_rss_mb(),
        "cpu_s": _cpu_s(),
    }


def _topological(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_id = {n["unique_id"]: n for n in nodes}
    done: list[str] = []

    def visit(node_id: str) -> None:
        if node_id in done or node_id not in by_id:
            return
        for parent in by_id[node_id]["depends_on"]["nodes"]:
            visit(parent)
        done.append(node_id)

    for node_id in sorted(by_id):
        visit(node_id)
    return [by_id[i] for i in done]


def step_new_day(home: str, patients: int, days: int, later: int = 0) -> dict[str, Any]:
    """Ingest one more day for every patient (a later `_ingested_at`); ``later`` days after the
    first such day (a rerun on a reused lake: a day it does not have yet)."""
    from workbench.demo import raw as demo_raw
    from workbench.lakehouse import Lakehouse

    started = time.perf_counter()
    lake = Lakehouse("dev", settings=_settings(home))
    rows = 0
    for first in range(0, patients, 10):
        count = min(10, patients - first)
        raw = demo_raw.generate(
            count,
            1,
            start=START + timedelta(days=days + later),
            seed=10_000 + first + 1_000 * later,
            ingested_at=_landed(days + later + 1),
        )
        table = _renumber(raw.glucose_entries, first)
        lake.write("raw.glucose_entries", table, mode="append", message="bench: one more day")
        rows += table.num_rows
    return {"seconds": time.perf_counter() - started, "rows": rows, "peak_rss_mb": _peak_rss_mb()}


def step_today(home: str, patients: int, days: int, later: int = 0) -> dict[str, Any]:
    """Ingest the readings of the day after the new day up to TODAY_SO_FAR UTC, landed then: the
    current partial day of every patient (what a run every few minutes brings)."""
    import pyarrow.compute as pc

    from workbench.demo import raw as demo_raw
    from workbench.lakehouse import Lakehouse

    started = time.perf_counter()
    day = START + timedelta(days=days + later + 1)
    now = _midnight_utc(day) + TODAY_SO_FAR
    lake = Lakehouse("dev", settings=_settings(home))
    rows = 0
    for first in range(0, patients, 10):
        count = min(10, patients - first)
        raw = demo_raw.generate(count, 1, start=day, seed=20_000 + first + 1_000 * later, ingested_at=now)
        table = _renumber(raw.glucose_entries, first)
        table = table.filter(pc.less_equal(table["date"], int(now.timestamp() * 1000)))
        lake.write("raw.glucose_entries", table, mode="append", message="bench: today so far")
        rows += table.num_rows
    return {"seconds": time.perf_counter() - started, "rows": rows, "peak_rss_mb": _peak_rss_mb()}


# ---- parent ----------------------------------------------------------------------------------------


def _child(*args: str) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"step {args[0]} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _run_and_print(home: str, label: str) -> dict[str, Any]:
    """An incremental `dbt run` on the lake, printed with each model's write, time and memory."""
    run = _child("lake", home, "run")
    print(f"  {label}: {run['seconds']:.1f} s ({run['cpu_s']:.1f} s CPU), peak RSS {run['peak_rss_mb']:.0f} MB")
    _print_models(run["models"])
    print(f"      (Python metrics: {run['computed_tables']}, untouched: {run['computed_skipped']})")
    return run


def _print_models(models: list[list[Any]]) -> None:
    for name, mode, rows, seconds, cpu, rss in models:
        print(
            f"      {name:30} {mode or '-':14} {rows or 0:>12,} rows {seconds:>7.2f} s {cpu:>7.2f} s CPU  peak {rss:>5} MB"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=100)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--home", help="CASCADE_HOME to use (default: a temporary folder)")
    parser.add_argument("--skip-generate", action="store_true", help="reuse the raw data of a previous --home run")
    parser.add_argument("--memory-limit", default="2GB", help="DuckDB memory limit for the plain baseline")
    parser.add_argument(
        "--full-refresh", action="store_true", help="the full build rebuilds every table (with --skip-generate)"
    )
    parser.add_argument(
        "--skip-test-build", action="store_true", help="leave out the `dbt build` with every test (no new data)"
    )
    parser.add_argument(
        "--later-day",
        type=int,
        default=0,
        help="with --skip-generate: the new day is this many days after the first run's (a day the lake lacks)",
    )
    parser.add_argument("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_run_child(args.child)))
        return

    tmp = tempfile.TemporaryDirectory(prefix="bench-transforms-")
    base = Path(args.home).parent if args.home else Path(tmp.name)
    home = args.home or str(base / "home")
    parquet_dir = str(base / "parquet")
    print(f"bench_transforms: {args.patients} patients x {args.days} days, home {home}")
    if args.skip_generate:
        gen = {"rows": _child("count", home)["rows"], "seconds": 0.0}
    else:
        gen = _child("generate", home, str(args.patients), str(args.days), parquet_dir)
    print(f"  raw data: {gen['rows']:,} glucose rows in {gen['seconds']:.1f} s")
    full = _child("lake", home, "run", *(["full"] if args.full_refresh else []))
    print(
        f"  lake full run (dbt run, 14 models -> Iceberg): {full['seconds']:.1f} s ({full['cpu_s']:.1f} s CPU), "
        f"peak RSS {full['peak_rss_mb']:.0f} MB"
    )
    _print_models(full["models"])
    print(
        f"      (Python metrics: {full['computed_s']:.1f} s, {full['computed_tables']}; dbt started {full['dbt_invocations']}x)"
    )
    plain = _child("seed", parquet_dir, args.memory_limit)
    print(
        f"  seed SQL (stg -> fct -> daily overview) in plain DuckDB over Parquet: {plain['seconds']:.1f} s "
        f"({plain['cpu_s']:.1f} s CPU), peak RSS {plain['peak_rss_mb']:.0f} MB"
    )
    if args.skip_test_build:
        with_tests = {"seconds": float("nan"), "peak_rss_mb": 0.0, "tests": 0}
    else:
        with_tests = _child("lake", home, "build")
        print(
            f"  lake build with no new data (table models + {with_tests['tests']} tests): "
            f"{with_tests['seconds']:.1f} s, peak RSS {with_tests['peak_rss_mb']:.0f} MB"
        )
    if args.skip_generate and not args.later_day:
        print("  (reused lake: the 'one more day' below is the same day again, so the next run has nothing new)")
    day = _child("newday", home, str(args.patients), str(args.days), str(args.later_day))
    print(f"  ingest one more day: {day['rows']:,} rows in {day['seconds']:.1f} s")
    inc = _run_and_print(home, "lake incremental run (one new day)")
    today = _child("today", home, str(args.patients), str(args.days), str(args.later_day))
    print(f"  ingest today so far (the current partial day): {today['rows']:,} rows in {today['seconds']:.1f} s")
    now = _run_and_print(home, "lake run with today so far (a scheduled run)")
    ratio = full["seconds"] / plain["seconds"]
    inc_share = 100 * inc["seconds"] / full["seconds"]
    cpu_ratio = full["cpu_s"] / plain["cpu_s"]
    cpu_share = 100 * inc["cpu_s"] / full["cpu_s"]
    floor = _child("nothing", home)
    print(
        f"  runs with nothing new (dbt's floor): cold {floor['cold_s']:.1f} s ({floor['cold_cpu_s']:.1f} s CPU, "
        f"models {floor['cold_models_s']:.1f} s), warm {floor['warm_s']:.1f} s ({floor['warm_cpu_s']:.1f} s CPU, "
        f"models {floor['warm_models_s']:.1f} s)"
    )
    now_share = 100 * now["seconds"] / full["seconds"]
    peak = max(full["peak_rss_mb"], with_tests["peak_rss_mb"], inc["peak_rss_mb"], now["peak_rss_mb"])
    print("results:")
    print(f"  full build / seed-SQL reference: {ratio:.2f} (target <= 2); CPU time: {cpu_ratio:.2f}")
    print(f"  peak RSS of lake builds: {peak:.0f} MB (target <= 1536)")
    print(f"  incremental one day / full: {inc_share:.1f} % (target <= 10 %); CPU time: {cpu_share:.1f} %")
    print(f"  scheduled run with today so far / full: {now_share:.1f} %")
    print(
        f"  a warm run with nothing new / seed SQL: {floor['warm_s'] / plain['seconds']:.2f} "
        "(the least any build costs; the full-build target is 2)"
    )
    print(
        json.dumps(
            {
                "patients": args.patients,
                "days": args.days,
                "glucose_rows": gen["rows"],
                "lake_full_run_s": round(full["seconds"], 2),
                "lake_build_no_new_data_with_tests_s": round(with_tests["seconds"], 2),
                "seed_sql_duckdb_s": round(plain["seconds"], 2),
                "python_metrics_s": round(full["computed_s"], 2),
                "ratio": round(ratio, 2),
                "cpu_ratio": round(cpu_ratio, 2),
                "incremental_cpu_share_pct": round(cpu_share, 1),
                "peak_rss_mb": round(peak),
                "plain_peak_rss_mb": round(plain["peak_rss_mb"]),
                "incremental_one_day_s": round(inc["seconds"], 2),
                "incremental_share_pct": round(inc_share, 1),
                "today_so_far_run_s": round(now["seconds"], 2),
                "today_so_far_share_pct": round(now_share, 1),
                "nothing_new_cold_s": round(floor["cold_s"], 2),
                "nothing_new_warm_s": round(floor["warm_s"], 2),
            }
        )
    )
    tmp.cleanup()


def _run_child(argv: list[str]) -> dict[str, Any]:
    step, *rest = argv
    if step == "generate":
        return step_generate(rest[0], int(rest[1]), int(rest[2]), rest[3])
    if step == "lake":
        return step_lake(rest[0], rest[1], full_refresh=rest[2:] == ["full"])
    if step == "seed":
        return step_seed(rest[0], rest[1])
    if step == "count":
        from workbench.lakehouse import Lakehouse

        frame = Lakehouse("dev", settings=_settings(rest[0])).sql("select count(*) as n from raw.glucose_entries")
        return {"rows": int(frame["n"][0])}
    if step == "nothing":
        return step_nothing_new(rest[0])
    if step == "today":
        return step_today(rest[0], int(rest[1]), int(rest[2]), int(rest[3]) if len(rest) > 3 else 0)
    if step == "newday":
        return step_new_day(rest[0], int(rest[1]), int(rest[2]), int(rest[3]) if len(rest) > 3 else 0)
    raise SystemExit(f"unknown step {step}")


if __name__ == "__main__":
    main()
