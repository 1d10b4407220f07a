"""Benchmark: aggregate a 10-million-row Iceberg table through a Lakehouse DuckDB session.

Prints wall time, rows/s and peak RSS of the aggregation, next to the same SQL run by plain DuckDB
directly over the same Parquet files (the baseline), and the ratio. The bound we hold ourselves to:
peak RSS under 1 GB for the Lakehouse query.

    .venv/bin/python bench/bench_lake_scan.py [--rows 10000000] [--home DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import measure_child, save  # noqa: E402

BUILD = """
import sys, time, json
import numpy as np, pyarrow as pa
from tqdm import tqdm
from workbench.lakehouse import Lakehouse

rows, batch = int(sys.argv[1]), 1_000_000
lh = Lakehouse("dev")
rng = np.random.default_rng(7)
start = time.perf_counter()
base = np.datetime64("2020-01-01T00:00:00", "us")
for offset in tqdm(range(0, rows, batch), desc="writing", unit="batch", file=sys.stderr):
    n = min(batch, rows - offset)
    idx = np.arange(offset, offset + n)
    table = pa.table({
        "patient_id": pa.array([f"p{i:03d}" for i in (idx // 105_120) % 1000]),
        "reading_ts": pa.array(base + (idx % 105_120) * np.timedelta64(5, "m"), pa.timestamp("us", tz="UTC")),
        "glucose_value": pa.array(rng.integers(40, 400, n), pa.int32()),
        "trend": pa.array(rng.normal(0, 1, n)),
    })
    lh.write("silver.bench_readings", table, message=f"bench batch {offset // batch}")
print(json.dumps({"write_s": time.perf_counter() - start}))
"""

QUERY = """
select patient_id, count(*) as n, avg(glucose_value) as mean,
       stddev_samp(glucose_value) as sd,
       avg(case when glucose_value between 70 and 180 then 1.0 else 0 end) as tir
from {table} group by patient_id order by patient_id
"""

LAKEHOUSE = """
import json, resource, time
from workbench.lakehouse import Lakehouse
start = time.perf_counter()
lh = Lakehouse("dev")
out = lh.sql_arrow('''{query}''')
wall = time.perf_counter() - start
print(json.dumps({{"wall_s": wall, "groups": out.num_rows, "rows": int(sum(out.column("n").to_pylist())),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""

PLAIN = """
import json, resource, time, glob, sys
import duckdb
start = time.perf_counter()
files = sorted(glob.glob(sys.argv[1] + "/**/*.parquet", recursive=True))
con = duckdb.connect(config={{"memory_limit": "2GB"}})
listing = ", ".join(repr(f) for f in files)
out = con.sql('''{query}'''.replace("{{table}}", f"read_parquet([{{listing}}])")).to_arrow_table()
wall = time.perf_counter() - start
print(json.dumps({{"wall_s": wall, "groups": out.num_rows, "rows": int(sum(out.column("n").to_pylist())),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--home", type=Path, default=None, help="reuse/keep a lake here (default: temporary)")
    args = parser.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="cascade-bench-"))
    env = {"CASCADE_HOME": str(home)}
    try:
        if not (home / "catalog.db").exists():
            print(f"building a {args.rows:,}-row table in {home} ...", flush=True)
            built = measure_child(BUILD, env, [str(args.rows)])
            print(f"  written in {built['write_s']:.1f} s ({args.rows / built['write_s']:,.0f} rows/s)")
        ours = measure_child(LAKEHOUSE.format(query=QUERY.format(table="silver.bench_readings")), env)
        plain = measure_child(
            PLAIN.format(query=QUERY), env, [str(home / "warehouse" / "silver" / "bench_readings" / "data")]
        )
        assert ours["rows"] == plain["rows"] == args.rows, (ours, plain)
        result = {
            "rows": args.rows,
            "lakehouse": ours,
            "plain_duckdb": plain,
            "ratio_wall": ours["wall_s"] / plain["wall_s"],
            "ratio_peak_rss": ours["peak_rss_mb"] / plain["peak_rss_mb"],
            "bound_peak_rss_mb": 1024,
            "within_bound": ours["peak_rss_mb"] < 1024,
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        print(f"aggregate {args.rows:,} rows by patient:")
        for name in ("lakehouse", "plain_duckdb"):
            r = result[name]
            print(
                f"  {name:13s} wall {r['wall_s']:6.2f} s  {args.rows / r['wall_s']:>13,.0f} rows/s  "
                f"peak RSS {r['peak_rss_mb']:7.1f} MB"
            )
        print(
            f"  ratio (lakehouse / plain): wall {result['ratio_wall']:.2f}x, peak RSS {result['ratio_peak_rss']:.2f}x; "
            f"peak RSS bound 1024 MB: {'OK' if result['within_bound'] else 'EXCEEDED'}"
        )
        print(f"  saved {save('lake_scan', result)}")
        print(json.dumps({"ratio_wall": round(result["ratio_wall"], 2)}))
    finally:
        if args.home is None:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
