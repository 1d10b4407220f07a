"""Table writes on a branch: create-if-missing, append, overwrite (all or by filter), upsert, insert-new,
upsert-changed (insert new keys, replace rows whose `CHANGE_COLUMN` differs, skip identical ones).

Each write is one Iceberg transaction, hence one commit on the branch with a message. New columns
are added (schema evolution, never dropped); an incompatible type change is a `SchemaError`.
Concurrent writers to one table retry on commit conflicts, so no rows are lost. A keyed write
(insert_new, upsert) that loses the race is re-run from the start: the table is reloaded and the
existing keys read again on every attempt (PyIceberg's own commit retry, which would replay the
append onto the winner's snapshot without that check, is turned off for them); after
`MAX_ATTEMPTS` a one-line `ConcurrencyError`.
"""

from __future__ import annotations

import random
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import CommitFailedException, NoSuchTableError, ValidationError, ValidationException
from pyiceberg.expressions import AlwaysTrue, And, BooleanExpression, In, parser
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import assign_fresh_schema_ids
from pyiceberg.table import Table, TableProperties, Transaction
from pyiceberg.transforms import DayTransform, HourTransform, IdentityTransform, MonthTransform, YearTransform

from workbench.errors import ConcurrencyError, SchemaError, WriteError
from workbench.lake.catalog import commit_message, last_commit_id, table_key

WriteMode = Literal["append", "overwrite", "upsert", "insert_new", "upsert_changed"]
MODES: tuple[str, ...] = ("append", "overwrite", "upsert", "insert_new", "upsert_changed")
CHANGE_COLUMN = "_doc_hash"  # upsert_changed: a row whose key exists is replaced only when this differs
_TRANSFORMS = {
    "day": DayTransform,
    "hour": HourTransform,
    "month": MonthTransform,
    "year": YearTransform,
    "identity": IdentityTransform,
}
MAX_ATTEMPTS = 20
# A streamed write holds one data file's rows in memory before writing it (PyIceberg measures the
# target in uncompressed Arrow bytes; its default, 512 MiB, dominated a large build's peak RSS).
STREAM_FILE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class ParquetFiles:
    """Data an engine writes itself as Parquet files (e.g. DuckDB's multithreaded ``COPY``), for a
    whole-table overwrite: ``write(folder)`` writes the files into ``folder`` (a new folder under the
    table's data location) and returns the number of rows; the files are then registered in the table
    in one commit that also removes the old files. ``schema`` is the data's Arrow schema; where the
    files cannot be registered as they are (a table whose schema differs, a partitioned table, a
    warehouse that is not a local folder, a column type outside ``FILE_TYPES``), ``stream`` is
    written instead (a function returning a ``pa.RecordBatchReader``)."""

    schema: pa.Schema
    write: Callable[[str], int]
    stream: Callable[[], pa.RecordBatchReader]


def _file_type_ok(t: pa.DataType) -> bool:
    """Whether a column of this Arrow type is written to Parquet as the Iceberg type it maps to."""
    return bool(
        pa.types.is_boolean(t)
        or pa.types.is_signed_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_date32(t)
        or (pa.types.is_timestamp(t) and t.unit in ("us", "ns") and t.tz in (None, "UTC", "Etc/UTC"))
    )


@dataclass(frozen=True)
class WriteResult:
    """What one write did."""

    table: str
    commit_id: str | None
    snapshot_id: int | None
    rows_written: int
    rows_deleted: int
    rows_skipped: int = 0  # duplicates not written: keys already present (insert_new) or repeated in the batch
    rows_updated: int = 0  # upsert_changed: rows that replaced an existing, different version (corrections)


