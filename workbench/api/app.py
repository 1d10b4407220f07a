"""The Cascade API: glucose data over HTTP, served from the published PostgreSQL.

`create_app()` builds the FastAPI app (`cascade api` / `cascade hub` serve it with uvicorn):

- `/api/v1/glucose/readings|daily|overview|periods|agp`, `/api/v1/patients`: JSON, bearer token
  (see `workbench.api.auth`); a patient token reads only its patient (403 otherwise); admins may
  read any lake ref with `?ref=` instead of the published data; `?units=mmol` converts glucose.
- `/healthz` (no token), `/metrics` (Prometheus; admin token), `/docs` (OpenAPI).
- `/` the hub and `/runs` the pipeline runs (see `workbench.api.hub`).

Clients only see what was promoted to `main` and published: complete, audited data.
"""

import asyncio
import base64
import binascii
import json
import logging
import math
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict
from pydantic_core import to_json
from starlette.exceptions import HTTPException as StarletteHTTPException

from workbench.api import data
from workbench.api.auth import PATIENT_ID, Principal, TokenVerifier
from workbench.api.errors import TokenError
from workbench.api.observability import ApiMetrics
from workbench.api.ratelimit import MovingWindowLimiter
from workbench.errors import CascadeError, RefNotFoundError, TableNotFoundError
from workbench.settings import Settings, get_settings

API = "/api/v1"
COOKIE = "cascade_token"
PATIENT_PATTERN = PATIENT_ID.pattern
REF_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,99}$"
MAX_RANGE = timedelta(days=31)
Units = Literal["mgdl", "mmol"]
PatientQ = Annotated[str | None, Query(pattern=PATIENT_PATTERN, description="patient id (default: the token's)")]
RefQ = Annotated[
    str | None,
    Query(pattern=REF_PATTERN, description="admins: a lake branch, tag or commit instead of the published data"),
]
UnitsQ = Annotated[Units, Query(description="mgdl (default) or mmol")]
_bearer = HTTPBearer(auto_error=False, description="`cascade token create --patient P` or `--admin`")


# ---- response models (the JSON schema in /docs) --------------------------------------------------
class Reading(BaseModel):
    patient_id: str
    reading_timestamp: datetime
    reading_date: date
    glucose_value: float
    units: str
    glucose_category: str | None
    rolling_avg_3: float | None
    direction: str | None


class Patient(BaseModel):
    patient_id: str
    display_name: str | None
    time_zone: str | None
    first_reading_date: date | None
    last_reading_date: date | None
    reading_count: int
    newest_reading_at: datetime | None


class MartRow(BaseModel):
    """A row of a published mart: `patient_id`, the row's key columns and the metric columns
    documented in the metric definitions (docs site); glucose columns in `units`."""

    model_config = ConfigDict(extra="allow")
    patient_id: str
    units: str


class ErrorBody(BaseModel):
    error: str
    message: str


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody}
    for code in (401, 403, 404, 422, 429, 503)  # every error answers with the same JSON body
}


