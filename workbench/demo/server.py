"""A demo Nightscout server (REST API v1 subset) over the deterministic simulation.

Each simulated patient is one Nightscout site under a path prefix: `http://host:port/p001/api/v1/...`
(the bare `/api/v1/...` serves the first patient). Implemented: `entries.json`, `entries/<type>.json`,
`treatments.json`, `devicestatus.json`, `status.json`; filters `find[date][$gt|$gte|$lt|$lte]`
(entries), `find[created_at][...]` (treatments, devicestatus), `find[type]`, `count` (default 10);
newest first, like Nightscout. Auth: `api-secret` header = SHA-1 hex of the secret, or `?token=`.

Test hooks live on `DemoControl` (scriptable events, no wall clock): set or advance the simulated
clock (`set_time`, `advance`: a new reading every 5 simulated minutes), take a site down (`site_down`
→ 5xx until `site_up`), inject single failures (`fail_next`), a sensor gap or a late upload
(`dataset.hide`), the same readings from a second device (`dataset.duplicate_device`), a new patient
(`dataset.add_patient`), late records and new fields. A `LiveClock` makes the clock follow a time
source instead (`cascade demo-nightscout --live --speed 60`: an hour of readings per minute). Malformed demo documents are matched by a hidden serve date, so the date filters reach them
even where MongoDB would not (e.g. a string `date`).
"""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import orjson
import uvicorn
from fastapi import FastAPI, Request, Response

from workbench.demo.simulate import DAY_MS, DemoDataset, PatientData, iso_ms

DEFAULT_COUNT = 10
_OPS = ("$gt", "$gte", "$lt", "$lte")


def hash_secret(secret: str) -> str:
    """Nightscout's `api-secret` header value: the SHA-1 hex digest of the API secret."""
    return hashlib.sha1(secret.encode()).hexdigest()


def token_for(secret: str) -> str:
    """The access token the demo server accepts for `secret` (Nightscout shape: name-16hex)."""
    return "cascade-" + hash_secret("token:" + secret)[:16]


@dataclass
class LiveClock:
    """The demo server's live clock: the simulated time follows a time source, `speed` simulated
    seconds per second of it, from `start` (the dataset's end) — so a new reading appears every
    5 simulated minutes. It stops at the simulated horizon (`reserve_days`). `source` is injectable
    (tests pass their own counter; the `cascade demo-nightscout --live` command uses time.monotonic)."""

    start: datetime
    speed: float = 1.0
    source: Callable[[], float] = time.monotonic
    origin: float = field(init=False)

    def __post_init__(self) -> None:
        if self.speed <= 0:
            raise ValueError("the live clock's speed must be > 0")
        self.origin = self.source()

    def now(self) -> datetime:
        """The simulated time now."""
        return self.start + timedelta(seconds=(self.source() - self.origin) * self.speed)

    def tick(self, dataset: DemoDataset) -> None:
        """Move the dataset's clock to `now()` (capped at its horizon; never backwards)."""
        horizon = dataset.start_ms + int((dataset.days + dataset.reserve_days) * DAY_MS)
        dataset.set_time(min(int(self.now().timestamp() * 1000), horizon))


@dataclass
class DemoControl:
    """Server state and test hooks (thread-safe enough for tests: one writer, GIL-atomic updates)."""

    dataset: DemoDataset
    secret: str
    fail_queue: list[int] = field(default_factory=list)
    extra_fields: dict[str, Any] = field(default_factory=dict)
    requests: int = 0
    failures_served: int = 0
    down: dict[str, int] = field(default_factory=dict)  # patient id -> HTTP status while down
    lock: threading.Lock = field(default_factory=threading.Lock)
    clock: LiveClock | None = None  # None: the clock moves only by set_time/advance (tests, the pipeline)

    def fail_next(self, times: int = 1, status: int = 503) -> None:
        """The next `times` API requests answer `status` (e.g. 503 or 429)."""
        with self.lock:
            self.fail_queue.extend([status] * times)

    def site_down(self, patient_id: str, status: int = 503) -> None:
        """Every request to this patient's site answers `status` until `site_up`."""
        self.down[patient_id] = status

    def site_up(self, patient_id: str) -> None:
        self.down.pop(patient_id, None)

    def set_time(self, when: Any) -> None:
        """Set the simulated clock (datetime or epoch ms); see `DemoDataset.set_time`."""
        self.dataset.set_time(when)

    def add_field(self, name: str, value: Any) -> None:
        """From now on every entry carries `name: value` (a new uploader field)."""
        self.extra_fields[name] = value

    def advance(self, minutes: float) -> None:
        """Let time pass: newer readings become visible."""
        self.dataset.advance(minutes)

    def add_late_entries(self, patient_id: str, count: int, minutes_ago: float) -> list[dict[str, Any]]:
        """Entries dated in the past that the site only receives now (a late uploader)."""
        return self.dataset.add_late_entries(patient_id, count, minutes_ago)


