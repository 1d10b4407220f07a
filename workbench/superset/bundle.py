"""Dashboards as code: `dashboards/superset/` is a Superset import bundle (databases, datasets,
charts, dashboards as YAML, no secrets). `import_dashboards` zips it with the real database URL filled
in and imports it over Superset's REST API (same UUIDs + overwrite = idempotent); `export_dashboards`
exports the running dashboards and normalises them (instance ids, URLs and timestamps removed) so
`cascade superset export` can write them back and a test can require no drift.
"""

from __future__ import annotations

import copy
import io
import json
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import yaml  # type: ignore[import-untyped]  # no stubs pinned (types-PyYAML)

from workbench.settings import Profile, Settings, get_settings

BUNDLE_DIR = Path(__file__).resolve().parents[2] / "dashboards" / "superset"
ROOT_FOLDER = "cascade_dashboards"
URI_PLACEHOLDER = "postgresql+psycopg2://cascade@localhost/cascade"
TRINO_DATABASE = "Cascade lake (Trino, main)"
# colours Superset's front end assigns and saves when an owner views a dashboard: state, not code
RUNTIME_METADATA = ("shared_label_colors", "map_label_colors", "color_scheme_domain")


class SupersetApiError(Exception):
    """Superset's REST API answered with an error (wrapped into SupersetError by callers)."""


def sqlalchemy_url(libpq_url: str) -> str:
    """`postgresql://u:p@h:port/db` (libpq, psycopg 3) -> `postgresql+psycopg2://...` (Superset's driver)."""
    parts = urlsplit(libpq_url)
    scheme = "postgresql+psycopg2" if parts.scheme in ("postgres", "postgresql") else parts.scheme
    return urlunsplit((scheme, parts.netloc, parts.path, parts.query, parts.fragment))


def marts_url(settings: Settings) -> str:
    from workbench.publish.postgres import reader_url

    return sqlalchemy_url(reader_url(settings))


class SupersetClient:
    """A logged-in session on Superset's REST API (JWT + CSRF token, as the web UI does)."""

    def __init__(self, url: str, user: str, password: str) -> None:
        self.url = url.rstrip("/")
        self.http = httpx.Client(base_url=self.url, timeout=120)
        login = self.http.post(
            "/api/v1/security/login", json={"username": user, "password": password, "provider": "db", "refresh": False}
        )
        if login.status_code != 200:
            raise SupersetApiError(f"login as {user} failed (HTTP {login.status_code}); check the Superset password")
        self.http.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
        csrf = self._check(self.http.get("/api/v1/security/csrf_token/"))
        self.http.headers["X-CSRFToken"] = csrf["result"]
        self.http.headers["Referer"] = self.url + "/"

    def _check(self, answer: httpx.Response) -> Any:
        if answer.status_code >= 400:
            raise SupersetApiError(
                f"{answer.request.method} {answer.request.url.path}: HTTP {answer.status_code} {answer.text[:500]}"
            )
        return answer.json() if answer.headers.get("content-type", "").startswith("application/json") else answer

    def get(self, path: str, **params: Any) -> Any:
        return self._check(self.http.get(path, params=params))

    def post(self, path: str, **kwargs: Any) -> Any:
        return self._check(self.http.post(path, **kwargs))

    def list(self, resource: str, **filters: str) -> list[dict[str, Any]]:
        """Every row of /api/v1/<resource>/ (optionally `col=value` filters)."""
        rison_filters = ",".join(f"(col:{k},opr:eq,value:'{v}')" for k, v in filters.items())
        query = f"(page_size:100,filters:!({rison_filters}))"
        return list(self.get(f"/api/v1/{resource}/", q=query)["result"])

    def close(self) -> None:
        self.http.close()


def bundle_files(folder: Path = BUNDLE_DIR) -> dict[str, dict[str, Any]]:
    """The bundle's YAML files by relative path."""
    return {str(p.relative_to(folder)): yaml.safe_load(p.read_text()) for p in sorted(folder.rglob("*.yaml"))}


