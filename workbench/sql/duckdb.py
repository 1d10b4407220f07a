"""A DuckDB session bound to a ref: every Iceberg table of the ref is a view `schema.table`.

The views read exactly the Parquet data files of the table's snapshot (planned by PyIceberg from the
Iceberg manifests), lazily: DuckDB streams them, prunes row groups by Parquet statistics and never
loads a whole table. Time travel uses Trino's syntax so the same SQL runs on both engines:

    select * from raw.glucose_entries for version as of 123456789
    select * from raw.glucose_entries for timestamp as of timestamp '2026-11-01 10:00:00'
    select * from raw."glucose_entries$snapshots"      -- also $history $files $manifests $refs $partitions
"""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa
from pyiceberg.table import Table
from pyiceberg.table.snapshots import Snapshot

from workbench.errors import QueryError, TableNotFoundError
from workbench.lake.ledger import DEFAULT_NAMESPACES
from workbench.settings import Settings, get_settings

_META_TABLES = (
    "snapshots",
    "history",
    "files",
    "manifests",
    "refs",
    "partitions",
    "entries",
    "metadata_log_entries",
)
_IDENT = r'(?:"[^"]+"|[A-Za-z_][A-Za-z0-9_]*)'
_VERSION_RE = re.compile(rf"(?P<ns>{_IDENT})\.(?P<t>{_IDENT})\s+for\s+version\s+as\s+of\s+(?P<v>\d+)", re.I)
_TS_RE = re.compile(
    rf"(?P<ns>{_IDENT})\.(?P<t>{_IDENT})\s+for\s+timestamp\s+as\s+of\s+(?:timestamp\s+)?'(?P<ts>[^']+)'", re.I
)
_MISSING_TABLE_RE = re.compile(r'Table with name "?(?P<name>[^" ]+)"? does not exist')
_META_RE = re.compile(rf'(?P<ns>{_IDENT})\."(?P<t>[A-Za-z0-9_]+)\$(?P<m>[a-z_]+)"', re.I)

# Data-file lists per (metadata location, snapshot): planning is pure metadata, safe to share.
_plan_cache: dict[tuple[str, int | None], list[str]] = {}
_plan_lock = threading.Lock()


def _unquote(ident: str) -> str:
    return ident[1:-1] if ident.startswith('"') else ident.lower()


def _q(ident: str) -> str:
    return '"' + ident.replace('"', '""') + '"'


def parse_timestamp(value: str | datetime) -> datetime:
    """A timestamp from ISO text; naive values are taken as UTC."""
    if isinstance(value, datetime):
        ts = value
    else:
        try:
            ts = datetime.fromisoformat(value.strip().replace(" ", "T", 1) if "T" not in value else value.strip())
        except ValueError:
            raise QueryError(f"cannot read timestamp {value!r}; use ISO format like 2026-11-01T10:00:00") from None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def snapshot_as_of(table: Table, when: datetime, name: str) -> Snapshot:
    """The table's snapshot current at `when`, or a clear error when the table did not exist yet."""
    snap = table.snapshot_as_of_timestamp(int(when.timestamp() * 1000))
    if snap is None:
        raise QueryError(f"{name} has no snapshot as of {when.isoformat()} (it was created later)")
    return snap


def data_files(table: Table, snapshot_id: int | None = None) -> tuple[list[str], bool]:
    """The Parquet files of a snapshot and whether any of them has delete files."""
    snapshot_id = snapshot_id if snapshot_id is not None else table.metadata.current_snapshot_id
    if snapshot_id is None:
        return [], False
    key = (table.metadata_location, snapshot_id)
    with _plan_lock:
        cached = _plan_cache.get(key)
    if cached is not None:
        return cached, False
    tasks = list(table.scan(snapshot_id=snapshot_id).plan_files())
    has_deletes = any(task.delete_files for task in tasks)
    files = [task.file.file_path for task in tasks]
    if not has_deletes:
        with _plan_lock:
            _plan_cache[key] = files
    return files, has_deletes


def _duck_path(path: str) -> str:
    return path.removeprefix("file://")


def use_utc(con: duckdb.DuckDBPyConnection) -> None:
    """Times with a zone come out in UTC on this connection and all its cursors, whatever the
    machine's zone: Iceberg stores `timestamptz` as UTC and refuses an Arrow column stamped with
    another zone. (Set after connecting: the ICU extension that owns the setting is loaded by then.)"""
    con.execute("set global TimeZone = 'UTC'")


