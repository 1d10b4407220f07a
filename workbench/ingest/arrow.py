"""Validated rows → Arrow tables, so dlt takes its fast Arrow path (no per-row normalization).

Known Nightscout fields get fixed types (validation already coerced their values); any other field
is kept with the type Arrow infers for the page, nested values as JSON text, and a field whose
values mix types on one page as text.
"""

from __future__ import annotations

from typing import Any

import orjson
import pyarrow as pa

_TS = pa.timestamp("us", tz="UTC")
_STAMPS = {
    "patient_id": pa.string(),
    "patient_tz": pa.string(),
    "site_id": pa.string(),
    "_ingested_at": _TS,
    "_doc_hash": pa.string(),  # validate.DOC_HASH
}
ENTRY_TYPES: dict[str, pa.DataType] = {
    "_id": pa.string(),
    "type": pa.string(),
    "sgv": pa.int64(),
    "mbg": pa.float64(),
    "date": pa.int64(),
    "dateString": pa.string(),
    "direction": pa.string(),
    "noise": pa.int64(),
    "delta": pa.float64(),
    "device": pa.string(),
    "utcOffset": pa.int64(),
    "filtered": pa.float64(),
    "unfiltered": pa.float64(),
    "rssi": pa.int64(),
    "sysTime": pa.string(),
    "slope": pa.float64(),
    "intercept": pa.float64(),
    "scale": pa.float64(),
    **_STAMPS,
}
TREATMENT_TYPES: dict[str, pa.DataType] = {
    "_id": pa.string(),
    "eventType": pa.string(),
    "created_at": pa.string(),
    "date": pa.int64(),
    "insulin": pa.float64(),
    "carbs": pa.float64(),
    "duration": pa.float64(),
    "absolute": pa.float64(),
    "rate": pa.float64(),
    "percent": pa.float64(),
    "notes": pa.string(),
    "enteredBy": pa.string(),
    "utcOffset": pa.int64(),
    **_STAMPS,
}
DEVICESTATUS_TYPES: dict[str, pa.DataType] = {
    "_id": pa.string(),
    "device": pa.string(),
    "created_at": pa.string(),
    "date": pa.int64(),
    **_STAMPS,
}

# Rejects carry an always-null `date`: the incremental cursor needs the column on every Arrow item
# of a resource, and null never moves it. The loader drops it before landing.
REJECT_TYPES: dict[str, pa.DataType] = {
    "_id": pa.string(),
    "patient_id": pa.string(),
    "site_id": pa.string(),
    "reason": pa.string(),
    "payload": pa.string(),
    "_ingested_at": _TS,
    "date": pa.int64(),
}


def _json_text(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def _extra_column(values: list[Any]) -> pa.Array:
    if any(isinstance(v, dict | list) for v in values):
        return pa.array([_json_text(v) for v in values], pa.string())
    try:
        column = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([_json_text(v) for v in values], pa.string())
    if pa.types.is_null(column.type):
        return pa.array(values, pa.string())
    return column


def rows_to_arrow(rows: list[dict[str, Any]], known: dict[str, pa.DataType]) -> pa.Table:
    """One Arrow table for a page of validated rows: every known column, plus any extra field.

    Extra fields are named by the column they become (`validate.column_name`), so `Noise2` in one
    document and `noise2` in another fill one column instead of colliding when dlt normalises names
    (validation already refused such a pair inside one document, and variants of known fields)."""
    from workbench.ingest.validate import column_name

    extra: dict[str, list[str]] = {}
    seen: set[str] = set(known)
    for row in rows:
        for key in row:
            if key not in seen:
                seen.add(key)
                extra.setdefault(column_name(key), []).append(key)
    columns = {name: pa.array([row.get(name) for row in rows], kind) for name, kind in known.items()}
    for name, keys in extra.items():
        if len(keys) == 1:
            values = [row.get(keys[0]) for row in rows]
        else:
            values = [next((row[k] for k in keys if k in row), None) for row in rows]
        columns[name] = _extra_column(values)
    return pa.table(columns)
