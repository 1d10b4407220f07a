"""`make bench`: run every benchmark in this folder (`bench_*.py`), one process each, then print a summary.

Each benchmark prints its own figures (wall time, rows/s, peak memory, and its baseline measured in
the same run) and saves them under `bench/results/`; this runner adds how long each took and
whether it finished. A benchmark that fails does not stop the others; the exit status is 1 if any
failed.

    .venv/bin/python bench/run_all.py                     # all of them (long: the transform benchmark
                                                          # builds 100 patient-years)
    .venv/bin/python bench/run_all.py --only pipeline     # those whose name contains "pipeline"
    .venv/bin/python bench/run_all.py --list
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Outcome:
    name: str
    returncode: int
    seconds: float
    last_line: str


def discover(folder: Path = HERE, only: list[str] | None = None) -> list[Path]:
    """The benchmark scripts of `folder`, by name; `only` keeps those whose name contains a word."""
    scripts = sorted(folder.glob("bench_*.py"))
    if only:
        scripts = [s for s in scripts if any(word in s.stem for word in only)]
    return scripts


def run_one(script: Path, timeout_s: float | None = None) -> Outcome:
    """Run one benchmark, its output streamed through; its time and status."""
    print(f"=== {script.stem} ===", flush=True)
    start = time.perf_counter()
    lines: list[str] = []
    with subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=script.parent
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            print(line, end="", flush=True)
            lines.append(line.rstrip())
        try:
            code = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = -9
    seconds = time.perf_counter() - start
    last = next((line for line in reversed(lines) if line.strip()), "")
    return Outcome(script.stem, code, seconds, last)


def summary(outcomes: list[Outcome]) -> str:
    """One line per benchmark: ok/FAILED, its wall time, and its last line of output."""
    width = max((len(o.name) for o in outcomes), default=10)
    rows = [f"{'benchmark':<{width}}  status   wall      last line"]
    for o in outcomes:
        status = "ok" if o.returncode == 0 else f"FAILED({o.returncode})"
        rows.append(f"{o.name:<{width}}  {status:<8} {o.seconds:7.1f}s  {o.last_line[:100]}")
    failed = sum(1 for o in outcomes if o.returncode != 0)
    rows.append(f"{len(outcomes)} benchmarks, {failed} failed; figures saved in {HERE / 'results'}")
    return "\n".join(rows)


def main(argv: list[str] | None = None, folder: Path = HERE) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", help="run only benchmarks whose name contains one of these words")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument("--timeout", type=float, default=None, help="seconds allowed per benchmark")
    args = parser.parse_args(argv)
    scripts = discover(folder, args.only)
    if not scripts:
        print(f"no benchmark matches {args.only} in {folder}", file=sys.stderr)
        return 2
    if args.list:
        print("\n".join(s.stem for s in scripts))
        return 0
    outcomes = [run_one(s, args.timeout) for s in scripts]
    print()
    print(summary(outcomes))
    return 1 if any(o.returncode != 0 for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
