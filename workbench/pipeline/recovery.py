"""Recovery after a failed audit: the next run starts `dev` again from `main`, keeping the data.

When a run's audit fails, nothing is promoted and the rejected batch stays on `dev`; without help
every later run would audit the same bad state and fail the same way. So at the start of the next
run (`recover_after_failed_audit`, called by the pipeline runner):

1. the failed state of `dev` is kept as the tag `audit-failed-<run id>` (inspect it with
   `cascade log audit-failed-<run id>` or `Lakehouse("audit-failed-<run id>")`);
2. `dev` is reset to `main` (the derived layers built from the bad batch are gone);
3. the valid raw rows not yet promoted are carried over from the tag into `dev` (insert-new on
   each raw table's key), so nothing ingested is lost although dlt's cursors have moved past it. A
   source that was fixed meanwhile sends corrected documents, which land as updates (see
   `workbench.ingest.loader`). The quarantined records of the failed batch (`raw.*_rejects`) are
   not carried: they stay in the tag, so a batch rejected for too many of them does not fail the
   next audit again.

A run is recovered once: the tag marks it. `cascade runs <run id>` prints how to look at it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from workbench.settings import DEV_BRANCH, MAIN_BRANCH, Settings, get_settings

FAILED_TAG_PREFIX = "audit-failed-"
AUDIT_TASK = "audit"


@dataclass(frozen=True)
class Recovery:
    """What recovering from a failed audit did."""

    failed_run_id: str
    tag: str
    carried: dict[str, int] = field(default_factory=dict)  # raw table -> rows carried into dev

    def line(self) -> str:
        rows = sum(self.carried.values())
        return (
            f"the audit of run {self.failed_run_id} failed: its batch is kept as tag {self.tag}; "
            f"dev was restarted from main with {rows} raw rows not yet promoted"
        )


def failed_tag(run_id: str) -> str:
    return f"{FAILED_TAG_PREFIX}{run_id}"


def failed_audit_run(settings: Settings | None = None) -> str | None:
    """The run whose audit failed last, unless a later audit passed; None otherwise."""
    from workbench.pipeline.history import history_store

    latest = None
    for record in history_store(settings).records():
        if record.task != AUDIT_TASK or record.status not in ("failed", "success"):
            continue
        if latest is None or (record.started_at, record.run_id) >= (latest.started_at, latest.run_id):
            latest = record
    return latest.run_id if latest is not None and latest.status == "failed" else None


def recover_after_failed_audit(
    settings: Settings | None = None, *, branch: str = DEV_BRANCH, baseline: str = MAIN_BRANCH
) -> Recovery | None:
    """Restart `branch` from `baseline` plus its raw data not yet promoted, when the last audit
    failed and that run was not recovered yet (see the module docstring); None when nothing to do."""
    from workbench.ingest.loader import RAW_TABLES
    from workbench.lakehouse import Lakehouse

    settings = settings or get_settings()
    run_id = failed_audit_run(settings)
    if run_id is None:
        return None
    tag = failed_tag(run_id)
    lake = Lakehouse(branch, settings=settings)
    names = {ref.name for ref in lake.refs()}
    if tag in names or branch not in names or baseline not in names:
        return None
    lake.tag(tag, from_ref=branch)
    lake.reset(branch, baseline)
    failed, dev = Lakehouse(tag, settings=settings), Lakehouse(branch, settings=settings)
    present = set(failed.tables())
    carried: dict[str, int] = {}
    keyed = [(t, k) for t, k in RAW_TABLES.values() if not t.endswith("_rejects")]
    for table, key in [*keyed, ("raw.patients", ["site_id"])]:
        if table not in present:
            continue
        data = failed.sql_arrow(f"select * from {table}")  # noqa: S608 - a fixed table name
        if data.num_rows == 0:
            continue
        written = dev.write(
            table,
            data,
            mode="insert_new",
            key=key,
            message=f"recover after the failed audit of run {run_id}: {table} rows not yet promoted",
        )
        carried[table] = written.rows_written
    return Recovery(run_id, tag, carried)


def inspect_hint(run_id: str, settings: Settings | None = None) -> str | None:
    """How to look at a run's failed batch, when it was kept (for `cascade runs <run id>`)."""
    from workbench.lakehouse import Lakehouse

    tag = failed_tag(run_id)
    if tag not in {ref.name for ref in Lakehouse(MAIN_BRANCH, settings=settings).refs()}:
        return None
    return (
        f"the failed batch is kept as tag {tag}: cascade log {tag}; "
        f'in Python Lakehouse("{tag}").sql(...); the next run restarted dev from main with its raw data'
    )
