"""dbt-duckdb plugin: DuckDB reads the branch's Iceberg tables, models are written back as Iceberg.

Configured in ``transforms/profiles.yml`` (``module: workbench.transform.plugin``, alias ``cascade``):

- ``configure_connection``: with ``lake: true``, attaches every table of the ref as ``schema.table``
  views (``workbench.sql.duckdb.attach_ref``); the Python metrics are not UDFs but tables computed
  before the marts (``workbench.transform.computed``), so they serve every engine — on duckdb when
  the model ``glucose_computed`` (config ``cascade_computed``) is stored, inside the same dbt run;
- ``store``: called by the project's ``table``/``incremental`` materializations; runs the model's SQL
  and writes the result through ``Lakehouse(ref=...).write``: a whole table is written by DuckDB's
  multithreaded Parquet writer (``COPY ... TO``) straight into a new folder of the table's data
  location and registered in Iceberg in one commit that drops the old files
  (``workbench.lake.writes.ParquetFiles``; streamed as record batches where the files cannot be
  registered as written); an incremental model overwrites by filter on its ``unique_key`` days, those
  of its new rows and those a corrected zone re-cuts (macro ``recut_keys``). Then the model's view is
  re-attached. With ``lake: false`` (target
  ``duckdb_file``) the result becomes a plain DuckDB table instead.

Every write is recorded in ``WRITES`` so the runner can report rows per model.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from dbt.adapters.duckdb.plugins import BasePlugin
from dbt.adapters.duckdb.utils import TargetConfig

from workbench.errors import SchemaError
from workbench.lake.api import DEV_BRANCH
from workbench.lake.writes import ParquetFiles
from workbench.settings import Settings, get_settings, load_settings
from workbench.sql.quoting import quote_ident as _quote
from workbench.transform.errors import ModelWriteError


@dataclass(frozen=True)
class ModelWrite:
    """What one model build wrote."""

    model: str
    table: str
    mode: str
    rows_written: int
    rows_deleted: int
    keys_replaced: int
    commit_id: str | None
    seconds: float
    cpu_seconds: float = 0.0  # process CPU of all threads (DuckDB's too); models are stored one at a time
    peak_rss_mb: float = 0.0  # the process's peak RSS so far (VmHWM), after this model


def _peak_rss_mb() -> float:
    """The process's peak resident set size so far (ru_maxrss, kB on Linux: VmHWM)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


WRITES: dict[str, ModelWrite] = {}
STREAM_BATCH_ROWS = 256_000  # rows per record batch when a whole model is streamed to Iceberg
COPY_FILE_BYTES = 64 * 1024 * 1024  # Parquet file size when DuckDB writes a whole model's files itself
_COMPUTED: Any = None  # the ComputeResult of the last metrics step of this invocation
_WRITES_LOCK = threading.Lock()


def _literal(value: Any) -> str:
    text = str(value).replace("'", "''")
    return f"'{text}'"


