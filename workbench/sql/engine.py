"""The SQL engine interface: a session bound to one ref of the lake.

Every table of the ref is visible as ``schema.table``; time travel uses Trino's syntax on both
engines (``for version as of <snapshot id>``, ``for timestamp as of timestamp '…'``) and Iceberg
metadata tables are ``schema."table$snapshots"`` (also ``$history``, ``$files``, ``$manifests``,
``$refs``, ``$partitions``). `DuckDBSession` (embedded) and `TrinoSession` (stack) implement it;
`workbench.profiles.open_session` picks one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import pyarrow as pa


@runtime_checkable
class SqlSession(Protocol):
    """SQL on one ref (branch, tag or commit)."""

    ref: str

    def sql(self, query: str, params: list[Any] | None = None) -> pd.DataFrame:
        """Run a query; the result as a DataFrame (empty for statements without a result)."""
        ...

    def sql_arrow(self, query: str, params: list[Any] | None = None) -> pa.Table:
        """Run a query; the result as an Arrow table."""
        ...

    def tables(self) -> list[str]:
        """Every table the session shows, as ``schema.table``."""
        ...

    def close(self) -> None:
        """Release the engine's resources (connections, pinned catalogs)."""
        ...


__all__ = ["SqlSession"]
