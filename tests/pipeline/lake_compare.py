"""Table-by-table, value-by-value comparison of two refs of the lake (the incremental result against
a from-scratch full-refresh build): used by the soak test and the time-zone correction test."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

LAYERS = ("bronze.", "silver.", "gold.", "marts.")


def frame(lh: Any, table: str) -> pd.DataFrame:
    """A table's rows in a canonical order (columns sorted by name, rows by every column)."""
    data = lh.sql(f"select * from {table}")
    data = data[sorted(data.columns)]
    return data.sort_values(list(data.columns), kind="mergesort", ignore_index=True, na_position="first")


def same(a: pd.DataFrame, b: pd.DataFrame, where: str) -> None:
    """Equal columns, rows and values (floats to 1e-9 relative)."""
    assert list(a.columns) == list(b.columns), where
    assert len(a) == len(b), f"{where}: {len(a)} rows vs {len(b)}"
    for column in a.columns:
        left, right = a[column].tolist(), b[column].tolist()
        for x, y in zip(left, right, strict=True):
            if isinstance(x, float) or isinstance(y, float):
                if x is None or y is None or (isinstance(x, float) and math.isnan(x)):
                    assert (x is None or math.isnan(x)) and (y is None or math.isnan(float(y))), (where, column, x, y)
                    continue
                assert abs(float(x) - float(y)) <= 1e-9 * max(1.0, abs(float(x))), (where, column, x, y)
            else:
                assert (pd.isna(x) and pd.isna(y)) if not isinstance(x, list | tuple) and pd.isna(x) else x == y, (
                    where,
                    column,
                    x,
                    y,
                )


def same_tables(left: Any, right: Any) -> list[str]:
    """Every layer table of `left` equals the one of `right`; the tables compared."""
    tables = [t for t in left.tables() if t.startswith(LAYERS)]
    assert set(tables) == {t for t in right.tables() if t.startswith(LAYERS)}
    for table in tables:
        same(frame(left, table), frame(right, table), table)
    return tables