def to_arrow(data: Any) -> pa.Table:
    """Arrow table from Arrow or pandas, with types Iceberg accepts (µs timestamps, no null type)."""
    if isinstance(data, pa.RecordBatch):
        data = pa.Table.from_batches([data])
    if not isinstance(data, pa.Table):
        try:
            data = pa.Table.from_pandas(data, preserve_index=False)
        except Exception as exc:
            raise WriteError(f"cannot convert {type(data).__name__} to an Arrow table: {exc}") from None
    fields = []
    for f in data.schema:
        t = f.type
        if pa.types.is_timestamp(t) and t.unit == "ns":
            t = pa.timestamp("us", tz=t.tz)
        elif pa.types.is_null(t):
            t = pa.string()  # an all-null column: keep it (as text) rather than drop it
        elif pa.types.is_dictionary(t):
            t = t.value_type
        elif pa.types.is_large_string(t):
            t = pa.string()
        elif pa.types.is_date64(t):
            t = pa.date32()
        fields.append(pa.field(f.name, t, nullable=True))
    schema = pa.schema(fields)
    if schema != data.schema:
        data = data.cast(schema, safe=False)
    return data


def _spec(schema: pa.Schema, partition_by: list[tuple[str, str]] | None) -> tuple[Any, PartitionSpec]:
    iceberg_schema = assign_fresh_schema_ids(Catalog._convert_schema_if_needed(schema))
    if not partition_by:
        return iceberg_schema, PartitionSpec()
    fields = []
    for i, (column, transform) in enumerate(partition_by):
        if transform not in _TRANSFORMS:
            raise WriteError(f"unknown partition transform '{transform}'; use one of {', '.join(_TRANSFORMS)}")
        try:
            source = iceberg_schema.find_field(column)
        except ValueError:
            raise WriteError(f"cannot partition by '{column}': the data has no such column") from None
        fields.append(
            PartitionField(
                source_id=source.field_id,
                field_id=1000 + i,
                transform=_TRANSFORMS[transform](),
                name=f"{column}_{transform}",
            )
        )
    return iceberg_schema, PartitionSpec(*fields)


def _filter(where: str | BooleanExpression | None) -> BooleanExpression:
    if where is None:
        return AlwaysTrue()
    if isinstance(where, BooleanExpression):
        return where
    try:
        return parser.parse(where)
    except Exception as exc:
        raise WriteError(f"cannot parse filter {where!r}: {exc}") from None


def _evolve(tx: Transaction, table: Table, data: pa.Table) -> None:
    """Add new columns / promote types in the same transaction; refuse incompatible changes."""
    current = table.schema().as_arrow()
    new_cols = [f for f in data.schema if f.name not in current.names]
    changed = [f for f in data.schema if f.name in current.names and current.field(f.name).type != f.type]
    if not new_cols and not changed:
        return
    try:
        with tx.update_schema() as update:
            update.union_by_name(data.schema)
    except (ValidationError, ValueError, TypeError) as exc:
        raise SchemaError(
            f"cannot write to {table_key(table.name())}: {exc}; cast the column to its existing type "
            "or write it under a new name"
        ) from None


def _dedupe_last(data: pa.Table, key: list[str]) -> pa.Table:
    """Keep the last row per key (input order)."""
    if data.num_rows == 0:
        return data
    idx = pa.array(range(data.num_rows))
    grouped = data.select(key).append_column("__i", idx).group_by(key, use_threads=False).aggregate([("__i", "max")])
    keep = pc.sort_indices(grouped.column("__i_max"))
    return data.take(pc.take(grouped.column("__i_max"), keep))


def _key_filter(data: pa.Table, key: list[str]) -> BooleanExpression:
    """A filter matching (a superset of) the rows whose key is in `data`."""
    parts: list[BooleanExpression] = []
    for column in key:
        values = pc.unique(data.column(column).drop_null()).to_pylist()
        parts.append(In(column, values))  # type: ignore[misc,call-arg,arg-type]  # In's typing is narrower than its API
    expr = parts[0]
    for p in parts[1:]:
        expr = And(expr, p)
    return expr


def _existing_matching(table: Table, data: pa.Table, key: list[str], columns: list[str] | None) -> pa.Table:
    """Rows of the table whose key may match the data (pruned by Iceberg metadata)."""
    if table.current_snapshot() is None or data.num_rows == 0:
        return table.schema().as_arrow().empty_table() if columns is None else pa.table({})
    scan = table.scan(row_filter=_key_filter(data, key), selected_fields=tuple(columns) if columns else ("*",))
    return scan.to_arrow()


