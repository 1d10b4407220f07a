"""Benchmark the stack profile against the embedded one in the same run.

    .venv/bin/python bench/bench_stack.py                         # 100 patient-years (~10.5M readings)
    .venv/bin/python bench/bench_stack.py --patients 5 --days 30  # quick
    .venv/bin/python bench/bench_stack.py --stack-home /tmp/s     # reuse a running stack (no cold start)

Steps:
1. cold start: `cascade stack up` on a fresh CASCADE_HOME (artifacts from the cache), wall time and
   RSS of each service after start;
2. the same synthetic raw data (N patients x D days) written to `dev` of an embedded lake and of the
   stack lake;
3. the transform build on `dev` (`workbench.transform.runner.build`: every dbt model and test, and the
   Python-computed metrics the marts read): DuckDB (embedded) vs Trino (stack), wall time, readings/s
   and the ratio (target: Trino within 2x of DuckDB), the peak RSS of this process (the embedded build
   runs in it) and the RSS of each service after the build, with the load average before and after
   each build. Results also go to bench/results/stack.json. `--read-paths` then also times reading the
   computed metrics' input through Trino's client protocol against reading the data files.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import save  # noqa: E402

START = date(2025, 1, 1)


def _write_raw(settings: Any, patients: int, days: int) -> int:
    import pyarrow as pa

    from workbench.demo import raw as demo_raw
    from workbench.lakehouse import Lakehouse

    lake = Lakehouse("dev", settings=settings)
    rows = 0
    chunk = 10
    for first in range(0, patients, chunk):
        count = min(chunk, patients - first)
        raw = demo_raw.generate(count, days, start=START, seed=first + 1, duplicate_share=0.0005)
        for name, table in raw.tables().items():
            ids = table.column("patient_id").to_pylist()
            mapping = {f"p{i + 1:03d}": f"p{first + i + 1:03d}" for i in range(count)}
            table = table.set_column(
                table.schema.get_field_index("patient_id"), "patient_id", pa.array([mapping[v] for v in ids])
            )
            if "_id" in table.column_names:
                table = table.set_column(
                    table.schema.get_field_index("_id"),
                    "_id",
                    pa.array([f"c{first}-{v}" for v in table.column("_id").to_pylist()]),
                )
            lake.write(name, table, mode="append", message=f"bench: {name} patients {first + 1}..{first + count}")
            if name == "raw.glucose_entries":
                rows += table.num_rows
    lake.close()
    return rows


def _build(settings: Any) -> tuple[float, float]:
    """Wall seconds of the whole transform build and of its Python-computed metrics step (and where the
    time of the dbt models went)."""
    from workbench.transform.runner import build

    started = time.perf_counter()
    result = build(branch="dev", settings=settings)
    if not result.success:
        raise SystemExit(f"the build on {settings.profile.value} failed: {result.failures()[:3]}")
    computed = result.computed.seconds if result.computed is not None else 0.0
    models = sorted(result.models, key=lambda m: -m.seconds)
    model_s = sum(m.seconds for m in models)
    top = ", ".join(f"{m.name} {m.seconds:.1f}" for m in models[:5])
    print(
        f"  {settings.profile.value}: {len(models)} models {model_s:.1f} s (top: {top}); "
        f"{len(result.tests)} tests; computed metrics {computed:.1f} s"
    )
    return time.perf_counter() - started, computed


def _read_paths(settings: Any) -> dict[str, float]:
    """The computed metrics' input (every reading of silver.fct_glucose_readings) read on the stack's
    `dev` both ways, in the same run: through Trino's client protocol and from the data files."""
    from dataclasses import replace

    from workbench import profiles
    from workbench.lakehouse import Lakehouse
    from workbench.transform import computed

    lh = Lakehouse("dev", settings=settings)
    patients = lh.sql_arrow(f"select distinct patient_id from {computed.FACT}")["patient_id"].to_pylist()
    out = {}
    original = profiles.PROFILES["stack"]
    try:
        for label, from_files in (("trino_protocol", False), ("pyiceberg_files", True)):
            profiles.PROFILES["stack"] = replace(original, bulk_reads_from_files=from_files)
            t0 = time.perf_counter()
            rows = computed._readings(lh, patients).num_rows
            out[label] = time.perf_counter() - t0
            print(f"  read {rows} readings via {label}: {out[label]:.1f} s")
    finally:
        profiles.PROFILES["stack"] = original
        lh.close()
    return out


