"""What differs between two refs: tables added, removed and changed (with row counts), and for one
table the rows added and removed (like `lakectl diff` / Nessie's diff, plus row-level detail)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workbench.errors import QueryError, TableNotFoundError


@dataclass(frozen=True)
class TableDiff:
    table: str
    change: str  # "added" | "removed" | "changed"
    rows_from: int | None
    rows_to: int | None

    def to_dict(self) -> dict[str, object]:
        return {"table": self.table, "change": self.change, "rows_from": self.rows_from, "rows_to": self.rows_to}


def _row_count(lake: Any, ref: str, table: str) -> int | None:
    """Rows of a table's current snapshot on a ref, from Iceberg metadata (no data read)."""
    snapshot = lake.catalog(ref).load_table(table).current_snapshot()
    if snapshot is None:
        return 0
    total = snapshot.summary.get("total-records") if snapshot.summary is not None else None
    return int(total) if total is not None else None


def diff_refs(lake: Any, ref_from: str, ref_to: str) -> list[TableDiff]:
    """Tables whose state differs between two refs (same metadata file = unchanged)."""
    before, after = lake.state(ref_from), lake.state(ref_to)
    changes: list[TableDiff] = []
    for table in sorted(set(before) | set(after)):
        if before.get(table) == after.get(table):
            continue
        if table not in before:
            changes.append(TableDiff(table, "added", None, _row_count(lake, ref_to, table)))
        elif table not in after:
            changes.append(TableDiff(table, "removed", _row_count(lake, ref_from, table), None))
        else:
            changes.append(
                TableDiff(table, "changed", _row_count(lake, ref_from, table), _row_count(lake, ref_to, table))
            )
    return changes


def diff_rows(ref_from: str, ref_to: str, table: str, limit: int | None = None) -> Any:
    """Rows of `table` added (`+`) and removed (`-`) from `ref_from` to `ref_to` (a multiset
    difference over all columns), as a DataFrame with a first column `change`."""
    import duckdb

    from workbench.lakehouse import Lakehouse

    sides = {}
    for name, ref in (("a", ref_from), ("b", ref_to)):
        lh = Lakehouse(ref)
        if table in lh.tables():
            sides[name] = lh.sql_arrow(f"select * from {table}")
    if not sides:
        raise TableNotFoundError(f"table {table} does not exist on '{ref_from}' nor on '{ref_to}'")
    schema = next(iter(sides.values())).schema
    con = duckdb.connect(":memory:")
    try:
        for name in ("a", "b"):
            con.register(name, sides.get(name, schema.empty_table()))
        cap = f" limit {int(limit)}" if limit else ""
        try:
            return con.sql(
                f"(select '+' as change, * from (select * from b except all select * from a){cap}) "
                f"union all (select '-' as change, * from (select * from a except all select * from b){cap})"
            ).df()
        except duckdb.Error as exc:
            raise QueryError(
                f"rows of {table} cannot be compared between '{ref_from}' and '{ref_to}' "
                f"(its schema changed: {str(exc).splitlines()[0]})"
            ) from None
    finally:
        con.close()
