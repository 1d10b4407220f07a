"""Where the dashboards read from: the published PostgreSQL marts when they are there, else the lake.

Published marts come from `main` (see `workbench.publish`), so PostgreSQL is only used for
`ref="main"`, only when the publishing server is already running (a dashboard never starts one),
and table by table: a mart that is not published is read from the lake on `main`. Any other ref
(a branch, tag or commit) is read from the lake. Readings-level queries (AGP over a chosen period)
always use the lake, because only marts are published.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from workbench.errors import CascadeError, TableNotFoundError
from workbench.lake.api import DEV_BRANCH, MAIN_BRANCH, RUN_HISTORY_BRANCH
from workbench.metrics import AGP_PERCENTILES
from workbench.settings import Settings, get_settings
from workbench.viz.errors import NoGlucoseDataError, UnknownPatientError

if TYPE_CHECKING:
    from workbench.lakehouse import Lakehouse

SourceChoice = Literal["auto", "postgres", "lake"]

DAILY = "marts.mrt_glucose_daily_metrics"
AGP = "marts.mrt_agp_profile"
PERIOD = "marts.mrt_glucose_period_metrics"
READINGS = "silver.fct_glucose_readings"
PATIENTS = "gold.dim_patient"
TREATMENTS = "bronze.stg_treatments"
TREATMENTS_DAILY = "marts.mrt_treatments_daily"
#: Treatment events that are basal insulin (rate × duration), not boluses — as marts.mrt_treatments_daily.
BASAL_EVENT = "Temp Basal"
PERCENTILES = AGP_PERCENTILES  # p05..p95 of the AGP, by their one definition


def published_url(settings: Settings | None = None) -> str | None:
    """The publishing PostgreSQL URL when that server is reachable now, else None (never starts one)."""
    try:
        from workbench.publish import postgres
    except ImportError:  # pragma: no cover - the publish area is part of the package
        return None
    try:
        if not postgres.status(settings).running:
            return None
        return postgres.reader_url(settings)  # the read-only role, never the superuser
    except CascadeError:
        return None


@dataclass(frozen=True)
class TodaySoFar:
    """The patient's current local day, still in progress: not part of any period, the AGP, the
    trend or a report until it is complete (the clock is `clock()`, never the wall clock).
    The numbers are the daily mart's row of that day (its one definition of each metric)."""

    patient_id: str
    day: date
    as_of: datetime  # the clock (UTC) that makes `day` today
    reading_count: int
    mean_glucose: float  # NaN without readings
    pct_in_range: float
    pct_below_70: float
    pct_above_180: float
    last_reading: datetime | None  # patient-local time of the day's last reading
    latest_reading: datetime | None  # the patient's last reading at all (local), maybe on an earlier day


@dataclass(frozen=True)
class Sufficiency:
    """Whether a period has enough CGM data for reliable metrics (consensus: ≥ 14 days with data and
    ≥ 70 % of the possible readings); from the period mart when the period is one of its windows."""

    days_with_data: int
    active_percent: float
    sufficient: bool
    source: str  # e.g. "marts.mrt_glucose_period_metrics (14d)" or "daily marts"


