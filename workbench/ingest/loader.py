"""Stage → Iceberg: land pending Parquet load packages in the `raw` tables of a branch.

Each raw table gets one insert-new write (one atomic Iceberg commit) per landing, keyed on
(`site_id`, `_id`): rows already in the table — from an earlier run, an overlapping window, or a
package landed twice after a crash — are skipped, so any number of runs adds zero duplicates. New
columns in the staged files are added to the table (schema evolution in `Lakehouse.write`).
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from workbench.errors import ConcurrencyError, LockedError
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
# a changed document for a key already landed is a correction: the row is updated (the old version
# stays reachable in the commit before); identical re-reads are skipped
CORRECTABLE = ("glucose_entries", "treatments")


@dataclass
class LandedTable:
    """What landing did to one raw table."""

    table: str
    staged: int
    new: int
    duplicate: int
    commit_id: str | None
    updated: int = 0  # corrections: a changed document for a key already in the table


@dataclass
class LandResult:
    load_ids: list[str] = field(default_factory=list)
    tables: dict[str, LandedTable] = field(default_factory=dict)
    quarantined: dict[str, str] = field(default_factory=dict)  # load id -> why it cannot be landed

    def add(self, other: LandResult) -> None:
        self.load_ids += other.load_ids
        self.quarantined.update(other.quarantined)
        for name, t in other.tables.items():
            mine = self.tables.get(name)
            if mine is None:
                self.tables[name] = t
            else:
                self.tables[name] = LandedTable(
                    name,
                    mine.staged + t.staged,
                    mine.new + t.new,
                    mine.duplicate + t.duplicate,
                    t.commit_id,
                    mine.updated + t.updated,
                )


# failures that say nothing about the package (another writer, a full disk, a held lock): the
# package stays pending and is landed by the next run
_TRANSIENT: tuple[type[BaseException], ...] = (ConcurrencyError, LockedError, OSError, MemoryError)


def _convert(column: pa.ChunkedArray, want: pa.DataType) -> pa.ChunkedArray | None:
    """`column` as type `want` without losing information, or None when that is not possible."""
    try:
        if pa.types.is_string(want) or pa.types.is_large_string(want):
            return column.cast(want)  # numbers, booleans, timestamps have a faithful text form
        return column.cast(want, safe=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None


def _variant_name(name: str, kind: pa.DataType) -> str:
    return f"{name}__v_{re.sub(r'[^a-z0-9]+', '_', str(kind).lower()).strip('_')}"


def unify(parts: list[pa.Table], existing: pa.Schema | None) -> pa.Table:
    """One table from staged parts whose column types may disagree with each other or with the raw
    table (a field that changed type at the source). A column keeps its first type; values that
    cannot be converted to it losslessly go to a variant column `<name>__v_<type>`, so no value is
    dropped and no run fails on a type change."""
    target: dict[str, pa.DataType] = {f.name: f.type for f in existing} if existing is not None else {}
    unified = []
    for part in parts:
        columns, names = [], []
        for spec in part.schema:
            column, name = part.column(spec.name), spec.name
            want = target.setdefault(name, spec.type)
            if spec.type != want:
                converted = _convert(column, want)
                if converted is None:
                    name = _variant_name(spec.name, spec.type)
                    want = target.setdefault(name, spec.type)
                    converted = _convert(column, want) if spec.type != want else column
                    if converted is None:  # a variant of a variant: keep the text form
                        name = _variant_name(spec.name, pa.string())
                        converted = column.cast(pa.string())
                        target.setdefault(name, pa.string())
                column = converted
            columns.append(column)
            names.append(name)
        unified.append(pa.table(columns, names=names))
    if len(unified) == 1:
        return unified[0]
    return pa.concat_tables(unified, promote_options="default")


def read_staged(area: StageArea, table: str, load_ids: list[str], existing: pa.Schema | None = None) -> pa.Table | None:
    """All staged rows of `table` from the given packages, aligned to the raw table's `existing`
    schema (see `unify`), without dlt's row ids."""
    files = area.files(table, load_ids)
    if not files:
        return None
    parts = []
    for path in files:
        part = pq.read_table(path)
        drop = [c for c in _DROP if c in part.column_names]
        if table.endswith("_rejects") and "date" in part.column_names:
            drop.append("date")  # the always-null cursor column of reject rows (see arrow.REJECT_TYPES)
        parts.append(part.drop_columns(drop))
    return unify(parts, existing)


def land_pending(lakehouse: Any, area: StageArea) -> LandResult:
    """Land every pending package of the stage area in `lakehouse` (a `Lakehouse` on the branch).

    When they cannot be landed together, each is landed alone, and a package that cannot be landed
    at all (its data cannot be represented in the table) is quarantined whole (`StageArea.quarantine`)
    with its reason, so it never blocks a later run. Transient failures propagate; the packages
    stay pending."""
    pending = area.pending()
    try:
        return _land(lakehouse, area, pending)
    except _TRANSIENT:
        raise
    except Exception as exc:
        if len(pending) <= 1:
            return _quarantined(area, pending, exc)
    result = LandResult()
    for load_id in pending:
        try:
            result.add(_land(lakehouse, area, [load_id]))
        except _TRANSIENT:
            raise
        except Exception as exc:
            result.add(_quarantined(area, [load_id], exc))
    return result


