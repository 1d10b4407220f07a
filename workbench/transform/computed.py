"""The metrics that SQL cannot express portably, computed once in Python and stored as Iceberg tables
that the dbt marts read on every engine.

``materialise(branch)`` reads ``silver.fct_glucose_readings`` as Arrow through the ref's SQL session
(engine-neutral SQL: plain selects, no engine functions), computes with ``workbench.metrics``
(vectorised over all series of a batch of patients at once) and writes, on the same branch:

- ``gold.glucose_metrics_daily``  every metric per patient-local day (incremental: only the days whose
  readings changed since the last run are recomputed and replaced);
- ``gold.glucose_metrics_weekly`` the reading and time-based metrics per ISO week (weeks with changed days);
- ``gold.glucose_metrics_period`` every metric per patient over the last 14, 30 and 90 complete days
  and the whole history, with data sufficiency;
- ``gold.glucose_episodes``       one row per hypo-/hyperglycaemic episode (whole history);
- ``gold.glucose_agp``            AGP percentiles per 5-minute time of day over the last 14 complete days.

The period, episode and AGP tables are rewritten (for the patients concerned) only when a reading of a
complete day changed or the last complete day moved: new readings of today so far change only the
daily and weekly rows. "Complete" is judged against ``as_of`` (the pinned demo clock ``CASCADE_DEMO_END`` when set,
else the latest ingestion time — never the wall clock): a patient's local day is complete once it has ended in the patient's time zone; the
current partial day ("today so far") is left out of periods, episodes' rates and the AGP.
On duckdb the dbt model ``glucose_computed`` runs this inside the dbt invocation (before the marts);
on trino the runner (``workbench.transform.runner.build``) calls it between gold and the marts.
"""

from __future__ import annotations

import os
import time
import warnings
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from workbench import metrics
from workbench.errors import TableNotFoundError
from workbench.settings import DEV_BRANCH, Settings, get_settings

FACT = "silver.fct_glucose_readings"
DAILY = "gold.glucose_metrics_daily"
WEEKLY = "gold.glucose_metrics_weekly"
PERIOD = "gold.glucose_metrics_period"
EPISODES = "gold.glucose_episodes"
AGP = "gold.glucose_agp"
PERIODS: tuple[tuple[str, int | None], ...] = (("14d", 14), ("30d", 30), ("90d", 90), ("all", None))
AGP_DAYS = 14
AGP_PERCENTILES = metrics.AGP_PERCENTILES
BATCH_READINGS = 250_000  # readings in flight, all batches together (bounds memory: ~1 kB per reading)
COMPUTE_THREADS = 4  # at most; see compute_threads()
EPOCH = date(1970, 1, 1)

# Metric columns of the computed tables, in order (names are the marts' vocabulary).
READING_COLUMNS = (
    "reading_count", "days_with_data", "mean_glucose", "sd_glucose", "cv_glucose", "gmi", "ea1c",
    "pct_very_low", "pct_low", "pct_in_range", "pct_high", "pct_very_high", "pct_below_70", "pct_above_180",
    "pct_tight_range", "pct_63_140", "pct_above_140", "gri", "lbgi", "hbgi", "j_index", "adrr",
    "min_glucose", "q1_glucose", "median_glucose", "q3_glucose", "max_glucose", "range_glucose", "iqr_glucose",
    "grade", "grade_hypo", "grade_eugly", "grade_hyper", "m_value", "mad", "cogi", "hyper_index", "hypo_index",
    "igc", "active_percent",
)  # fmt: skip
GRID_COLUMNS = (
    "mage", "modd", "conga_1", "conga_24", "mag", "gvp", "sd_roc", "cv_mean", "cv_sd", "auc_hourly",
    "sd_w", "sd_hhmm", "sd_ws_h", "sd_dm", "sd_b", "sd_b_dm",
)  # fmt: skip
EPISODE_COLUMNS = tuple(metrics.EPISODE_RATE_COLUMNS)
ALL_COLUMNS = (*READING_COLUMNS, *GRID_COLUMNS, *EPISODE_COLUMNS, "pgs")


