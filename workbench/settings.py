"""Settings: the one place that reads the environment and `.env`.

Everything else receives a `Settings` object (``get_settings()``). Secrets live here too and are
never passed as notebook parameters.
"""

from __future__ import annotations

import getpass
import os
from datetime import datetime
from enum import Enum
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from workbench.errors import SettingsError
from workbench.lake.api import DEV_BRANCH, MAIN_BRANCH  # noqa: F401  (defined with the other ref names)
from workbench.privacy import private_umask


class Profile(str, Enum):
    embedded = "embedded"
    stack = "stack"


SECRET_ENV_PREFIXES = ("CASCADE_", "NIGHTSCOUT_")  # what a site's `secret_env` may name


def project_roots() -> list[Path]:
    """Where a project `.env` may live: the source checkout this package runs from (a
    `pyproject.toml` next to `workbench/`; notebooks run in its subfolders) and the working
    directory itself — never a parent of it."""
    roots = []
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / "pyproject.toml").is_file() and (checkout / "workbench").is_dir():
        roots.append(checkout)
    cwd = Path.cwd().resolve()
    if cwd not in roots:
        roots.append(cwd)
    return roots


def _trusted(path: Path) -> bool:
    """A `.env` is read only when the current user owns it and nobody else may write it (a file
    planted in a shared folder is ignored)."""
    try:
        info = path.stat()
    except OSError:
        return False
    return info.st_uid == os.geteuid() and not info.st_mode & 0o022


def _dotenv_files(home: Path | None = None) -> list[Path]:
    """The `.env` files read, lowest priority first: `CASCADE_HOME/.env`, then the project's
    (`project_roots`). Never a parent folder of the working directory."""
    out: list[Path] = []
    for folder in (home, *project_roots()):
        if folder is None:
            continue
        candidate = folder / ".env"
        if candidate.is_file() and candidate not in out and _trusted(candidate):
            out.append(candidate)
    return out


def _home_from_env(project_env: list[Path]) -> Path:
    """CASCADE_HOME from the environment or the project's `.env` (the home's own `.env` cannot move it)."""
    if "CASCADE_HOME" in os.environ:
        return Path(os.environ["CASCADE_HOME"]).expanduser()
    from dotenv import dotenv_values

    for path in reversed(project_env):
        value = dotenv_values(path).get("CASCADE_HOME")
        if value:
            return Path(value).expanduser()
    return Path.home() / ".cascade"


def _find_dotenv() -> list[Path]:
    project = _dotenv_files(None)
    return _dotenv_files(_home_from_env(project))