def _quarantined(area: StageArea, load_ids: list[str], exc: BaseException) -> LandResult:
    text = str(exc).splitlines()[0] if str(exc) else ""
    reason = f"cannot be landed: {type(exc).__name__}: {text}"[:500]
    for load_id in load_ids:
        area.quarantine(load_id, reason)
    return LandResult(quarantined={load_id: reason for load_id in load_ids})


def _land(lakehouse: Any, area: StageArea, load_ids: list[str]) -> LandResult:
    result = LandResult(load_ids=list(load_ids))
    if not result.load_ids:
        return result
    first, last = result.load_ids[0], result.load_ids[-1]
    span = first if first == last else f"{first}..{last}"
    tables = set(lakehouse.tables())
    for staged_name, (raw_table, key) in RAW_TABLES.items():
        existing = lakehouse.table(raw_table).schema().as_arrow() if raw_table in tables else None
        data = read_staged(area, staged_name, result.load_ids, existing)
        if data is None or data.num_rows == 0:
            continue
        written = lakehouse.write(
            raw_table,
            data,
            mode="upsert_changed" if staged_name in CORRECTABLE else "insert_new",
            key=key,
            message=f"ingest nightscout site {area.site_id}: {raw_table} from load {span}",
        )
        result.tables[raw_table] = LandedTable(
            table=raw_table,
            staged=data.num_rows,
            new=written.rows_written - written.rows_updated,
            duplicate=data.num_rows - written.rows_written,
            commit_id=written.commit_id,
            updated=written.rows_updated,
        )
    area.mark_landed(
        result.load_ids,
        {"branch": area.branch, "tables": {t: r.new for t, r in result.tables.items()}},
    )
    return result


# Raw tables the transforms read as dbt sources: they must exist even when no site has sent such a
# record yet (a CGM-only site has no treatments), so a fresh lake gets them empty.
SOURCE_TABLES = ("glucose_entries", "treatments")


def empty_schema(staged_name: str) -> pa.Schema:
    """The schema a staged table lands with (dlt's snake_case names of the known fields)."""
    from dlt.common.normalizers.naming.snake_case import NamingConvention

    from workbench.ingest.arrow import ENTRY_TYPES, TREATMENT_TYPES

    known = {"glucose_entries": ENTRY_TYPES, "treatments": TREATMENT_TYPES}[staged_name]
    naming = NamingConvention()
    return pa.schema([pa.field(naming.normalize_identifier(name), kind) for name, kind in known.items()])


def ensure_source_tables(lakehouse: Any) -> list[str]:
    """Create the raw source tables that do not exist yet, empty; returns those created."""
    tables = set(lakehouse.tables())
    created = []
    for staged_name in SOURCE_TABLES:
        raw_table = RAW_TABLES[staged_name][0]
        if raw_table in tables:
            continue
        lakehouse.write(
            raw_table,
            empty_schema(staged_name).empty_table(),
            mode="append",
            message=f"ingest: create {raw_table} (no such records yet)",
        )
        created.append(raw_table)
    return created


def patients_row(site: Site, time_zone_since: datetime | None = None) -> pa.Table:
    """The `raw.patients` row of a site (no secrets: the URL without user info or query).

    `time_zone` is the one source of a patient's zone: bronze cuts every reading's day with it.
    `time_zone_since` is when that zone was landed (the ingestion time of the run that first saw it):
    bronze stamps a patient's rows with it, so a corrected zone re-cuts that patient's days and every
    incremental model after bronze sees them as changed."""
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
            "time_zone_since": pa.array([time_zone_since], pa.timestamp("us", tz="UTC")),
        }
    )


_PATIENT_FIELDS = ("patient_id", "display_name", "time_zone", "site_id", "site_url")


def land_patient(lakehouse: Any, site: Site, now: datetime | None = None) -> bool:
    """Upsert the site's `raw.patients` row when it is new or changed; True when a commit was made.
    A new patient or a changed time zone gets `time_zone_since = now` (the run's ingestion time);
    any other change keeps the stored one."""
    now = now or datetime.now(UTC)
    since: datetime | None = now
    if "raw.patients" in lakehouse.tables():
        current = lakehouse.sql_arrow("select * from raw.patients where site_id = ?", [site.site_id]).to_pylist()
        wanted = patients_row(site).to_pylist()[0]
        if current and current[0].get("time_zone") == site.time_zone:
            since = current[0].get("time_zone_since")  # (empty on a lake from before it: bronze reads "always")
            if "time_zone_since" in current[0] and all(current[0].get(k) == wanted[k] for k in _PATIENT_FIELDS):
                return False
    with warnings.catch_warnings():  # PyIceberg warns when an upsert's delete matches nothing (a new row)
        warnings.filterwarnings("ignore", message="Delete operation did not match any records")
        lakehouse.write(
            "raw.patients",
            patients_row(site, since),
            mode="upsert",
            key=["site_id"],
            message=f"ingest nightscout site {site.site_id}: patient",
        )
    return True
