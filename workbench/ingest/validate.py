"""Validation of Nightscout documents: valid ones are normalized, bad ones become reject rows.

Nothing is silently dropped: every fetched document ends up either as a valid row or as a reject
row with a `reason` and the original `payload` (JSON). Valid documents keep every field, known or
not (unknown fields become new columns downstream); only the types of known fields are coerced
(a numeric string such as `"120"` becomes 120).

Reject reasons (entries): `not_an_object`, `invalid_type` (missing or not sgv/mbg/cal),
`missing_sgv`, `non_numeric_sgv`, `sgv_error_code` (0-39: Dexcom's special values such as 1
SENSOR_NOT_ACTIVE, 5 NOT_CALIBRATED, 9 ABSOLUTE_DEVIATION, 10 POWER_DEVIATION),
`sgv_out_of_range` (valid sgv is 40-400 mg/dL), `missing_mbg`, `non_numeric_mbg`,
`mbg_out_of_range` (20-600), `unparseable_date`, `implausible_date` (before 2006-01-01, the first
consumer CGM: e.g. seconds instead of milliseconds, or a device clock reset), `future_date` (more
than 5 minutes ahead of the fetch), `wrong_field_type:<field>` (e.g. a dict where `direction`
should be a string).
Treatments: `not_an_object`, `unparseable_date`, `implausible_date`, `future_date`,
`wrong_field_type:<field>`, `negative_value:<field>`.
Both, for documents the lake cannot represent (checked first, in any field, nested too):
`integer_out_of_range` (beyond 64 bits), `invalid_unicode` (a lone surrogate such as `\ud800`),
`nul_character` (U+0000, which PostgreSQL text cannot hold), `empty_field_name`,
`field_name_collision:<column>` (two fields that become one column, e.g. `dateString` and
`date_string`), `reserved_field_name:<column>` (a field named like a column Cascade stamps, e.g.
`site_id`), `too_deeply_nested` (more than 32 levels).

Key when `_id` is missing (documented fallback): `fallback-` + the first 24 hex digits of SHA-1 over
`type|date|device` (entries; Nightscout itself deduplicates entries on date and type) or
`eventType|created_at|enteredBy` (treatments). Rejects without a string `_id` use SHA-1 of the
canonical payload.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson

MIN_SGV, MAX_SGV = 40, 400
MIN_MBG, MAX_MBG = 20, 600
MIN_DATE_MS = 1_136_073_600_000  # 2006-01-01: no CGM reading (the first consumer CGM) is older
FUTURE_TOLERANCE_MS = 5 * 60 * 1000  # device clocks drift a little; a reading from later is implausible
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_DEPTH = 32
# columns Cascade (or dlt) sets on every row: a document field normalised to one of them is refused
DOC_HASH = "_doc_hash"  # SHA-1 of the document as served: a changed document is a correction (an update)
RESERVED_COLUMNS = frozenset(
    {"patient_id", "patient_tz", "site_id", "_ingested_at", "_dlt_id", "_dlt_load_id", DOC_HASH}
)
ENTRY_TYPES = ("sgv", "mbg", "cal")
_ENTRY_STRINGS = ("direction", "device", "dateString", "sysTime")
_ENTRY_INTEGERS = ("noise", "rssi", "utcOffset")
_ENTRY_FLOATS = ("delta", "filtered", "unfiltered", "slope", "intercept", "scale")
_TREATMENT_STRINGS = ("eventType", "notes", "enteredBy", "reason", "unit")
_TREATMENT_INTEGERS = ("utcOffset",)
_TREATMENT_FLOATS = ("insulin", "carbs", "duration", "absolute", "rate", "percent")
_NON_NEGATIVE = ("insulin", "carbs", "duration")


@dataclass
class SiteContext:
    """What every row gets stamped with."""

    site_id: str
    patient_id: str
    patient_tz: str
    ingested_at: datetime
    now_ms: int = field(default=0)

    def __post_init__(self) -> None:
        if not self.now_ms:
            self.now_ms = int(self.ingested_at.timestamp() * 1000)


class _Reject(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason


@lru_cache(maxsize=4096)
def column_name(field_name: str) -> str:
    """The column a document field becomes (dlt's snake_case naming: `dateString` -> `date_string`);
    ValueError for a name that has none (empty or blank)."""
    from dlt.common.normalizers.naming.snake_case import NamingConvention

    if not field_name.strip():
        raise ValueError("empty field name")
    return str(NamingConvention().normalize_identifier(field_name))


def _string_problem(text: str) -> str | None:
    if text.isascii():
        return "nul_character" if "\x00" in text else None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "invalid_unicode"
    return "nul_character" if "\x00" in text else None


def representation_problem(doc: dict[str, Any], known: dict[str, str] | None = None) -> str | None:
    """Why the lake cannot hold `doc` as a row (a reject reason), or None when it can. `known` maps
    the columns of known fields to their spelling (a field spelled otherwise, e.g. `DateString`
    beside the known `dateString`, would land in that typed column: refused as a collision)."""
    columns: dict[str, str] = dict(known or {})
    for name in doc:
        problem = _string_problem(name)
        if problem is not None:
            return problem
        try:
            column = column_name(name)
        except ValueError:
            return "empty_field_name"
        if column in RESERVED_COLUMNS:
            return f"reserved_field_name:{column}"
        if columns.setdefault(column, name) != name:
            return f"field_name_collision:{column}"
    stack: list[tuple[Any, int]] = [(v, 1) for v in doc.values()]
    while stack:
        value, depth = stack.pop()
        kind = type(value)
        if kind is float or kind is bool or value is None:
            continue
        if kind is int:
            if not INT64_MIN <= value <= INT64_MAX:
                return "integer_out_of_range"
        elif kind is str:
            problem = _string_problem(value)
            if problem is not None:
                return problem
        elif depth >= MAX_DEPTH and isinstance(value, dict | list):
            return "too_deeply_nested"
        elif isinstance(value, dict):
            for key, item in value.items():
                problem = _string_problem(key) if isinstance(key, str) else None
                if problem is not None:
                    return problem
                stack.append((item, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)
    return None


def payload_json(original: Any) -> str:
    """The document as JSON text that any store can hold (ASCII; big integers and lone surrogates
    kept as written, escaped)."""
    try:
        return orjson.dumps(original).decode()
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(original, ensure_ascii=True, default=repr)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _number(value: Any) -> float | int | None:
    """A finite number from a number or a numeric string; None when it is neither."""
    if _is_number(value):
        return value  # type: ignore[no-any-return]
    if isinstance(value, str):
        try:
            parsed = float(value.strip())
        except ValueError:
            return None
        if math.isfinite(parsed):
            return int(parsed) if parsed.is_integer() else parsed
    return None


def parse_iso_ms(value: Any) -> int | None:
    """Epoch ms from an ISO 8601 string (`Z` or an offset; naive means UTC); None when unparseable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def iso_ms_from(ms: int) -> str:
    """Epoch ms as Nightscout's ISO 8601 UTC string (`created_at` filters)."""
    ms = max(0, int(ms))
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def fallback_id(*parts: Any) -> str:
    """The documented key for a document without `_id`."""
    return "fallback-" + hashlib.sha1("|".join(str(p) for p in parts).encode()).hexdigest()[:24]


def _check_date(ms: int, now_ms: int) -> int:
    if ms < MIN_DATE_MS:
        raise _Reject("implausible_date")
    if ms > now_ms + FUTURE_TOLERANCE_MS:
        raise _Reject("future_date")
    return ms


def _coerce_fields(
    doc: dict[str, Any], strings: tuple[str, ...], integers: tuple[str, ...], floats: tuple[str, ...]
) -> None:
    """Known fields get one type each (a column type must not change between pages or runs)."""
    for name in strings:
        value = doc.get(name)
        if value is not None and not isinstance(value, str):
            raise _Reject(f"wrong_field_type:{name}")
    for name in integers:
        value = doc.get(name)
        if value is None or type(value) is int:  # the common case, checked first (hot loop)
            continue
        number = _number(value)
        if number is None or not float(number).is_integer():
            raise _Reject(f"wrong_field_type:{name}")
        doc[name] = int(number)
    for name in floats:
        value = doc.get(name)
        if value is None or (type(value) is float and math.isfinite(value)):
            continue
        if type(value) is int:
            doc[name] = float(value)
            continue
        number = _number(value)
        if number is None:
            raise _Reject(f"wrong_field_type:{name}")
        doc[name] = float(number)


def _entry(doc: dict[str, Any], ctx: SiteContext) -> dict[str, Any]:
    kind = doc.get("type")
    if kind not in ENTRY_TYPES:
        raise _Reject("invalid_type")
    date = _number(doc.get("date"))
    if date is None:
        date = parse_iso_ms(doc.get("dateString"))
        if date is None:
            raise _Reject("unparseable_date")
    doc["date"] = _check_date(int(date), ctx.now_ms)
    if kind == "sgv":
        if doc.get("sgv") is None:
            raise _Reject("missing_sgv")
        sgv = _number(doc["sgv"])
        if sgv is None:
            raise _Reject("non_numeric_sgv")
        if 0 <= sgv < MIN_SGV:
            raise _Reject("sgv_error_code")
        if not MIN_SGV <= sgv <= MAX_SGV:
            raise _Reject("sgv_out_of_range")
        doc["sgv"] = int(math.floor(sgv + 0.5))
    elif kind == "mbg":
        if doc.get("mbg") is None:
            raise _Reject("missing_mbg")
        mbg = _number(doc["mbg"])
        if mbg is None:
            raise _Reject("non_numeric_mbg")
        if not MIN_MBG <= mbg <= MAX_MBG:
            raise _Reject("mbg_out_of_range")
        doc["mbg"] = float(mbg)
    _coerce_fields(doc, _ENTRY_STRINGS, _ENTRY_INTEGERS, _ENTRY_FLOATS)
    if not isinstance(doc.get("_id"), str) or not doc["_id"]:
        doc["_id"] = fallback_id(kind, doc["date"], doc.get("device"))
    return doc


def _treatment(doc: dict[str, Any], ctx: SiteContext) -> dict[str, Any]:
    created = doc.get("created_at")
    ms = parse_iso_ms(created)
    if ms is None:
        raise _Reject("unparseable_date")
    doc["date"] = _check_date(ms, ctx.now_ms)
    _coerce_fields(doc, _TREATMENT_STRINGS, _TREATMENT_INTEGERS, _TREATMENT_FLOATS)
    for name in _NON_NEGATIVE:
        value = doc.get(name)
        if value is not None and value < 0:
            raise _Reject(f"negative_value:{name}")
    if not isinstance(doc.get("_id"), str) or not doc["_id"]:
        doc["_id"] = fallback_id(doc.get("eventType"), created, doc.get("enteredBy"))
    return doc


def _reject_row(original: Any, reason: str, ctx: SiteContext) -> dict[str, Any]:
    payload = payload_json(original)  # control characters such as U+0000 come out escaped
    doc_id = original.get("_id") if isinstance(original, dict) else None
    if not isinstance(doc_id, str) or not doc_id or _string_problem(doc_id) is not None:
        canonical = json.dumps(original, ensure_ascii=True, sort_keys=True, default=repr)
        doc_id = "payload-" + hashlib.sha1(canonical.encode()).hexdigest()[:24]
    return {
        "_id": doc_id,
        "patient_id": ctx.patient_id,
        "site_id": ctx.site_id,
        "reason": reason,
        "payload": payload,
        "_ingested_at": ctx.ingested_at,
    }


@lru_cache(maxsize=4)
def _known_columns(kind: str) -> dict[str, str]:
    from workbench.ingest import arrow

    types = {"entries": arrow.ENTRY_TYPES, "treatments": arrow.TREATMENT_TYPES}[kind]
    return {column_name(name): name for name in types if name not in RESERVED_COLUMNS}


def _split(
    docs: list[Any], ctx: SiteContext, check: Any, kind: str = "entries"
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    known = _known_columns(kind)
    valid: list[dict[str, Any]] = []
    rejects: list[dict[str, Any]] = []
    for original in docs:
        if not isinstance(original, dict):
            rejects.append(_reject_row(original, "not_an_object", ctx))
            continue
        problem = representation_problem(original, known)
        if problem is not None:
            rejects.append(_reject_row(original, problem, ctx))
            continue
        try:
            row = check(dict(original), ctx)
        except _Reject as exc:
            rejects.append(_reject_row(original, exc.reason, ctx))
            continue
        row[DOC_HASH] = hashlib.sha1(orjson.dumps(original, option=orjson.OPT_SORT_KEYS)).hexdigest()
        row["patient_id"] = ctx.patient_id
        row["patient_tz"] = ctx.patient_tz
        row["site_id"] = ctx.site_id
        row["_ingested_at"] = ctx.ingested_at
        valid.append(row)
    return valid, rejects


def split_entries(docs: list[Any], ctx: SiteContext) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(valid entry rows, reject rows) for a page of `/api/v1/entries` documents."""
    return _split(docs, ctx, _entry)


def split_treatments(docs: list[Any], ctx: SiteContext) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(valid treatment rows with a derived epoch-ms `date`, reject rows) for a page of treatments."""
    return _split(docs, ctx, _treatment, "treatments")
