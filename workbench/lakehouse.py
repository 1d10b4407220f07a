"""`Lakehouse`: the one object notebooks use — SQL, writes, refs and time travel on a ref.

It works on either profile: the lake (`workbench.lake.api.VersionedLake`) and the SQL engine
(`workbench.sql.engine.SqlSession`) come from `workbench.profiles`.

from workbench import Lakehouse
lh = Lakehouse(ref="dev")
lh.sql("select count(*) from raw.glucose_entries")
lh.write("raw.notes", df, mode="append", message="add notes")
lh.merge("dev", into="main")
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
from pyiceberg.expressions import BooleanExpression

from workbench.errors import QueryError, TableNotFoundError
from workbench.lake.api import Commit, Ref, VersionedLake
from workbench.lake.catalog import load_table
from workbench.lake.writes import WriteMode, WriteResult
from workbench.profiles import open_lake, open_session
from workbench.settings import DEV_BRANCH, MAIN_BRANCH, Settings, get_settings
from workbench.sql.duckdb import parse_timestamp
from workbench.sql.engine import SqlSession


class Lakehouse:
    """The lake seen from one ref (branch, tag or commit), with SQL through the profile's engine."""

    def __init__(
        self,
        ref: str = DEV_BRANCH,
        settings: Settings | None = None,
        as_of: str | datetime | None = None,
        session: SqlSession | None = None,
    ) -> None:
        """``session``: an open SQL session on ``ref`` to query through (e.g. the dbt plugin's, so
        that one DuckDB buffer pool serves the models and the metrics step); by default one is
        opened on first use."""
        self.settings = settings or get_settings()
        self.lake: VersionedLake = open_lake(self.settings)
        self.ref = ref
        self.lake.resolve(ref)  # fail early on an unknown ref
        self.as_of = parse_timestamp(as_of) if as_of is not None else None
        self._session: SqlSession | None = session

    def __repr__(self) -> str:
        return f"Lakehouse(ref={self.ref!r}, home={str(self.settings.home)!r})"

    # ---- SQL -----------------------------------------------------------------------------------
    @property
    def session(self) -> SqlSession:
        """The SQL session on this ref (DuckDB on embedded, Trino on the stack)."""
        if self._session is None:
            self._session = open_session(self.lake, self.ref, self.settings, as_of=self.as_of)
        return self._session

    @property
    def duckdb(self) -> duckdb.DuckDBPyConnection:
        """The DuckDB connection with the ref's tables as views (embedded profile only)."""
        session = self.session
        if not hasattr(session, "con") or not hasattr(session, "bind"):
            raise QueryError(f"the {self.lake.profile} profile has no DuckDB connection; use lh.sql(...)")
        session.bind()
        return session.con  # type: ignore[no-any-return]

    def sql(self, query: str, params: list[Any] | None = None) -> pd.DataFrame:
        """Run SQL on the ref and return a DataFrame."""
        return self.session.sql(query, params)

    def sql_arrow(self, query: str, params: list[Any] | None = None) -> pa.Table:
        """Run SQL on the ref and return an Arrow table."""
        return self.session.sql_arrow(query, params)

    def close(self) -> None:
        """Release the SQL session (its connection and any pinned catalogs)."""
        if self._session is not None:
            self._session.close()
            self._session = None

    def checkout(self, ref: str) -> Lakehouse:
        """Another Lakehouse on `ref` (same settings)."""
        return Lakehouse(ref, settings=self.settings)

    # ---- tables --------------------------------------------------------------------------------
    def tables(self) -> list[str]:
        return sorted(self.lake.state(self.ref))

    def table(self, name: str) -> Any:
        """The PyIceberg table on this ref."""
        return load_table(self.lake.catalog(self.ref), name, self.ref)

    def history(self, name: str) -> pd.DataFrame:
        """The table's snapshots on this ref, oldest first."""
        snapshots = self.lake.snapshots(self.ref, name)
        rows = [
            {
                "snapshot_id": s.snapshot_id,
                "parent_id": s.parent_snapshot_id,
                "committed_at": pd.Timestamp(s.timestamp_ms, unit="ms", tz="UTC"),
                "operation": s.summary.operation.value if s.summary else None,
                "added_rows": int(s.summary.get("added-records") or 0) if s.summary else 0,
                "deleted_rows": int(s.summary.get("deleted-records") or 0) if s.summary else 0,
                "total_rows": int(s.summary.get("total-records") or 0) if s.summary else 0,
            }
            for s in snapshots
        ]
        columns = [
            "snapshot_id",
            "parent_id",
            "committed_at",
            "operation",
            "added_rows",
            "deleted_rows",
            "total_rows",
        ]
        frame = pd.DataFrame(rows, columns=columns)
        frame["parent_id"] = pd.array([r["parent_id"] for r in rows], dtype="Int64")
        return frame

    def at(self, name: str, snapshot_id: int | None = None, as_of: str | datetime | None = None) -> pd.DataFrame:
        """The table as of a snapshot id or a timestamp (time travel), as a DataFrame."""
        if (snapshot_id is None) == (as_of is None):
            raise QueryError("give exactly one of snapshot_id or as_of")
        if as_of is not None:
            when = parse_timestamp(as_of).isoformat(sep=" ")
            return self.sql(f"select * from {name} for timestamp as of timestamp '{when}'")
        return self.sql(f"select * from {name} for version as of {int(snapshot_id)}")  # type: ignore[arg-type]

    # ---- writes --------------------------------------------------------------------------------
    def write(
        self,
        table: str,
        data: Any,
        *,
        mode: WriteMode = "append",
        key: list[str] | str | None = None,
        where: str | BooleanExpression | None = None,
        partition_by: list[tuple[str, str]] | None = None,
        message: str | None = None,
    ) -> WriteResult:
        """Write data to a table on this branch as one commit (see `workbench.lake.writes`)."""
        return self.lake.write(
            self.ref,
            table,
            data,
            mode=mode,
            key=key,
            where=where,
            partition_by=partition_by,
            message=message,
        )

    def drop(self, table: str, message: str | None = None) -> str | None:
        """Drop a table from this branch (its files stay while any other ref or commit uses them)."""
        return self.lake.drop_table(self.ref, table, message)

    # ---- refs ----------------------------------------------------------------------------------
    def refs(self) -> list[Ref]:
        return self.lake.refs()

    def branch(self, name: str, from_ref: str | None = None) -> Ref:
        return self.lake.create_branch(name, from_ref or self.ref)

    def tag(self, name: str, from_ref: str | None = None) -> Ref:
        return self.lake.create_tag(name, from_ref or self.ref)

    def merge(self, source: str | None = None, into: str = MAIN_BRANCH, message: str | None = None) -> str | None:
        return self.lake.merge(source or self.ref, into, message)

    def reset(self, branch: str, to: str) -> str:
        return self.lake.reset(branch, to)

    def log(self, ref: str | None = None, limit: int | None = 20) -> list[Commit]:
        return self.lake.log(ref or self.ref, limit)

    def log_df(self, ref: str | None = None, limit: int | None = 20) -> pd.DataFrame:
        rows = [c.to_dict() for c in self.log(ref, limit)]
        return pd.DataFrame(rows)


__all__ = ["Lakehouse", "TableNotFoundError"]