def _parse_bound(value: str, *, iso: bool) -> int | None:
    """A filter value as epoch ms: a number, or (for created_at) an ISO 8601 timestamp."""
    try:
        return int(float(value))
    except ValueError:
        pass
    if iso:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return int(parsed.timestamp() * 1000)
    return None


def _filters(request: Request, fieldname: str) -> tuple[int, int]:
    """[lo, hi] inclusive epoch-ms bounds from `find[<field>][$op]` query parameters."""
    lo, hi = -(2**62), 2**62
    iso = fieldname != "date"
    for op in _OPS:
        raw = request.query_params.get(f"find[{fieldname}][{op}]")
        if raw is None:
            continue
        bound = _parse_bound(raw, iso=iso)
        if bound is None:
            continue
        if op == "$gt":
            lo = max(lo, bound + 1)
        elif op == "$gte":
            lo = max(lo, bound)
        elif op == "$lt":
            hi = min(hi, bound - 1)
        else:
            hi = min(hi, bound)
    return lo, hi


def _count(request: Request) -> int:
    try:
        return max(0, int(request.query_params.get("count", DEFAULT_COUNT)))
    except ValueError:
        return DEFAULT_COUNT


def _public(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if not k.startswith("_") or k == "_id"}


def _entries(
    control: DemoControl, patient: PatientData, lo: int, hi: int, count: int, etype: str | None
) -> list[dict[str, Any]]:
    hi = min(hi, control.dataset.visible_until)
    docs: list[tuple[int, dict[str, Any]]] = []
    if etype in (None, "sgv"):
        a = int(np.searchsorted(patient.dates, lo, side="left"))
        b = int(np.searchsorted(patient.dates, hi, side="right"))
        now = control.dataset.visible_until
        taken = 0
        for i in range(b - 1, a - 1, -1):
            if taken >= count:
                break
            if patient.hidden and not patient.served(i, now):
                continue
            taken += 1
            doc = patient.sgv_document(i)
            docs.append((doc["date"], doc))
            if patient.duplicated[i]:
                docs.append((doc["date"], dict(doc)))
            if patient.second_device is not None and doc["date"] > patient.second_device_since:
                docs.append((doc["date"], patient.second_device_document(i)))
    for doc in patient.extra_entries:
        serve = doc["_serve_date"]
        if lo <= serve <= hi and (etype is None or doc.get("type") == etype):
            docs.append((serve, _public(doc)))
    docs.sort(key=lambda pair: pair[0], reverse=True)
    out = [doc for _, doc in docs[:count]]
    if control.extra_fields:
        for doc in out:
            doc.update(control.extra_fields)
    return out


def _by_created_at(
    docs: list[dict[str, Any]], lo: int, hi: int, count: int, visible_until: int
) -> list[dict[str, Any]]:
    hi = min(hi, visible_until)
    matched = [d for d in docs if lo <= d["_serve_date"] <= hi]
    matched.sort(key=lambda d: d["_serve_date"], reverse=True)
    return [_public(d) for d in matched[:count]]


