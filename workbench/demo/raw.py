"""The demo simulator's patients as the raw tables ingestion lands (the raw-table column contract,
docs/architecture.md), written straight, without a Nightscout server: for tests and benchmarks of the
transforms (100 patient-years in about a minute on a loaded 2-core machine)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pyarrow as pa

from workbench.demo.simulate import STEP_MS, TIME_ZONES, PatientData, random_stream, simulate_patient


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


def _local_midnight_ms(tz: str, day: date) -> int:
    from zoneinfo import ZoneInfo

    return int(datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz)).timestamp() * 1000)


def _iso(ms: np.ndarray) -> pa.Array:
    """`iso_ms` for a whole column."""
    return pa.array(np.char.add(np.datetime_as_string(ms.astype("datetime64[ms]"), unit="ms"), "Z"), pa.string())


def generate(
    n_patients: int = 3,
    days: int = 7,
    *,
    start: date = date(2026, 1, 1),
    seed: int = 7,
    ingested_at: datetime | None = None,
    duplicate_share: float = 0.01,
    invalid_share: float = 0.002,
) -> RawData:
    """The simulated patients `p001`... over `days` patient-local days from `start` (each sensor
    reads at its own phase, from just after local midnight), as the raw tables ingestion lands
    (patient i in ``TIME_ZONES[i]`` whatever the seed, so data of another seed continues the same
    patients). Re-uploads (`duplicate_share`, another `_id`) and invalid readings (`invalid_share`,
    sgv 0) give bronze something to drop."""
    loaded = ingested_at or datetime(2026, 6, 1, tzinfo=UTC)
    entries: list[pa.Table] = []
    treatments: list[pa.Table] = []
    zones = [TIME_ZONES[i % len(TIME_ZONES)] for i in range(n_patients)]
    for index, tz in enumerate(zones):
        rng = random_stream(seed, index, "raw")
        # a sensor reads at its own phase (whole seconds), not at local midnight
        begin = _local_midnight_ms(tz, start) + int(rng.integers(1, STEP_MS // 1000)) * 1000
        steps = (_local_midnight_ms(tz, start + timedelta(days=days)) - begin) // STEP_MS + 1
        patient = simulate_patient(seed, index, begin, steps, time_zone=tz, documents=False)
        entries.append(_raw_entries(patient, rng, loaded, duplicate_share, invalid_share))
        treatments.append(_raw_treatments(patient, loaded))
    pids = [f"p{i + 1:03d}" for i in range(n_patients)]
    patients = pa.table(
        {
            "patient_id": pids,
            "display_name": [f"Demo patient {i + 1}" for i in range(n_patients)],
            "time_zone": zones,
            "site_id": [f"site-{p}" for p in pids],
            "site_url": [f"https://{p}.nightscout.example" for p in pids],
            "time_zone_since": pa.nulls(n_patients, pa.timestamp("us", tz="UTC")),  # the zones never changed
        }
    )
    return RawData(pa.concat_tables(entries), pa.concat_tables(treatments), patients)


def _constant(value: object, count: int, kind: pa.DataType) -> pa.Array:
    return pa.repeat(pa.scalar(value, kind), count)


def _raw_entries(
    patient: PatientData, rng: np.random.Generator, loaded: datetime, duplicate_share: float, invalid_share: float
) -> pa.Table:
    n = patient.dates.size
    sgv = patient.sgv.copy()
    sgv[rng.random(n) < invalid_share] = 0
    dups = np.flatnonzero(rng.random(n) < duplicate_share)
    dates = np.concatenate([patient.dates, patient.dates[dups]])
    ids = np.concatenate([patient.ids, patient.ids[dups] + "-dup"])
    count = dates.size
    pid = patient.patient_id
    return pa.table(
        {
            "_id": pa.array(ids, pa.string()),
            "type": _constant("sgv", count, pa.string()),
            "sgv": pa.array(np.concatenate([sgv, sgv[dups]]), pa.int64()),
            "mbg": _constant(None, count, pa.float64()),
            "date": pa.array(dates, pa.int64()),
            "date_string": _iso(dates),
            "direction": pa.array(np.concatenate([patient.direction, patient.direction[dups]]), pa.string()),
            "noise": pa.array(np.concatenate([patient.noise, patient.noise[dups]]), pa.int64()),
            "device": _constant("share2", count, pa.string()),
            "utc_offset": _constant(0, count, pa.int64()),
            "patient_id": _constant(pid, count, pa.string()),
            "patient_tz": _constant(patient.time_zone, count, pa.string()),
            "site_id": _constant(f"site-{pid}", count, pa.string()),
            "_ingested_at": _constant(loaded, count, pa.timestamp("us", tz="UTC")),
        }
    )


def _raw_treatments(patient: PatientData, loaded: datetime) -> pa.Table:
    docs = patient.treatments
    count = len(docs)
    pid = patient.patient_id

    def column(key: str, kind: pa.DataType) -> pa.Array:
        return pa.array([doc.get(key) for doc in docs], kind)

    return pa.table(
        {
            "_id": column("_id", pa.string()),
            "event_type": column("eventType", pa.string()),
            "created_at": column("created_at", pa.string()),
            "date": column("_serve_date", pa.int64()),
            "insulin": column("insulin", pa.float64()),
            "carbs": column("carbs", pa.float64()),
            "duration": column("duration", pa.float64()),
            "absolute": column("absolute", pa.float64()),
            "rate": column("rate", pa.float64()),
            "notes": column("notes", pa.string()),
            "entered_by": column("enteredBy", pa.string()),
            "patient_id": _constant(pid, count, pa.string()),
            "patient_tz": _constant(patient.time_zone, count, pa.string()),
            "site_id": _constant(f"site-{pid}", count, pa.string()),
            "_ingested_at": _constant(loaded, count, pa.timestamp("us", tz="UTC")),
        }
    )