class RefSession:
    """Views for every table of a ref inside a DuckDB connection; refreshed when the ref moves."""

    def __init__(
        self,
        lake: Any,
        ref: str,
        con: duckdb.DuckDBPyConnection | None = None,
        settings: Settings | None = None,
        as_of: datetime | None = None,
    ) -> None:
        self.lake = lake
        self.ref = ref
        self.settings = settings or get_settings()
        self.as_of = as_of
        self.con = con if con is not None else self._new_connection()
        self._bound_state: dict[str, str] | None = None
        self._tables: dict[str, Table] = {}
        self._extra_views: set[str] = set()
        self._lock = threading.RLock()
        if self.settings.s3_endpoint:
            self._configure_s3()

    def _new_connection(self) -> duckdb.DuckDBPyConnection:
        # No replacement scans: an unknown table is "does not exist on <ref>", never a Python variable.
        config: dict[str, Any] = {
            "memory_limit": self.settings.duckdb_memory_limit,
            "python_enable_replacements": False,
        }
        if self.settings.duckdb_threads:
            config["threads"] = self.settings.duckdb_threads
        con = duckdb.connect(":memory:", config=config)
        use_utc(con)
        return con

    def _configure_s3(self) -> None:
        s = self.settings
        endpoint = (s.s3_endpoint or "").split("://", 1)[-1]
        secret = s.s3_secret_access_key.get_secret_value() if s.s3_secret_access_key else ""
        self.con.execute("install httpfs; load httpfs;")
        self.con.execute(
            "create or replace secret cascade_s3 (type s3, key_id ?, secret ?, endpoint ?, region ?, url_style 'path', "
            "use_ssl ?)",
            [
                s.s3_access_key_id or "",
                secret,
                endpoint,
                s.s3_region,
                (s.s3_endpoint or "").startswith("https"),
            ],
        )

    # ---- binding -----------------------------------------------------------------------------
    def bind(self) -> None:
        """(Re)create the views when the ref's table state changed since the last bind."""
        with self._lock:
            state = self.lake.state(self.ref)
            if state == self._bound_state:
                return
            catalog = self.lake.catalog(self.ref)
            for namespace in DEFAULT_NAMESPACES:
                self.con.execute(f"create schema if not exists {_q(namespace)}")
            for key in sorted(set(self._bound_state or {}) - set(state)):
                ns, name = key.rsplit(".", 1)
                self.con.execute(f"drop view if exists {_q(ns)}.{_q(name)}")
            for view in self._extra_views:
                self.con.execute(f"drop view if exists {view}")
            self._extra_views.clear()
            self._tables = {}
            for key in state:
                table = catalog.load_table(key)
                self._tables[key] = table
                ns, name = key.rsplit(".", 1)
                snapshot_id = None
                if self.as_of is not None:
                    snap = table.snapshot_as_of_timestamp(int(self.as_of.timestamp() * 1000))
                    if snap is None:
                        continue  # the table did not exist yet at that time
                    snapshot_id = snap.snapshot_id
                self._create_view(ns, name, table, snapshot_id)
            self._bound_state = state

    def _create_view(self, ns: str, name: str, table: Table, snapshot_id: int | None) -> str:
        self.con.execute(f"create schema if not exists {_q(ns)}")
        view = f"{_q(ns)}.{_q(name)}"
        files, has_deletes = data_files(table, snapshot_id)
        if has_deletes:
            # Copy-on-write tables (all we write) have none; merge-on-read tables from other engines are
            # read through PyIceberg, which applies the deletes.
            holder = f"__cascade_{ns}_{name}_{snapshot_id or 'cur'}"
            self.con.register(holder, table.scan(snapshot_id=snapshot_id).to_arrow())
            self.con.execute(f"create or replace view {view} as select * from {holder}")
        elif files:
            listing = ", ".join("'" + _duck_path(f).replace("'", "''") + "'" for f in files)
            self.con.execute(
                f"create or replace view {view} as select * from read_parquet([{listing}], union_by_name = true)"
            )
        else:
            snapshot = table.snapshot_by_id(snapshot_id) if snapshot_id is not None else None
            schema_id = snapshot.schema_id if snapshot is not None else None
            schema = table.schemas()[schema_id] if schema_id is not None else table.schema()
            empty = schema.as_arrow().empty_table()
            holder = f"__cascade_empty_{ns}_{name}"
            # a real (empty) table, not a registered Arrow object: other cursors of the connection
            # (dbt's) see tables but not registrations
            self.con.register(holder + "_arrow", empty)
            self.con.execute(f"create or replace table {holder} as select * from {holder}_arrow")
            self.con.unregister(holder + "_arrow")
            self.con.execute(f"create or replace view {view} as select * from {holder}")
        return view

    def refresh_table(self, key: str) -> None:
        """Re-point one table's view at its newest snapshot (after a write), without re-binding the rest."""
        with self._lock:
            table = self.lake.catalog(self.ref).load_table(key)
            ns, name = key.rsplit(".", 1)
            self._create_view(ns, name, table, None)
            self._tables[key] = table
            if self._bound_state is not None:
                self._bound_state = {**self._bound_state, key: table.metadata_location}

    def table(self, key: str) -> Table:
        self.bind()
        if key not in self._tables:
            raise TableNotFoundError(
                f"table '{key}' does not exist on '{self.ref}'; see `cascade tables --ref {self.ref}`"
            )
        return self._tables[key]

    # ---- time travel & metadata ---------------------------------------------------------------
    def _versioned_view(self, ns: str, name: str, snapshot_id: int) -> str:
        table = self.table(f"{ns}.{name}")
        if table.snapshot_by_id(snapshot_id) is None:
            raise QueryError(f"{ns}.{name} has no snapshot {snapshot_id}; see `cascade history {ns}.{name}`")
        view_name = f"{name}@{snapshot_id}"
        self._create_view(ns, view_name, table, snapshot_id)
        self._extra_views.add(f"{_q(ns)}.{_q(view_name)}")
        return f"{_q(ns)}.{_q(view_name)}"

    def _meta_view(self, ns: str, name: str, meta: str) -> str:
        if meta not in _META_TABLES:
            raise QueryError(f"unknown metadata table ${meta}; use one of {', '.join('$' + m for m in _META_TABLES)}")
        table = self.table(f"{ns}.{name}")
        arrow: pa.Table = getattr(table.inspect, meta)()
        holder = f"__cascade_meta_{ns}_{name}_{meta}"
        self.con.register(holder, arrow)
        view = f"{_q(ns)}.{_q(name + '$' + meta)}"
        self.con.execute(f"create or replace view {view} as select * from {holder}")
        self._extra_views.add(view)
        return view

    def rewrite(self, sql: str) -> str:
        """Turn Trino time-travel clauses and `$meta` tables into views DuckDB understands."""

        def version(m: re.Match[str]) -> str:
            return self._versioned_view(_unquote(m["ns"]), _unquote(m["t"]), int(m["v"]))

        def timestamp(m: re.Match[str]) -> str:
            ns, name = _unquote(m["ns"]), _unquote(m["t"])
            snap = snapshot_as_of(self.table(f"{ns}.{name}"), parse_timestamp(m["ts"]), f"{ns}.{name}")
            return self._versioned_view(ns, name, snap.snapshot_id)

        def meta(m: re.Match[str]) -> str:
            return self._meta_view(_unquote(m["ns"]), m["t"], m["m"].lower())

        sql = _VERSION_RE.sub(version, sql)
        sql = _TS_RE.sub(timestamp, sql)
        return _META_RE.sub(meta, sql)

    # ---- queries ---------------------------------------------------------------------------------
    def relation(self, sql: str, params: list[Any] | None = None) -> duckdb.DuckDBPyRelation | None:
        """Run SQL on the ref; a relation for queries, None for statements without a result."""
        with self._lock:
            self.bind()
            try:
                return self.con.sql(self.rewrite(sql), params=params or None)
            except duckdb.CatalogException as exc:
                missing = _MISSING_TABLE_RE.search(str(exc))
                if missing:
                    name = missing["name"]
                    qualified = re.search(rf'({_IDENT})\.(?:"{re.escape(name)}"|{re.escape(name)})\b', sql)
                    if "." not in name and qualified:
                        name = f"{_unquote(qualified.group(1))}.{name}"
                    raise TableNotFoundError(
                        f"table {name} does not exist on '{self.ref}'; see `cascade tables --ref {self.ref}`"
                    ) from None
                raise QueryError(_one_line(exc)) from None
            except duckdb.Error as exc:
                raise QueryError(_one_line(exc)) from None

    def arrow(self, sql: str, params: list[Any] | None = None) -> pa.Table:
        with self._lock:
            rel = self.relation(sql, params)
            if rel is None:
                return pa.table({})
            try:
                return rel.to_arrow_table()
            except duckdb.Error as exc:
                raise QueryError(_one_line(exc)) from None

    def df(self, sql: str, params: list[Any] | None = None) -> Any:
        with self._lock:
            rel = self.relation(sql, params)
            if rel is None:
                import pandas as pd

                return pd.DataFrame()
            try:
                return rel.df()
            except duckdb.Error as exc:
                raise QueryError(_one_line(exc)) from None


