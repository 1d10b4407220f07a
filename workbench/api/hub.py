"""The hub (`/`) and the pipeline-runs UI (`/runs`), server-rendered with Jinja2, no JavaScript.

The hub lists every service of the profile with live health (up/down, version, latency, checked
concurrently on each page view) and each patient's data freshness. The runs UI reads the run
history (`ops.pipeline_runs` on the lake branch `ops`, plus `runs/history.jsonl` for runs still
going) and each run's folder (executed notebooks as HTML, `audit/audit.json`, AGP reports,
`error.txt`). Pages refresh themselves every few seconds while a run is active.

Pages need an admin token: `cascade hub` prints a login URL (`/?token=...`); the token is swapped
for an HttpOnly cookie and removed from the address at once (and access logs never show queries).
"""

import asyncio
import json
import re
import ssl
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

import httpx
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from workbench.api.auth import Principal, verify_token
from workbench.api.errors import TokenError
from workbench.errors import CascadeError, RefNotFoundError
from workbench.pipeline.errors import RunHistoryError
from workbench.pipeline.history import JsonLinesStore, LakeRunStore, RunSummary, TaskRecord, list_runs
from workbench.pipeline.runner import RUN_HISTORY_BRANCH
from workbench.pipeline.runs import is_run_id
from workbench.settings import MAIN_BRANCH, Profile, Settings

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parents[1]
COOKIE = "cascade_token"
REFRESH_SECONDS = 5
CHECK_TIMEOUT_S = 2.0
_CELL = re.compile(r'Exception encountered at "In \[(\d+)\]"')
templates = Jinja2Templates(directory=str(HERE / "templates"))


# ---- services ------------------------------------------------------------------------------------
@dataclass
class ServiceHealth:
    name: str
    url: str | None
    up: bool
    version: str | None = None
    latency_ms: float | None = None
    detail: str = ""


@dataclass(frozen=True)
class Service:
    name: str
    url: str  # what the hub links to
    probe: str | None = None  # what is fetched for health (default: url)
    version_from: str | None = None  # JSON path a.b of the version in the probe's answer


def profile_services(settings: Settings, base: str) -> list[Service]:
    """The HTTP services of the profile (static sites and databases are checked separately)."""
    services = [
        Service("API docs (OpenAPI)", f"{base}docs", f"{base}healthz", "version"),
        Service("Voila dashboards", settings.dashboard_url, _join(settings.dashboard_url, "api"), "version"),
        Service("JupyterLab", settings.jupyter_url, _join(settings.jupyter_url, "api"), "version"),
    ]
    if settings.profile == Profile.stack:
        nessie = settings.nessie_uri.rstrip("/")
        from workbench.sql.trino import trino_uri

        trino = trino_uri(settings) + "/"
        services += [
            Service("Superset", settings.superset_url, _join(settings.superset_url, "health")),
            Service("Trino", trino, _join(trino, "v1/info"), "nodeVersion.version"),
            Service("Nessie", nessie, f"{nessie}/config", "maxSupportedApiVersion"),
            Service(
                "Prometheus",
                settings.prometheus_url,
                _join(settings.prometheus_url, "api/v1/status/buildinfo"),
                "data.version",
            ),
        ]
    return services


def _join(base: str, path: str) -> str:
    return base.rstrip("/") + "/" + path


def _dig(payload: Any, path: str | None) -> str | None:
    if path is None:
        return None
    for part in path.split("."):
        if not isinstance(payload, dict) or part not in payload:
            return None
        payload = payload[part]
    return None if payload is None else str(payload)


async def check_http(client: httpx.AsyncClient, service: Service) -> ServiceHealth:
    """Up when the service answers below 500 (401/403 mean up, behind a login)."""
    started = time.perf_counter()
    try:
        answer = await client.get(service.probe or service.url)
    except httpx.HTTPError as exc:
        return ServiceHealth(service.name, service.url, False, detail=type(exc).__name__)
    latency = (time.perf_counter() - started) * 1000
    version = None
    if answer.status_code < 300 and "json" in answer.headers.get("content-type", ""):
        try:
            version = _dig(answer.json(), service.version_from)
        except ValueError:
            version = None
    up = answer.status_code < 500
    return ServiceHealth(service.name, service.url, up, version, latency, f"HTTP {answer.status_code}")