def _anti_join(left: pa.Table, right: pa.Table, key: list[str]) -> pa.Table:
    """Rows of `left` whose key does not occur in `right` (DuckDB hash anti-join, input order kept)."""
    if right.num_rows == 0 or left.num_rows == 0:
        return left
    con = duckdb.connect(":memory:")
    try:
        con.register("l", left.select(key).append_column("__pos", pa.array(range(left.num_rows), pa.int64())))
        con.register("r", right.select(key))
        on = " and ".join(f'l."{k}" = r."{k}"' for k in key)
        positions = con.sql(f"select l.__pos from l anti join r on {on} order by l.__pos").to_arrow_table()
    finally:
        con.close()
    return left.take(positions.column("__pos"))


def write_table(
    catalog: Any,
    table: str,
    data: Any,
    *,
    mode: WriteMode = "append",
    key: list[str] | str | None = None,
    where: str | BooleanExpression | None = None,
    partition_by: list[tuple[str, str]] | None = None,
    message: str | None = None,
    properties: dict[str, str] | None = None,
) -> WriteResult:
    """Write Arrow/pandas `data` to `table` on the catalog's branch as exactly one commit. `data` may
    also be a function returning a `pa.RecordBatchReader` (a stream: append/overwrite write it in
    bounded memory; called again if the commit loses a race)."""
    if mode not in MODES:
        raise WriteError(f"unknown write mode '{mode}'; use one of {', '.join(MODES)}")
    keys = [key] if isinstance(key, str) else list(key or [])
    if mode in ("upsert", "insert_new", "upsert_changed") and not keys:
        raise WriteError(f"mode '{mode}' needs key columns (key=[...] / --key COL)")
    if "." not in table:
        raise WriteError(f"table '{table}' must be written as namespace.table, e.g. raw.glucose_entries")
    if isinstance(data, ParquetFiles):
        if mode == "overwrite" and not keys and where is None and not partition_by:
            files = data
            registered = _retrying_optional(
                table, message, lambda: _write_files_once(catalog, table, files, properties)
            )
            if registered is not None:
                return registered
        data = data.stream  # not registrable as written: the files path's fallback
    if callable(data):  # a stream: each call gives a fresh pa.RecordBatchReader (replayable on retry)
        if not keys and mode in ("append", "overwrite") and not partition_by:
            # PyIceberg writes it in files of bounded size (``write.target-file-size-bytes``), one
            # commit, without holding the whole data; a lost commit race reads the stream again
            return _retrying(
                table, message, lambda: _write_stream_once(catalog, table, data(), mode, where, properties)
            )
        data = data().read_all()  # keyed or partitioned writes need the whole batch
    arrow = to_arrow(data)
    missing = [k for k in keys if k not in arrow.column_names]
    if missing:
        raise WriteError(
            f"key column(s) {', '.join(missing)} not in the data (columns: {', '.join(arrow.column_names)})"
        )
    in_batch_duplicates = 0
    if keys:
        deduped = _dedupe_last(arrow, keys)
        in_batch_duplicates, arrow = arrow.num_rows - deduped.num_rows, deduped

    result = _retrying(
        table,
        message,
        lambda: _write_once(catalog, table, arrow, mode, keys, where, partition_by, properties, message),
    )
    return replace(result, rows_skipped=result.rows_skipped + in_batch_duplicates)


def _retrying_optional(table: str, message: str | None, write: Callable[[], WriteResult | None]) -> WriteResult | None:
    """``_retrying`` for a write that may decline (None: nothing was committed)."""
    declined: list[bool] = []

    def attempt() -> WriteResult:
        result = write()
        if result is None:
            declined.append(True)
            return WriteResult(table, None, None, 0, 0)
        return result

    result = _retrying(table, message, attempt)
    return None if declined else result


def _retrying(table: str, message: str | None, write: Callable[[], WriteResult]) -> WriteResult:
    """``write()`` as one commit with ``message``, started again from the new state after a lost race."""
    for attempt in range(MAX_ATTEMPTS):
        try:
            with commit_message(message):
                return write()
        except (CommitFailedException, ValidationException):  # lost a race: start again from the new state
            time.sleep(min(2.0, 0.05 * 2**attempt) * random.uniform(0.5, 1.5))
    raise ConcurrencyError(
        f"could not commit to {table} after {MAX_ATTEMPTS} attempts: too many concurrent writers; run it again"
    )


