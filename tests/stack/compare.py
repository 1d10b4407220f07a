"""Value-by-value comparison of two tables read from different engines (DuckDB, Trino, PostgreSQL).

Rows are matched by their non-float columns (the keys), floats compared with a tolerance of 1e-9
(relative and absolute); types that only differ in representation (a DATE as `date` or as midnight
`Timestamp`, `Decimal` vs `float`, numpy vs Python scalars, zone-aware vs naive UTC) compare equal.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
from collections.abc import Iterable
from typing import Any

TOLERANCE = 1e-9
# Columns whose values depend on when and where a run happened, not on its input: ingestion time, dlt
# load ids, and the demo server's address (it listens on a free port per run).
RUN_DEPENDENT = ("ingested_at", "_dlt_load_id", "_dlt_id", "loaded_at", "published_at", "site_url")


def run_dependent(columns: Iterable[str]) -> tuple[str, ...]:
    """The columns that legitimately differ between two runs on the same input."""
    return tuple(c for c in columns if any(c == name or c.endswith(name) for name in RUN_DEPENDENT))


def _canon(value: Any) -> Any:
    """A comparable form of one cell; floats stay floats (compared with a tolerance)."""
    import pandas as pd

    if value is None or value is pd.NaT or value is pd.NA:
        return None
    if hasattr(value, "item") and not isinstance(value, (pd.Timestamp, list, tuple)) and getattr(value, "ndim", 0) == 0:
        value = value.item()  # numpy scalars
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, pd.Timestamp | dt.datetime):
        ts = pd.Timestamp(value)
        if ts.tzinfo is not None:
            ts = ts.tz_convert("UTC").tz_localize(None)
        return ts.isoformat()
    if isinstance(value, dt.date):
        return pd.Timestamp(value).isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, list | tuple):
        return tuple(_canon(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _canon(v)) for k, v in value.items()))
    return value


def _close(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    numeric = (int, float)
    if isinstance(a, numeric) and isinstance(b, numeric) and not isinstance(a, bool) and not isinstance(b, bool):
        return math.isclose(a, b, rel_tol=TOLERANCE, abs_tol=TOLERANCE)
    return bool(a == b)


def compare_tables(
    left_frame: Any, right_frame: Any, *, left: str, right: str, exclude: Iterable[str] = ()
) -> list[str]:
    """Differences between two DataFrames (empty when equal): columns, row counts, then per row and column."""
    skip = set(exclude)
    lcols = [c for c in left_frame.columns if c not in skip]
    rcols = [c for c in right_frame.columns if c not in skip]
    problems = []
    if set(lcols) != set(rcols):
        problems.append(
            f"columns only in {left}: {sorted(set(lcols) - set(rcols))}, only in {right}: {sorted(set(rcols) - set(lcols))}"
        )
    columns = [c for c in lcols if c in set(rcols)]
    if len(left_frame) != len(right_frame):
        problems.append(f"{len(left_frame)} rows in {left}, {len(right_frame)} in {right}")
    lrows = [tuple(_canon(v) for v in row) for row in left_frame[columns].itertuples(index=False)]
    rrows = [tuple(_canon(v) for v in row) for row in right_frame[columns].itertuples(index=False)]
    is_float = [
        any(isinstance(r[i], float) for r in lrows + rrows) and not any(isinstance(r[i], str) for r in lrows + rrows)
        for i in range(len(columns))
    ]
    keys = [i for i in range(len(columns)) if not is_float[i]]

    def key(row: tuple[Any, ...]) -> tuple[Any, ...]:
        # keys first; floats rounded only to break ties between rows with equal keys
        return tuple(repr(row[i]) for i in keys) + tuple(
            repr(None if row[i] is None else round(row[i], 6)) for i in range(len(columns)) if is_float[i]
        )

    lrows.sort(key=key)
    rrows.sort(key=key)
    for lrow, rrow in zip(lrows, rrows, strict=False):
        if [repr(lrow[i]) for i in keys] != [repr(rrow[i]) for i in keys]:
            ident = {columns[i]: lrow[i] for i in keys}
            problems.append(f"row {ident} in {left} has no match in {right} (next there: {[rrow[i] for i in keys]})")
            break
        for i, name in enumerate(columns):
            if not _close(lrow[i], rrow[i]):
                ident = {columns[k]: lrow[k] for k in keys}
                problems.append(f"{name} at {ident}: {lrow[i]!r} ({left}) != {rrow[i]!r} ({right})")
    return problems
