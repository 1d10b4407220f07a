"""What the API reads: the published PostgreSQL (pooled, read-only use) or, for admins, a lake ref.

Queries are fixed SQL fragments with bound parameters; table names come from `publish.yaml` (the
published name in PostgreSQL, the lake table it was published from for `?ref=`), never from a
request. Both sources return plain rows (dicts), so every endpoint works on either.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Protocol

from workbench.metrics import MGDL_PER_MMOLL  # the one conversion (dashboards, reports, API)
from workbench.publish.publisher import PublishConfig, load_config
from workbench.settings import Settings

UNITS = {"mgdl": "mg/dL", "mmol": "mmol/L"}
# Columns holding a glucose concentration (or its spread/excursion) in mg/dL: converted for ?units=mmol.
GLUCOSE_COLUMNS = frozenset(
    {
        "glucose_value",
        "rolling_avg_3",
        "avg_glucose",
        "min_glucose",
        "max_glucose",
        "mean_glucose",
        "median_glucose",
        "sd_glucose",
        "p05",
        "p10",
        "p25",
        "p50",
        "p75",
        "p90",
        "p95",
        "mage",
        "modd",
        "conga_1",
    }
)
# Columns never served: ingestion bookkeeping and where a patient's Nightscout site lives.
HIDDEN_COLUMNS = frozenset({"ingested_at", "source_ingested_at", "site_id", "site_url", "device"})

READINGS = "fct_glucose_readings"
PATIENTS = "dim_patient"
DAILY = "mrt_glucose_daily_metrics"
OVERVIEW = "mrt_glucose_overview"
PERIODS = "mrt_glucose_period_metrics"
AGP = "mrt_agp_profile"
_PARAM = re.compile(r"%\((\w+)\)s")


class Source(Protocol):
    """Rows from the published database or a lake ref."""

    label: str

    def table(self, name: str) -> str:
        """The qualified table to read for a published table name."""
        ...

    async def rows(self, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Run a query with `%(name)s` parameters; rows as dicts."""
        ...


