"""`make bench` runs bench/run_all.py: every benchmark script, then a summary (regression: it did not exist)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_make_bench_entry_point_lists_every_benchmark() -> None:
    proc = subprocess.run(
        [sys.executable, "bench/run_all.py", "--list"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == sorted(p.stem for p in (ROOT / "bench").glob("bench_*.py"))
    assert "bench/run_all.py" in (ROOT / "Makefile").read_text()


def test_run_all_runs_each_script_and_summarises_failures(tmp_path: Path) -> None:
    runner = (ROOT / "bench" / "run_all.py").read_text()
    (tmp_path / "run_all.py").write_text(runner)
    (tmp_path / "bench_fast.py").write_text("print('fast: 1.0 s, 10 rows/s, ratio 0.5x')\n")
    (tmp_path / "bench_broken.py").write_text("raise SystemExit('broken benchmark')\n")
    proc = subprocess.run(
        [sys.executable, str(tmp_path / "run_all.py")], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    fast = next(line for line in lines if line.startswith("bench_fast "))
    broken = next(line for line in lines if line.startswith("bench_broken "))
    assert " ok " in fast and "ratio 0.5x" in fast
    assert "FAILED(1)" in broken
    assert lines[-1].startswith("2 benchmarks, 1 failed")
