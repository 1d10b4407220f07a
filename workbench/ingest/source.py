"""The dlt source for one Nightscout site: entries and treatments (optionally devicestatus).

Each resource declares its cursor with `dlt.sources.incremental("date", lag=<overlap>)`: `date` is
epoch ms (for treatments it is derived from `created_at` during validation). The lag re-reads the
overlap window every run so late uploads are picked up; the duplicates this re-reading produces are
removed when the rows land in Iceberg (insert-new on the key). Validation happens before dlt sees a
row: bad documents go to `<table>_rejects` (without a `date`, so they never move the cursor).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import dlt
from dlt.common.schema.typing import TTableSchemaColumns
from dlt.extract.incremental import Incremental

from workbench.ingest.arrow import (
    DEVICESTATUS_TYPES,
    ENTRY_TYPES,
    REJECT_TYPES,
    TREATMENT_TYPES,
    rows_to_arrow,
)
from workbench.ingest.client import NightscoutClient
from workbench.ingest.validate import SiteContext, iso_ms_from, split_entries, split_treatments

REJECT_COLUMNS: TTableSchemaColumns = {
    "_id": {"data_type": "text", "nullable": False},
    "patient_id": {"data_type": "text", "nullable": False},
    "site_id": {"data_type": "text", "nullable": False},
    "reason": {"data_type": "text", "nullable": False},
    "payload": {"data_type": "text"},
    "_ingested_at": {"data_type": "timestamp", "timezone": True},
}


@dataclass
class ExtractCounts:
    """What the resources saw in one run (filled while dlt extracts)."""

    fetched: Counter[str] = field(default_factory=Counter)
    valid: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    since: dict[str, int] = field(default_factory=dict)


def _cursor(lag_ms: int) -> Incremental[int]:
    return dlt.sources.incremental(
        "date", initial_value=0, lag=lag_ms, on_cursor_value_missing="include", primary_key=()
    )


def _rejects(rows: list[dict[str, Any]], table: str) -> Any:
    """Reject rows as an Arrow table variant `table` of the resource, with its own column hints.

    Every item of a resource is Arrow, so dlt applies one incremental transform per resource: mixing
    Arrow and Python items gives each type its own cursor tracker, and the stale one can overwrite
    the advanced cursor when no lag is set.
    """
    hints = dlt.mark.make_hints(table_name=table, columns=REJECT_COLUMNS)
    return dlt.mark.with_hints(rows_to_arrow(rows, REJECT_TYPES), hints, create_table_variant=True)


@dlt.source(name="nightscout", max_table_nesting=0, root_key=False)
def nightscout(client: NightscoutClient, ctx: SiteContext, counts: ExtractCounts, devicestatus: bool = False) -> Any:
    """Resources for one site; `client` carries the URL and credentials, `ctx` the patient stamps."""
    lag_ms = int(client.site.overlap_minutes * 60_000)

    @dlt.resource(name="glucose_entries", write_disposition="append")
    def glucose_entries(cursor: Incremental[int] = _cursor(lag_ms)) -> Iterator[Any]:  # noqa: B008
        since = int(cursor.start_value or 0)
        counts.since["glucose_entries"] = since
        for page in client.pages("/api/v1/entries.json", "date", since):
            valid, rejects = split_entries(page, ctx)
            counts.fetched["glucose_entries"] += len(page)
            counts.valid["glucose_entries"] += len(valid)
            counts.rejected["glucose_entries"] += len(rejects)
            counts.reasons.update(r["reason"] for r in rejects)
            if valid:
                yield rows_to_arrow(valid, ENTRY_TYPES)
            if rejects:
                yield _rejects(rejects, "glucose_entries_rejects")

    @dlt.resource(name="treatments", write_disposition="append")
    def treatments(cursor: Incremental[int] = _cursor(lag_ms)) -> Iterator[Any]:  # noqa: B008
        since = int(cursor.start_value or 0)
        counts.since["treatments"] = since
        for page in client.pages("/api/v1/treatments.json", "created_at", iso_ms_from(since)):
            valid, rejects = split_treatments(page, ctx)
            counts.fetched["treatments"] += len(page)
            counts.valid["treatments"] += len(valid)
            counts.rejected["treatments"] += len(rejects)
            counts.reasons.update("treatments:" + r["reason"] for r in rejects)
            if valid:
                yield rows_to_arrow(valid, TREATMENT_TYPES)
            if rejects:
                yield _rejects(rejects, "treatments_rejects")

    @dlt.resource(name="devicestatus", write_disposition="append")
    def device_status(cursor: Incremental[int] = _cursor(lag_ms)) -> Iterator[Any]:  # noqa: B008
        since = int(cursor.start_value or 0)
        for page in client.pages("/api/v1/devicestatus.json", "created_at", iso_ms_from(since)):
            rows, rejects = split_treatments(page, ctx)  # same shape: created_at -> date, stamps
            counts.fetched["devicestatus"] += len(page)
            counts.valid["devicestatus"] += len(rows)
            counts.rejected["devicestatus"] += len(rejects)
            if rejects:
                yield _rejects(rejects, "devicestatus_rejects")
            if rows:
                yield rows_to_arrow(rows, DEVICESTATUS_TYPES)

    resources = [glucose_entries, treatments]
    if devicestatus:
        resources.append(device_status)
    return resources