class Settings(BaseSettings):
    """Typed settings from `CASCADE_*` variables and `.env`."""

    model_config = SettingsConfigDict(
        env_prefix="CASCADE_", extra="ignore", case_sensitive=False, populate_by_name=True
    )

    home: Path = Field(default=Path.home() / ".cascade", description="where the lake lives")
    profile: Profile = Profile.embedded
    warehouse: str | None = Field(
        default=None,
        description="Iceberg warehouse: a local path or s3://bucket/prefix (default HOME/warehouse)",
    )
    author: str = Field(default_factory=lambda: _default_author(), description="author recorded on commits")
    # Object storage (s3:// warehouse)
    s3_endpoint: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    # SQL engine
    duckdb_memory_limit: str = "1GB"  # one pool for models and metrics: 100 patient-years peak ~1.33 GB
    duckdb_threads: int = Field(default=0, description="0 = DuckDB's default (all cores)")
    # Transforms
    dbt_warm_seconds: float = Field(
        default=60.0, ge=0, description="the layer tasks' warm dbt process exits after this long idle; 0 = none"
    )
    # Stack profile endpoints
    nessie_uri: str = "http://localhost:19120/api/v2"
    nessie_token: SecretStr | None = Field(default=None, description="bearer token for Nessie (stack: generated)")
    trino_host: str = "localhost"
    trino_port: int = 8443
    trino_user: str = "cascade"
    trino_password: SecretStr | None = Field(
        default=None, description="Trino password; with one, Cascade talks HTTPS to Trino (stack: generated)"
    )
    trino_ca: Path | None = Field(
        default=None, description="certificate (PEM) Trino's HTTPS is verified against (default: the system's)"
    )
    # The native stack (`cascade stack up`)
    stack_cache: Path = Field(
        default=Path.home() / ".cache" / "cascade" / "stack",
        description="downloaded/built stack artifacts, shared by every CASCADE_HOME",
    )
    java_home: Path | None = Field(default=None, description="a Java 24+ JDK for Nessie and Trino (Temurin 25)")
    # Publishing
    postgres_url: SecretStr | None = None
    # Monitoring (`cascade monitor`) and Superset (`cascade superset`); both bound to 127.0.0.1
    prometheus_port: int = Field(default=9090, ge=0, le=65535, description="0 = a free port")
    exporter_port: int = Field(default=9464, ge=0, le=65535, description="pipeline metrics exporter; 0 = free")
    monitor_password: SecretStr | None = Field(
        default=None, description="Prometheus web login `admin` (default: generated into HOME/monitor)"
    )
    api_metrics_target: str | None = Field(default=None, description="host:port of the Cascade API to scrape")
    cache_home: Path = Field(
        default_factory=lambda: Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"),
        description="cache root (XDG_CACHE_HOME); Cascade uses <cache_home>/cascade",
    )
    superset_port: int = Field(default=8088, ge=0, le=65535, description="0 = a free port")
    superset_password: SecretStr | None = Field(
        default=None, description="Superset login `admin` (default: generated into HOME/superset)"
    )
    postgres_reader_url: SecretStr | None = Field(
        default=None, description="read-only URL for dashboards/API with CASCADE_POSTGRES_URL (default: that URL)"
    )
    postgres_data_dir: Path | None = Field(
        default=None, description="embedded server's cluster (default: see workbench.publish.postgres)"
    )
    # Ingest bounds (per site and run)
    ingest_deadline_seconds: float = Field(default=1800, gt=0, description="overall time one site may take")
    ingest_max_response_mb: float = Field(default=256, gt=0, description="largest response (decompressed)")
    # Dashboards (Voila)
    dashboard_token: SecretStr | None = Field(default=None, description="required to bind beyond 127.0.0.1")
    dashboard_max_kernels: int = Field(default=4, ge=1, description="open dashboard pages at once")
    dashboard_cull_seconds: int = Field(default=60, ge=5, description="a closed page's kernel lives this long")
    # The API and the hub (workbench/api)
    api_secret: SecretStr | None = Field(
        default=None, description="JWT signing key (default: generated into HOME/api-secret, mode 0600)"
    )
    api_rate_limit: str = Field(default="600/minute", description="requests per token, e.g. 600/minute")
    api_pool_size: int = Field(default=8, ge=1, le=100, description="PostgreSQL connections of the API")
    dashboard_url: str = "http://127.0.0.1:8866/"
    jupyter_url: str = "http://127.0.0.1:8888/"
    superset_url: str = "http://127.0.0.1:8088/"
    prometheus_url: str = "http://127.0.0.1:9090/"
    # The built-in demo Nightscout server (used when no site is configured)
    demo_patients: int = Field(default=2, ge=1, description="simulated patients")
    demo_days: float = Field(default=14, gt=0, description="days of history served")
    demo_seed: int = 42
    demo_end: datetime | None = Field(default=None, description="pin the demo clock (ISO time); default now")
    # Reports
    glucose_unit: Literal["mg/dL", "mmol/L"] = Field(default="mg/dL", description="unit of glucose in reports")
    report_paper: Literal["A4", "Letter"] = Field(default="A4", description="paper of the AGP report (landscape)")

    @field_validator("home", "stack_cache", mode="before")
    @classmethod
    def _expand_home(cls, value: object) -> object:
        if isinstance(value, str):
            return Path(value).expanduser()
        return value

    # ---- derived paths -------------------------------------------------------------------
    @property
    def catalog_db(self) -> Path:
        return self.home / "catalog.db"

    @property
    def warehouse_uri(self) -> str:
        if self.warehouse:
            if "://" in self.warehouse:
                return self.warehouse.rstrip("/")
            return Path(self.warehouse).expanduser().resolve().as_uri()
        return (self.home / "warehouse").resolve().as_uri()

    @property
    def stack_client_env(self) -> Path:
        """Settings for clients of the native stack, written by `cascade stack up`."""
        return self.home / "stack" / "client.env"

    @property
    def stage_dir(self) -> Path:
        return self.home / "stage"

    @property
    def cache_dir(self) -> Path:
        """Reusable downloads and tool venvs (e.g. Superset's), shared by every CASCADE_HOME."""
        return self.cache_home / "cascade"

    @property
    def runs_dir(self) -> Path:
        return self.home / "runs"

    @property
    def api_secret_file(self) -> Path:
        return self.home / "api-secret"

    def s3_properties(self) -> dict[str, str]:
        """PyIceberg FileIO properties for an s3:// warehouse (empty for a local one)."""
        props: dict[str, str] = {}
        if self.s3_endpoint:
            props["s3.endpoint"] = self.s3_endpoint
            props["s3.path-style-access"] = "true"
        if self.s3_access_key_id:
            props["s3.access-key-id"] = self.s3_access_key_id
        if self.s3_secret_access_key:
            props["s3.secret-access-key"] = self.s3_secret_access_key.get_secret_value()
        if props:
            props["s3.region"] = self.s3_region
        return props

    def ensure_home(self) -> Path:
        """Create the home folder private (0700, umask 077 for everything made under it; parents are
        never changed), or fail with one clear line when it cannot be written."""
        private_umask()
        try:
            self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
            if self.home.stat().st_uid == os.geteuid() and self.home.stat().st_mode & 0o077:
                self.home.chmod(0o700)
            probe = self.home / ".write-test"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            raise SettingsError(
                f"CASCADE_HOME {self.home} is not writable ({exc.strerror or exc}); "
                "set CASCADE_HOME to a folder you can write"
            ) from None
        return self.home


