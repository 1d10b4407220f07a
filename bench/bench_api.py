"""Benchmark: `/api/v1/glucose/readings` (one patient, one day) at a steady 200 requests/s for 60 s.

The load tool is vegeta (constant-rate, open-model: latencies include queueing, unlike closed-loop
tools), pinned to v12.13.0 and built with `go install` on first use. The API runs as `cascade api`
(one uvicorn process) on the published PostgreSQL of a demo lake (2 patients x 14 days, built once
under `--home`). Printed: p50/p90/p99/max latency, throughput, success ratio, the API process's peak
RSS; the baseline measured in the same run is the same SQL query run directly with psycopg (what
the database costs) — the ratio says what HTTP, auth, validation and JSON add. Also printed: the
PostgreSQL query plan (EXPLAIN ANALYZE). Target: p99 <= 50 ms.

    .venv/bin/python bench/bench_api.py [--rate 200] [--duration 60] [--home /tmp/cascade-bench-api]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import save  # noqa: E402

VEGETA = "github.com/tsenart/vegeta/v12@v12.13.0"
TARGET_P99_MS = 50.0
SECRET = "bench-api-signing-key-" + "k" * 32
QUERY = (
    "select patient_id, reading_ts_utc, reading_date, glucose_value, glucose_category, rolling_avg_3, "
    'trend_direction from "marts"."fct_glucose_readings" where patient_id = %(patient)s and reading_date = %(day)s '
    "order by patient_id, reading_ts_utc limit %(limit)s"
)


def vegeta_binary(tools: Path) -> Path:
    """The pinned vegeta, built into `tools` with the Go toolchain on first use."""
    binary = tools / "vegeta"
    if binary.is_file():
        return binary
    go = shutil.which("go") or "/usr/local/go/bin/go"
    if not Path(go).exists():
        sys.exit("this benchmark needs Go (to build the pinned vegeta load tool): install golang")
    tools.mkdir(parents=True, exist_ok=True)
    subprocess.run([go, "install", VEGETA], env={**os.environ, "GOBIN": str(tools)}, check=True, timeout=900)
    return binary


class PeakRss:
    """Sample a process's RSS every 50 ms."""

    def __init__(self, pid: int) -> None:
        self.proc, self.peak, self._stop = psutil.Process(pid), 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self.proc.memory_info().rss)
            except psutil.Error:
                return
            time.sleep(0.05)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak / 2**20


def attack(vegeta: Path, url: str, token: str, rate: int, duration: int) -> dict[str, Any]:
    target = f"GET {url}\nAuthorization: Bearer {token}\n"
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "targets").write_text(target)
        results = Path(tmp) / "results.bin"
        subprocess.run(
            [str(vegeta), "attack", f"-targets={tmp}/targets", f"-rate={rate}/s", f"-duration={duration}s",
             "-timeout=10s", "-workers=20", f"-output={results}"],
            check=True,
        )  # fmt: skip
        report = subprocess.run(
            [str(vegeta), "report", "-type=json", str(results)], check=True, capture_output=True, text=True
        )
    data = json.loads(report.stdout)
    ms = {k: v / 1e6 for k, v in data["latencies"].items()}
    return {
        "requests": data["requests"],
        "rate_rps": round(data["rate"], 1),
        "throughput_rps": round(data["throughput"], 1),
        "success_ratio": data["success"],
        "status_codes": data["status_codes"],
        "p50_ms": round(ms["50th"], 2),
        "p90_ms": round(ms["90th"], 2),
        "p99_ms": round(ms["99th"], 2),
        "max_ms": round(ms["max"], 2),
        "mean_ms": round(ms["mean"], 2),
    }


