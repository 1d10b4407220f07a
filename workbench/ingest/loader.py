"""Stage → Iceberg: land pending Parquet load packages in the `raw` tables of a branch.

Each raw table gets one insert-new write (one atomic Iceberg commit) per landing, keyed on
(`site_id`, `_id`): rows already in the table — from an earlier run, an overlapping window, or a
package landed twice after a crash — are skipped, so any number of runs adds zero duplicates. New
columns in the staged files are added to the table (schema evolution in `Lakehouse.write`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from workbench.ingest.sites import Site
from workbench.ingest.stage import StageArea

# staged table -> (raw table, key)
RAW_TABLES: dict[str, tuple[str, list[str]]] = {
    "glucose_entries": ("raw.glucose_entries", ["site_id", "_id"]),
    "treatments": ("raw.treatments", ["site_id", "_id"]),
    "glucose_entries_rejects": ("raw.glucose_entries_rejects", ["site_id", "_id"]),
    "treatments_rejects": ("raw.treatments_rejects", ["site_id", "_id"]),
    "devicestatus": ("raw.devicestatus", ["site_id", "_id"]),
    "devicestatus_rejects": ("raw.devicestatus_rejects", ["site_id", "_id"]),
}
_DROP = ("_dlt_id",)


@dataclass
class LandedTable:
    """What landing did to one raw table."""

    table: str
    staged: int
    new: int
    duplicate: int
    commit_id: str | None


@dataclass
class LandResult:
    load_ids: list[str] = field(default_factory=list)
    tables: dict[str, LandedTable] = field(default_factory=dict)


def read_staged(area: StageArea, table: str, load_ids: list[str]) -> pa.Table | None:
    """All staged rows of `table` from the given packages (columns unified, dlt row ids dropped)."""
    files = area.files(table, load_ids)
    if not files:
        return None
    parts = [pq.read_table(path) for path in files]
    data = pa.concat_tables(parts, promote_options="permissive") if len(parts) > 1 else parts[0]
    drop = [c for c in _DROP if c in data.column_names]
    if table.endswith("_rejects") and "date" in data.column_names:
        drop.append("date")  # the always-null cursor column of reject rows (see arrow.REJECT_TYPES)
    return data.drop_columns(drop)


def land_pending(lakehouse: Any, area: StageArea) -> LandResult:
    """Land every pending package of the stage area in `lakehouse` (a `Lakehouse` on the branch)."""
    result = LandResult(load_ids=area.pending())
    if not result.load_ids:
        return result
    first, last = result.load_ids[0], result.load_ids[-1]
    span = first if first == last else f"{first}..{last}"
    for staged_name, (raw_table, key) in RAW_TABLES.items():
        data = read_staged(area, staged_name, result.load_ids)
        if data is None or data.num_rows == 0:
            continue
        written = lakehouse.write(
            raw_table,
            data,
            mode="insert_new",
            key=key,
            message=f"ingest nightscout site {area.site_id}: {raw_table} from load {span}",
        )
        result.tables[raw_table] = LandedTable(
            table=raw_table,
            staged=data.num_rows,
            new=written.rows_written,
            duplicate=data.num_rows - written.rows_written,
            commit_id=written.commit_id,
        )
    area.mark_landed(
        result.load_ids,
        {"branch": area.branch, "tables": {t: r.new for t, r in result.tables.items()}},
    )
    return result


def patients_row(site: Site) -> pa.Table:
    """The `raw.patients` row of a site (no secrets: the URL without user info or query)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(site.url)
    host = parts.hostname or ""
    netloc = host + (f":{parts.port}" if parts.port else "")
    clean = urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    return pa.table(
        {
            "patient_id": [site.patient_id],
            "display_name": [site.display_name or site.patient_id],
            "time_zone": [site.time_zone],
            "site_id": [site.site_id],
            "site_url": [clean],
        }
    )


def land_patient(lakehouse: Any, site: Site) -> bool:
    """Upsert the site's `raw.patients` row when it is new or changed; True when a commit was made."""
    row = patients_row(site)
    if "raw.patients" in lakehouse.tables():
        current = lakehouse.sql(
            "select patient_id, display_name, time_zone, site_id, site_url from raw.patients where site_id = ?",
            [site.site_id],
        )
        if current.to_dict("records") == row.to_pylist():
            return False
    with warnings.catch_warnings():  # PyIceberg warns when an upsert's delete matches nothing (a new row)
        warnings.filterwarnings("ignore", message="Delete operation did not match any records")
        lakehouse.write(
            "raw.patients",
            row,
            mode="upsert",
            key=["site_id"],
            message=f"ingest nightscout site {site.site_id}: patient",
        )
    return True