def _default_author() -> str:
    try:
        return getpass.getuser()
    except Exception:  # pragma: no cover - no user database in some containers
        return "cascade"


def page_query_string() -> str:
    """The query string of the Voila page being rendered (Voila passes it as QUERY_STRING); not a
    secret, so it is not subject to `env_value`'s prefix rule."""
    return os.environ.get("QUERY_STRING", "")


def env_value(name: str, default: str | None = None) -> str | None:
    """Read one variable by name (used for secrets whose *name* is configured, e.g. per site).
    Only names with a documented prefix (`SECRET_ENV_PREFIXES`) can be read this way, so a
    configuration file cannot make Cascade send an unrelated secret (e.g. a cloud token) anywhere."""
    if not name.startswith(SECRET_ENV_PREFIXES):
        raise SettingsError(
            f"secret_env {name!r} must start with {' or '.join(SECRET_ENV_PREFIXES)}; "
            "rename the variable, e.g. NIGHTSCOUT_ALICE_SECRET"
        )
    if name in os.environ:
        return os.environ[name]
    value: str | None = default
    from dotenv import dotenv_values

    for path in _find_dotenv():  # lowest priority first: later files win
        found = dotenv_values(path).get(name)
        if found is not None:
            value = found
    return value


def child_environment(settings: Settings) -> dict[str, str]:
    """The environment for a child process (a server Cascade starts) that must see the same lake."""
    env = dict(os.environ)
    env["CASCADE_HOME"] = str(settings.home)
    env["CASCADE_PROFILE"] = settings.profile.value
    return env


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment and `.env`; errors become one clear `SettingsError`."""
    try:
        options: dict[str, Any] = dict(overrides)
        dotenv = list(_find_dotenv())
        settings = Settings(_env_file=dotenv or None, **options)  # type: ignore[call-arg]  # pydantic-settings init kwarg
        if settings.profile is Profile.stack and settings.stack_client_env.is_file():
            # the running stack's endpoints and keys; the environment and the project's .env win
            files = (settings.stack_client_env, *dotenv)
            settings = Settings(_env_file=files, **options)  # type: ignore[call-arg]
        return settings
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"])
            var = f"CASCADE_{field.upper()}"
            if err["type"] == "enum":
                allowed = err.get("ctx", {}).get("expected", "")
                problems.append(f"{var}={err.get('input')!r} is not a known value (expected {allowed})")
            else:
                problems.append(f"{var}: {err['msg']}")
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings (cached). Tests call `get_settings.cache_clear()` after changing env."""
    return load_settings()


def debug_enabled() -> bool:
    """`CASCADE_DEBUG=1`: let the CLI show tracebacks of unexpected errors (read straight from the
    environment, because it must work even when the other settings are invalid)."""
    return os.environ.get("CASCADE_DEBUG", "").strip().lower() in ("1", "true", "yes")
