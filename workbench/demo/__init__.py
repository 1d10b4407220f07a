"""Everything demo in one package: the CGM simulator, the demo Nightscout server, the demo lake,
and `cascade demo`.

- `simulate` — the one deterministic CGM simulator (`DemoDataset`, `simulate_patient`).
- `raw` — the simulator's patients written straight as raw tables, for tests and benchmarks (`generate`).
- `server` — the demo Nightscout server over it (`DemoServer`, test hooks on `DemoControl`).
- `lake` — a small demo lake for dashboards, notebooks and tests (`demo_lake`).
- `run` — `cascade demo` / `make demo` (`run_demo`, `summary_lines`).
"""

from workbench.demo.run import run_demo, summary_lines

__all__ = ["run_demo", "summary_lines"]