class Plugin(BasePlugin):
    """The Cascade plugin (see module docstring)."""

    def initialize(self, plugin_config: dict[str, Any]) -> None:
        """Read ``lake`` (write Iceberg, default true) and ``ref`` (the branch) from the profile."""
        self.lake = bool(plugin_config.get("lake", True))
        self.ref = str(plugin_config.get("ref") or DEV_BRANCH)
        self._home = str(plugin_config.get("cascade_home") or "")
        self._warehouse = str(plugin_config.get("warehouse") or "")
        self._demo_end = str(plugin_config.get("demo_end") or "")  # the runner's pinned clock, if any
        self._settings: Settings | None = None
        self._conn: duckdb.DuckDBPyConnection | None = None
        self._session: Any = None  # workbench.sql.duckdb.RefSession bound to dbt's connection
        self._lock = threading.Lock()

    def configure_connection(self, conn: duckdb.DuckDBPyConnection) -> None:
        """Attach the branch's tables (lake mode); times with a zone in UTC on every cursor."""
        from workbench.sql.duckdb import use_utc

        self._conn = conn
        use_utc(conn)
        if self.lake:
            self._attach(conn)

    @property
    def settings(self) -> Settings:
        """The runner's settings: home, warehouse and the pinned clock arrive as dbt vars, the rest as usual."""
        if self._settings is None:
            overrides: dict[str, Any] = {}
            if self._home:
                overrides["home"] = self._home
            if self._warehouse:
                overrides["warehouse"] = self._warehouse
            if self._demo_end:
                overrides["demo_end"] = self._demo_end
            self._settings = load_settings(**overrides) if overrides else get_settings()
        return self._settings

    def _attach(self, conn: duckdb.DuckDBPyConnection) -> None:
        from workbench.sql.duckdb import attach_ref

        self._session = attach_ref(conn, self.ref, settings=self.settings)

    def _refresh_view(self, table_name: str) -> None:
        """Point the model's view in dbt's connection at the table's new snapshot.

        Only this table is reloaded (re-binding every table of the ref after each model costs a
        metadata load per table per model).
        """
        if self._session is not None:
            self._session.refresh_table(table_name)

    def store(self, target_config: TargetConfig) -> None:
        """Run the model's SQL and write its result (see module docstring)."""
        if self._conn is None:
            raise ModelWriteError("the cascade dbt plugin has no DuckDB connection; is it in profiles.yml?")
        spec: dict[str, Any] = dict(target_config.config)
        started, cpu_started = time.perf_counter(), time.process_time()
        with self._lock:
            if spec.get("computed") and self.lake:
                self._compute(spec)
            cursor = self._conn.cursor()
            try:
                store = self._store_iceberg if self.lake else self._store_duckdb
                write = store(cursor, spec)
            finally:
                cursor.close()
        write = replace(
            write,
            seconds=time.perf_counter() - started,
            cpu_seconds=time.process_time() - cpu_started,
            peak_rss_mb=_peak_rss_mb(),
        )
        with _WRITES_LOCK:
            WRITES[write.model] = write

    # ---- the Python metrics step (model glucose_computed, config cascade_computed) ------------
    def _compute(self, spec: dict[str, Any]) -> None:
        """Compute the metrics tables on the branch (workbench.transform.computed) and point their
        views at the new snapshots, so the marts built next in this run read them."""
        global _COMPUTED
        from workbench.transform.computed import AGP_DAYS, materialise

        agp_days = int(spec.get("agp_days") or AGP_DAYS)
        result = materialise(  # reads through dbt's connection: one DuckDB buffer pool for the whole run
            self.ref,
            settings=self.settings,
            full_refresh=bool(spec.get("full_refresh")),
            agp_days=agp_days,
            session=self._session,
        )
        for table in result.tables:
            self._refresh_view(table)
        with _WRITES_LOCK:
            _COMPUTED = result

    # ---- lake mode -------------------------------------------------------------------------
    def _store_iceberg(self, cursor: duckdb.DuckDBPyConnection, spec: dict[str, Any]) -> ModelWrite:
        from workbench.lakehouse import Lakehouse

        table_name = f"{spec['schema']}.{spec['identifier']}"
        lake = Lakehouse(ref=self.ref, settings=self.settings)
        partition_by = [
            (item, "identity") if isinstance(item, str) else (str(item[0]), str(item[1]))
            for item in spec.get("partition_by") or []
        ]
        keys = 0
        if spec["mode"] == "replace_keys":
            data: pa.Table = cursor.sql(spec["sql"]).to_arrow_table()  # the changed days: small
            key = spec["unique_key"]
            values = pc.unique(data[key]).to_pylist() if data.num_rows else []
            values = sorted(set(values) | set(_recut_keys(cursor, spec)))
            keys = len(values)
            if not values:
                return ModelWrite(spec["model"], table_name, "unchanged", 0, 0, 0, None, 0.0)
            where = f"{key} in ({', '.join(_literal(v) for v in sorted(values))})"
            with warnings.catch_warnings():
                # PyIceberg warns when a replaced day did not exist yet (a new day): expected here.
                warnings.filterwarnings("ignore", message="Delete operation did not match any records")
                result = lake.write(
                    table_name,
                    data,
                    mode="overwrite",
                    where=where,
                    message=f"dbt: {table_name} ({keys} {key} values replaced)",
                )
        elif not spec.get("full_refresh") and self._unchanged(cursor, spec):
            return ModelWrite(spec["model"], table_name, "unchanged", 0, 0, 0, None, 0.0)
        else:
            message = f"dbt: {table_name} rebuilt"

            def stream() -> pa.RecordBatchReader:  # a whole table is streamed, never held whole
                return cursor.sql(spec["sql"]).fetch_record_batch(STREAM_BATCH_ROWS)

            def copy(folder: str) -> int:  # DuckDB's multithreaded Parquet writer, straight to the files
                options = f"format parquet, compression zstd, file_size_bytes {COPY_FILE_BYTES}, filename_pattern 'part_{{uuid}}'"
                query = (
                    f"copy (\n{spec['sql']}\n) to {_literal(folder)} ({options})"  # a closing -- comment stays closed
                )
                return int(cursor.execute(query).fetchall()[0][0])

            schema = cursor.sql(spec["sql"]).limit(0).to_arrow_table().schema
            data = ParquetFiles(schema, copy, stream)  # registered in Iceberg in one commit (else streamed)
            try:
                result = lake.write(
                    table_name, data, mode="overwrite", partition_by=partition_by or None, message=message
                )
            except SchemaError:
                # A model whose column types changed: replace the table (two commits on the branch).
                lake.drop(table_name, message=f"dbt: drop {table_name} (schema changed)")
                result = lake.write(
                    table_name, data, mode="overwrite", partition_by=partition_by or None, message=message
                )
        self._refresh_view(table_name)
        return ModelWrite(
            spec["model"],
            table_name,
            spec["mode"],
            int(result.rows_written),
            int(result.rows_deleted),
            keys,
            str(result.commit_id),
            0.0,
        )

    def _unchanged(self, cursor: duckdb.DuckDBPyConnection, spec: dict[str, Any]) -> bool:
        """Whether a whole-table model's result equals its stored table: the same columns of the same
        types and the same rows (as a multiset; NULLs equal). Then the table is left untouched — no
        commit, no new snapshot — so a run with nothing new changes nothing downstream."""
        schema, name = spec["schema"], spec["identifier"]
        exists = cursor.execute(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?", [schema, name]
        ).fetchall()[0][0]
        if not exists:
            return False
        stored = f"{_quote(schema)}.{_quote(name)}"
        query = f"(\n{spec['sql']}\n)"
        new, old = cursor.sql(f"select * from {query}"), cursor.sql(f"select * from {stored}")
        if new.columns != old.columns or [str(t) for t in new.types] != [str(t) for t in old.types]:
            return False
        differing = cursor.execute(
            f"select count(*) from ((select * from {query} except all select * from {stored}) "
            f"union all (select * from {stored} except all select * from {query}))"
        ).fetchall()[0][0]
        return bool(differing == 0)

    # ---- plain DuckDB file mode ----------------------------------------------------------------
    def _store_duckdb(self, cursor: duckdb.DuckDBPyConnection, spec: dict[str, Any]) -> ModelWrite:
        schema, name = _quote(spec["schema"]), _quote(spec["identifier"])
        table_name = f"{spec['schema']}.{spec['identifier']}"
        target = f"{schema}.{name}"
        cursor.execute(f"create schema if not exists {schema}")
        exists = cursor.execute(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
            [spec["schema"], spec["identifier"]],
        ).fetchall()[0][0]
        if spec["mode"] == "replace_keys" and exists:
            key = _quote(spec["unique_key"])
            cursor.execute("begin")
            try:
                cursor.execute(f"create or replace temp table __cascade_batch as {spec['sql']}")
                recut = _recut_keys(cursor, spec)
                deleted = cursor.execute(
                    f"delete from {target} where {key} in (select {key} from __cascade_batch)"
                    + (f" or {key} in ({', '.join(_literal(v) for v in recut)})" if recut else "")
                ).fetchall()[0][0]
                keys = cursor.execute(f"select count(distinct {key}) from __cascade_batch").fetchall()[0][0]
                written = cursor.execute(f"insert into {target} by name select * from __cascade_batch").fetchall()[0][0]
                cursor.execute("drop table __cascade_batch")
                cursor.execute("commit")
            except Exception:
                cursor.execute("rollback")
                raise
            return ModelWrite(spec["model"], table_name, "replace_keys", written, deleted, keys, None, 0.0)
        cursor.execute(f"drop view if exists {target}")
        cursor.execute(f"create or replace table {target} as {spec['sql']}")
        written = cursor.execute(f"select count(*) from {target}").fetchall()[0][0]
        return ModelWrite(spec["model"], table_name, "replace_table", written, 0, 0, None, 0.0)


def _recut_keys(cursor: duckdb.DuckDBPyConnection, spec: dict[str, Any]) -> list[Any]:
    """The keys a corrected zone re-cuts (macro recut_keys; read before the write): replaced with the
    new rows, so one the new cut leaves without rows is deleted."""
    if not spec.get("recut_keys"):
        return []
    return [row[0] for row in cursor.execute(spec["recut_keys"]).fetchall()]


def recorded_writes(models: Sequence[str] | None = None) -> list[ModelWrite]:
    """Writes recorded since the last ``clear_writes`` (optionally only the given model ids)."""
    with _WRITES_LOCK:
        items = list(WRITES.values())
    return [w for w in items if models is None or w.model in models]


def recorded_compute() -> Any:
    """The `ComputeResult` of the metrics step run since the last ``clear_writes``, if any."""
    with _WRITES_LOCK:
        return _COMPUTED


def clear_writes() -> None:
    """Forget recorded writes (the runner calls this before each invocation)."""
    global _COMPUTED
    with _WRITES_LOCK:
        WRITES.clear()
        _COMPUTED = None
