"""Benchmark: ingest one patient-year (~105k entries) over HTTP from the demo Nightscout server.

The demo server runs in its own process (`cascade demo-nightscout`), so it does not compete with the
ingesting process for the GIL. Reported: the time to only fetch and parse the same JSON (the floor),
the full ingest (dlt → Parquet stage → Iceberg) wall time, rows/s, its ratio to the fetch-only
time, peak RSS of the ingesting process (sampled), and a second, incremental run.

    .venv/bin/python bench/bench_ingest.py [--days 365] [--page-size 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil

import workbench.lakehouse  # noqa: F401  (imported up front: the timings exclude interpreter warm-up)
from workbench.ingest.client import NightscoutClient
from workbench.ingest.run import ingest
from workbench.ingest.sites import Site
from workbench.settings import load_settings

TARGET_SECONDS = 30.0
SECRET = "bench-secret"
RESULTS = Path(__file__).resolve().parent / "results"


class PeakRss:
    """Sample this process's RSS every 20 ms; `peak_mb` after `stop()`."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        proc = psutil.Process()
        while not self._stop.is_set():
            self.peak = max(self.peak, proc.memory_info().rss)
            time.sleep(0.02)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_mb(self) -> float:
        return self.peak / 2**20


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(port: int, days: int, seed: int) -> subprocess.Popen[bytes]:
    exe = Path(sys.executable).with_name("cascade")
    env = {**os.environ, "CASCADE_DEMO_SECRET": SECRET}
    args = ["demo-nightscout", "--port", str(port), "--patients", "1", "--days", str(days), "--seed", str(seed)]
    proc = subprocess.Popen([str(exe), *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/p001/api/v1/status.json", timeout=1)
            return proc
        except httpx.TransportError:
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise RuntimeError(f"demo server exited: {err}") from None
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("demo server did not start within 60 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--page-size", type=int, default=10_000)
    opts = parser.parse_args()

    port = free_port()
    server = start_server(port, opts.days, opts.seed)
    try:
        site = Site(
            site_id="bench", patient_id="p001", url=f"http://127.0.0.1:{port}/p001", secret=SECRET, time_zone="UTC"
        )
        # 1. fetch only: the same requests and JSON parsing, nothing else
        started = time.perf_counter()
        with NightscoutClient(site, page_size=opts.page_size) as client:
            fetched = sum(len(page) for page in client.pages("/api/v1/entries.json", "date", 0))
            fetched_t = sum(len(page) for page in client.pages("/api/v1/treatments.json", "created_at", None))
            fetched_bytes = client.stats.bytes
        fetch_s = time.perf_counter() - started

        # 2. full ingest into a fresh lake
        with tempfile.TemporaryDirectory(prefix="cascade-bench-") as home:
            settings = load_settings(home=Path(home))
            with PeakRss() as rss:
                started = time.perf_counter()
                report = ingest(branch="dev", sites=[site], page_size=opts.page_size, settings=settings)
                ingest_s = time.perf_counter() - started
            first = report.sites[0]
            # 3. an incremental run (only the overlap window is re-read)
            started = time.perf_counter()
            second = ingest(branch="dev", sites=[site], page_size=opts.page_size, settings=settings).sites[0]
            incremental_s = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(timeout=10)

    figures = {
        "entries_fetched": fetched,
        "treatments_fetched": fetched_t,
        "json_mb": round(fetched_bytes / 2**20, 1),
        "fetch_only_s": round(fetch_s, 2),
        "ingest_s": round(ingest_s, 2),
        "entries_landed": first.new,
        "rejected": first.rejected,
        "duplicates": first.duplicate,
        "rows_per_s": round(first.fetched / ingest_s),
        "ratio_to_fetch_only": round(ingest_s / fetch_s, 2),
        "peak_rss_mb": round(rss.peak_mb),
        "incremental_run_s": round(incremental_s, 2),
        "incremental_fetched": second.fetched,
        "incremental_new": second.new,
        "target_s": TARGET_SECONDS,
        "within_target": ingest_s < TARGET_SECONDS,
    }
    width = max(len(k) for k in figures)
    print("ingest one patient-year over HTTP from the demo Nightscout server")
    for key, value in figures.items():
        print(f"  {key:<{width}}  {value}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bench_ingest.json").write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