class PostgresSource:
    """The published marts in PostgreSQL through a small asyncio connection pool: requests wait
    for the database on the event loop, not in a thread each (no thread hop, no GIL convoy of
    worker threads under load)."""

    label = "postgres"

    def __init__(self, url: str, config: PublishConfig, max_size: int = 8) -> None:
        from psycopg.rows import dict_row
        from psycopg_pool import AsyncConnectionPool

        self.config = config
        self.pool = AsyncConnectionPool(
            url,
            min_size=1,
            max_size=max_size,
            # UTC session: `timestamp with time zone` values arrive as UTC datetimes, ready for JSON
            kwargs={"autocommit": True, "row_factory": dict_row, "options": "-c TimeZone=UTC"},
            open=False,
            timeout=10,
            name="cascade-api",
        )

    async def open(self) -> None:
        await self.pool.open(wait=False)

    async def close(self) -> None:
        await self.pool.close()

    def table(self, name: str) -> str:
        self.config.spec(name)  # only published tables
        return f'"{self.config.schema}"."{name}"'

    async def rows(self, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        async with self.pool.connection() as con:
            cursor = await con.execute(sql, params)  # type: ignore[arg-type]
            return list(await cursor.fetchall())  # type: ignore[arg-type]

    async def version(self) -> str:
        rows = await self.rows("show server_version", {})
        return str(rows[0]["server_version"]) if rows else "?"


class LakeSource:
    """The same tables read from a lake ref (the lake tables they are published from)."""

    def __init__(self, ref: str, config: PublishConfig, settings: Settings) -> None:
        from workbench.lakehouse import Lakehouse

        self.config = config
        self.lake = Lakehouse(ref, settings=settings)  # RefNotFoundError for an unknown ref
        self.label = f"lake@{ref}"
        self._lock = threading.Lock()  # one DuckDB session: one query at a time

    def table(self, name: str) -> str:
        return self.config.spec(name).source

    async def rows(self, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self._rows, sql, params)  # DuckDB blocks: off the event loop

    def _rows(self, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        values: list[Any] = []

        def positional(match: re.Match[str]) -> str:
            values.append(params[match.group(1)])
            return "?"

        query = _PARAM.sub(positional, sql)
        with self._lock:
            rows = self.lake.sql_arrow(query, values).to_pylist()
        # like the published source: times with a zone in UTC, whatever the session's zone
        return [{k: _in_utc(v) for k, v in row.items()} for row in rows]


def _in_utc(value: Any) -> Any:
    return value.astimezone(UTC) if isinstance(value, datetime) and value.tzinfo is not None else value


def config() -> PublishConfig:
    return load_config()


# ---- queries: fixed fragments, bound values ------------------------------------------------------
@dataclass(frozen=True)
class ReadingsQuery:
    patient: str | None
    day: date | None
    start: datetime | None
    end: datetime | None
    after: tuple[str, datetime] | None
    limit: int
    units: str = UNITS["mgdl"]  # the label each row carries


async def readings(source: Source, q: ReadingsQuery) -> list[dict[str, Any]]:
    """Readings ordered by (patient, reading time), at most `limit + 1` (the extra one says "more"),
    each row as the API answers it (`Reading`): the database names, types and stamps every value
    (UTC times, glucose as a float, the units label), so serving a row costs no Python per value."""
    after_patient, after_ts = q.after or (None, None)
    filters = (  # (fixed SQL fragment, its parameter, the value; None = no filter)
        ("patient_id = %(patient)s", "patient", q.patient),
        ("reading_date = %(day)s", "day", q.day),
        ("reading_ts_utc >= %(start)s", "start", q.start),
        ("reading_ts_utc < %(end)s", "end", q.end),
        ("(patient_id, reading_ts_utc) > (%(after_patient)s, %(after_ts)s)", "after_patient", after_patient),
    )
    where = [fragment for fragment, _, value in filters if value is not None]
    params: dict[str, Any] = {name: value for _, name, value in filters if value is not None}
    params.update(limit=q.limit + 1, after_ts=after_ts, units=q.units)
    sql = (
        "select patient_id, reading_ts_utc at time zone 'UTC' as reading_timestamp, reading_date, "
        "cast(glucose_value as double precision) as glucose_value, %(units)s as units, glucose_category, "
        f"rolling_avg_3, trend_direction as direction from {source.table(READINGS)}"
        + (" where " + " and ".join(where) if where else "")
        + " order by patient_id, reading_ts_utc limit %(limit)s"
    )
    return await source.rows(sql, params)


async def mart_rows(
    source: Source,
    table: str,
    *,
    patient: str | None,
    date_column: str | None = None,
    start: date | None = None,
    end: date | None = None,
    order: Iterable[str] = (),
    limit: int = 1000,
) -> list[dict[str, Any]]:
    """Rows of a published mart for one patient (or all), optionally within [start, end] days."""
    where: list[str] = []
    params: dict[str, Any] = {"limit": limit}
    if patient is not None:
        where.append("patient_id = %(patient)s")
        params["patient"] = patient
    if date_column is not None and start is not None:
        where.append(f"{date_column} >= %(start)s")
        params["start"] = start
    if date_column is not None and end is not None:
        where.append(f"{date_column} <= %(end)s")
        params["end"] = end
    sql = (
        f"select * from {source.table(table)}"
        + (" where " + " and ".join(where) if where else "")
        + f" order by {', '.join(('patient_id', *order))} limit %(limit)s"
    )
    return [{k: v for k, v in row.items() if k not in HIDDEN_COLUMNS} for row in await source.rows(sql, params)]


async def patients(source: Source, patient: str | None = None) -> list[dict[str, Any]]:
    """Every patient (or one) with the days covered and the time of the newest reading."""
    where = " where p.patient_id = %(patient)s" if patient is not None else ""
    sql = (
        "select p.patient_id, p.display_name, p.time_zone, p.first_reading_date, p.last_reading_date, "
        "p.reading_count, (select max(f.reading_ts_utc) from "  # the fact's UTC wall time, stamped UTC
        f"{source.table(READINGS)} f where f.patient_id = p.patient_id) at time zone 'UTC' as newest_reading_at "
        f"from {source.table(PATIENTS)} p{where} order by p.patient_id"
    )
    return await source.rows(sql, {"patient": patient})


def to_units(row: dict[str, Any], units: str) -> dict[str, Any]:
    """Glucose columns converted to mmol/L (2 decimals) when asked; mg/dL values as published."""
    if units != "mmol":
        return row
    return {
        k: (round(float(v) / MGDL_PER_MMOLL, 2) if k in GLUCOSE_COLUMNS and v is not None else v)
        for k, v in row.items()
    }
