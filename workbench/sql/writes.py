"""SQL statements that change a table, done the way Trino does them on Iceberg: one commit each.

`cascade sql` (and `run_statement`) accepts, on a *branch*:

    create [or replace] table raw.x as select …   -- new table (or replaced), one commit
    insert into raw.x [(cols)] select … | values …  -- rows appended, one commit
    delete from raw.x [where …]                     -- table rewritten without those rows, one commit
    drop table [if exists] raw.x                    -- table removed from the branch, one commit

The rows are computed by DuckDB on the ref's views and written through `Lakehouse.write`
(PyIceberg), so the commit lands on the branch like any other write. Anything else that is not a
query (update, alter, create view, attach, copy, set, …) is refused with one line pointing at
`cascade load` / `Lakehouse.write`. On a tag or commit every write is refused (read-only).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import duckdb

from workbench.errors import QueryError, ReadOnlyRefError, TableNotFoundError, WriteError

_NAME = r'(?P<name>(?:"[^"]+"|[A-Za-z_][A-Za-z0-9_]*)\.(?:"[^"]+"|[A-Za-z_][A-Za-z0-9_]*))'
_CTAS = re.compile(
    rf"^\s*create\s+(?P<replace>or\s+replace\s+)?table\s+(?P<ine>if\s+not\s+exists\s+)?{_NAME}\s+as\s+(?P<query>.+?);?\s*$",
    re.I | re.S,
)
_INSERT = re.compile(rf"^\s*insert\s+into\s+{_NAME}\s*(?P<rest>.+?);?\s*$", re.I | re.S)
_DELETE = re.compile(rf"^\s*delete\s+from\s+{_NAME}(?:\s+where\s+(?P<cond>.+?))?;?\s*$", re.I | re.S)
_DROP = re.compile(rf"^\s*drop\s+table\s+(?P<ie>if\s+exists\s+)?{_NAME}\s*;?\s*$", re.I | re.S)
_QUERY_TYPES = {"SELECT", "EXPLAIN", "PRAGMA"}
_HOW_TO_WRITE = (
    "supported writes are `create table NS.T as select …`, `insert into NS.T …`, `delete from NS.T where …` "
    "and `drop table NS.T`; for anything else load a file with `cascade load` or write with `Lakehouse.write`"
)


@dataclass
class StatementResult:
    frame: Any | None  # a DataFrame for queries
    summary: str = ""  # one line for writes
    commit_id: str | None = None


def _key(name: str) -> str:
    return ".".join(part[1:-1] if part.startswith('"') else part.lower() for part in name.split(".", 1))


def _statement_type(sql: str) -> str:
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryError("SQL error: " + str(exc).strip().splitlines()[0]) from None
    if len(statements) != 1:
        raise QueryError(f"give one SQL statement at a time (got {len(statements)})")
    return str(statements[0].type).rsplit(".", 1)[-1].upper()


def run_statement(lh: Any, sql: str, message: str | None = None) -> StatementResult:
    """Run a query (returns rows) or one supported write (one commit on the Lakehouse's branch)."""
    kind = _statement_type(sql)
    if kind in _QUERY_TYPES:
        return StatementResult(lh.sql_arrow(sql).to_pandas())
    if kind not in {"CREATE", "INSERT", "DELETE", "DROP"}:
        raise WriteError(f"`{kind.lower()}` statements are not run on the lake; {_HOW_TO_WRITE}")
    resolved = lh.lake.resolve(lh.ref)
    if not resolved.writable:
        raise ReadOnlyRefError(
            f"'{lh.ref}' is a {resolved.kind}, read-only; run writes on a branch "
            f"(e.g. `cascade branch create scratch --from {lh.ref}` then `--ref scratch`)"
        )
    if lh.as_of is not None:
        raise WriteError("--as-of reads the past; writes go to the branch head (drop --as-of)")
    existing = set(lh.tables())
    label = message or f"sql: {' '.join(sql.split())[:200]}"

    if m := _CTAS.match(sql):
        table = _key(m["name"])
        if table in existing and not m["replace"]:
            if m["ine"]:
                return StatementResult(None, f"{table} already exists on '{lh.ref}'; nothing written")
            raise WriteError(f"table {table} already exists on '{lh.ref}'; use `create or replace table`")
        data = lh.sql_arrow(m["query"])
        result = lh.write(table, data, mode="overwrite", message=label)
        verb = "replaced" if table in existing else "created"
        return _done(f"{verb} {table} on '{lh.ref}' with {result.rows_written} row(s)", result)

    if m := _INSERT.match(sql):
        table = _key(m["name"])
        _require(table, existing, lh.ref)
        data = _insert_rows(lh, table, m["name"], m["rest"])
        result = lh.write(table, data, mode="append", message=label)
        return _done(f"inserted {result.rows_written} row(s) into {table} on '{lh.ref}'", result)

    if m := _DELETE.match(sql):
        table = _key(m["name"])
        _require(table, existing, lh.ref)
        before = int(lh.sql_arrow(f"select count(*) as n from {m['name']}").column(0)[0].as_py())
        keep = f"select * from {m['name']}" + (f" where ({m['cond']}) is not true" if m["cond"] else " where false")
        data = lh.sql_arrow(keep)
        deleted = before - data.num_rows
        if deleted == 0:
            return StatementResult(None, f"no rows of {table} on '{lh.ref}' match; nothing written")
        result = lh.write(table, data, mode="overwrite", message=label)
        return _done(f"deleted {deleted} row(s) from {table} on '{lh.ref}'", result)

    if m := _DROP.match(sql):
        table = _key(m["name"])
        if table not in existing:
            if m["ie"]:
                return StatementResult(None, f"{table} does not exist on '{lh.ref}'; nothing dropped")
            _require(table, existing, lh.ref)
        lh.drop(table, message=label)
        return StatementResult(None, f"dropped {table} on '{lh.ref}' (commit {lh.lake.resolve(lh.ref).commit_id})")

    raise WriteError(f"this statement is not supported; {_HOW_TO_WRITE}")


def _require(table: str, existing: set[str], ref: str) -> None:
    if table not in existing:
        raise TableNotFoundError(f"table {table} does not exist on '{ref}'; see `cascade tables --ref {ref}`")


def _insert_rows(lh: Any, table: str, name: str, rest: str) -> Any:
    """The rows an `insert into` adds, typed like the table: inserted into an empty scratch copy."""
    con = lh.duckdb
    scratch = "__cascade_insert"
    with lh.session._lock:
        try:
            con.execute(f"create or replace temp table {scratch} as select * from {name} limit 0")
            con.execute(f"insert into {scratch} {rest}")
            return con.sql(f"select * from {scratch}").to_arrow_table()
        except duckdb.Error as exc:
            raise QueryError("SQL error: " + str(exc).strip().splitlines()[0]) from None
        finally:
            con.execute(f"drop table if exists {scratch}")


def _done(summary: str, result: Any) -> StatementResult:
    return StatementResult(None, f"{summary} (commit {result.commit_id})", result.commit_id)
