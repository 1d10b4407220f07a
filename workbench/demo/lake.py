"""A small demo lake for dashboards, notebooks and their tests: the demo Nightscout server ingested
into `dev`, every dbt layer built on `dev`, and `dev` merged into `main` (as a pipeline run would).

```python
from workbench.demo.lake import demo_lake
home = demo_lake(Path("/tmp/demo"))   # builds once; later calls (other processes too) reuse it
```
"""

from __future__ import annotations

import fcntl
from datetime import datetime
from pathlib import Path

from workbench.settings import DEV_BRANCH, MAIN_BRANCH, Settings, load_settings
from workbench.viz.errors import VizError

READY_MARKER = ".demo-lake-ready"


def build_demo_lake(
    home: Path, patients: int = 2, days: float = 14, seed: int = 42, end: datetime | None = None
) -> Settings:
    """Ingest the demo server into `dev`, build all models on `dev`, merge `dev` into `main`.

    `end` pins the demo clock (the newest reading); tests always pin it so nothing depends on the hour.
    """
    from workbench.ingest.run import demo_sites, ingest
    from workbench.lakehouse import Lakehouse
    from workbench.transform.runner import build

    # the pinned clock is also the transforms' clock (which day is complete), not the ingestion time
    clock = {"demo_end": end} if end is not None else {}
    settings = load_settings(home=home, profile="embedded", warehouse=None, postgres_url=None, **clock)
    settings.ensure_home()
    with demo_sites(seed=seed, patients=patients, days=days, end=end) as sites:
        ingest(branch=DEV_BRANCH, sites=sites, settings=settings)
    result = build(branch=DEV_BRANCH, settings=settings)
    if not result.success:
        raise VizError("building the demo lake failed: " + "; ".join(result.failures()[:5]))
    Lakehouse(DEV_BRANCH, settings=settings).merge(DEV_BRANCH, into=MAIN_BRANCH, message="demo lake: promote dev")
    return settings


def demo_lake(home: Path, patients: int = 2, days: float = 14, seed: int = 42, end: datetime | None = None) -> Path:
    """`home` holding a demo lake, built on first use (a file lock lets concurrent callers share it)."""
    home.mkdir(parents=True, exist_ok=True)
    with open(home.parent / f"{home.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (home / READY_MARKER).exists():
            build_demo_lake(home, patients=patients, days=days, seed=seed, end=end)
            (home / READY_MARKER).write_text("ok\n")
    return home