def create_app(control: DemoControl) -> FastAPI:
    """The FastAPI app serving `control.dataset` with Nightscout v1 semantics."""
    app = FastAPI(title="Cascade demo Nightscout", docs_url=None, redoc_url=None, openapi_url=None)
    secret_hash = hash_secret(control.secret)
    token = token_for(control.secret)

    def guard(request: Request, patient_id: str | None) -> Response | PatientData:
        control.requests += 1
        if control.clock is not None:
            with control.lock:
                control.clock.tick(control.dataset)
        with control.lock:
            status = control.fail_queue.pop(0) if control.fail_queue else None
        if status is not None:
            control.failures_served += 1
            headers = {"Retry-After": "0"} if status == 429 else {}
            return Response(orjson.dumps({"status": status, "message": "injected failure"}), status, headers)
        outage = control.down.get(
            patient_id or (control.dataset.members[0].patient_id if control.dataset.members else "")
        )
        if outage is not None:
            control.failures_served += 1
            return Response(orjson.dumps({"status": outage, "message": "site down"}), outage)
        supplied = request.headers.get("api-secret")
        if supplied != secret_hash and request.query_params.get("token") != token:
            return Response(orjson.dumps({"status": 401, "message": "Unauthorized"}), 401)
        patient = control.dataset.patient(patient_id)
        if patient is None:
            return Response(orjson.dumps({"status": 404, "message": "Not found"}), 404)
        return patient

    def as_json(payload: Any) -> Response:
        return Response(orjson.dumps(payload), media_type="application/json")

    def entries(request: Request, patient_id: str | None, etype: str | None) -> Response:
        patient = guard(request, patient_id)
        if isinstance(patient, Response):
            return patient
        lo, hi = _filters(request, "date")
        etype = etype or request.query_params.get("find[type]")
        return as_json(_entries(control, patient, lo, hi, _count(request), etype))

    def treatments(request: Request, patient_id: str | None) -> Response:
        patient = guard(request, patient_id)
        if isinstance(patient, Response):
            return patient
        lo, hi = _filters(request, "created_at")
        docs = _by_created_at(patient.treatments, lo, hi, _count(request), control.dataset.visible_until)
        return as_json(docs)

    def devicestatus(request: Request, patient_id: str | None) -> Response:
        patient = guard(request, patient_id)
        if isinstance(patient, Response):
            return patient
        lo, hi = _filters(request, "created_at")
        return as_json(_by_created_at(patient.devicestatus, lo, hi, _count(request), control.dataset.visible_until))

    def status(request: Request, patient_id: str | None) -> Response:
        patient = guard(request, patient_id)
        if isinstance(patient, Response):
            return patient
        return as_json(
            {
                "status": "ok",
                "name": "nightscout",
                "version": "15.0.3-cascade-demo",
                # the simulation's clock (newest visible reading), not the wall clock
                "serverTime": iso_ms(control.dataset.visible_until),
                "serverTimeEpoch": control.dataset.visible_until,
                "apiEnabled": True,
                "careportalEnabled": True,
                "settings": {
                    "units": "mg/dl",
                    "customTitle": patient.display_name,
                    "timeFormat": 24,
                    "thresholds": {"bgHigh": 260, "bgTargetTop": 180, "bgTargetBottom": 70, "bgLow": 55},
                    "timeZone": patient.time_zone,
                },
            }
        )

    def route_entries(request: Request, patient_id: str | None = None) -> Response:
        return entries(request, patient_id, None)

    def route_entries_type(request: Request, etype: str, patient_id: str | None = None) -> Response:
        return entries(request, patient_id, etype)

    def route_treatments(request: Request, patient_id: str | None = None) -> Response:
        return treatments(request, patient_id)

    def route_devicestatus(request: Request, patient_id: str | None = None) -> Response:
        return devicestatus(request, patient_id)

    def route_status(request: Request, patient_id: str | None = None) -> Response:
        return status(request, patient_id)

    for prefix in ("", "/{patient_id}"):
        app.add_api_route(prefix + "/api/v1/entries.json", route_entries, methods=["GET"])
        app.add_api_route(prefix + "/api/v1/entries/{etype}.json", route_entries_type, methods=["GET"])
        app.add_api_route(prefix + "/api/v1/treatments.json", route_treatments, methods=["GET"])
        app.add_api_route(prefix + "/api/v1/devicestatus.json", route_devicestatus, methods=["GET"])
        app.add_api_route(prefix + "/api/v1/status.json", route_status, methods=["GET"])
    return app


class DemoServer:
    """Run the demo server in a background thread on a free localhost port (tests, default pipeline).

    >>> with DemoServer(DemoDataset(seed=1, patients=2, days=3), secret="s") as server:
    ...     server.site_url("p001")
    """

    def __init__(self, dataset: DemoDataset, secret: str, host: str = "127.0.0.1", port: int = 0) -> None:
        self.control = DemoControl(dataset=dataset, secret=secret)
        self.host = host
        self._requested_port = port
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def site_url(self, patient_id: str) -> str:
        """The Nightscout site URL of one simulated patient."""
        return f"{self.base_url}/{patient_id}"

    def start(self) -> DemoServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._requested_port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(create_app(self.control), log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="demo-nightscout", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("demo Nightscout server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> DemoServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_forever(
    dataset: DemoDataset, secret: str, host: str = "127.0.0.1", port: int = 1337, clock: LiveClock | None = None
) -> None:
    """Run the demo server in the foreground (the `cascade demo-nightscout` command); with a live
    `clock` new readings appear as its time passes."""
    control = DemoControl(dataset=dataset, secret=secret, clock=clock)
    uvicorn.run(create_app(control), host=host, port=port, log_level="warning")