# Superset's dashboard import overwrites only the dashboards (charts, datasets and databases it only
# creates), so each kind is imported by its own endpoint, dependencies first, each with overwrite:
# a changed chart, dataset or database URL (the embedded PostgreSQL's port moves) is applied.
IMPORT_ORDER = (("database", "Database"), ("dataset", "SqlaTable"), ("chart", "Slice"), ("dashboard", "Dashboard"))


def bundle_zip(database_url: str, folder: Path = BUNDLE_DIR, kind: str = "Dashboard") -> bytes:
    """The bundle as the ZIP Superset imports (`kind`: its metadata type), with the database URL filled in."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        meta = {"version": "1.0.0", "type": kind, "timestamp": "2026-12-01T00:00:00+00:00"}
        archive.writestr(f"{ROOT_FOLDER}/metadata.yaml", yaml.safe_dump(meta))
        for name, content in bundle_files(folder).items():
            if name.startswith("databases/"):
                content = {**content, "sqlalchemy_uri": database_url}
            archive.writestr(f"{ROOT_FOLDER}/{name}", yaml.safe_dump(content, sort_keys=False))
    return buffer.getvalue()


def client_for(settings: Settings) -> SupersetClient:
    from workbench.superset.server import USER, SupersetError, admin_password, url_of

    url = url_of(settings)
    if url is None:
        raise SupersetError("Superset is not running: start it with `cascade superset up`")
    try:
        return SupersetClient(url, USER, admin_password(settings)[0])
    except (SupersetApiError, httpx.HTTPError) as exc:
        raise SupersetError(f"cannot talk to Superset at {url}: {exc}") from None


def import_dashboards(settings: Settings | None = None) -> None:
    """Import the bundle (overwrite: same UUIDs, so a re-import changes nothing); on the stack profile
    also make sure the Trino (main) connection exists."""
    from workbench.superset.server import SupersetError

    settings = settings or get_settings()
    client = client_for(settings)
    try:
        url = marts_url(settings)
        for resource, kind in IMPORT_ORDER:
            client.post(
                f"/api/v1/{resource}/import/",
                files={"formData": ("cascade_dashboards.zip", bundle_zip(url, kind=kind), "application/zip")},
                data={"overwrite": "true"},
            )
        if settings.profile == Profile.stack:
            ensure_trino_database(client, settings)
    except SupersetApiError as exc:
        raise SupersetError(f"importing the dashboards failed: {exc}") from None
    finally:
        client.close()


def trino_database(settings: Settings) -> dict[str, Any]:
    """Superset's connection to the lake's `main` through Trino: the user and password in the URL
    (Superset keeps it encrypted in its metadata database and masks it in its API), HTTPS verified
    against the stack's certificate authority — the same options as every other client
    (`workbench.sql.trino.connect_options`)."""
    from urllib.parse import quote

    from workbench.sql.trino import connect_options

    options = connect_options(settings)
    login = quote(settings.trino_user, safe="")
    if settings.trino_password is not None:
        login += ":" + quote(settings.trino_password.get_secret_value(), safe="")
    uri = f"trino://{login}@{settings.trino_host}:{settings.trino_port}/lake"
    connect_args: dict[str, Any] = {"http_scheme": options["http_scheme"]}
    if "verify" in options:
        connect_args["verify"] = options["verify"]
    extra = {"engine_params": {"connect_args": connect_args}}
    return {"sqlalchemy_uri": uri, "extra": json.dumps(extra)}


def ensure_trino_database(client: SupersetClient, settings: Settings) -> None:
    """The lake's `main` through Trino, for SQL Lab (stack profile only)."""
    if client.list("database", database_name=TRINO_DATABASE):
        return
    client.post(
        "/api/v1/database/",
        json={"database_name": TRINO_DATABASE, "expose_in_sqllab": True, **trino_database(settings)},
    )