def _write_stream_once(
    catalog: Any,
    table: str,
    reader: pa.RecordBatchReader,
    mode: str,
    where: str | BooleanExpression | None,
    properties: dict[str, str] | None,
) -> WriteResult:
    schema = to_arrow(reader.schema.empty_table()).schema  # the types Iceberg accepts
    rows = [0]

    def stream(target: pa.Schema) -> pa.RecordBatchReader:
        def batches() -> Any:
            for batch in reader:
                aligned = _align_to(to_arrow(pa.Table.from_batches([batch])), target, table)
                rows[0] += aligned.num_rows
                yield from aligned.to_batches()

        return pa.RecordBatchReader.from_batches(target, batches())

    try:
        tbl: Table | None = catalog.load_table(table)
    except NoSuchTableError:
        tbl = None
    file_size = {TableProperties.WRITE_TARGET_FILE_SIZE_BYTES: str(STREAM_FILE_BYTES)}
    if tbl is None:
        iceberg_schema, spec = _spec(schema, None)
        create = catalog.create_table_transaction(
            table, iceberg_schema, partition_spec=spec, properties={**file_size, **(properties or {})}
        )
        create.append(stream(schema))
        create.commit_transaction()
        return _result(table, catalog.load_table(table), rows[0], 0, 0)
    if not tbl.spec().is_unpartitioned():  # PyIceberg streams only into unpartitioned tables
        return _write_once(catalog, table, to_arrow(reader.read_all()), mode, [], where, None, properties)
    tx = tbl.transaction()
    if tbl.metadata.properties.get(TableProperties.WRITE_TARGET_FILE_SIZE_BYTES) != str(STREAM_FILE_BYTES):
        tx.set_properties(file_size)
    _evolve(tx, tbl, schema.empty_table())
    evolved = tx.table_metadata.schema().as_arrow()
    target = _align_to(schema.empty_table(), evolved, table).schema
    if mode == "append":
        tx.append(stream(target))
    else:
        tx.overwrite(stream(target), overwrite_filter=_filter(where))
    before = frozenset(s.snapshot_id for s in tbl.metadata.snapshots)
    tx.commit_transaction()
    return _result(table, catalog.load_table(table), rows[0], -1 if mode == "overwrite" else 0, 0, before)


def _local_folder(location: str) -> str | None:
    """The local path of a ``file://`` (or plain path) location; None for object stores."""
    if location.startswith("file://"):
        return location.removeprefix("file://")
    return location if location.startswith("/") else None


def _write_files_once(
    catalog: Any, table: str, files: ParquetFiles, properties: dict[str, str] | None
) -> WriteResult | None:
    """Replace the whole table by the files ``files.write`` writes, as one commit (old files removed,
    new files added: a crash before the commit leaves the table wholly old, the files unreferenced).
    None when the files cannot be registered as written (the caller streams instead)."""
    schema = to_arrow(files.schema.empty_table()).schema
    if not all(_file_type_ok(f.type) for f in schema):
        return None
    iceberg_schema, spec = _spec(schema, None)
    try:
        tbl: Table | None = catalog.load_table(table)
    except NoSuchTableError:
        tbl = None
    tx: Transaction
    if tbl is None:
        tx = catalog.create_table_transaction(table, iceberg_schema, partition_spec=spec, properties=properties or {})
    else:
        current = tbl.schema()
        same = [(f.name, f.field_type) for f in current.fields] == [
            (f.name, f.field_type) for f in iceberg_schema.fields
        ]
        if not same or not tbl.spec().is_unpartitioned():
            return None  # schema evolution or a partitioned table: the stream path handles them
        tx = tbl.transaction()
    location = tx.table_metadata.location.rstrip("/")
    folder = _local_folder(f"{location}/data/{uuid.uuid4().hex}")
    if folder is None:
        return None
    try:
        Path(folder).parent.mkdir(parents=True, exist_ok=True)
        rows = files.write(folder)
        paths = sorted(str(p) for p in Path(folder).glob("*.parquet")) if Path(folder).is_dir() else []
        held = sum(pq.read_metadata(p).num_rows for p in paths)
        if held != rows:  # never commit files that do not hold what was written
            raise WriteError(
                f"{table}: {rows} rows were written but the Parquet files in {folder} hold {held}; "
                "write them as *.parquet files inside that folder"
            )
        if tbl is not None and tbl.current_snapshot() is not None:
            tx.delete(AlwaysTrue())
        if paths:  # named as the table's location names them (file://…), like PyIceberg's own files
            scheme = "file://" if location.startswith("file://") else ""
            tx.add_files([scheme + p for p in paths], check_duplicate_files=False)
        before = frozenset(s.snapshot_id for s in tbl.metadata.snapshots) if tbl is not None else frozenset()
        tx.commit_transaction()
    except BaseException:
        # never registered: nothing refers to them
        if Path(folder).is_dir():
            shutil.rmtree(folder, ignore_errors=True)
        else:
            Path(folder).unlink(missing_ok=True)
        raise
    return _result(table, catalog.load_table(table), rows, -1 if tbl is not None else 0, 0, before)