# ---- errors ------------------------------------------------------------------------------------------
class ApiProblem(HTTPException):
    def __init__(self, status: int, error: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(status, message, headers)
        self.error = error


def _error(status: int, error: str, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": error, "message": message}, status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "path", "body"))
        parts.append(f"{where or 'request'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)


# ---- the app -------------------------------------------------------------------------------------------
def create_app(settings: Settings | None = None, *, db_url: str | None = None) -> FastAPI:
    """The API app. The database URL comes from `workbench.publish.postgres.reader_url`."""
    from limits import parse

    from workbench.api.auth import signing_key
    from workbench.api.errors import ApiError

    settings = settings or get_settings()
    key = signing_key(settings)  # fail at start, not at the first request
    verify = TokenVerifier(key)
    try:
        rate = parse(settings.api_rate_limit)
    except ValueError:
        raise ApiError(f"CASCADE_API_RATE_LIMIT {settings.api_rate_limit!r} is not like 600/minute") from None
    limiter = MovingWindowLimiter(rate.amount, rate.get_expiry())  # per token, in this process
    config = data.config()
    metrics = ApiMetrics()
    state: dict[str, Any] = {}

    opening = asyncio.Lock()  # the first requests arrive together: one pool, not one each

    async def published() -> data.PostgresSource:
        source = state.get("postgres")
        if source is not None:
            return source
        async with opening:  # opened on first use, on the server's event loop
            if "postgres" not in state:
                from workbench.publish.postgres import reader_url

                pool = data.PostgresSource(db_url or reader_url(settings), config, settings.api_pool_size)
                await pool.open()
                state["postgres"] = pool
            return state["postgres"]  # type: ignore[no-any-return]

    async def newest_readings() -> dict[str, datetime | None]:
        return {r["patient_id"]: r["newest_reading_at"] for r in await data.patients(await published())}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if "postgres" in state:
            await state["postgres"].close()

    app = FastAPI(
        docs_url=None,  # served below with local assets (no CDN)
        redoc_url=None,
        title="Cascade API",
        version=_version(),
        description="CGM readings and metrics from the published, audited marts. "
        "Authenticate with `Authorization: Bearer <token>` (`cascade token create`).",
        lifespan=lifespan,
    )
    app.add_middleware(metrics.middleware)  # type: ignore[arg-type]  # a middleware factory
    app.state.settings = settings
    app.state.published = published
    app.state.newest_readings = newest_readings

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        error = getattr(exc, "error", None) or {404: "not_found", 405: "method_not_allowed"}.get(
            exc.status_code, "error"
        )
        return _error(exc.status_code, error, str(exc.detail), exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, "invalid_request", _validation_message(exc))

    @app.exception_handler(TokenError)
    async def unauthorized(request: Request, exc: TokenError) -> JSONResponse:
        return _error(401, "unauthorized", str(exc), {"WWW-Authenticate": "Bearer"})

    @app.exception_handler(CascadeError)
    async def user_error(request: Request, exc: CascadeError) -> JSONResponse:
        if isinstance(exc, RefNotFoundError | TableNotFoundError):
            return _error(404, "not_found", str(exc))
        return _error(400, "bad_request", str(exc))

    @app.exception_handler(Exception)
    async def unavailable(request: Request, exc: Exception) -> JSONResponse:
        import psycopg
        import psycopg_pool

        if isinstance(exc, psycopg.errors.UndefinedTable):
            return _error(503, "unavailable", "nothing is published yet: run the pipeline (`cascade run`)")
        if isinstance(exc, psycopg.Error | psycopg_pool.PoolTimeout):
            return _error(503, "unavailable", "the published database is not reachable")
        logging.getLogger("cascade.api").error("internal error: %s", type(exc).__name__)
        return _error(500, "internal", "internal error")

    # ---- authentication -------------------------------------------------------------------------
    async def principal(  # async: CPU only (no I/O), so no thread-pool hop per request
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
    ) -> Principal:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise TokenError("missing bearer token: send `Authorization: Bearer <token>` (`cascade token create`)")
        who = verify(credentials.credentials)
        wait = limiter.hit(who.token_id)
        if wait is not None:
            retry = max(1, math.ceil(wait))
            raise ApiProblem(
                429, "rate_limited", f"more than {settings.api_rate_limit} for this token", {"Retry-After": str(retry)}
            )
        return who

    async def admin(who: Annotated[Principal, Depends(principal)]) -> Principal:
        if not who.is_admin:
            raise ApiProblem(403, "forbidden", "this needs an admin token")
        return who

    app.state.principal = principal

    async def scope(who: Principal, patient: str | None, ref: str | None) -> tuple[data.Source, str | None]:
        """The source to read and the patient filter a principal may use."""
        if not who.is_admin:
            if patient is not None and patient != who.patient:
                raise ApiProblem(403, "forbidden", "a patient token reads only its own patient")
            if ref is not None:
                raise ApiProblem(403, "forbidden", "only admins may read other lake refs (?ref=)")
            patient = who.patient
        if ref is not None:  # opening a lake ref reads its catalog: off the event loop
            return await asyncio.to_thread(data.LakeSource, ref, config, settings), patient
        return await published(), patient

    # ---- endpoints -------------------------------------------------------------------------------
    @app.get(f"{API}/glucose/readings", response_model=list[Reading], responses=ERRORS, tags=["glucose"])
    async def get_readings(
        request: Request,
        who: Annotated[Principal, Depends(principal)],
        date_: Annotated[date | None, Query(alias="date", description="patient-local day, e.g. 2024-11-05")] = None,
        start: Annotated[datetime | None, Query(description="from this time (ISO 8601; UTC if no offset)")] = None,
        end: Annotated[datetime | None, Query(description="until this time, exclusive")] = None,
        patient: PatientQ = None,
        limit: Annotated[int, Query(ge=1, le=5000, description="readings per page")] = 1000,
        cursor: Annotated[str | None, Query(max_length=200, description="`next` cursor of the previous page")] = None,
        units: UnitsQ = "mgdl",
        ref: RefQ = None,
    ) -> Response:
        """CGM readings by patient-local `date` or a `start`/`end` time range (at most 31 days),
        ordered by patient and time. Pages: follow the `Link: <...>; rel="next"` header (also in
        `X-Next-Cursor`) until it is absent."""
        has_range = start is not None or end is not None
        if (date_ is not None and has_range) or (date_ is None and (start is None or end is None)):
            raise ApiProblem(422, "invalid_request", "give either `date` or both `start` and `end`")
        if start is not None and end is not None:
            start, end = _utc(start), _utc(end)
            if end <= start:
                raise ApiProblem(422, "invalid_request", "`end` must be after `start`")
            if end - start > MAX_RANGE:
                raise ApiProblem(
                    422, "invalid_request", "a time range may span at most 31 days; page through longer ones"
                )
        source, patient = await scope(who, patient, ref)
        query = data.ReadingsQuery(patient, date_, start, end, _decode_cursor(cursor), limit, data.UNITS[units])
        rows = await data.readings(source, query)
        more = len(rows) > limit
        rows = rows[:limit]
        headers = {"X-Data-Source": source.label}
        if more:
            last = rows[-1]
            token = _encode_cursor(last["patient_id"], last["reading_timestamp"])
            params = {k: v for k, v in request.query_params.items() if k != "cursor"}
            headers["Link"] = f'<{request.url.path}?{urlencode({**params, "cursor": token})}>; rel="next"'
            headers["X-Next-Cursor"] = token
        body = rows if units == "mgdl" else [data.to_units(r, units) for r in rows]
        # the rows are typed by the query (the schema `Reading` documents, checked by the tests):
        # serialised by pydantic-core without validating every row again (a third of the CPU)
        return Response(to_json(body), media_type="application/json", headers=headers)

    def mart_endpoint(
        table: str, path: str, summary: str, date_column: str | None, order: tuple[str, ...]
    ) -> Callable[..., Awaitable[list[dict[str, Any]]]]:
        async def endpoint(
            response: Response,
            who: Annotated[Principal, Depends(principal)],
            patient: PatientQ = None,
            start: Annotated[date | None, Query(description="first day (inclusive)")] = None,
            end: Annotated[date | None, Query(description="last day (inclusive)")] = None,
            limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
            units: UnitsQ = "mgdl",
            ref: RefQ = None,
        ) -> list[dict[str, Any]]:
            if start is not None and end is not None and end < start:
                raise ApiProblem(422, "invalid_request", "`end` must not be before `start`")
            source, patient = await scope(who, patient, ref)
            rows = await data.mart_rows(
                source, table, patient=patient, date_column=date_column, start=start, end=end, order=order, limit=limit
            )
            response.headers["X-Data-Source"] = source.label
            label = data.UNITS[units]
            return [data.to_units({**row, "units": label}, units) for row in rows]

        endpoint.__doc__ = summary
        app.get(path, response_model=list[MartRow], responses=ERRORS, tags=["glucose"], name=table)(endpoint)
        return endpoint

    mart_endpoint(
        data.DAILY,
        f"{API}/glucose/daily",
        "Daily clinical metrics per patient-local day.",
        "reading_date",
        ("reading_date",),
    )
    mart_endpoint(
        data.OVERVIEW,
        f"{API}/glucose/overview",
        "The daily overview (the seed's daily statistics).",
        "reading_date",
        ("reading_date",),
    )
    mart_endpoint(
        data.PERIODS, f"{API}/glucose/periods", "Metrics over the last 14, 30 and 90 days.", None, ("period_days",)
    )
    mart_endpoint(
        data.AGP, f"{API}/glucose/agp", "The AGP profile: percentiles per time of day.", None, ("minute_of_day",)
    )

    @app.get(f"{API}/patients", response_model=list[Patient], responses=ERRORS, tags=["patients"])
    async def get_patients(
        response: Response, who: Annotated[Principal, Depends(principal)], ref: RefQ = None
    ) -> list[dict[str, Any]]:
        """Patients (a patient token sees itself) with the days covered and the newest reading."""
        source, patient = await scope(who, None, ref)
        response.headers["X-Data-Source"] = source.label
        return await data.patients(source, patient)

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, Any]:
        """Liveness and whether the published database answers (no token needed, no data)."""
        try:
            await (await published()).rows("select 1 as ok", {})
            database = "up"
        except Exception:
            database = "down"
        return {"status": "ok", "version": _version(), "database": database}

    @app.get("/metrics", tags=["operations"], responses=ERRORS)
    async def prometheus_metrics(who: Annotated[Principal, Depends(admin)]) -> Response:
        """Prometheus metrics (admin token; Prometheus: `authorization: {credentials_file: ...}`)."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        try:  # each patient's newest reading, read now for this scrape
            newest = await newest_readings()
        except Exception as exc:  # the database is down: no freshness samples, the request metrics still work
            logging.getLogger("cascade.api").warning("freshness not available: %s", type(exc).__name__)
            newest = {}
        return Response(generate_latest(metrics.scrape(newest)), media_type=CONTENT_TYPE_LATEST)

    import fastapi_offline
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles

    assets = Path(fastapi_offline.__file__).resolve().parent / "static"
    app.mount("/static-docs", StaticFiles(directory=str(assets)), name="static-docs")

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> Response:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Cascade API",
            swagger_js_url="/static-docs/swagger-ui-bundle.js",
            swagger_css_url="/static-docs/swagger-ui.css",
            swagger_favicon_url="/static-docs/favicon.png",
        )

    from workbench.api.hub import add_hub

    add_hub(app, settings, key)
    return app


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _encode_cursor(patient: str, at: datetime) -> str:
    raw = json.dumps([patient, _utc(at).isoformat()]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str | None) -> tuple[str, datetime] | None:
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        patient, at = json.loads(raw)
        if not isinstance(patient, str) or not re.match(PATIENT_PATTERN, patient) or not isinstance(at, str):
            raise ValueError
        return patient, _utc(datetime.fromisoformat(at))
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise ApiProblem(422, "invalid_request", "cursor: not a cursor this API gave out") from None


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cascade-workbench")
    except PackageNotFoundError:
        return "0+unknown"