def dashboard_ids(client: SupersetClient) -> dict[str, int]:
    """Ids of the bundle's dashboards in this Superset, by UUID."""
    wanted = {c["uuid"] for n, c in bundle_files().items() if n.startswith("dashboards/")}
    rows = client.get("/api/v1/dashboard/", q="(page_size:100,columns:!(id,uuid))")["result"]
    return {row["uuid"]: row["id"] for row in rows if row.get("uuid") in wanted}


def export_dashboards(settings: Settings | None = None) -> dict[str, dict[str, Any]]:
    """The bundle's dashboards as the running Superset exports them, normalised like the bundle."""
    settings = settings or get_settings()
    client = client_for(settings)
    try:
        ids = sorted(dashboard_ids(client).values())
        answer = client.http.get("/api/v1/dashboard/export/", params={"q": f"!({','.join(map(str, ids))})"})
        if answer.status_code != 200:
            raise SupersetApiError(f"export: HTTP {answer.status_code} {answer.text[:300]}")
    finally:
        client.close()
    names = {content["uuid"]: name for name, content in bundle_files().items()}
    files = {}
    with zipfile.ZipFile(io.BytesIO(answer.content)) as archive:
        for name in archive.namelist():
            relative = name.split("/", 1)[1]
            if relative == "metadata.yaml" or not relative.endswith(".yaml"):
                continue
            content = yaml.safe_load(archive.read(name))
            # Superset names files after titles and instance ids; the bundle's names are stable
            relative = names.get(content.get("uuid"), relative)
            files[relative] = normalise(relative, content)
    return files


def bundle_chart_ids(folder: Path = BUNDLE_DIR) -> dict[str, int]:
    """The bundle's own chart ids by chart UUID (Superset needs one in each layout cell and maps it to
    its own ids on import; exports are mapped back to these)."""
    ids = {}
    for name, content in bundle_files(folder).items():
        if name.startswith("dashboards/"):
            for item in content["position"].values():
                if isinstance(item, dict) and item.get("type") == "CHART":
                    ids[item["meta"]["uuid"]] = item["meta"]["chartId"]
    return ids


def normalise(name: str, content: dict[str, Any]) -> dict[str, Any]:
    """Remove what differs between Superset instances: URLs (secrets), numeric ids, export stamps."""
    content = copy.deepcopy(content)
    if name.startswith("databases/"):
        content["sqlalchemy_uri"] = URI_PLACEHOLDER
    if name.startswith("datasets/"):  # Superset exports them in insertion order of its own ids
        content["columns"] = sorted(content.get("columns") or [], key=lambda c: c["column_name"])
        content["metrics"] = sorted(content.get("metrics") or [], key=lambda m: m["metric_name"])
    if name.startswith("charts/"):
        params = content.get("params") or {}
        for key in ("datasource", "slice_id", "dashboards"):
            params.pop(key, None)
        if isinstance(content.get("query_context"), str):
            content["query_context"] = None
    if name.startswith("dashboards/"):
        local_ids = bundle_chart_ids()
        for item in (content.get("position") or {}).values():
            meta = item.get("meta") if isinstance(item, dict) else None
            if meta and "chartId" in meta and meta.get("uuid") in local_ids:
                meta["chartId"] = local_ids[meta["uuid"]]
        metadata = content.get("metadata") or {}
        for key in RUNTIME_METADATA:
            metadata.pop(key, None)
        for flt in metadata.get("native_filter_configuration", []):
            flt.pop("chartsInScope", None)
            flt.pop("tabsInScope", None)
    return content


def write_bundle(files: dict[str, dict[str, Any]], folder: Path = BUNDLE_DIR) -> list[Path]:
    """Write an exported bundle as the repository's dashboards-as-code (`cascade superset export`)."""
    written = []
    for name, content in sorted(files.items()):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(content, sort_keys=False, allow_unicode=True))
        written.append(path)
    return written


def dumps(files: dict[str, dict[str, Any]]) -> str:
    """A stable text form (for diffs in test failures)."""
    return json.dumps(files, sort_keys=True, indent=1, default=str)
