"""Publish marts (Arrow tables) into the PostgreSQL schema `marts`, all-or-nothing.

How a publish runs:

1. every source table is materialised and its columns mapped to PostgreSQL types;
2. each table is loaded with binary COPY (ADBC ingest) into a fresh table in the schema
   `_cascade_staging`, with its primary key and indexes, then analysed (committed per table);
3. ONE transaction drops the published tables, moves the staged ones into `marts` under their
   names and records the lake commit in `marts._cascade_publish`. A reader sees either the old or
   the new tables, never an empty or a mixed set; a crash before that commit leaves the old marts
   (leftover staging tables are dropped by the next publish).

Publishers are serialised by a PostgreSQL advisory lock held for the whole publish.

Caveat (as for any DDL swap, e.g. TRUNCATE): a REPEATABLE READ/SERIALIZABLE transaction whose
snapshot predates the staging COPY sees a swapped-in table as empty. Ordinary (READ COMMITTED)
queries, dashboards and BI tools see the old or the new table, complete.

```python
from workbench.publish.publisher import publish, load_config
summary = publish({"mrt_daily": table}, commit_id="abc123", config=load_config())
```
"""

from __future__ import annotations

import contextlib
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import pyarrow as pa

from workbench.publish.errors import PublishConfigError, PublishError, UnsupportedTypeError
from workbench.publish.postgres import connection_url, redact_url
from workbench.settings import MAIN_BRANCH, Settings
from workbench.sql.quoting import quote_ident as _quote

if TYPE_CHECKING:
    import psycopg

TableSource: TypeAlias = pa.Table | Callable[[], pa.Table]

CONFIG_FILE = "publish.yaml"
STAGING_SCHEMA = "_cascade_staging"
RECORD_TABLE = "_cascade_publish"
_ADVISORY_LOCK_KEY = 0x43617363  # "Casc": one publisher at a time per database
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_RETRY_SQLSTATES = {"40P01", "55P03", "40001"}  # deadlock, lock timeout, serialization failure
_SWAP_ATTEMPTS = 5


# ---- configuration --------------------------------------------------------------------------
@dataclass(frozen=True)
class TableSpec:
    """One published table: its PostgreSQL name, the lake table it comes from, keys and indexes."""

    name: str
    source: str
    primary_key: tuple[str, ...] = ()
    indexes: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True)
class PublishConfig:
    """What `publish.yaml` says: the target schema, the tables, and how long the swap may wait."""

    tables: tuple[TableSpec, ...]
    schema: str = "marts"
    lock_timeout_s: float = 30.0
    readers: tuple[str, ...] = ()  # roles granted SELECT on every published table (BI users)

    def spec(self, name: str) -> TableSpec:
        for spec in self.tables:
            if spec.name == name:
                return spec
        raise PublishConfigError(f"table {name!r} is not listed in {CONFIG_FILE}")