async def check_callable(
    name: str, url: str | None, probe: Callable[[], Awaitable[tuple[str | None, str]]]
) -> ServiceHealth:
    started = time.perf_counter()
    try:
        version, detail = await probe()
    except Exception as exc:
        return ServiceHealth(name, url, False, detail=f"{type(exc).__name__}: {str(exc)[:120]}")
    return ServiceHealth(name, url, True, version, (time.perf_counter() - started) * 1000, detail)


def _static_site(folder: Path) -> tuple[str | None, str]:
    index = folder / "index.html"
    if not index.is_file():
        raise FileNotFoundError(f"not built ({index} is missing)")
    built = datetime.fromtimestamp(index.stat().st_mtime, UTC)
    return None, f"built {built:%Y-%m-%d %H:%M} UTC"


def docs_site_dir() -> Path:
    """The built documentation site (`cascade docs build`)."""
    return PROJECT / "site"


def dbt_docs_dir(settings: Settings) -> Path:
    """The dbt docs site (`cascade transform docs`, or the copy inside the documentation site)."""
    in_site = docs_site_dir() / "dbt"
    return in_site if (in_site / "index.html").is_file() else settings.home / "dbt" / "target"


async def service_health(app: FastAPI, settings: Settings, base: str) -> list[ServiceHealth]:
    """Every service of the profile, checked concurrently."""
    from importlib.metadata import version as package_version

    async def postgres() -> tuple[str | None, str]:
        return await (await app.state.published()).version(), "published marts"

    def lake() -> tuple[str | None, str]:
        from workbench.lake.store import open_lake

        head = open_lake(settings).resolve(MAIN_BRANCH)
        return f"pyiceberg {package_version('pyiceberg')}", f"{MAIN_BRANCH} at {head.commit_id[:10]}"

    trust = ssl.create_default_context()
    if settings.trino_ca is not None and settings.trino_ca.is_file():  # the stack's Trino (HTTPS, own CA)
        trust.load_verify_locations(settings.trino_ca)
    async with httpx.AsyncClient(timeout=CHECK_TIMEOUT_S, follow_redirects=False, verify=trust) as client:
        http = [check_http(client, s) for s in profile_services(settings, base)]
        local = [
            check_callable("PostgreSQL (published marts)", None, postgres),
            check_callable("Lake catalog", None, lambda: asyncio.to_thread(lake)),
            check_callable(
                "Documentation site", f"{base}site/", lambda: asyncio.to_thread(_static_site, docs_site_dir())
            ),
            check_callable(
                "dbt docs (lineage)",
                f"{base}dbt-docs/",
                lambda: asyncio.to_thread(_static_site, dbt_docs_dir(settings)),
            ),
        ]
        return list(await asyncio.gather(*http, *local))


# ---- freshness -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Freshness:
    patient: str
    newest: datetime | None
    age: timedelta | None
    fresh: bool


def freshness(newest_readings: dict[str, datetime | None], now: datetime | None = None) -> list[Freshness]:
    from workbench.quality.audit import Thresholds

    limit = timedelta(hours=Thresholds().max_staleness_hours)  # the audit's staleness limit
    now = now or datetime.now(UTC)
    out = []
    for patient, newest in sorted(newest_readings.items()):
        age = None if newest is None else now - newest
        out.append(Freshness(patient, newest, age, age is not None and age <= limit))
    return out


