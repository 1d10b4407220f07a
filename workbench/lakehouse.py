"""`Lakehouse`: the one object notebooks use — SQL, writes, refs and time travel on a ref.

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

from workbench.errors import QueryError, ReadOnlyRefError, TableNotFoundError
from workbench.lake.catalog import load_table
from workbench.lake.ledger import Commit, Ref
from workbench.lake.store import VersionedLake, open_lake
from workbench.lake.writes import WriteMode, WriteResult, write_table
from workbench.settings import Settings, get_settings
from workbench.sql.duckdb import RefSession, parse_timestamp, snapshot_as_of


class Lakehouse:
    """The lake seen from one ref (branch, tag or commit), with SQL through DuckDB."""

    def __init__(self, ref: str = "dev", settings: Settings | None = None, as_of: str | datetime | None = None) -> None:
        self.settings = settings or get_settings()
        self.lake: VersionedLake = open_lake(self.settings)
        self.ref = ref
        self.lake.resolve(ref)  # fail early on an unknown ref
        self.as_of = parse_timestamp(as_of) if as_of is not None else None
        self._session: RefSession | None = None

    def __repr__(self) -> str:
        return f"Lakehouse(ref={self.ref!r}, home={str(self.settings.home)!r})"

    # ---- SQL -----------------------------------------------------------------------------------
    @property
    def session(self) -> RefSession:
        if self._session is None:
            self._session = RefSession(self.lake, self.ref, settings=self.settings, as_of=self.as_of)
        return self._session

    @property
    def duckdb(self) -> duckdb.DuckDBPyConnection:
        """The DuckDB connection with the ref's tables as views (bound on access)."""
        self.session.bind()
        return self.session.con

    def sql(self, query: str, params: list[Any] | None = None) -> pd.DataFrame:
        """Run SQL on the ref and return a DataFrame."""
        return self.session.df(query, params)

    def sql_arrow(self, query: str, params: list[Any] | None = None) -> pa.Table:
        """Run SQL on the ref and return an Arrow table."""
        return self.session.arrow(query, params)

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
        table = self.table(name)
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
            for s in sorted(table.metadata.snapshots, key=lambda s: s.timestamp_ms)
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
            snapshot_id = snapshot_as_of(self.table(name), parse_timestamp(as_of), name).snapshot_id
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
        resolved = self.lake.resolve(self.ref)
        if not resolved.writable:
            raise ReadOnlyRefError(
                f"'{self.ref}' is a {resolved.kind}; writes go to a branch "
                f"(create one with `cascade branch create NAME --from {self.ref}`)"
            )
        return write_table(
            self.lake.catalog(self.ref),
            table,
            data,
            mode=mode,
            key=key,
            where=where,
            partition_by=partition_by,
            message=message,
        )

    def drop(self, table: str, message: str | None = None) -> None:
        """Drop a table from this branch (its files stay while any other ref or commit uses them)."""
        from workbench.lake.catalog import commit_message

        catalog = self.lake.catalog(self.ref)
        load_table(catalog, table, self.ref)
        with commit_message(message):
            catalog.drop_table(table)

    # ---- refs ----------------------------------------------------------------------------------
    def refs(self) -> list[Ref]:
        return self.lake.refs()

    def branch(self, name: str, from_ref: str | None = None) -> Ref:
        return self.lake.create_branch(name, from_ref or self.ref)

    def tag(self, name: str, from_ref: str | None = None) -> Ref:
        return self.lake.create_tag(name, from_ref or self.ref)

    def merge(self, source: str | None = None, into: str = "main", message: str | None = None) -> str | None:
        return self.lake.merge(source or self.ref, into, message)

    def reset(self, branch: str, to: str) -> str:
        return self.lake.reset(branch, to)

    def log(self, ref: str | None = None, limit: int | None = 20) -> list[Commit]:
        return self.lake.log(ref or self.ref, limit)

    def log_df(self, ref: str | None = None, limit: int | None = 20) -> pd.DataFrame:
        rows = [c.to_dict() for c in self.log(ref, limit)]
        return pd.DataFrame(rows)


__all__ = ["Lakehouse", "TableNotFoundError"]