def _without_commit_retry(tbl: Table) -> Table:
    """The same table whose transactions never replay themselves on a conflict (the caller re-runs
    the whole write instead, re-checking keys). Only the in-memory properties differ; commits carry
    explicit updates, so nothing of this is written to the table's metadata."""
    properties = {**tbl.metadata.properties, TableProperties.COMMIT_NUM_RETRIES: "0"}
    metadata = tbl.metadata.model_copy(update={"properties": properties})
    return Table(tbl._identifier, metadata, tbl.metadata_location, tbl.io, tbl.catalog)


def _write_once(
    catalog: Any,
    table: str,
    arrow: pa.Table,
    mode: str,
    keys: list[str],
    where: str | BooleanExpression | None,
    partition_by: list[tuple[str, str]] | None,
    properties: dict[str, str] | None,
    message: str | None = None,
) -> WriteResult:
    try:
        tbl: Table | None = catalog.load_table(table)
    except NoSuchTableError:
        tbl = None

    if tbl is None:
        schema, spec = _spec(arrow.schema, partition_by)
        create = catalog.create_table_transaction(table, schema, partition_spec=spec, properties=properties or {})
        if arrow.num_rows:
            create.append(arrow)
        create.commit_transaction()
        tbl = catalog.load_table(table)
        return _result(table, tbl, arrow.num_rows, 0, 0)

    written, deleted, skipped, updated = arrow.num_rows, 0, 0, 0
    if mode == "upsert_changed":
        arrow, skipped, updated = _changed_rows(tbl, arrow, keys)
        written = arrow.num_rows
        if arrow.num_rows == 0:
            return WriteResult(table, None, tbl.metadata.current_snapshot_id, 0, 0, skipped)
        mode = "upsert" if updated else "insert_new"
    if mode == "insert_new":
        existing = _existing_matching(tbl, arrow, keys, keys)
        arrow = _anti_join(arrow, existing, keys)
        skipped, written = written - arrow.num_rows, arrow.num_rows
        if arrow.num_rows == 0:
            return WriteResult(table, None, tbl.metadata.current_snapshot_id, 0, 0, skipped)
    tx = (_without_commit_retry(tbl) if keys else tbl).transaction()
    _evolve(tx, tbl, arrow)
    evolved = tx.table_metadata.schema().as_arrow()
    aligned = _align_to(arrow, evolved, table)
    if mode in ("append", "insert_new"):
        if aligned.num_rows:
            tx.append(aligned)
    elif mode == "overwrite":
        tx.overwrite(aligned, overwrite_filter=_filter(where))
        deleted = -1  # counted from the snapshot summaries below
    else:  # upsert
        existing = _existing_matching(tbl, aligned, keys, None)
        kept = _anti_join(existing, aligned, keys) if len(keys) > 1 else existing.slice(0, 0)
        deleted = existing.num_rows - kept.num_rows
        if aligned.num_rows:
            combined = pa.concat_tables([aligned, _align_to(kept, evolved, table)], promote_options="default")
            tx.overwrite(combined, overwrite_filter=_key_filter(aligned, keys))
    if not tx._updates:
        return WriteResult(table, None, tbl.metadata.current_snapshot_id, 0, 0, skipped)
    before = frozenset(s.snapshot_id for s in tbl.metadata.snapshots)
    if updated:  # the commit says it corrects rows (the old versions stay in the commit before)
        with commit_message(f"{message or 'upsert ' + table}; {written - updated} new, {updated} updated"):
            tx.commit_transaction()
    else:
        tx.commit_transaction()
    tbl = catalog.load_table(table)
    return replace(_result(table, tbl, written, deleted, skipped, before), rows_updated=updated)