@dataclass
class ComputeResult:
    """What one ``materialise`` run did."""

    branch: str
    as_of: datetime
    tables: dict[str, int] = field(default_factory=dict)  # table -> rows written
    skipped: list[str] = field(default_factory=list)  # tables left untouched (nothing changed)
    seconds: float = 0.0


@dataclass(frozen=True)
class _Patient:
    patient_id: str
    tz: str
    last_complete: date | None  # last local day with readings that has ended by as_of


def default_as_of(settings: Settings, latest_ingestion: datetime | None) -> datetime:
    """The clock of the transforms: the pinned demo clock when set, else the latest ingestion time
    (what the lake knows; never the wall clock, so a rebuild of the same data gives the same marts)."""
    pinned = settings.demo_end
    if pinned is not None:
        return pinned if pinned.tzinfo else pinned.replace(tzinfo=UTC)
    if latest_ingestion is not None:
        return latest_ingestion if latest_ingestion.tzinfo else latest_ingestion.replace(tzinfo=UTC)
    return datetime(1970, 1, 1, tzinfo=UTC)


def local_today(as_of: datetime, tz: str) -> date:
    """The patient-local date at ``as_of``."""
    return as_of.astimezone(ZoneInfo(tz or "UTC")).date()


def _table_exists(lh: Any, table: str) -> bool:
    try:
        lh.sql_arrow(f"select 1 from {table} limit 0")
    except TableNotFoundError:
        return False
    return True


def _days(values: Any) -> np.ndarray:
    """Arrow date32 / timestamp column -> days since 1970-01-01 (int64)."""
    arr = values.to_numpy(zero_copy_only=False)
    return arr.astype("datetime64[D]").astype(np.int64)


def _seconds(values: Any) -> np.ndarray:
    arr = values.to_numpy(zero_copy_only=False)
    return arr.astype("datetime64[us]").astype(np.int64) / 1e6


def _as_date(day: int) -> date:
    return EPOCH + timedelta(days=int(day))


READING_FIELDS = ("patient_id", "reading_ts_utc", "reading_ts_local", "reading_date", "glucose_value", "ingested_at")


def _readings(lh: Any, patients: list[str], days: list[date] | None = None) -> pa.Table:
    """Readings of some patients (optionally only of some days), engine-neutral SQL — or, where the
    profile says bulk reads go to the files (the stack), the same rows read from the ref's Iceberg
    data files with PyIceberg."""
    from workbench.profiles import spec

    if spec(lh.settings).bulk_reads_from_files:
        from pyiceberg.expressions import And, In

        row_filter: Any = In("patient_id", set(patients))  # type: ignore[misc,call-arg,arg-type]  # narrower typing than API
        if days is not None:
            row_filter = And(row_filter, In("reading_date", {d.isoformat() for d in days}))  # type: ignore[misc,call-arg,arg-type]
        scan = lh.table(FACT).scan(row_filter=row_filter, selected_fields=READING_FIELDS)
        return scan.to_arrow().select(list(READING_FIELDS))
    quoted = ", ".join("'" + p.replace("'", "''") + "'" for p in patients)
    where = f"patient_id in ({quoted})"
    if days is not None:
        where += f" and reading_date in ({', '.join(f'date {d.isoformat()!r}' for d in days)})"
    return lh.sql_arrow(f"select {', '.join(READING_FIELDS)} from {FACT} where {where}")


def compute_threads() -> int:
    """Threads computing batches of patients: the cores this process may use, at most COMPUTE_THREADS."""
    return max(1, min(COMPUTE_THREADS, len(os.sched_getaffinity(0))))


def _batches(sizes: dict[str, int], limit: int = BATCH_READINGS) -> Iterator[list[str]]:
    batch: list[str] = []
    total = 0
    for pid, n in sorted(sizes.items()):
        if batch and total + n > limit:
            yield batch
            batch, total = [], 0
        batch.append(pid)
        total += n
    if batch:
        yield batch


def _grouped(
    t: np.ndarray, g: np.ndarray, day: np.ndarray, offset: np.ndarray, group: np.ndarray, tzs: list[str]
) -> metrics.GroupedReadings:
    return metrics.GroupedReadings.build(group, t, g, day, offset, n_groups=len(tzs), group_tz=tzs)


