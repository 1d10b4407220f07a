"""The scheduled run's steps in one warm process: ingest → one `dbt build` of every layer → audit →
promote → publish — the same workbench calls the pipeline's notebooks make, without a kernel per
task and with one dbt invocation instead of one per layer. Used by the soak test (`make soak`)
and for many runs in a row; `ploomber build` / `cascade run` remain the scheduled job.

```python
outcome = run_warm(branch="dev", baseline="main", publish=False)
outcome.status   # "promoted" | "no new data" | "failed"
outcome.reason   # the named reason of a failure, e.g. "audit failed (rejects ratio)"
```
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from workbench.errors import CascadeError
from workbench.settings import DEV_BRANCH, MAIN_BRANCH, Settings, get_settings


@dataclass
class WarmOutcome:
    """What one warm run did."""

    status: str  # promoted | no new data | failed
    reason: str | None = None
    new_rows: int = 0
    commit: str | None = None
    warnings: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def run_warm(
    branch: str = DEV_BRANCH,
    baseline: str = MAIN_BRANCH,
    *,
    thresholds: dict[str, Any] | None = None,
    publish: bool = True,
    backfill: bool = False,
    retry: Any = None,
    settings: Settings | None = None,
) -> WarmOutcome:
    """One scheduled run; never raises a Cascade error: a failure is an outcome with its reason."""
    from workbench.ingest.run import ingest
    from workbench.quality.audit import SourceState, Thresholds, promote, run_audit
    from workbench.transform.runner import build

    settings = settings or get_settings()
    outcome = WarmOutcome(status="failed")
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        outcome.seconds[name] = now - clock
        clock = now

    try:
        report = ingest(branch=branch, full_resync=backfill, settings=settings, retry=retry)
        lap("ingest")
        outcome.new_rows = report.new_rows
        if not report.changed:
            outcome.status = "no new data"
            return outcome
        result = build(branch=branch, settings=settings)
        lap("build")
        if not result.success:
            outcome.reason = "dbt build failed: " + "; ".join(result.failures()[:3])
            return outcome
        sources = [
            SourceState(s.site_id, s.patient_id, s.source_time, s.new + s.treatments_new, dict(s.audit))
            for s in report.sites
        ]
        dbt_results = [{"name": t.name, "status": t.status} for t in result.tests]
        audit = run_audit(
            branch,
            baseline,
            Thresholds.from_params(thresholds),
            dbt_results=dbt_results,
            sources=sources,
            backfill=backfill,
        )
        lap("audit")
        outcome.warnings = [f"{c.name}: {c.detail}" for c in audit.warnings]
        if not audit.passed:
            outcome.reason = "audit failed (" + ", ".join(c.name for c in audit.failed) + ")"
            return outcome
        outcome.commit = promote(audit, baseline)
        lap("promote")
        if publish:
            from workbench.publish.publisher import publish_marts

            publish_marts(baseline, settings=settings)
            lap("publish")
        outcome.status = "promoted"
    except CascadeError as exc:
        outcome.reason = f"{type(exc).__name__}: {exc}"
    return outcome