def find_config(start: Path | None = None) -> Path:
    """The nearest `publish.yaml` in the working directory or its parents, else the project's."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_FILE).is_file():
            return folder / CONFIG_FILE
    project = Path(__file__).resolve().parents[2] / CONFIG_FILE
    if project.is_file():
        return project
    raise PublishConfigError(f"no {CONFIG_FILE} found in {here} or its parents")


def load_config(path: Path | None = None) -> PublishConfig:
    """Read and validate `publish.yaml` (see the file at the project root for the format)."""
    from workbench.config import ConfigError, validate_publish

    path = path or find_config()
    try:
        raw = validate_publish(path)  # strict schema: unknown keys, wrong top level, empty file → one line
    except ConfigError as exc:
        raise PublishConfigError(str(exc)) from None
    if not isinstance(raw, dict) or not isinstance(raw.get("tables"), list):
        raise PublishConfigError(f"{path}: expected a mapping with a `tables:` list")
    schema = _check_name(str(raw.get("schema", "marts")), f"{path}: schema")
    tables: list[TableSpec] = []
    for i, entry in enumerate(raw["tables"]):
        if isinstance(entry, str):
            entry = {"name": entry}
        if not isinstance(entry, dict) or "name" not in entry:
            raise PublishConfigError(f"{path}: tables[{i}] needs a `name`")
        name = _check_name(str(entry["name"]), f"{path}: tables[{i}].name")
        key = tuple(str(c) for c in entry.get("primary_key") or ())
        indexes = tuple(
            tuple(str(c) for c in ([ix] if isinstance(ix, str) else ix)) for ix in entry.get("indexes") or ()
        )
        tables.append(TableSpec(name, str(entry.get("source") or f"marts.{name}"), key, indexes))
    names = [t.name for t in tables]
    if len(set(names)) != len(names):
        raise PublishConfigError(f"{path}: a table is listed twice")
    readers = tuple(_check_name(str(r), f"{path}: readers") for r in raw.get("readers") or ())
    lock_timeout = _parse_seconds(raw.get("lock_timeout", "30s"), path)
    return PublishConfig(tuple(tables), schema, lock_timeout, readers)


def _parse_seconds(value: object, path: Path) -> float:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*", str(value))
    if match is None:
        raise PublishConfigError(f"{path}: lock_timeout {value!r} is not a duration like 30s")
    number = float(match.group(1))
    return number / 1000 if match.group(2) == "ms" else number * 60 if match.group(2) == "m" else number


def _check_name(name: str, where: str) -> str:
    if not _NAME.match(name):
        raise PublishConfigError(
            f"{where} {name!r} must be a lowercase SQL identifier (letters, digits, _; at most 63)"
        )
    return name


# ---- Arrow → PostgreSQL types ------------------------------------------------------------------
def _normalize_type(dtype: pa.DataType, column: str) -> tuple[pa.DataType, str]:
    """The Arrow type to cast to before COPY, and the PostgreSQL column type it lands in."""
    t = pa.types
    if t.is_dictionary(dtype):
        return _normalize_type(dtype.value_type, column)
    if t.is_boolean(dtype):
        return pa.bool_(), "boolean"
    if t.is_int8(dtype) or t.is_int16(dtype) or t.is_uint8(dtype):
        return pa.int16(), "smallint"
    if t.is_int32(dtype) or t.is_uint16(dtype):
        return pa.int32(), "integer"
    if t.is_int64(dtype) or t.is_uint32(dtype):
        return pa.int64(), "bigint"
    if t.is_uint64(dtype):
        return pa.decimal128(20, 0), "numeric(20,0)"
    if t.is_float16(dtype) or t.is_float32(dtype):
        return pa.float32(), "real"
    if t.is_float64(dtype):
        return pa.float64(), "double precision"
    if t.is_decimal(dtype):
        return dtype, f"numeric({dtype.precision},{dtype.scale})"
    if t.is_string(dtype) or t.is_large_string(dtype) or t.is_string_view(dtype) or t.is_null(dtype):
        return pa.large_string(), "text"
    if t.is_binary(dtype) or t.is_large_binary(dtype) or t.is_fixed_size_binary(dtype):
        return pa.large_binary(), "bytea"
    if t.is_date(dtype):
        return pa.date32(), "date"
    if t.is_time(dtype):
        return pa.time64("us"), "time"
    if t.is_timestamp(dtype):
        return pa.timestamp("us", tz=dtype.tz), "timestamptz" if dtype.tz else "timestamp"
    if t.is_duration(dtype):
        return pa.duration("us"), "interval"
    if t.is_list(dtype) or t.is_large_list(dtype) or t.is_fixed_size_list(dtype):
        inner = dtype.value_type
        if t.is_list(inner) or t.is_large_list(inner) or t.is_fixed_size_list(inner):
            raise UnsupportedTypeError(f"column {column!r}: nested lists ({dtype}) cannot be published")
        inner_type, pg_inner = _normalize_type(inner, column)
        return pa.list_(inner_type), f"{pg_inner}[]"
    raise UnsupportedTypeError(
        f"column {column!r} has type {dtype}, which has no PostgreSQL mapping here; "
        "flatten or cast it in the mart model"
    )


def postgres_type(dtype: pa.DataType) -> str:
    """The PostgreSQL column type an Arrow type is published as (e.g. int64 → bigint)."""
    return _normalize_type(dtype, "?")[1]


def prepare_table(table: pa.Table, name: str) -> tuple[pa.Table, list[tuple[str, str]]]:
    """Cast a table to the publishable Arrow types; returns it and its (column, pg type) list."""
    if table.num_columns == 0:
        raise PublishError(f"{name}: the table has no columns")
    columns: list[tuple[str, str]] = []
    arrays: list[pa.ChunkedArray] = []
    seen: set[str] = set()
    for column_name, column in zip(table.column_names, table.columns, strict=True):
        if not column_name or len(column_name.encode()) > 63:
            raise PublishError(f"{name}: column name {column_name!r} must have 1 to 63 bytes")
        if column_name in seen:
            raise PublishError(f"{name}: column {column_name!r} appears twice")
        seen.add(column_name)
        target, pg_type = _normalize_type(column.type, f"{name}.{column_name}")
        if column.type != target:
            try:
                # safe=False: nanoseconds truncate to PostgreSQL's microseconds
                column = column.cast(target, safe=not pa.types.is_timestamp(target))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise PublishError(f"{name}.{column_name}: cannot convert {column.type}: {exc}") from None
        columns.append((column_name, pg_type))
        arrays.append(column)
    return pa.Table.from_arrays(arrays, names=table.column_names), columns


# ---- results -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class PublishedTable:
    """One table as published: its qualified name and row count."""

    table: str
    rows: int


@dataclass(frozen=True)
class PublishSummary:
    """What one publish did."""

    publish_id: str
    commit_id: str | None
    published_at: datetime
    seconds: float
    tables: tuple[PublishedTable, ...] = field(default_factory=tuple)

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)

    def lines(self) -> list[str]:
        head = f"published {len(self.tables)} table(s), {self.rows} rows in {self.seconds:.1f}s"
        if self.commit_id:
            head += f" from lake commit {self.commit_id}"
        return [head, *(f"  {t.table}: {t.rows} rows" for t in self.tables)]


# ---- publishing --------------------------------------------------------------------------------
@dataclass
class _Staged:
    spec: TableSpec
    staged_name: str
    rows: int
    renames: list[tuple[str, str]]  # (staged constraint/index name, final name)
    constraint: str | None  # staged primary-key constraint name


def publish(
    tables: Mapping[str, TableSource],
    *,
    commit_id: str | None = None,
    config: PublishConfig | None = None,
    url: str | None = None,
    settings: Settings | None = None,
    before_swap_commit: Callable[[], None] | None = None,
) -> PublishSummary:
    """Publish `tables` (name → Arrow table, or a callable returning one) all-or-nothing.

    With a `config`, exactly its tables are published (each must be in `tables`), with their keys
    and indexes; without one, every given table is published as is. `commit_id` is the lake commit
    the data comes from, recorded in `marts._cascade_publish`. `before_swap_commit` is a test hook
    called inside the swap transaction just before COMMIT.
    """
    started = time.monotonic()
    if config is None:
        config = PublishConfig(tuple(TableSpec(_check_name(n, "table"), n) for n in tables))
    else:
        unknown = sorted(set(tables) - {t.name for t in config.tables})
        if unknown:
            raise PublishConfigError(f"not listed in {CONFIG_FILE}: {', '.join(unknown)}")
        missing = [t.name for t in config.tables if t.name not in tables]
        if missing:
            raise PublishConfigError(f"no data given for {', '.join(missing)} (listed in {CONFIG_FILE})")
    if not config.tables:
        raise PublishConfigError("nothing to publish: no tables given")

    prepared: list[tuple[TableSpec, pa.Table, list[tuple[str, str]]]] = []
    for spec in config.tables:
        source = tables[spec.name]
        data = source() if callable(source) else source
        if not isinstance(data, pa.Table):
            raise PublishError(f"{spec.name}: expected a pyarrow.Table, got {type(data).__name__}")
        arrow, columns = prepare_table(data, spec.name)
        for col in (*spec.primary_key, *(c for ix in spec.indexes for c in ix)):
            if col not in arrow.column_names:
                raise PublishConfigError(f"{spec.name}: key/index column {col!r} is not in the table")
        prepared.append((spec, arrow, columns))

    import psycopg

    url = url or connection_url(settings)
    publish_id = datetime.now(UTC).strftime("%Y%m%d%H%M%S") + secrets.token_hex(3)
    try:
        with psycopg.connect(url, autocommit=True) as control:
            control.execute("select pg_advisory_lock(%s)", (_ADVISORY_LOCK_KEY,))
            config = _with_default_reader(control, config)
            _prepare_schemas(control, config.schema, config.readers)
            try:
                staged = _stage(url, publish_id, config.schema, prepared)
                published_at = _swap(control, config, staged, publish_id, commit_id, before_swap_commit)
            finally:
                _drop_staging(control)
    except psycopg.Error as exc:
        message = str(exc).replace(url, redact_url(url)).strip()
        raise PublishError(f"publish failed, the published marts are unchanged: {message}") from None
    return PublishSummary(
        publish_id=publish_id,
        commit_id=commit_id,
        published_at=published_at,
        seconds=time.monotonic() - started,
        tables=tuple(PublishedTable(f"{config.schema}.{s.spec.name}", s.rows) for s in staged),
    )


def _with_default_reader(con: psycopg.Connection[Any], config: PublishConfig) -> PublishConfig:
    """Grant the published tables to the read-only role of dashboards and the API too, when the
    database has it (the embedded server always does)."""
    from dataclasses import replace

    from workbench.publish.postgres import READER_ROLE

    if READER_ROLE in config.readers:
        return config
    if con.execute("select 1 from pg_roles where rolname = %s", (READER_ROLE,)).fetchone() is None:
        return config
    return replace(config, readers=(*config.readers, READER_ROLE))


def _prepare_schemas(con: psycopg.Connection[Any], schema: str, readers: tuple[str, ...] = ()) -> None:
    """Create the target and staging schemas and the publish record; drop leftover staging tables
    (we hold the publisher lock, so they belong to a publish that crashed)."""
    con.execute(f"create schema if not exists {_quote(schema)}")
    con.execute(f"drop schema if exists {_quote(STAGING_SCHEMA)} cascade")
    con.execute(f"create schema {_quote(STAGING_SCHEMA)}")
    con.execute(
        f"create table if not exists {_quote(schema)}.{_quote(RECORD_TABLE)} ("
        "table_name text primary key, commit_id text, rows bigint not null, "
        "publish_id text not null, published_at timestamptz not null)"
    )
    for role in readers:
        exists = con.execute("select 1 from pg_roles where rolname = %s", (role,)).fetchone()
        if exists is None:
            raise PublishConfigError(f"reader role {role!r} does not exist in the database; create it first")
        con.execute(f"grant usage on schema {_quote(schema)} to {_quote(role)}")
        con.execute(f"grant select on {_quote(schema)}.{_quote(RECORD_TABLE)} to {_quote(role)}")


def _drop_staging(con: psycopg.Connection[Any]) -> None:
    import psycopg

    if con.closed:
        return
    with contextlib.suppress(psycopg.Error):  # best effort: the next publish drops leftovers too
        con.execute(f"drop schema if exists {_quote(STAGING_SCHEMA)} cascade")


def _stage(
    url: str,
    publish_id: str,
    schema: str,
    prepared: list[tuple[TableSpec, pa.Table, list[tuple[str, str]]]],
) -> list[_Staged]:
    """COPY each table (binary, via ADBC) into its own staging table with keys and indexes."""
    import adbc_driver_postgresql.dbapi as adbc

    staged: list[_Staged] = []
    with adbc.connect(url) as con, con.cursor() as cur:
        for i, (spec, arrow, columns) in enumerate(prepared):
            try:
                staged.append(_stage_one(cur, f"{publish_id}_{i}", spec, arrow, columns))
                con.commit()
            except adbc.Error as exc:
                detail = " ".join(str(exc).split()).replace(url, redact_url(url))
                raise PublishError(
                    f"publish failed, the published marts are unchanged: {spec.name}: {detail}"
                ) from None
    return staged


def _stage_one(cur: Any, token: str, spec: TableSpec, arrow: pa.Table, columns: list[tuple[str, str]]) -> _Staged:
    name = f"t{token}"
    qualified = f"{_quote(STAGING_SCHEMA)}.{_quote(name)}"
    cols = ", ".join(f"{_quote(c)} {pg_type}" for c, pg_type in columns)
    cur.execute(f"create table {qualified} ({cols})")
    copied = cur.adbc_ingest(name, arrow, mode="append", db_schema_name=STAGING_SCHEMA)
    rows = arrow.num_rows if copied in (None, -1) else int(copied)
    if rows != arrow.num_rows:
        raise PublishError(f"{spec.name}: copied {rows} of {arrow.num_rows} rows")
    renames: list[tuple[str, str]] = []
    constraint = None
    if spec.primary_key:
        constraint = f"k{token}"
        key = ", ".join(_quote(c) for c in spec.primary_key)
        cur.execute(f"alter table {qualified} add constraint {_quote(constraint)} primary key ({key})")
        renames.append((constraint, _index_name(spec.name, "pkey")))
    for j, index in enumerate(spec.indexes):
        index_name = f"i{token}_{j}"
        cols_sql = ", ".join(_quote(c) for c in index)
        cur.execute(f"create index {_quote(index_name)} on {qualified} ({cols_sql})")
        renames.append((index_name, _index_name(spec.name, "_".join(index) + "_idx")))
    cur.execute(f"analyze {qualified}")
    return _Staged(spec, name, rows, renames, constraint)


def _exists(con: psycopg.Connection[Any], qualified: str) -> bool:
    row = con.execute("select to_regclass(%s) is not null", (qualified,)).fetchone()
    return bool(row and row[0])


def _index_name(table: str, suffix: str) -> str:
    name = f"{table}_{suffix}"
    if len(name) <= 63:
        return name
    return f"{name[:54]}_{secrets.token_hex(4)}"


def _swap(
    con: psycopg.Connection[Any],
    config: PublishConfig,
    staged: list[_Staged],
    publish_id: str,
    commit_id: str | None,
    before_commit: Callable[[], None] | None,
) -> datetime:
    """In one transaction: drop the published tables, move the staged ones in, record the commit.
    Retried when it loses a deadlock or times out waiting for long readers."""
    import psycopg

    schema = _quote(config.schema)
    for attempt in range(1, _SWAP_ATTEMPTS + 1):
        try:
            with con.transaction():
                con.execute(f"set local lock_timeout = '{int(config.lock_timeout_s * 1000)}ms'")
                published_at = datetime.now(UTC)
                names = sorted(s.spec.name for s in staged)
                existing = [n for n in names if _exists(con, f"{schema}.{_quote(n)}")]
                if existing:  # all locks first, in a fixed order, so readers cannot interleave
                    targets = ", ".join(f"{schema}.{_quote(n)}" for n in existing)
                    con.execute(f"lock table {targets} in access exclusive mode")
                for s in staged:
                    final = _quote(s.spec.name)
                    con.execute(f"drop table if exists {schema}.{final}")
                    con.execute(f"alter table {_quote(STAGING_SCHEMA)}.{_quote(s.staged_name)} set schema {schema}")
                    con.execute(f"alter table {schema}.{_quote(s.staged_name)} rename to {final}")
                    for old, new in s.renames:
                        if old == s.constraint:
                            rename = f"rename constraint {_quote(old)} to {_quote(new)}"
                            con.execute(f"alter table {schema}.{final} {rename}")
                        else:
                            con.execute(f"alter index {schema}.{_quote(old)} rename to {_quote(new)}")
                    for role in config.readers:  # a new table has no grants: give them again
                        con.execute(f"grant select on {schema}.{final} to {_quote(role)}")
                    con.execute(
                        f"insert into {schema}.{_quote(RECORD_TABLE)} as r "
                        "(table_name, commit_id, rows, publish_id, published_at) values (%s, %s, %s, %s, %s) "
                        "on conflict (table_name) do update set commit_id = excluded.commit_id, "
                        "rows = excluded.rows, publish_id = excluded.publish_id, "
                        "published_at = excluded.published_at",
                        (s.spec.name, commit_id, s.rows, publish_id, published_at),
                    )
                if before_commit is not None:
                    before_commit()
            return published_at
        except psycopg.Error as exc:
            if exc.sqlstate not in _RETRY_SQLSTATES or attempt == _SWAP_ATTEMPTS:
                raise
            time.sleep(0.2 * attempt)
    raise AssertionError("unreachable")


def published_commits(
    url: str | None = None, *, schema: str = "marts", settings: Settings | None = None
) -> dict[str, str | None]:
    """Which lake commit each published table comes from (table → commit id)."""
    import psycopg

    url = url or connection_url(settings)
    with psycopg.connect(url) as con:
        if not _exists(con, f"{_quote(schema)}.{_quote(RECORD_TABLE)}"):
            return {}
        rows = con.execute(f"select table_name, commit_id from {_quote(schema)}.{_quote(RECORD_TABLE)}").fetchall()
    return {str(name): commit for name, commit in rows}


def lake_sources(
    config: PublishConfig, ref: str = MAIN_BRANCH, settings: Settings | None = None
) -> tuple[dict[str, TableSource], str]:
    """Readers for the configured marts on a lake ref, pinned to the ref's head commit (so every
    table comes from the same commit even if the ref moves meanwhile), and that commit's id."""
    from workbench.lakehouse import Lakehouse

    head = Lakehouse(ref=ref, settings=settings).log(limit=1)
    if not head:
        raise PublishError(f"the lake ref {ref!r} has no commits yet; nothing to publish")
    commit_id = str(head[0].id)
    lake = Lakehouse(ref=commit_id, settings=settings)

    def reader(source: str) -> Callable[[], pa.Table]:
        return lambda: lake.sql_arrow(f"select * from {source}")

    return {spec.name: reader(spec.source) for spec in config.tables}, commit_id


def publish_marts(
    ref: str = MAIN_BRANCH,
    *,
    config: PublishConfig | None = None,
    settings: Settings | None = None,
    url: str | None = None,
) -> PublishSummary:
    """Publish the marts listed in `publish.yaml` from a lake ref (default `main`)."""
    config = config or load_config()
    sources, commit_id = lake_sources(config, ref, settings)
    return publish(sources, commit_id=commit_id, config=config, settings=settings, url=url)
