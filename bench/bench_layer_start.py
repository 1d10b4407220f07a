"""Benchmark: the start-up cost of the pipeline's four layer tasks, each in a fresh process as
Ploomber runs them (a papermill kernel per task), with and without the warm dbt process.

On a lake already built (N patients x D days), every layer task has nothing new to do, so its time is
what starting it costs: importing dbt, loading the parsed project, and the layer's tests. `before`
builds each layer in its own process (CASCADE_DBT_WARM_SECONDS=0, the old way); `after` sends the
four builds to one warm dbt process (`workbench.transform.warm`, started by the first task). Both in
the same run, so the ratio holds on a loaded machine.

    .venv/bin/python bench/bench_layer_start.py [--patients 2] [--days 14]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import measure_child, save  # noqa: E402

LAYERS = ("bronze", "silver", "gold", "marts")
TASK = """
import json, sys, time
started = time.perf_counter()
from workbench.transform.warm import build_layer
result = build_layer(sys.argv[1], "dev")
assert result.success, result.failures()
print(json.dumps({"seconds": time.perf_counter() - started}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=2)
    parser.add_argument("--days", type=int, default=14)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="cascade-bench-layers-"))
    env = {"CASCADE_HOME": str(home), "CASCADE_PROFILE": "embedded"}
    try:
        os.environ.update(env)
        from workbench.demo import raw
        from workbench.lakehouse import Lakehouse
        from workbench.transform import build

        lake = Lakehouse("dev")
        for name, table in raw.generate(args.patients, args.days, start=date(2026, 3, 1), seed=3).tables().items():
            lake.write(name, table, mode="append", message=f"bench: {name}")
        assert build(branch="dev").success
        figures: dict[str, dict[str, float]] = {}
        for mode, seconds in (("before", "0"), ("after", "600")):
            env["CASCADE_DBT_WARM_SECONDS"] = seconds
            figures[mode] = {layer: measure_child(TASK, env=env, args=[layer])["seconds"] for layer in LAYERS}
        load = os.getloadavg()
        total = {mode: sum(per.values()) for mode, per in figures.items()}
        result = {
            "patients": args.patients,
            "days": args.days,
            "per_layer_s": figures,
            "total_s": total,
            "ratio_after_before": total["after"] / total["before"],
            "load_average": load,
            "date": time.strftime("%Y-%m-%d"),
        }
        save("layer_start", result)
        for mode, per in figures.items():
            print(mode, " ".join(f"{layer} {s:.1f}s" for layer, s in per.items()), f"total {total[mode]:.1f}s")
        print(json.dumps({"ratio_after_before": round(result["ratio_after_before"], 3), "load_average": load}))
    finally:
        from workbench.settings import get_settings
        from workbench.transform.warm import server_pid, socket_path

        env["CASCADE_DBT_WARM_SECONDS"] = "600"
        os.environ.update(env)
        get_settings.cache_clear()
        path = socket_path(get_settings())
        pid = server_pid(path)
        if pid is not None:  # the warm process this benchmark started
            path.unlink()
            os.kill(pid, 15)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