def _one_line(exc: Exception) -> str:
    text = str(exc).strip()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    head = lines[0] if lines else type(exc).__name__
    extra = next((ln.strip() for ln in lines[1:] if ln.strip().startswith("LINE")), "")
    return f"SQL error: {head}" + (f" ({extra})" if extra else "")


def attach_ref(
    con: duckdb.DuckDBPyConnection, ref: str, settings: Settings | None = None, as_of: datetime | None = None
) -> DuckDBSession:
    """Create schemas and a view per table of `ref` inside an existing DuckDB connection (e.g. dbt's);
    the session also serves as a `Lakehouse`'s (``Lakehouse(session=...)``: queries in that
    connection, so in its buffer pool). Its ``close`` closes the connection: leave that to its owner."""
    from workbench.lake.store import open_lake

    settings = settings or get_settings()
    session = DuckDBSession(open_lake(settings), ref, con=con, settings=settings, as_of=as_of)
    session.bind()
    return session


class DuckDBSession(RefSession):
    """The embedded profile's `workbench.sql.engine.SqlSession`: a `RefSession` in its own connection."""

    def sql(self, query: str, params: list[Any] | None = None) -> Any:
        return self.df(query, params)

    def sql_arrow(self, query: str, params: list[Any] | None = None) -> pa.Table:
        return self.arrow(query, params)

    def tables(self) -> list[str]:
        return sorted(self.lake.state(self.ref))

    def close(self) -> None:
        self.con.close()
