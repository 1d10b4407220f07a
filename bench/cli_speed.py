"""How fast the `cascade` CLI answers: `--help`, `--version`, `tables` and a usage error, against the
bare interpreter start (`python -c pass`) measured in the same run. Targets (issue 10): `--help`
≤ 0.5 s, `tables` ≤ 1.5 s on the project's 2-core machine. Prints median wall time, peak memory
(max RSS of the child) and the ratio to the baseline.

    .venv/bin/python bench/cli_speed.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASCADE = str(Path(sys.executable).with_name("cascade"))
TARGETS = {"--help": 0.5, "tables": 1.5}


def _run(argv: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Wall seconds and max RSS (KiB) of one run."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, _status, usage = os.wait4(proc.pid, 0)
    return time.perf_counter() - start, int(usage.ru_maxrss)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "CASCADE_HOME": str(Path(tmp) / "home")}
        subprocess.run([CASCADE, "init"], env=env, check=True, capture_output=True)
        cases = {
            "python -c pass (baseline)": [sys.executable, "-c", "pass"],
            "--help": [CASCADE, "--help"],
            "--version": [CASCADE, "--version"],
            "tabels (usage error)": [CASCADE, "tabels"],
            "tables": [CASCADE, "tables", "--ref", "main"],
        }
        for argv in cases.values():  # warm the page cache and bytecode once
            _run(argv, env)
        results = {}
        for name, argv in cases.items():
            runs = [_run(argv, env) for _ in range(args.runs)]
            results[name] = (statistics.median(r[0] for r in runs), max(r[1] for r in runs))
    base = results["python -c pass (baseline)"][0]
    print(f"{'command':28} {'median s':>9} {'peak MiB':>9} {'x baseline':>11} {'target s':>9}")
    for name, (wall, rss) in results.items():
        target = TARGETS.get(name.split(" ")[0])
        flag = "" if target is None else f"{target:9.1f}" + (" OK" if wall <= target else " SLOW")
        print(f"{name:28} {wall:9.3f} {rss / 1024:9.1f} {wall / base:11.1f} {flag}")
    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (timings scale with it)")


if __name__ == "__main__":
    main()