def _peak_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _memory(home: Path) -> str:
    from workbench.stack import launcher

    return ", ".join(f"{s.service} {s.rss_mb:.0f} MB" for s in launcher.status(home) if s.rss_mb is not None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=100)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--stack-home", type=Path, default=None, help="a running stack to reuse")
    parser.add_argument(
        "--read-paths",
        action="store_true",
        help="also time reading the metrics' input through Trino's client protocol vs from the files",
    )
    args = parser.parse_args()

    from workbench import profiles
    from workbench.settings import load_settings
    from workbench.stack import launcher

    work = Path(tempfile.mkdtemp(prefix="cascade-bench-stack-"))
    stack_home = args.stack_home or work / "stack-home"
    started_here = False
    figures: dict[str, Any] = {"patients": args.patients, "days": args.days}
    if args.stack_home is None:
        t0 = time.perf_counter()
        timings = launcher.up(stack_home, say=lambda line: None, quiet=True)
        started_here = True
        figures["cold_start_s"] = time.perf_counter() - t0
        figures["start_s"] = {k: round(v, 1) for k, v in timings.items()}
        figures["memory_after_start"] = _memory(stack_home)
        print(f"cold start of the stack: {figures['cold_start_s']:.1f} s ({figures['start_s']})")
        print(f"memory after start: {figures['memory_after_start']}")
    try:
        env = launcher.client_env(stack_home)
        stack = load_settings(profile="stack", home=stack_home, **{k[8:].lower(): v for k, v in env.items()})
        profiles.open_lake(stack).wipe()  # type: ignore[attr-defined]
        embedded = load_settings(profile="embedded", home=work / "embedded", warehouse=None, s3_endpoint=None)

        for name, settings in (("embedded", embedded), ("stack", stack)):
            t0 = time.perf_counter()
            rows = _write_raw(settings, args.patients, args.days)
            print(f"{name}: wrote {rows} readings in {time.perf_counter() - t0:.1f} s")

        load = {"before_duckdb": os.getloadavg()}
        duck, duck_computed = _build(embedded)
        peak = _peak_mb()
        load["before_trino"] = os.getloadavg()
        trino, trino_computed = _build(stack)
        load["after_trino"] = os.getloadavg()
        print(
            f"build, DuckDB (embedded): {duck:.1f} s ({duck_computed:.1f} s computed metrics), {rows / duck:,.0f} readings/s"
        )
        print(
            f"build, Trino (stack):     {trino:.1f} s ({trino_computed:.1f} s computed metrics), {rows / trino:,.0f} readings/s"
        )
        print(f"ratio Trino/DuckDB: {trino / duck:.2f} (target <= 2)")
        print(f"peak RSS of this process after the embedded build: {peak:.0f} MB")
        figures.update(
            readings=rows,
            duckdb_s=duck,
            duckdb_computed_s=duck_computed,
            trino_s=trino,
            trino_computed_s=trino_computed,
            ratio=trino / duck,
            embedded_peak_rss_mb=peak,
            memory_after_build=_memory(stack_home),
        )
        print(f"memory after the build: {figures['memory_after_build']}")
        figures["load_average"] = {k: [round(x, 1) for x in v] for k, v in load.items()}
        print(f"load average (1, 5, 15 min): {figures['load_average']}")
        print(f"saved {save('stack', figures)}")
        if args.read_paths:  # after the figures: at 100 patient-years the Trino protocol read takes minutes
            figures["read_paths_s"] = _read_paths(stack)
            save("stack", figures)
    finally:
        if started_here:
            launcher.down(stack_home, say=lambda line: None)


if __name__ == "__main__":
    main()
