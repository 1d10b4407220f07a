"""Synthetic raw CGM data in the raw-table column contract (docs/architecture.md), for tests,
benchmarks and demos of the transforms without a Nightscout site.

Readings every 5 minutes with a daily meal pattern, noise, occasional gaps, duplicates (re-uploads)
and a few invalid rows (so bronze has something to drop). Deterministic for a given seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pyarrow as pa

TIME_ZONES = ("Europe/Berlin", "America/New_York", "Asia/Tokyo", "Australia/Adelaide", "UTC")


@dataclass(frozen=True)
class RawData:
    """The three raw tables."""

    glucose_entries: pa.Table
    treatments: pa.Table
    patients: pa.Table

    def tables(self) -> dict[str, pa.Table]:
        """Tables by their lake name (``raw.<name>``)."""
        return {
            "raw.glucose_entries": self.glucose_entries,
            "raw.treatments": self.treatments,
            "raw.patients": self.patients,
        }


def patient_ids(n_patients: int) -> list[str]:
    """The ids ``generate`` uses (``p001``, ``p002``, ...)."""
    return [f"p{i + 1:03d}" for i in range(n_patients)]


def generate(
    n_patients: int = 3,
    days: int = 7,
    *,
    start: date = date(2026, 1, 1),
    seed: int = 7,
    ingested_at: datetime | None = None,
    duplicate_share: float = 0.01,
    invalid_share: float = 0.002,
    gap_share: float = 0.01,
) -> RawData:
    """Raw tables for ``n_patients`` over ``days`` patient-local days starting at ``start``."""
    rng = np.random.default_rng(seed)
    loaded = ingested_at or datetime(2026, 6, 1, tzinfo=UTC)
    entries: list[pa.Table] = []
    treatments: list[pa.Table] = []
    pids = patient_ids(n_patients)
    tzs = [TIME_ZONES[i % len(TIME_ZONES)] for i in range(n_patients)]
    for pid, tz in zip(pids, tzs, strict=True):
        entries.append(_entries(rng, pid, tz, start, days, loaded, duplicate_share, invalid_share, gap_share))
        treatments.append(_treatments(rng, pid, tz, start, days, loaded))
    patients = pa.table(
        {
            "patient_id": pids,
            "display_name": [f"Patient {p[1:]}" for p in pids],
            "time_zone": tzs,
            "site_id": [f"site-{p}" for p in pids],
            "site_url": [f"https://{p}.nightscout.example" for p in pids],
            "time_zone_since": pa.nulls(len(pids), pa.timestamp("us", tz="UTC")),  # the zones never changed
        }
    )
    return RawData(pa.concat_tables(entries), pa.concat_tables(treatments), patients)


def _local_midnight_ms(tz: str, day: date) -> int:
    from zoneinfo import ZoneInfo

    local = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz))
    return int(local.timestamp() * 1000)


def _entries(
    rng: np.random.Generator,
    pid: str,
    tz: str,
    start: date,
    days: int,
    loaded: datetime,
    duplicate_share: float,
    invalid_share: float,
    gap_share: float,
) -> pa.Table:
    begin = _local_midnight_ms(tz, start)
    end = _local_midnight_ms(tz, start + timedelta(days=days))
    step = 5 * 60 * 1000
    jitter = int(rng.integers(0, step))
    times = np.arange(begin + jitter, end, step, dtype=np.int64)
    n = times.size
    hours = ((times - begin) / 3_600_000.0) % 24
    base = float(rng.uniform(110, 160))
    meals = sum(amp * np.exp(-(((hours - at) % 24) ** 2) / 2.0) for at, amp in ((7.5, 70), (12.5, 60), (19, 80)))
    walk = np.cumsum(rng.normal(0, 2.0, n))
    width = min(289, n)
    walk -= np.convolve(walk, np.ones(width) / width, mode="same")
    glucose = np.clip(base + meals + walk + 30 * np.sin(hours / 24 * 2 * np.pi), 40, 400)
    glucose = np.round(glucose).astype(np.int64)
    keep = rng.random(n) >= gap_share
    # a two-hour sensor gap somewhere in the middle
    if n > 100:
        gap_at = int(rng.integers(n // 3, 2 * n // 3))
        keep[gap_at : gap_at + 24] = False
    times, glucose = times[keep], glucose[keep]
    sgv = glucose.astype(object)
    invalid = rng.random(times.size) < invalid_share
    sgv[invalid] = 0
    ids = [f"{pid}-{t}" for t in times]
    dups = np.flatnonzero(rng.random(times.size) < duplicate_share)
    all_times = np.concatenate([times, times[dups]])
    all_sgv = np.concatenate([sgv, sgv[dups]])
    all_ids = ids + [f"{ids[i]}-dup" for i in dups]
    count = all_times.size
    return pa.table(
        {
            "_id": pa.array(all_ids, pa.string()),
            "type": pa.array(["sgv"] * count, pa.string()),
            "sgv": pa.array(all_sgv.tolist(), pa.int64()),
            "mbg": pa.array([None] * count, pa.float64()),
            "date": pa.array(all_times, pa.int64()),
            "date_string": pa.array(
                [datetime.fromtimestamp(t / 1000, UTC).isoformat() for t in all_times], pa.string()
            ),
            "direction": pa.array(["Flat"] * count, pa.string()),
            "noise": pa.array([1] * count, pa.int64()),
            "device": pa.array(["synthetic-cgm"] * count, pa.string()),
            "utc_offset": pa.array([0] * count, pa.int64()),
            "patient_id": pa.array([pid] * count, pa.string()),
            "patient_tz": pa.array([tz] * count, pa.string()),
            "site_id": pa.array([f"site-{pid}"] * count, pa.string()),
            "_ingested_at": pa.array([loaded] * count, pa.timestamp("us", tz="UTC")),
        }
    )


def _treatments(rng: np.random.Generator, pid: str, tz: str, start: date, days: int, loaded: datetime) -> pa.Table:
    rows: dict[str, list[object]] = {
        k: []
        for k in (
            "_id",
            "event_type",
            "created_at",
            "date",
            "insulin",
            "carbs",
            "duration",
            "absolute",
            "rate",
            "notes",
            "entered_by",
        )
    }
    for d in range(days):
        midnight = _local_midnight_ms(tz, start + timedelta(days=d))
        for hour, carbs in ((7.5, 45.0), (12.5, 60.0), (19.0, 70.0)):
            at = midnight + int((hour + rng.normal(0, 0.3)) * 3_600_000)
            rows["_id"].append(f"{pid}-t{at}")
            rows["event_type"].append("Meal Bolus")
            rows["created_at"].append(datetime.fromtimestamp(at / 1000, UTC).isoformat())
            rows["date"].append(at)
            rows["insulin"].append(round(carbs / 10.0, 1))
            rows["carbs"].append(carbs)
            rows["duration"].append(None)
            rows["absolute"].append(None)
            rows["rate"].append(None)
            rows["notes"].append(None)
            rows["entered_by"].append("synthetic")
    count = len(rows["_id"])
    return pa.table(
        {
            "_id": pa.array(rows["_id"], pa.string()),
            "event_type": pa.array(rows["event_type"], pa.string()),
            "created_at": pa.array(rows["created_at"], pa.string()),
            "date": pa.array(rows["date"], pa.int64()),
            "insulin": pa.array(rows["insulin"], pa.float64()),
            "carbs": pa.array(rows["carbs"], pa.float64()),
            "duration": pa.array(rows["duration"], pa.float64()),
            "absolute": pa.array(rows["absolute"], pa.float64()),
            "rate": pa.array(rows["rate"], pa.float64()),
            "notes": pa.array(rows["notes"], pa.string()),
            "entered_by": pa.array(rows["entered_by"], pa.string()),
            "patient_id": pa.array([pid] * count, pa.string()),
            "patient_tz": pa.array([tz] * count, pa.string()),
            "site_id": pa.array([f"site-{pid}"] * count, pa.string()),
            "_ingested_at": pa.array([loaded] * count, pa.timestamp("us", tz="UTC")),
        }
    )