def direct_query(url: str, patient: str, day: Any, n: int = 2000) -> dict[str, Any]:
    """The same query straight on PostgreSQL (one connection, sequential): the baseline."""
    import psycopg

    times = []
    with psycopg.connect(url, autocommit=True) as con:
        for _ in range(n):
            start = time.perf_counter()
            con.execute(QUERY, {"patient": patient, "day": day, "limit": 1001}).fetchall()
            times.append((time.perf_counter() - start) * 1000)
        plan = con.execute("explain (analyze, buffers) " + QUERY, {"patient": patient, "day": day, "limit": 1001})
        plan_text = "\n".join(row[0] for row in plan.fetchall())
    times.sort()
    return {
        "queries": n,
        "p50_ms": round(statistics.median(times), 3),
        "p99_ms": round(times[int(n * 0.99) - 1], 3),
        "plan": plan_text,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--duration", type=int, default=60)
    parser.add_argument("--home", type=Path, default=Path(tempfile.gettempdir()) / "cascade-bench-api")
    parser.add_argument("--tools", type=Path, default=Path(tempfile.gettempdir()) / "cascade-bench-tools")
    args = parser.parse_args()

    from workbench.demo.lake import demo_lake
    from workbench.publish.postgres import reader_url
    from workbench.publish.publisher import load_config, publish_marts
    from workbench.settings import load_settings

    vegeta = vegeta_binary(args.tools)
    home = demo_lake(args.home)
    settings = load_settings(home=home, profile="embedded", warehouse=None, api_secret=SecretStr(SECRET))
    publish_marts("main", config=load_config(), settings=settings)
    db_url = reader_url(settings)

    import psycopg

    with psycopg.connect(db_url) as con:
        row = con.execute(
            "select reading_date, count(*) from marts.fct_glucose_readings where patient_id = 'p001' "
            "group by 1 order by 2 desc limit 1"
        ).fetchone()
    assert row is not None, "nothing published"
    day, readings = row

    from workbench.api.auth import create_token

    token = create_token(patient="p001", expires="2h", settings=settings)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASCADE_")}
    env.update(
        CASCADE_HOME=str(home),
        CASCADE_API_SECRET=SECRET,
        CASCADE_API_RATE_LIMIT="10000000/minute",  # the limiter still runs on every request
        PYTHONUNBUFFERED="1",
    )
    cascade = str(Path(sys.executable).with_name("cascade"))
    server = subprocess.Popen(
        [cascade, "api", "--port", "0"], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert server.stdout is not None
        match = re.search(r"(http://127\.0\.0\.1:\d+/)", server.stdout.readline())
        assert match, "the API did not start"
        url = f"{match.group(1)}api/v1/glucose/readings?date={day}&patient=p001"
        attack(vegeta, url, token, rate=50, duration=5)  # warm-up: pool, caches, first imports
        memory = PeakRss(server.pid)
        cpu_before = psutil.Process(server.pid).cpu_times()
        started = time.perf_counter()
        result = attack(vegeta, url, token, rate=args.rate, duration=args.duration)
        wall = time.perf_counter() - started
        cpu_after = psutil.Process(server.pid).cpu_times()
        result["api_peak_rss_mb"] = round(memory.stop(), 1)
        served = max(1, int(result["status_codes"].get("200", 0)))
        cpu_s = (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system)
        # what one request costs the API process; on an idle core it could serve 1000/this per second
        result["cpu_ms_per_request"] = round(cpu_s * 1000 / served, 2)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:  # still draining a backlog: the figures are already taken
            server.kill()
            server.wait(timeout=30)
    baseline = direct_query(db_url, "p001", day)
    summary = {
        "endpoint": "/api/v1/glucose/readings?date=...&patient=p001",
        "readings_per_response": readings,
        "wall_s": round(wall, 1),
        "rows_per_s": round(result["throughput_rps"] * readings),
        **{f"api_{k}": v for k, v in result.items()},
        "baseline_query_p50_ms": baseline["p50_ms"],
        "baseline_query_p99_ms": baseline["p99_ms"],
        "ratio_p99_api_vs_query": round(result["p99_ms"] / baseline["p99_ms"], 1),
        "target_p99_ms": TARGET_P99_MS,
        "target_met": result["p99_ms"] <= TARGET_P99_MS,
        "machine_load_1m": os.getloadavg()[0],
        "query_plan": baseline["plan"],
    }
    save("bench_api", summary)
    print(
        f"readings of one day ({readings} rows) at {args.rate} req/s for {args.duration}s (vegeta, {result['requests']} requests)"
    )
    print(
        f"  API: p50 {result['p50_ms']} ms  p90 {result['p90_ms']} ms  p99 {result['p99_ms']} ms  max {result['max_ms']} ms"
    )
    print(
        f"       throughput {result['throughput_rps']} req/s ({summary['rows_per_s']} rows/s), success {result['success_ratio']:.4f}, codes {result['status_codes']}"
    )
    print(
        f"       API process peak RSS {result['api_peak_rss_mb']} MB, CPU {result['cpu_ms_per_request']} ms per answered request"
    )
    print(
        f"  baseline (the same query in psycopg): p50 {baseline['p50_ms']} ms  p99 {baseline['p99_ms']} ms  -> API p99 / query p99 = {summary['ratio_p99_api_vs_query']}x"
    )
    print(
        f"  target p99 <= {TARGET_P99_MS} ms: {'met' if summary['target_met'] else 'MISSED'} (1-min load average {summary['machine_load_1m']:.1f})"
    )
    print("  query plan:")
    for line in baseline["plan"].splitlines():
        print("    " + line)


if __name__ == "__main__":
    main()