def _columns(values: dict[str, np.ndarray], names: tuple[str, ...], rows: np.ndarray) -> dict[str, pa.Array]:
    out: dict[str, pa.Array] = {}
    for name in names:
        col = np.asarray(values[name], dtype=np.float64)[rows]
        if name in ("reading_count", "days_with_data"):
            out[name] = pa.array(col.astype(np.int64))
        else:
            out[name] = pa.array(col, mask=np.isnan(col))
    return out


def materialise(
    branch: str = DEV_BRANCH,
    *,
    settings: Settings | None = None,
    as_of: datetime | None = None,
    full_refresh: bool = False,
    agp_days: int = AGP_DAYS,
    session: Any = None,
) -> ComputeResult:
    """Compute and write the tables of the module docstring on ``branch`` (the AGP over the last
    ``agp_days`` complete days: dbt var ``agp_days``, 14 by consensus). ``session``: an SQL session
    on ``branch`` to read through (the dbt plugin passes its own: one DuckDB buffer pool)."""
    from workbench.lakehouse import Lakehouse

    settings = settings or get_settings()
    started = time.perf_counter()
    lh = Lakehouse(ref=branch, settings=settings, session=session)
    if not _table_exists(lh, FACT):
        return ComputeResult(
            branch, as_of or default_as_of(settings, None), skipped=[DAILY, WEEKLY, PERIOD, EPISODES, AGP]
        )
    days = lh.sql_arrow(
        f"select patient_id, max(patient_tz) as patient_tz, reading_date, count(*) as n, "
        f"max(ingested_at) as ingested_at from {FACT} group by patient_id, reading_date"
    )
    latest = max((v for v in days["ingested_at"].to_pylist() if v is not None), default=None)
    as_of = as_of or default_as_of(settings, latest)
    result = ComputeResult(branch, as_of)
    pids = days["patient_id"].to_pylist()
    tz_of = dict(zip(pids, [t or "UTC" for t in days["patient_tz"].to_pylist()], strict=True))
    dates = [_as_date(d) for d in _days(days["reading_date"])]
    ingested = days["ingested_at"].to_pylist()
    counts = days["n"].to_pylist()
    sizes: dict[str, int] = {}
    last_complete: dict[str, date | None] = {}
    for pid, d, n in zip(pids, dates, counts, strict=True):
        sizes[pid] = sizes.get(pid, 0) + int(n)
        if d < local_today(as_of, tz_of[pid]):
            prev = last_complete.get(pid)
            last_complete[pid] = d if prev is None or d > prev else prev
        else:
            last_complete.setdefault(pid, None)
    patients = {p: _Patient(p, tz_of[p], last_complete.get(p)) for p in sizes}

    # ---- which days changed since the last run ---------------------------------------------------
    previous = None
    if not full_refresh and _table_exists(lh, DAILY):
        previous = lh.sql_arrow(f"select max(source_ingested_at) as m from {DAILY}")["m"][0].as_py()
    changed_days: set[date] = set()
    new_data: set[str] = set()
    for pid, d, ing in zip(pids, dates, ingested, strict=True):
        if previous is None or (ing is not None and _naive(ing) > _naive(previous)):
            changed_days.add(d)
            end = last_complete[pid]
            if end is not None and d <= end:
                # new readings on a complete day; those of today so far are in no period, episode
                # or AGP, so a run every few minutes recomputes only today's daily and weekly rows
                new_data.add(pid)
    if previous is not None:
        # a day stored for a patient that silver no longer has (a corrected zone moved its readings
        # to other days) is replaced too, so that it is deleted as a full rebuild would not have it
        stored = lh.sql_arrow(f"select distinct patient_id, reading_date from {DAILY}")
        present = set(zip(pids, dates, strict=True))
        for pid, d in zip(stored["patient_id"].to_pylist(), _days(stored["reading_date"]), strict=True):
            if (pid, _as_date(d)) not in present:
                changed_days.add(_as_date(d))
                new_data.add(pid)
    # a changed day is replaced for every patient (as the incremental SQL marts replace days)
    changed = {pid: changed_days for pid in sizes} if changed_days else {}
    stale = _stale_patients(lh, patients, new_data, agp_days, full_refresh)
    partial = stale is not None
    if stale is None:
        stale = set(sizes)
    if not changed:
        result.skipped += [DAILY, WEEKLY]
    if not stale:
        result.skipped += [PERIOD, EPISODES, AGP]
    if not changed and not stale:
        result.seconds = time.perf_counter() - started
        return result

    # Patients whose periods are stale are read whole; the others only for the changed weeks
    # (the daily and weekly rows of every patient are replaced for the changed days and weeks).
    weeks = sorted({d - timedelta(days=d.weekday()) for d in changed_days})
    week_days = {w + timedelta(days=i) for w in weeks for i in range(7)}
    load: dict[str, int] = {}
    for pid, d, n in zip(pids, dates, counts, strict=True):
        if pid in stale or d in week_days:
            load[pid] = load.get(pid, 0) + int(n)
    daily_parts: list[pa.Table] = []
    weekly_parts: list[pa.Table] = []
    period_parts: list[pa.Table] = []
    episode_parts: list[pa.Table] = []
    agp_parts: list[pa.Table] = []

    def compute(arrays: _Arrays, whole: set[str]) -> list[tuple[list[pa.Table], pa.Table]]:
        out: list[tuple[list[pa.Table], pa.Table]] = []
        if changed:
            out += [
                (daily_parts, _daily(arrays, patients, changed)),
                (weekly_parts, _weekly(arrays, patients, changed)),
            ]
        if whole:
            period, episodes = _periods(arrays, patients, whole)
            out += [(period_parts, period), (episode_parts, episodes)]
            out.append((agp_parts, _agp(arrays, patients, agp_days, whole)))
        return out

    # Batches are read here, in order, and computed by COMPUTE_THREADS threads (the metrics are large
    # numpy operations, which release the GIL); at most that many batches are in flight, each of
    # 1/COMPUTE_THREADS of BATCH_READINGS, so memory stays that of one batch of BATCH_READINGS.
    threads = compute_threads()
    pending: deque[Future[list[tuple[list[pa.Table], pa.Table]]]] = deque()

    def collect(future: Future[list[tuple[list[pa.Table], pa.Table]]]) -> None:
        for target, table in future.result():
            target.append(table)

    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="cascade-metrics") as pool:
        for batch in _batches(load, BATCH_READINGS // threads):
            whole = [p for p in batch if p in stale]
            parts = [_readings(lh, whole)] if whole else []
            if changed and len(whole) < len(batch):
                parts.append(_readings(lh, [p for p in batch if p not in stale], sorted(week_days)))
            data = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
            if data.num_rows == 0:
                continue
            arrays = _Arrays.of(data, batch)
            del data, parts
            while len(pending) >= threads:
                collect(pending.popleft())
            pending.append(pool.submit(compute, arrays, set(whole)))
            del arrays
        while pending:
            collect(pending.popleft())

    def write(table: str, parts: list[pa.Table], where: str | None = None) -> None:
        full = [p for p in parts if p.num_rows]
        if not full:
            if not parts or (where is None and _table_exists(lh, table)):
                return
            # no rows: replacing days with nothing deletes them (days a corrected zone left empty)
            full = [max(parts, key=lambda p: p.num_columns)]  # an empty table, so the marts can read it
        data = pa.concat_tables(full)
        message = f"metrics: {table} ({data.num_rows} rows, as of {as_of.isoformat(timespec='seconds')})"
        if where is not None:
            with warnings.catch_warnings():  # a new day or patient has no rows to replace yet
                warnings.filterwarnings("ignore", message="Delete operation did not match any records")
                lh.write(table, data, mode="overwrite", where=where, message=message)
        else:
            lh.write(table, data, mode="overwrite", message=message)
        result.tables[table] = data.num_rows

    if changed:
        incremental = previous is not None
        all_days = sorted(changed_days)
        write(DAILY, daily_parts, _in("reading_date", all_days) if incremental else None)
        write(WEEKLY, weekly_parts, _in("week_start", weeks) if incremental else None)
    if stale:
        where = _in("patient_id", sorted(stale)) if partial else None
        write(PERIOD, period_parts, where)
        write(EPISODES, episode_parts, where)
        write(AGP, agp_parts, where)
    result.seconds = time.perf_counter() - started
    return result


def _stale_patients(
    lh: Any, patients: dict[str, _Patient], new_data: set[str], agp_days: int, full_refresh: bool
) -> set[str] | None:
    """The patients whose period, episode and AGP rows must be recomputed: those with new readings
    on a complete day (``new_data``) or whose last complete day moved. None when every table must be rewritten whole (a full refresh,
    a table missing, another AGP length, a patient no longer in the fact)."""
    if full_refresh or not all(_table_exists(lh, t) for t in (PERIOD, EPISODES, AGP)):
        return None
    stored = lh.sql_arrow(f"select distinct patient_id, period_end from {PERIOD} where period = 'all'")
    stored_end = dict(zip(stored["patient_id"].to_pylist(), stored["period_end"].to_pylist(), strict=True))
    stored_days = lh.sql_arrow(f"select distinct period_days from {AGP}")["period_days"].to_pylist()
    if stored_days not in ([agp_days], []) or not set(stored_end) <= set(patients):
        return None
    return {p for p, info in patients.items() if p in new_data or stored_end.get(p) != info.last_complete}


def _naive(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def _in(column: str, values: list[date] | list[str]) -> str:
    quoted = ("'" + str(v).replace("'", "''") + "'" for v in values)  # a date's str is ISO
    return f"{column} in ({', '.join(quoted)})"


@dataclass(frozen=True)
class _Arrays:
    """One batch of readings as numpy arrays."""

    pid: np.ndarray  # index into `patients`
    patients: list[str]
    t: np.ndarray
    offset: np.ndarray
    day: np.ndarray
    g: np.ndarray
    ingested: np.ndarray  # epoch µs

    @classmethod
    def of(cls, data: pa.Table, patients: list[str]) -> _Arrays:
        pid = (
            pc.index_in(data["patient_id"].cast(pa.string()), value_set=pa.array(patients, pa.string()))
            .to_numpy(zero_copy_only=False)
            .astype(np.int64)
        )
        t = _seconds(data["reading_ts_utc"])
        local = _seconds(data["reading_ts_local"])
        ing = data["ingested_at"].to_numpy(zero_copy_only=False).astype("datetime64[us]").astype(np.int64)
        return cls(
            pid,
            patients,
            t,
            local - t,
            _days(data["reading_date"]),
            data["glucose_value"].to_numpy(zero_copy_only=False).astype(np.float64),
            ing,
        )

    def select(self, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return self.t[mask], self.g[mask], self.day[mask], self.offset[mask]


def _group_ids(patient: np.ndarray, day: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dense group ids of the rows' (patient, day) pairs in their order, and the row index of each
    group's first row."""
    key = patient.astype(np.int64) * (1 << 32) + (day.astype(np.int64) - int(day.min(initial=0)))
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    return inverse.reshape(-1).astype(np.int64), first


def _daily(a: _Arrays, patients: dict[str, _Patient], changed: dict[str, set[date]]) -> pa.Table:
    wanted = {(i, (d - EPOCH).days) for i, p in enumerate(a.patients) for d in changed.get(p, ())}
    if not wanted:
        return _empty_daily()
    keys = a.pid * 1_000_000 + a.day
    mask = np.isin(keys, np.array([i * 1_000_000 + d for i, d in wanted], dtype=np.int64))
    if not mask.any():
        return _empty_daily()
    pid_masked = a.pid[mask]
    group, first = _group_ids(pid_masked, a.day[mask])
    pid_of_group = pid_masked[first].tolist()
    tzs = [patients[a.patients[i]].tz for i in pid_of_group]
    r = _grouped(*a.select(mask), group=group, tzs=tzs)
    values = metrics.all_metrics(r)
    n = len(first)
    rows = np.arange(n)
    ing = np.full(n, np.iinfo(np.int64).min)
    np.maximum.at(ing, group, a.ingested[mask])
    cols: dict[str, Any] = {
        "patient_id": pa.array([a.patients[i] for i in pid_of_group]),
        "reading_date": pa.array(a.day[mask][first].astype("datetime64[D]")),
    }
    cols.update(_columns(values, ALL_COLUMNS, rows))
    cols["source_ingested_at"] = pa.array(ing.astype("datetime64[us]"))
    return pa.table(cols)


def _empty_daily() -> pa.Table:
    return pa.table({"patient_id": pa.array([], pa.string())}).slice(0, 0)


def _weekly(a: _Arrays, patients: dict[str, _Patient], changed: dict[str, set[date]]) -> pa.Table:
    # ISO weeks start on Monday; 1970-01-01 was a Thursday (days + 3) % 7 is the weekday.
    week = a.day - (a.day + 3) % 7
    wanted = {
        (i, (d - EPOCH).days - ((d - EPOCH).days + 3) % 7) for i, p in enumerate(a.patients) for d in changed.get(p, ())
    }
    keys = a.pid * 1_000_000 + week
    mask = np.isin(keys, np.array([i * 1_000_000 + w for i, w in wanted], dtype=np.int64))
    if not mask.any():
        return _empty_daily()
    pid_masked = a.pid[mask]
    group, first = _group_ids(pid_masked, week[mask])
    pid_of_group = pid_masked[first].tolist()
    tzs = [patients[a.patients[i]].tz for i in pid_of_group]
    r = _grouped(*a.select(mask), group=group, tzs=tzs)
    values = {**metrics.reading_metrics(r), **metrics.grid_metrics(metrics.build_grid(r))}
    cols: dict[str, Any] = {
        "patient_id": pa.array([a.patients[i] for i in pid_of_group]),
        "week_start": pa.array(week[mask][first].astype("datetime64[D]")),
    }
    cols.update(_columns(values, (*READING_COLUMNS, *GRID_COLUMNS), np.arange(len(first))))
    return pa.table(cols)


def _periods(a: _Arrays, patients: dict[str, _Patient], only: set[str]) -> tuple[pa.Table, pa.Table]:
    """Every metric per patient and period, over the complete days of the window, for the patients
    in ``only``; and every episode of their complete days (iglu episode_calculation), found on the
    grid of the whole-history period."""
    group_parts, index_parts, labels = [], [], []
    for i, pid in enumerate(a.patients):
        end = patients[pid].last_complete
        if end is None or pid not in only:
            continue
        end_day = (end - EPOCH).days
        mine = np.flatnonzero((a.pid == i) & (a.day <= end_day))
        if not mine.size:
            continue
        first_day = int(a.day[mine].min())
        for name, length in PERIODS:
            start_day = first_day if length is None else end_day - length + 1
            sel = mine[a.day[mine] >= start_day]
            if not sel.size:
                continue
            labels.append((pid, name, end_day - start_day + 1, start_day, end_day))
            group_parts.append(np.full(sel.size, len(labels) - 1))
            index_parts.append(sel)
    if not labels:
        return pa.table({"patient_id": pa.array([], pa.string())}), _episode_table([], None, None)
    idx = np.concatenate(index_parts)
    group = np.concatenate(group_parts)
    tzs = [patients[lab[0]].tz for lab in labels]
    r = _grouped(a.t[idx], a.g[idx], a.day[idx], a.offset[idx], group=group, tzs=tzs)
    values, episodes = metrics.metrics_and_episodes(r)
    n = len(labels)
    period_days = np.array([lab[2] for lab in labels], dtype=np.int64)
    count = np.asarray(values["reading_count"])
    present = np.minimum(100.0, 100.0 * count / (period_days * metrics.READINGS_PER_DAY))
    sufficient = metrics.is_sufficient(values["days_with_data"], values["active_percent"])
    cols: dict[str, Any] = {
        "patient_id": pa.array([lab[0] for lab in labels]),
        "period": pa.array([lab[1] for lab in labels]),
        "period_days": pa.array(period_days),
        "period_start": pa.array(np.array([lab[3] for lab in labels]).astype("datetime64[D]")),
        "period_end": pa.array(np.array([lab[4] for lab in labels]).astype("datetime64[D]")),
    }
    cols.update(_columns(values, ALL_COLUMNS, np.arange(n)))
    cols["pct_readings_present"] = pa.array(present)
    cols["sufficient"] = pa.array(sufficient)
    return pa.table(cols), _episode_table([lab[0] if lab[1] == "all" else None for lab in labels], r, episodes)


def _episode_table(
    patient_of_group: list[str | None], r: metrics.GroupedReadings | None, ep: metrics.Episodes | None
) -> pa.Table:
    """The episodes of the groups that have a patient (the whole-history periods), one row each,
    with the number of raw readings within each episode."""
    if r is None or ep is None:
        keep = np.empty(0, dtype=np.int64)
    else:
        keep = np.flatnonzero(np.array([patient_of_group[g] is not None for g in ep.group.tolist()], dtype=bool))
    if r is not None and ep is not None and keep.size:
        key = r.group * 10**11 + np.round(r.t).astype(np.int64)
        group, start, end = ep.group[keep], ep.start[keep], ep.end[keep]
        lo = np.searchsorted(key, group * 10**11 + np.ceil(start).astype(np.int64), side="left")
        hi = np.searchsorted(key, group * 10**11 + np.floor(end).astype(np.int64), side="right")
        pids = [patient_of_group[g] for g in group.tolist()]
        type_, level, exclusive = ep.type[keep].tolist(), ep.level[keep].tolist(), ep.exclusive[keep]
        duration, extreme, mean = ep.duration_minutes[keep], ep.extreme[keep], ep.mean[keep]
        count = (hi - lo).astype(np.int64)
    else:
        pids, type_, level, exclusive = [], [], [], np.empty(0, dtype=bool)
        start = end = duration = extreme = mean = np.empty(0)
        count = np.empty(0, dtype=np.int64)
    ts = lambda s: pa.array((s * 1e6).astype(np.int64).astype("datetime64[us]"))  # noqa: E731
    return pa.table(
        {
            "patient_id": pa.array(pids, pa.string()),
            "episode_type": pa.array(type_, pa.string()),
            "episode_level": pa.array(level, pa.string()),
            "is_exclusive": pa.array(exclusive),
            "start_ts_utc": ts(start),
            "end_ts_utc": ts(end),
            "duration_minutes": pa.array(duration),
            "extreme_glucose": pa.array(extreme),
            "mean_glucose": pa.array(mean),
            "reading_count": pa.array(count),
        }
    )


def _agp(a: _Arrays, patients: dict[str, _Patient], agp_days: int, only: set[str]) -> pa.Table:
    """AGP percentiles per patient and 5-minute local time of day over the last 14 complete days, on
    iglu's interpolated grid (no interpolation across gaps > 45 minutes; unsmoothed)."""
    keep = np.zeros(a.pid.size, dtype=bool)
    for i, pid in enumerate(a.patients):
        end = patients[pid].last_complete
        if end is not None and pid in only:
            end_day = (end - EPOCH).days
            keep |= (a.pid == i) & (a.day <= end_day) & (a.day > end_day - agp_days)
    if not keep.any():
        return pa.table({"patient_id": pa.array([], pa.string())})
    tzs = [patients[p].tz for p in a.patients]
    r = _grouped(*a.select(keep), group=a.pid[keep], tzs=tzs)
    prof = metrics.agp_profile(r, tzs)
    keys = prof["group"] * 1440 + prof["minute_of_day"]
    points = prof["grid_points"]
    qs = [prof[name] for name, _ in AGP_PERCENTILES]
    patient_idx = keys // 1440
    end_of = {i: patients[p].last_complete for i, p in enumerate(a.patients)}
    cols: dict[str, Any] = {
        "patient_id": pa.array([a.patients[i] for i in patient_idx], pa.string()),
        "minute_of_day": pa.array((keys % 1440).astype(np.int32)),
        "period_days": pa.array(np.full(keys.size, agp_days, dtype=np.int32)),
        "period_end": pa.array([end_of[int(i)] for i in patient_idx], pa.date32()),
        "grid_points": pa.array(points.astype(np.int64)),
    }
    for (name, _), q in zip(AGP_PERCENTILES, qs, strict=True):
        cols[name] = pa.array(q)
    return pa.table(cols)