# ---- runs ------------------------------------------------------------------------------------------
class HistoryStore:
    """The run history as the hub reads it: the lake table `ops.pipeline_runs` (finished runs),
    then the JSON-lines history (also runs still going); for each (run, task) the last record wins."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def append(self, record: TaskRecord) -> None:
        raise RunHistoryError("the hub reads the run history; runs record themselves")

    def records(self) -> Iterator[TaskRecord]:
        from workbench.lake.store import open_lake

        yield from JsonLinesStore(self.settings.runs_dir / "history.jsonl").records()
        try:
            open_lake(self.settings).resolve(RUN_HISTORY_BRANCH)
        except (RefNotFoundError, CascadeError):
            return
        yield from LakeRunStore(self.settings, branch=RUN_HISTORY_BRANCH).records()


@dataclass
class TaskView:
    record: TaskRecord
    offset_pct: float
    width_pct: float
    seconds: float | None


@dataclass
class RunView:
    run: RunSummary
    seconds: float | None
    tasks: list[TaskView]
    audit: dict[str, Any] | None = None
    files: list[tuple[str, str]] = field(default_factory=list)  # (task folder, relative path)
    failed_task: str | None = None
    failed_cell: str | None = None
    error_line: str | None = None


def run_view(run: RunSummary, settings: Settings, now: datetime | None = None, details: bool = False) -> RunView:
    now = now or datetime.now(UTC)
    end = run.ended_at or now
    total = max((end - run.started_at).total_seconds(), 1e-6)
    tasks = []
    for task in run.tasks:
        task_end = task.ended_at or now
        offset = (task.started_at - run.started_at).total_seconds() / total * 100
        width = max((task_end - task.started_at).total_seconds() / total * 100, 0.5)
        tasks.append(TaskView(task, round(offset, 2), round(min(width, 100 - offset), 2), task.seconds))
    view = RunView(run, (end - run.started_at).total_seconds() if run.ended_at else None, tasks)
    failed = [t for t in run.tasks if t.status == "failed"]
    if failed:
        view.failed_task = failed[0].task
        view.error_line = (failed[0].error or "").split(" (full traceback in ")[0] or None
    if details:
        folder = settings.runs_dir / run.run_id
        audit = folder / "audit" / "audit.json"
        if audit.is_file():
            try:
                view.audit = json.loads(audit.read_text())
            except (OSError, ValueError):
                view.audit = None
        if folder.is_dir():
            view.files = sorted(
                (p.relative_to(folder).parts[0], str(p.relative_to(folder)))
                for p in folder.rglob("*")
                if p.suffix in (".html", ".pdf") and p.is_file()
            )
        error_file = folder / "error.txt"
        if failed and error_file.is_file():
            text = error_file.read_text(errors="replace")
            cell = _CELL.search(text)
            view.failed_cell = f"In [{cell.group(1)}]" if cell else None
    return view


def filter_runs(runs: list[RunSummary], status: str | None, since: date | None, until: date | None) -> list[RunSummary]:
    out = []
    for run in runs:
        day = run.started_at.astimezone(UTC).date()
        if status and run.status != status:
            continue
        if since and day < since:
            continue
        if until and day > until:
            continue
        out.append(run)
    return out


# ---- routes ------------------------------------------------------------------------------------------
class LoginRequired(Exception):
    def __init__(self, message: str) -> None:
        self.message = message


def add_hub(app: FastAPI, settings: Settings, key: bytes) -> None:
    """Mount the hub pages, the runs UI, run files, the docs sites and the static assets."""
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.exception_handler(LoginRequired)
    async def login(request: Request, exc: LoginRequired) -> HTMLResponse:
        return templates.TemplateResponse(request, "login.html", {"message": exc.message}, status_code=401)

    def viewer(request: Request) -> Principal:
        header = request.headers.get("authorization", "")
        token = header[7:] if header.lower().startswith("bearer ") else request.cookies.get(COOKIE)
        if not token:
            raise LoginRequired("Open the login URL that `cascade hub` prints, or create an admin token.")
        return admin_of(token)

    def admin_of(token: str) -> Principal:
        try:
            who = verify_token(token, key=key)
        except TokenError as exc:
            raise LoginRequired(str(exc)) from None
        if not who.is_admin:
            raise LoginRequired("The hub needs an admin token (`cascade token create --admin`).")
        return who

    def login_redirect(request: Request) -> Response | None:
        """`?token=...`: verify, keep it in an HttpOnly cookie, and drop it from the address."""
        token = request.query_params.get("token")
        if token is None:
            return None
        who = admin_of(token)
        rest = {k: v for k, v in request.query_params.items() if k != "token"}
        target = request.url.path + (f"?{urlencode(rest)}" if rest else "")
        response = RedirectResponse(target, status_code=303)
        max_age = max(1, int((who.expires_at - datetime.now(UTC)).total_seconds()))
        response.set_cookie(COOKIE, token, max_age=max_age, httponly=True, samesite="strict", path="/")
        return response

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:  # pages served from run folders (notebook HTML) ask for one
        return Response(status_code=204)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def hub(request: Request) -> Response:
        redirect = login_redirect(request)
        if redirect is not None:
            return redirect
        viewer(request)
        base = str(request.base_url)
        services = await service_health(app, settings, base)
        try:
            fresh = freshness(await app.state.newest_readings())
            fresh_error = None
        except Exception as exc:
            fresh, fresh_error = [], f"not available ({type(exc).__name__})"
        runs = await asyncio.to_thread(list_runs, 5, None, HistoryStore(settings))
        active = any(r.status == "running" for r in runs)
        return templates.TemplateResponse(
            request,
            "hub.html",
            {
                "services": services,
                "freshness": fresh,
                "fresh_error": fresh_error,
                "runs": [run_view(r, settings) for r in runs],
                "refresh": REFRESH_SECONDS if active else None,
                "profile": settings.profile.value,
                "now": datetime.now(UTC),
            },
        )

    @app.get("/runs", response_class=HTMLResponse, include_in_schema=False)
    def runs_page(
        request: Request,
        status: Annotated[Literal["", "running", "success", "failed", "skipped"], Query()] = "",
        since: Annotated[date | None, Query()] = None,
        until: Annotated[date | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> Response:
        redirect = login_redirect(request)
        if redirect is not None:
            return redirect
        viewer(request)
        everything = list_runs(1000, store=HistoryStore(settings))
        runs = filter_runs(everything, status or None, since, until)[:limit]
        active = any(r.status == "running" for r in everything)
        return templates.TemplateResponse(
            request,
            "runs.html",
            {
                "runs": [run_view(r, settings) for r in runs],
                "status": status,
                "since": since.isoformat() if since else "",
                "until": until.isoformat() if until else "",
                "refresh": REFRESH_SECONDS if active else None,
                "total": len(everything),
            },
        )

    @app.get("/runs/{run_id}", response_class=HTMLResponse, include_in_schema=False)
    def run_page(request: Request, run_id: str) -> Response:
        redirect = login_redirect(request)
        if redirect is not None:
            return redirect
        viewer(request)
        if not is_run_id(run_id):
            raise HTTPException(404, f"{run_id!r} is not a run id")
        matches = [r for r in list_runs(1000, store=HistoryStore(settings)) if r.run_id == run_id]
        if not matches:
            raise HTTPException(404, f"no run {run_id} in the run history")
        view = run_view(matches[0], settings, details=True)
        return templates.TemplateResponse(
            request,
            "run.html",
            {"view": view, "refresh": REFRESH_SECONDS if view.run.status == "running" else None},
        )

    @app.get("/runs/{run_id}/files/{path:path}", include_in_schema=False)
    def run_file(request: Request, run_id: str, path: str) -> Response:
        viewer(request)
        if not is_run_id(run_id):
            raise HTTPException(404, "no such run")
        return _file_inside(settings.runs_dir / run_id, path)

    @app.get("/site/{path:path}", include_in_schema=False)
    def docs_site(request: Request, path: str) -> Response:
        return _file_inside(docs_site_dir(), path)

    @app.get("/dbt-docs/{path:path}", include_in_schema=False)
    def dbt_docs(request: Request, path: str) -> Response:
        viewer(request)  # the catalog names tables and columns of the lake
        return _file_inside(dbt_docs_dir(settings), path)


def _file_inside(root: Path, path: str) -> FileResponse:
    """A file below `root` (an `index.html` for a folder); 404 for anything outside it."""
    root = root.resolve()
    target = (root / path).resolve()
    if target.is_dir():
        target = target / "index.html"
    if not target.is_relative_to(root) or not target.is_file() or any(p.startswith(".") for p in Path(path).parts):
        raise HTTPException(404, "no such file")
    return FileResponse(target)