def _changed_rows(tbl: Table, data: pa.Table, keys: list[str]) -> tuple[pa.Table, int, int]:
    """(rows to write: new keys and changed versions, identical rows skipped, changed rows)."""
    if CHANGE_COLUMN not in data.column_names or CHANGE_COLUMN not in tbl.schema().column_names:
        existing = _existing_matching(tbl, data, keys, keys)
        fresh = _anti_join(data, existing, keys)
        return fresh, data.num_rows - fresh.num_rows, 0
    existing = _existing_matching(tbl, data, keys, [*keys, CHANGE_COLUMN])
    if existing.num_rows == 0:
        return data, 0, 0
    con = duckdb.connect(":memory:")
    try:
        positions = pa.array(range(data.num_rows), pa.int64())
        con.register("l", data.select([*keys, CHANGE_COLUMN]).append_column("__pos", positions))
        con.register("r", existing)
        on = " and ".join(f'l."{k}" = r."{k}"' for k in keys)
        c = f'"{CHANGE_COLUMN}"'
        # an existing row without a hash (written before hashes existed) counts as the same version
        k0 = f'"{keys[0]}"'
        picked = con.sql(
            f"select l.__pos, bool_or(r.{k0} is not null) as updated from l left join r on {on} "
            f"group by l.__pos, l.{c} "
            f"having bool_or(r.{k0} is null) or bool_or(r.{c} is not null and r.{c} is distinct from l.{c}) "
            "order by l.__pos"
        ).to_arrow_table()
    finally:
        con.close()
    rows = data.take(picked.column("__pos"))
    updated = int(pc.sum(picked.column("updated")).as_py() or 0)
    return rows, data.num_rows - rows.num_rows, updated


def _align_to(data: pa.Table, schema: pa.Schema, table: str) -> pa.Table:
    columns, names = [], []
    for f in data.schema:
        col = data.column(f.name)
        if f.name in schema.names and schema.field(f.name).type != col.type:
            want = schema.field(f.name).type
            try:
                col = col.cast(want)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                raise SchemaError(
                    f"column '{f.name}' of {table} is {want}; the new data has {f.type}, which cannot be "
                    "converted; cast it or write it under a new name"
                ) from None
        columns.append(col)
        names.append(f.name)
    return pa.table(columns, names=names)


def _total(snapshot: Any) -> int:
    return int((snapshot.summary.get("total-records") if snapshot and snapshot.summary else None) or 0)


def _result(
    table: str, tbl: Table, written: int, deleted: int, skipped: int, before: frozenset[int] = frozenset()
) -> WriteResult:
    snapshot = tbl.current_snapshot()
    if deleted < 0:  # logical rows removed: rows before + rows written - rows after
        snap = snapshot
        while snap is not None and snap.parent_snapshot_id is not None and snap.snapshot_id not in before:
            snap = tbl.snapshot_by_id(snap.parent_snapshot_id)
        rows_before = _total(snap) if snap is not None and snap.snapshot_id in before else 0
        deleted = max(0, rows_before + written - _total(snapshot))
    return WriteResult(
        table=table,
        commit_id=last_commit_id(),
        snapshot_id=snapshot.snapshot_id if snapshot else None,
        rows_written=written,
        rows_deleted=deleted,
        rows_skipped=skipped,
    )
