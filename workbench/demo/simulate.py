"""Deterministic CGM simulation behind the demo Nightscout server.

One `PatientData` per simulated patient: 5-minute sensor readings driven by a small glucose model
(circadian rhythm with a dawn phenomenon, meals absorbed over ~2 h, bolus insulin acting over ~4 h,
exercise, homeostatic mean reversion, physiological drift) seen through a sensor (10-day sessions
with a 2-hour warm-up, per-session calibration bias, noise, signal gaps, night-time compression
lows). Treatments (meal/correction boluses, carbs, exercise, sensor starts) match the model inputs.
A few records are served twice and a few malformed records are mixed in, so ingestion has to
deduplicate and quarantine. Everything is a pure function of (seed, patient index, start, days).

The one CGM simulator of the project: the demo server serves it as Nightscout documents, and
`workbench.demo.raw` writes it straight in the raw-table column contract (docs/architecture.md) for
tests and benchmarks of the transforms. Vectorised (the glucose model runs a day at a time as a matrix
product), so 100 patient-years take seconds.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

STEP_MS = 5 * 60 * 1000
DAY_MS = 24 * 3600 * 1000
TIME_ZONES = (
    "Europe/Berlin",
    "America/New_York",
    "Asia/Tokyo",
    "Australia/Sydney",
    "America/Los_Angeles",
    "Europe/London",
)
_DIRECTIONS = np.array(
    ["DoubleDown", "SingleDown", "FortyFiveDown", "Flat", "FortyFiveUp", "SingleUp", "DoubleUp"],
    dtype=object,
)
# Kinds of malformed entry a real Nightscout collection accumulates (buggy uploaders, manual posts).
MALFORMED_KINDS = (
    "missing_sgv",
    "non_numeric_sgv",
    "error_code",
    "out_of_range",
    "future_date",
    "unparseable_date",
    "wrong_type",
    "wrong_field_type",
)


def iso_ms(ms: int) -> str:
    """Nightscout's `dateString`/`created_at` shape: ISO 8601 UTC with milliseconds and `Z`."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def object_ids(ms: np.ndarray, salt: int, tag: str) -> np.ndarray:
    """MongoDB-ObjectId-shaped ids (24 hex) for documents at epoch ms `ms`: the seconds, then a
    64-bit hash (splitmix64) of (patient salt, ms, tag).

    An id depends only on the document's time and kind, so a restarted demo server (whose simulation
    window moved) gives the same reading the same id.
    """
    key = int.from_bytes(hashlib.sha256(f"{salt}:{tag}".encode()).digest()[:8], "little")
    z = np.asarray(ms, dtype=np.int64).astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(key)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    seconds = ((np.asarray(ms, dtype=np.int64) // 1000) & 0xFFFFFFFF).astype(">u4")
    hexed = np.frombuffer(seconds.tobytes().hex().encode(), dtype="S8")
    hashed = np.frombuffer(z.astype(">u8").tobytes().hex().encode(), dtype="S16")
    return np.char.add(hexed, hashed).astype("U24").astype(object)


def object_id(ms: int, salt: int, tag: str) -> str:
    """One id of `object_ids`."""
    return str(object_ids(np.array([ms]), salt, tag)[0])


@dataclass
class PatientData:
    """Everything the demo server knows about one simulated patient, sorted by date."""

    patient_id: str
    display_name: str
    time_zone: str
    salt: int
    # sensor readings, columnar (served as `type: sgv` entries)
    dates: np.ndarray
    sgv: np.ndarray
    delta: np.ndarray
    direction: np.ndarray
    noise: np.ndarray
    ids: np.ndarray
    duplicated: np.ndarray  # served twice (the same document)
    # other entries (mbg, cal, malformed, late arrivals) as raw documents, sorted by `_serve_date`
    extra_entries: list[dict[str, Any]] = field(default_factory=list)
    treatments: list[dict[str, Any]] = field(default_factory=list)
    devicestatus: list[dict[str, Any]] = field(default_factory=list)
    counter: int = 0
    # scripted events: hidden windows (start ms, end ms, served from ms) and a second uploader
    hidden: list[tuple[int, int, int]] = field(default_factory=list)
    second_device: str | None = None
    second_device_since: int = 0

    def served(self, i: int, now: int) -> bool:
        """Whether reading i is served at clock `now` (not in a hidden window not yet released)."""
        ms = int(self.dates[i])
        return not any(lo <= ms < hi and now < release for lo, hi, release in self.hidden)

    def second_device_document(self, i: int) -> dict[str, Any]:
        """Reading i as the second uploader sends it (its own `_id`, the same time and value)."""
        doc = self.sgv_document(i)
        doc["_id"] = object_id(int(self.dates[i]), self.salt, f"dev2:{self.second_device}")
        doc["device"] = str(self.second_device)
        return doc

    def next_id(self, ms: int) -> str:
        """A fresh ObjectId for a document created now by the server (late records, tests)."""
        self.counter += 1
        return object_id(ms, self.salt, f"late{self.counter}")

    def sgv_document(self, i: int) -> dict[str, Any]:
        """The i-th sensor reading as Nightscout returns it."""
        ms = int(self.dates[i])
        ds = iso_ms(ms)
        sgv = int(self.sgv[i])
        return {
            "_id": str(self.ids[i]),
            "device": "share2",
            "date": ms,
            "dateString": ds,
            "sgv": sgv,
            "delta": float(self.delta[i]),
            "direction": str(self.direction[i]),
            "type": "sgv",
            "filtered": sgv * 1000 + 480,
            "unfiltered": sgv * 1000 + 240,
            "rssi": 100,
            "noise": int(self.noise[i]),
            "sysTime": ds,
            "utcOffset": 0,
        }

    @property
    def valid_extra_count(self) -> int:
        return sum(1 for doc in self.extra_entries if not doc.get("_malformed"))


def random_stream(seed: int, patient: int, stream: str) -> np.random.Generator:
    """The random stream `stream` of one simulated patient (streams are independent of each other)."""
    digest = hashlib.sha256(f"{seed}:{patient}:{stream}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _kernel(tau_min: float, length_min: int) -> np.ndarray:
    """Absorption/action profile on the 5-minute grid (gamma shape, sums to 1)."""
    t = np.arange(0, length_min, 5, dtype=float)
    k = t / tau_min**2 * np.exp(-t / tau_min)
    return k / k.sum()


def _glucose(carry: float, step: np.ndarray, target: np.ndarray, low: float = 35.0, high: float = 450.0) -> np.ndarray:
    """The glucose model's recurrence g[i] = clip(g[i-1] + step[i] - (g[i-1] - target[i]) / 90),
    a day (288 steps) at a time: linear within a day (a matrix product) unless the clip binds,
    then that day step by step."""
    n = step.size
    width = 288
    days = -(-n // width)
    decay = 1.0 - 1.0 / 90.0
    drive = np.zeros(days * width)
    drive[:n] = step + target / 90.0
    lag = np.arange(width)
    powers = np.triu(decay ** (lag[None, :] - lag[:, None]).clip(0))  # [k, j] = decay^(j-k), k <= j
    within = (drive.reshape(days, width) @ powers).reshape(days, width)
    from_carry = decay ** (lag + 1.0)
    out = np.empty(days * width)
    g = carry
    for d in range(days):
        block = from_carry * g + within[d]
        start = 0
        while True:  # where the clip binds: clip that step and go on from the clipped value
            bad = np.flatnonzero((block[start:] < low) | (block[start:] > high))
            if not bad.size:
                break
            v = start + int(bad[0])
            clipped = min(max(block[v], low), high)
            rest = lag[v + 1 :] - v
            block[v + 1 :] = within[d, v + 1 :] + decay**rest * (clipped - within[d, v])
            block[v] = clipped
            start = v + 1
        out[d * width : (d + 1) * width] = block
        g = float(block[-1])
    return out[:n]


def zone_of(seed: int, index: int) -> str:
    """The time zone of the demo patient `index` (the demo server's patients)."""
    return TIME_ZONES[(index + seed) % len(TIME_ZONES)]


def simulate_patient(
    seed: int, index: int, start_ms: int, n_steps: int, *, time_zone: str | None = None, documents: bool = True
) -> PatientData:
    """Simulate one patient on a 5-minute grid of `n_steps` points from `start_ms` (in `time_zone`,
    by default `zone_of(seed, index)`). `documents=False` leaves out the fingersticks, calibrations,
    malformed documents and device status only the demo server serves."""
    rng = random_stream(seed, index, "patient")
    tz = time_zone or zone_of(seed, index)
    salt = int(hashlib.sha256(f"{seed}:{index}".encode()).hexdigest()[:10], 16)  # per patient
    grid = start_ms + np.arange(n_steps, dtype=np.int64) * STEP_MS
    local = pd.DatetimeIndex(pd.to_datetime(grid, unit="ms", utc=True)).tz_convert(tz)
    hour = np.asarray(local.hour + local.minute / 60.0, dtype=float)
    local_day = np.asarray((local.normalize() - local.normalize()[0]).days, dtype=np.int64)
    n_days = int(local_day[-1]) + 1

    baseline = rng.uniform(100, 135)
    icr = rng.uniform(8, 15)  # g carbs per unit
    isf = rng.uniform(30, 60)  # mg/dL per unit
    carb_gain = isf / icr * rng.uniform(0.9, 1.15)  # mg/dL per g

    carbs = np.zeros(n_steps)
    insulin = np.zeros(n_steps)
    exercise = np.zeros(n_steps)
    treatments: list[tuple[int, dict[str, Any]]] = []
    ev = random_stream(seed, index, "events")

    day_starts = np.searchsorted(local_day, np.arange(n_days + 1))

    def at(day: int, local_hour: float) -> int | None:
        """The first step of local day `day` at or after `local_hour`."""
        lo, hi = day_starts[day], day_starts[day + 1]
        idx = np.flatnonzero(hour[lo:hi] >= local_hour)
        return int(lo + idx[0]) if idx.size else None

    for day in range(n_days):
        meals = [(7.2, 45, 15), (12.6, 60, 20), (19.0, 70, 25)]
        if ev.random() < 0.4:
            meals.append((15.5 if ev.random() < 0.5 else 21.5, 20, 5))
        for mean_hour, mean_carbs, sd in meals:
            i = at(day, mean_hour + ev.normal(0, 0.6))
            grams = float(max(5, round(ev.normal(mean_carbs, sd))))
            missed = ev.random() < 0.08
            units = round(grams / icr * ev.uniform(0.65, 1.3) * 20) / 20
            if i is None:
                continue
            carbs[i] += grams
            if missed:
                treatments.append((i, {"eventType": "Carb Correction", "carbs": grams}))
                j = i + 18
                if j < n_steps:
                    corr = round(grams / icr * 0.9 * 20) / 20
                    insulin[j] += corr
                    treatments.append((j, {"eventType": "Correction Bolus", "insulin": corr}))
            else:
                insulin[i] += units
                treatments.append((i, {"eventType": "Meal Bolus", "carbs": grams, "insulin": units}))
        if ev.random() < 0.43:
            i = at(day, 17.5 + ev.normal(0, 0.5))
            if i is not None:
                minutes = int(ev.choice([30, 45, 60]))
                exercise[i : i + minutes // 5] += ev.uniform(0.8, 1.5) * 5
                treatments.append((i, {"eventType": "Exercise", "duration": minutes, "notes": "walk"}))

    carb_effect = np.convolve(carbs, _kernel(40, 240))[:n_steps] * carb_gain
    insulin_effect = np.convolve(insulin, _kernel(70, 360))[:n_steps] * isf
    circadian = 28 * np.exp(-(((hour - 6.5) / 1.6) ** 2)) + 6 * np.sin((hour - 15) / 24 * 2 * np.pi)
    drift = rng.normal(0, 1.6, n_steps)
    target = baseline + circadian
    glucose = _glucose(baseline, carb_effect - insulin_effect - exercise + drift, target)

    # the sensor: 10-day sessions with a 2-hour warm-up, calibration bias, noise, gaps, compression
    sensor = random_stream(seed, index, "sensor")
    visible = np.ones(n_steps, dtype=bool)
    reading = glucose.copy()
    session_len = 10 * 288
    for s0 in range(0, n_steps, session_len):
        visible[s0 : s0 + 24] = False
        reading[s0 : s0 + session_len] *= sensor.uniform(0.94, 1.06)
        treatments.append((s0, {"eventType": "Sensor Start", "notes": "G6"}))
    reading += sensor.normal(0, 4.0, n_steps)
    for day in range(n_days):
        if sensor.random() < 0.3:
            i = at(day, sensor.uniform(0, 24))
            if i is not None:
                visible[i : i + int(sensor.integers(3, 36))] = False
        if sensor.random() < 0.15:
            i = at(day, sensor.uniform(1, 5))
            if i is not None:
                length = int(sensor.integers(4, 9))
                reading[i : i + length] -= sensor.uniform(35, 60) * np.sin(np.linspace(0, np.pi, length))
    sgv = np.clip(np.rint(reading), 40, 400).astype(np.int64)
    delta = np.diff(sgv, prepend=sgv[0]).astype(float)
    rate = delta / 5.0
    direction = _DIRECTIONS[np.digitize(rate, [-3, -2, -1, 1, 2, 3])]
    noise = np.where(np.abs(delta) > 15, 2, 1)

    keep = np.flatnonzero(visible)
    ids = object_ids(grid[keep], salt, "sgv")
    duplicated = sensor.random(keep.size) < 0.003
    patient = PatientData(
        patient_id=f"p{index + 1:03d}",
        display_name=f"Demo patient {index + 1}",
        time_zone=tz,
        salt=salt,
        dates=grid[keep],
        sgv=sgv[keep],
        delta=delta[keep],
        direction=direction[keep],
        noise=noise[keep],
        ids=ids,
        duplicated=duplicated,
    )
    patient.treatments = _treatment_documents(patient, grid, treatments)
    if documents:
        patient.extra_entries = _extra_entries(seed, index, patient, grid, glucose, visible)
        patient.devicestatus = _devicestatus(seed, index, patient, grid)
    return patient


def _extra_entries(
    seed: int, index: int, patient: PatientData, grid: np.ndarray, glucose: np.ndarray, visible: np.ndarray
) -> list[dict[str, Any]]:
    """Fingersticks (mbg), calibrations (cal) and malformed documents."""
    rng = random_stream(seed, index, "extra")
    docs: list[dict[str, Any]] = []
    n = grid.size
    for i in range(144, n, 288):  # about one fingerstick a day, at a varying time
        j = min(n - 1, i + int(rng.integers(-100, 100)))
        if rng.random() < 0.6:
            ms = int(grid[j]) + 60_000
            docs.append(
                {
                    "_id": object_id(ms, patient.salt, "mbg"),
                    "device": "meter",
                    "date": ms,
                    "dateString": iso_ms(ms),
                    "mbg": int(round(glucose[j] + rng.normal(0, 8))),
                    "type": "mbg",
                }
            )
    for s0 in range(0, n, 10 * 288):
        j = s0 + 25
        if j < n:
            ms = int(grid[j]) + 30_000
            docs.append(
                {
                    "_id": object_id(ms, patient.salt, "cal"),
                    "device": "share2",
                    "date": ms,
                    "dateString": iso_ms(ms),
                    "type": "cal",
                    "slope": round(float(rng.uniform(820, 900)), 2),
                    "intercept": 30000,
                    "scale": 1,
                }
            )
    # malformed documents: about one per 700 readings, each kind in turn, never replacing a reading
    positions = np.flatnonzero(visible)[::700]
    for k, j in enumerate(positions):
        ms = int(grid[j]) + 90_000
        doc: dict[str, Any] = {
            "_id": object_id(ms, patient.salt, "malformed"),
            "device": "xDrip-LimiTTer",
            "date": ms,
            "dateString": iso_ms(ms),
            "sgv": 120,
            "direction": "Flat",
            "type": "sgv",
        }
        kind = MALFORMED_KINDS[k % len(MALFORMED_KINDS)]
        if kind == "missing_sgv":
            del doc["sgv"]
        elif kind == "non_numeric_sgv":
            doc["sgv"] = "ERR"
        elif kind == "error_code":
            doc["sgv"] = int(rng.choice([1, 5, 9, 10]))
        elif kind == "out_of_range":
            doc["sgv"] = 750
        elif kind == "future_date":
            doc["date"] = ms + 400 * DAY_MS
            doc["dateString"] = iso_ms(ms + 400 * DAY_MS)
        elif kind == "unparseable_date":
            doc["date"] = "yesterday"
            doc["dateString"] = "not a date"
        elif kind == "wrong_type":
            doc["type"] = "sgvx"
        elif kind == "wrong_field_type":
            doc["direction"] = {"trend": 4}
        doc["_malformed"] = kind
        doc["_serve_date"] = ms
        docs.append(doc)
    for doc in docs:
        doc.setdefault("_serve_date", doc["date"])
    docs.sort(key=lambda d: d["_serve_date"])
    return docs


def _treatment_documents(
    patient: PatientData, grid: np.ndarray, events: list[tuple[int, dict[str, Any]]]
) -> list[dict[str, Any]]:
    docs = []
    seen: Counter[tuple[int, str]] = Counter()
    ordered = sorted(events, key=lambda e: e[0])
    tags = []
    for i, body in ordered:
        ms = int(grid[i]) + 20_000
        seen[(ms, body["eventType"])] += 1
        tags.append(f"{body['eventType']}:{seen[(ms, body['eventType'])]}")
    ids: dict[int, str] = {}
    for tag in set(tags):  # the ids of each kind in one go
        rows = [k for k, t in enumerate(tags) if t == tag]
        ms_of = np.array([int(grid[ordered[k][0]]) + 20_000 for k in rows], dtype=np.int64)
        ids.update(zip(rows, object_ids(ms_of, patient.salt, tag), strict=True))
    for k, (i, body) in enumerate(ordered):
        ms = int(grid[i]) + 20_000
        doc = {
            "_id": ids[k],
            "eventType": body["eventType"],
            "created_at": iso_ms(ms),
            "enteredBy": "cascade-demo",
            "utcOffset": 0,
        }
        doc.update({key: value for key, value in body.items() if key != "eventType"})
        doc["_serve_date"] = ms
        docs.append(doc)
    return docs


def _devicestatus(seed: int, index: int, patient: PatientData, grid: np.ndarray) -> list[dict[str, Any]]:
    rng = random_stream(seed, index, "devicestatus")
    docs = []
    hourly = grid[::12] + 10_000
    for k, (ms, doc_id) in enumerate(
        zip(hourly.tolist(), object_ids(hourly, patient.salt, "devicestatus"), strict=True)
    ):
        docs.append(
            {
                "_id": doc_id,
                "device": "openaps://phone",
                "created_at": iso_ms(ms),
                "uploader": {"battery": int(100 - (k % 24) * 3)},
                "pump": {"reservoir": round(float(rng.uniform(20, 200)), 1), "battery": {"percent": 80}},
                "_serve_date": ms,
            }
        )
    return docs


@dataclass
class DemoDataset:
    """K simulated patients over D days, ending at `end` (plus a hidden reserve for `advance`)."""

    seed: int = 42
    patients: int = 2
    days: float = 14
    end: datetime | None = None
    reserve_days: float = 1.0
    members: list[PatientData] = field(init=False)
    start_ms: int = field(init=False)
    visible_until: int = field(init=False)

    def __post_init__(self) -> None:
        end = self.end or datetime.now(UTC)
        end_ms = int(end.timestamp() * 1000) // STEP_MS * STEP_MS
        self.start_ms = end_ms - int(self.days * DAY_MS)
        self.visible_until = end_ms
        n_steps = int((self.days + self.reserve_days) * 288)
        self.members = [simulate_patient(self.seed, i, self.start_ms, n_steps) for i in range(self.patients)]

    def patient(self, patient_id: str | None) -> PatientData | None:
        """The patient by id (the first when `patient_id` is None)."""
        if patient_id is None:
            return self.members[0] if self.members else None
        return next((p for p in self.members if p.patient_id == patient_id), None)

    def advance(self, minutes: float) -> None:
        """Let time pass: readings up to `visible_until + minutes` become visible."""
        self.set_time(self.visible_until + int(minutes * 60_000))

    def set_time(self, when: datetime | int) -> None:
        """The simulated clock (a datetime or epoch ms): what a site has uploaded up to now is served,
        a new reading every 5 simulated minutes. Time never runs backwards, and cannot pass the
        simulated horizon (`days + reserve_days`)."""
        ms = int(when.timestamp() * 1000) if isinstance(when, datetime) else int(when)
        horizon = self.start_ms + int((self.days + self.reserve_days) * DAY_MS)
        if ms > horizon:
            raise ValueError(f"the demo clock cannot pass {iso_ms(horizon)} (simulated horizon); raise reserve_days")
        self.visible_until = max(self.visible_until, ms)

    @property
    def now(self) -> datetime:
        """The simulated clock."""
        return datetime.fromtimestamp(self.visible_until / 1000, tz=UTC)

    def add_patient(self) -> PatientData:
        """A new patient joins (the next simulated index), with history up to now like the others."""
        n_steps = int((self.days + self.reserve_days) * 288)
        member = simulate_patient(self.seed, len(self.members), self.start_ms, n_steps)
        self.members.append(member)
        self.patients = len(self.members)
        return member

    def hide(self, patient_id: str, start: datetime, end: datetime, until: datetime | None = None) -> int:
        """Readings of [start, end) are not served — a sensor gap (`until=None`: never) or a late
        upload (served once the clock reaches `until`). Returns how many readings that is."""
        patient = self.patient(patient_id)
        assert patient is not None, patient_id
        lo, hi = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
        release = int(until.timestamp() * 1000) if until is not None else 2**62
        patient.hidden.append((lo, hi, release))
        return int(np.count_nonzero((patient.dates >= lo) & (patient.dates < hi)))

    def duplicate_device(self, patient_id: str, device: str = "xdrip-follower") -> None:
        """From now on every reading is uploaded twice: also by a second device, with its own `_id`
        (same time and value) — the same readings from two uploaders."""
        patient = self.patient(patient_id)
        assert patient is not None, patient_id
        patient.second_device = device
        patient.second_device_since = self.visible_until

    def add_late_entries(self, patient_id: str, count: int, minutes_ago: float) -> list[dict[str, Any]]:
        """Documents dated `minutes_ago` before the newest visible reading, uploaded only now."""
        patient = self.patient(patient_id)
        assert patient is not None, patient_id
        docs = []
        base = self.visible_until - int(minutes_ago * 60_000)
        for k in range(count):
            ms = base + k * 60_000 + 7_000
            docs.append(
                {
                    "_id": patient.next_id(ms),
                    "device": "late-uploader",
                    "date": ms,
                    "dateString": iso_ms(ms),
                    "sgv": 111 + k,
                    "direction": "Flat",
                    "type": "sgv",
                    "_serve_date": ms,
                }
            )
        patient.extra_entries.extend(docs)
        patient.extra_entries.sort(key=lambda d: d["_serve_date"])
        return docs

    def expected_valid_entries(self, patient_id: str) -> int:
        """How many distinct valid entries a complete ingestion must land for the patient."""
        patient = self.patient(patient_id)
        assert patient is not None, patient_id
        core = int(np.count_nonzero(patient.dates <= self.visible_until))
        extra = sum(
            1 for d in patient.extra_entries if not d.get("_malformed") and d["_serve_date"] <= self.visible_until
        )
        return core + extra

    def expected_treatments(self, patient_id: str) -> int:
        patient = self.patient(patient_id)
        assert patient is not None, patient_id
        return sum(1 for d in patient.treatments if d["_serve_date"] <= self.visible_until)

    def expected_malformed(self, patient_id: str) -> dict[str, int]:
        """Malformed documents visible so far, by kind."""
        patient = self.patient(patient_id)
        assert patient is not None, patient_id
        out: dict[str, int] = {}
        for d in patient.extra_entries:
            if d.get("_malformed") and d["_serve_date"] <= self.visible_until:
                out[d["_malformed"]] = out.get(d["_malformed"], 0) + 1
        return out


def describe(dataset: DemoDataset) -> str:
    """One line per patient (visible data only), for the CLI."""
    lines = []
    for p in dataset.members:
        visible = int(np.count_nonzero(p.dates <= dataset.visible_until))
        treatments = sum(1 for d in p.treatments if d["_serve_date"] <= dataset.visible_until)
        first = datetime.fromtimestamp(int(p.dates[0]) / 1000, tz=UTC) if p.dates.size else None
        lines.append(
            f"{p.patient_id} ({p.time_zone}): {visible} readings, {treatments} treatments"
            + (f", from {first:%Y-%m-%d %H:%M} UTC" if first else "")
        )
    return "\n".join(lines)