@dataclass
class GlucoseData:
    """Mart readers for one lake ref, preferring the published PostgreSQL marts on `main`."""

    ref: str = MAIN_BRANCH
    source: SourceChoice = "auto"
    settings: Settings = field(default_factory=get_settings)
    _lakehouse: Lakehouse | None = field(default=None, init=False, repr=False)
    _pg_url: str | None = field(default=None, init=False, repr=False)
    _pg_tables: set[str] = field(default_factory=set, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.source == "postgres" and self.ref != MAIN_BRANCH:
            raise NoGlucoseDataError(
                f"published marts come from main, not {self.ref!r}; use source='lake' for other refs"
            )
        if self.ref == RUN_HISTORY_BRANCH:
            raise NoGlucoseDataError(f"ref {self.ref!r} is the run-history branch; it holds no glucose data to show")
        if self.source != "lake" and self.ref == MAIN_BRANCH:
            self._pg_url = published_url(self.settings)
            if self._pg_url is not None:
                self._pg_tables = self._published_tables()
        if self.source == "postgres" and not self._pg_tables:
            raise NoGlucoseDataError(
                "no published marts found (is the PostgreSQL server running? run `cascade publish`)"
            )
        if self.source != "postgres":
            self.lakehouse  # fail early on an unknown ref  # noqa: B018

    # ---- plumbing ------------------------------------------------------------------------------
    @property
    def lakehouse(self) -> Lakehouse:
        """The lake on this ref (opened on first use)."""
        if self._lakehouse is None:
            from workbench.lakehouse import Lakehouse

            self._lakehouse = Lakehouse(self.ref, settings=self.settings)
        return self._lakehouse

    def _published_tables(self) -> set[str]:
        import psycopg

        assert self._pg_url is not None
        try:
            with psycopg.connect(self._pg_url, connect_timeout=5) as con:
                rows = con.execute(
                    "select table_schema || '.' || table_name from information_schema.tables "
                    "where table_schema = 'marts'"
                ).fetchall()
        except psycopg.Error:
            return set()
        return {str(r[0]) for r in rows}

    def source_of(self, table: str) -> str:
        """Where `table` is read from: 'postgres' or 'lake@<ref>'."""
        return "postgres" if table in self._pg_tables else f"lake@{self.ref}"

    def query(self, table: str, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
        """Run `sql` (with `?` placeholders) where `table` lives: PostgreSQL or the lake."""
        if table in self._pg_tables:
            import psycopg

            assert self._pg_url is not None
            with psycopg.connect(self._pg_url) as con:
                cur = con.execute(sql.replace("?", "%s"), params or [])  # type: ignore[arg-type]
                columns = [d.name for d in cur.description or []]
                return pd.DataFrame(cur.fetchall(), columns=columns)
        if self.source == "postgres":
            raise NoGlucoseDataError(f"{table} is not published; run `cascade publish` or use source='lake'")
        return self.lakehouse.sql(sql, params)

    # ---- readers -------------------------------------------------------------------------------
    def patients(self) -> pd.DataFrame:
        """Patients with data: patient_id, display_name, first_date, last_date, latest_date, reading_count.

        ``last_date`` is the last COMPLETE local day (the period mart's end: periods, the AGP, trends
        and reports stop there); ``latest_date`` is the last day with readings, later than
        ``last_date`` while today's day is still in progress ("today so far")."""
        try:
            frame = self.query(
                DAILY,
                f"select patient_id, min(reading_date) as first_date, max(reading_date) as last_date, "
                f"sum(reading_count) as reading_count from {DAILY} group by patient_id order by patient_id",
            )
        except TableNotFoundError:
            raise NoGlucoseDataError(
                f"{DAILY} does not exist on {self.ref!r}; build the marts first (`cascade run` or dbt build)"
            ) from None
        if frame.empty:
            raise NoGlucoseDataError(f"{DAILY} on {self.ref!r} has no rows; ingest and build first")
        frame["first_date"] = _dates(frame["first_date"])
        frame["latest_date"] = _dates(frame["last_date"])
        complete = self._last_complete_days()
        frame["last_date"] = [
            complete.get(p, d) for p, d in zip(frame["patient_id"], frame["latest_date"], strict=True)
        ]
        frame["reading_count"] = frame["reading_count"].astype("int64")
        names = self._display_names()
        frame["display_name"] = [names.get(p, p) for p in frame["patient_id"]]
        return frame[["patient_id", "display_name", "first_date", "last_date", "latest_date", "reading_count"]]

    def _last_complete_days(self) -> dict[str, date]:
        """Each patient's last complete day (end of the whole-history period), when the mart exists."""
        try:
            frame = self.query(PERIOD, f"select patient_id, period_end from {PERIOD} where period = 'all'")
        except (TableNotFoundError, NoGlucoseDataError):
            return {}
        except CascadeError:
            return {}
        return dict(zip(frame["patient_id"], _dates(frame["period_end"]), strict=True))

    def _display_names(self) -> dict[str, str]:
        if self.source == "postgres":
            return {}
        try:
            names = self.lakehouse.sql(f"select patient_id, display_name from {PATIENTS}")
        except CascadeError:
            return {}
        return {str(p): str(n) for p, n in zip(names["patient_id"], names["display_name"], strict=True) if n}

    def patient(self, patient_id: str | None) -> pd.Series:
        """One row of `patients()`; the first patient when `patient_id` is None."""
        frame = self.patients()
        if patient_id is None:
            return frame.iloc[0]
        match = frame[frame["patient_id"] == patient_id]
        if match.empty:
            known = ", ".join(frame["patient_id"])
            raise UnknownPatientError(f"unknown patient {patient_id!r} on {self.ref!r}; known: {known}")
        return match.iloc[0]

    def daily_metrics(self, patient_id: str, start: date, end: date) -> pd.DataFrame:
        """Rows of the daily metrics mart for one patient, start..end inclusive, by date."""
        frame = self.query(
            DAILY,
            f"select * from {DAILY} where patient_id = ? and reading_date between ? and ? order by reading_date",
            [patient_id, start, end],
        )
        frame["reading_date"] = _dates(frame["reading_date"])
        return frame.drop(columns=[c for c in frame.columns if c.endswith("_identity")])

    def period_metrics(self, patient_id: str) -> pd.DataFrame:
        """The patient's rows of the period mart (14d/30d/90d/all over complete days); empty when
        the mart is not there."""
        try:
            frame = self.query(
                PERIOD,
                f"select period, period_start, period_end, days_with_data, active_percent, sufficient "
                f"from {PERIOD} where patient_id = ?",
                [patient_id],
            )
        except (TableNotFoundError, NoGlucoseDataError):
            return pd.DataFrame(columns=["period", "period_start", "period_end", "days_with_data",
                                         "active_percent", "sufficient"])  # fmt: skip
        frame["period_start"] = _dates(frame["period_start"])
        frame["period_end"] = _dates(frame["period_end"])
        return frame

    def clock(self) -> datetime:
        """The clock that decides which day is complete, as the transforms decide it
        (`workbench.transform.computed.default_as_of`: CASCADE_DEMO_END when set, else the latest
        ingestion into the lake; never the wall clock)."""
        from workbench.transform.computed import default_as_of

        latest = None
        if self.settings.demo_end is None:
            frame = self.lakehouse.sql(f"select max(ingested_at) as m from {READINGS}")
            value = frame["m"].iloc[0] if len(frame) else None
            latest = None if value is None or pd.isna(value) else pd.Timestamp(value).to_pydatetime()
        return default_as_of(self.settings, latest)

    def today_so_far(self, patient_id: str) -> TodaySoFar | None:
        """The patient's day in progress at `clock()` (see `TodaySoFar`); None when only the
        published marts can be read (source='postgres': no clock, no readings)."""
        from workbench.transform.computed import local_today

        if self.source == "postgres":
            return None
        as_of = self.clock()
        last = self.lakehouse.sql(
            f"select max(patient_tz) as tz, max(reading_ts_local) as latest from {READINGS} where patient_id = ?",
            [patient_id],
        )
        if last.empty or pd.isna(last["latest"].iloc[0]):
            return None
        tz = str(last["tz"].iloc[0] or "UTC")
        day = local_today(as_of, tz)
        row = self.query(
            DAILY,
            f"select reading_count, mean_glucose, pct_in_range, pct_below_70, pct_above_180 from {DAILY} "
            "where patient_id = ? and reading_date = ?",
            [patient_id, day],
        )
        on_day = self.lakehouse.sql(
            f"select max(reading_ts_local) as last from {READINGS} where patient_id = ? and reading_date = ?",
            [patient_id, day],
        )["last"]
        nan = math.nan
        values = row.iloc[0] if len(row) else pd.Series(dtype=object)

        def number(name: str) -> float:
            value = values.get(name)
            return nan if value is None or pd.isna(value) else float(value)

        def stamp(value: object) -> datetime | None:
            return None if value is None or pd.isna(value) else pd.Timestamp(value).to_pydatetime()  # type: ignore[arg-type]

        return TodaySoFar(
            patient_id=patient_id,
            day=day,
            as_of=as_of,
            reading_count=int(values.get("reading_count") or 0),
            mean_glucose=number("mean_glucose"),
            pct_in_range=number("pct_in_range"),
            pct_below_70=number("pct_below_70"),
            pct_above_180=number("pct_above_180"),
            last_reading=stamp(on_day.iloc[0]) if len(on_day) else None,
            latest_reading=stamp(last["latest"].iloc[0]),
        )

    def treatments(self, patient_id: str, start: date, end: date) -> pd.DataFrame:
        """Treatment events of one patient, start..end (local days), with `is_bolus` and `is_carbs`
        flags by the definition of marts.mrt_treatments_daily (boluses: insulin units on any event
        but the basal one). Empty when the lake has no treatments."""
        columns = ["treatment_ts_local", "treatment_date", "event_type", "insulin_units", "carbs_grams"]
        try:
            events = self.lakehouse.sql(
                f"select {', '.join(columns)} from {TREATMENTS} where patient_id = ? "
                "and treatment_date between ? and ? order by treatment_ts_local",
                [patient_id, start, end],
            )
        except CascadeError:
            events = pd.DataFrame(columns=columns)
        events["is_bolus"] = (events["event_type"] != BASAL_EVENT) & (events["insulin_units"].fillna(0) > 0)
        events["is_carbs"] = events["carbs_grams"].fillna(0) > 0
        return events

    def treatments_daily(self, patient_id: str, start: date, end: date) -> pd.DataFrame:
        """Rows of marts.mrt_treatments_daily of one patient, start..end; empty when there are none."""
        try:
            return self.query(
                TREATMENTS_DAILY,
                f"select * from {TREATMENTS_DAILY} where patient_id = ? and treatment_date between ? and ? "
                "order by treatment_date",
                [patient_id, start, end],
            )
        except CascadeError:
            return pd.DataFrame()

    def agp_profile(self, patient_id: str, start: date, end: date) -> tuple[pd.DataFrame, str]:
        """AGP percentiles (p05..p95) per 5-minute time of the local day, and where they came from.

        The AGP mart covers each patient's last 14 days; it is used when the period is exactly that
        window. Otherwise the same percentiles are computed from the readings in the lake.
        """
        mart = self._agp_mart(patient_id)
        if mart is not None and not mart.empty:
            mart_end = _dates(mart["period_end"]).iloc[0]
            mart_start = mart_end - timedelta(days=int(mart["period_days"].iloc[0]) - 1)
            if (mart_start, mart_end) == (start, end):
                return mart.sort_values("minute_of_day").reset_index(drop=True), self.source_of(AGP)
        if self.source == "postgres":
            raise NoGlucoseDataError(
                "the published AGP mart covers only the last 14 days; use source='lake' for other periods"
            )
        return self.agp_from_readings(patient_id, start, end), f"lake@{self.ref} ({READINGS})"

    def agp_from_readings(self, patient_id: str, start: date, end: date) -> pd.DataFrame:
        """The AGP percentiles computed from the lake's readings by the same definition as
        `marts.mrt_agp_profile` (`workbench.metrics.agp_profile`: 5-minute interpolated grid)."""
        import numpy as np

        from workbench import metrics

        rows = self.lakehouse.sql_arrow(
            f"select reading_ts_utc, reading_ts_local, reading_date, glucose_value, patient_tz from {READINGS} "
            "where patient_id = ? and reading_date between ? and ?",
            [patient_id, start, end],
        )
        columns = ["minute_of_day", "grid_points", *(name for name, _ in PERCENTILES)]
        if rows.num_rows == 0:
            return pd.DataFrame(columns=columns)
        utc = rows["reading_ts_utc"].to_numpy(zero_copy_only=False).astype("datetime64[us]").astype(np.int64) / 1e6
        local = rows["reading_ts_local"].to_numpy(zero_copy_only=False).astype("datetime64[us]").astype(np.int64) / 1e6
        days = rows["reading_date"].to_numpy(zero_copy_only=False).astype("datetime64[D]").astype(np.int64)
        tz = str(rows["patient_tz"][0].as_py() or "UTC")
        grouped = metrics.GroupedReadings.build(
            np.zeros(rows.num_rows),
            utc,
            rows["glucose_value"].to_numpy(zero_copy_only=False),
            days,
            local - utc,
            group_tz=[tz],
        )
        profile = metrics.agp_profile(grouped, [tz])
        return pd.DataFrame({c: profile[c] for c in columns})

    def _agp_mart(self, patient_id: str) -> pd.DataFrame | None:
        try:
            return self.query(AGP, f"select * from {AGP} where patient_id = ?", [patient_id])
        except TableNotFoundError:
            return None

    def readings(self, patient_id: str, start: date, end: date) -> pd.DataFrame:
        """Readings of one patient from the lake's silver layer (local timestamps), start..end."""
        return self.lakehouse.sql(
            f"select reading_ts_local, reading_ts_utc, reading_date, glucose_value from {READINGS} "
            "where patient_id = ? and reading_date between ? and ? order by reading_ts_utc",
            [patient_id, start, end],
        )

    def refs(self) -> list[str]:
        """Branches and tags that hold the glucose marts (main first); not e.g. the run-history
        branch `ops` (made from main, so it holds copies of the marts). Decided from the refs'
        table lists (catalog metadata, no data read)."""
        lake = self.lakehouse.lake
        names = [r.name for r in lake.refs() if r.name != RUN_HISTORY_BRANCH and DAILY in lake.state(r.name)]
        return sorted(names, key=lambda n: (n != MAIN_BRANCH, n != DEV_BRANCH, n))

    def commit_id(self) -> str:
        """The lake commit this ref points at now."""
        return str(self.lakehouse.lake.resolve(self.ref).commit_id)

    def published_commit(self) -> str | None:
        """The lake commit the published daily mart was copied from (None when not read from PostgreSQL)."""
        if DAILY not in self._pg_tables or self._pg_url is None:
            return None
        import psycopg

        try:
            with psycopg.connect(self._pg_url, connect_timeout=5) as con:
                row = con.execute(
                    "select commit_id from marts._cascade_publish where table_name = %s", [DAILY.split(".", 1)[1]]
                ).fetchone()
        except psycopg.Error:
            return None
        return str(row[0]) if row and row[0] else None

    def provenance(self) -> str:
        """Which ref and commit the page reads: 'ref main @ 1a2b3c4d' (+ the published commit)."""
        text = f"ref {self.ref} @ {self.commit_id()[:12]}"
        published = self.published_commit()
        if published is not None:
            text += f" · PostgreSQL marts published from commit {published[:12]}"
        return text


def _dates(values: pd.Series) -> pd.Series:
    """Any date-like column (DuckDB datetime64, PostgreSQL date) as python dates."""
    return pd.to_datetime(values).dt.date
