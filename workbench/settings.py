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
from typing import Any

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from workbench.errors import SettingsError


class Profile(str, Enum):
    embedded = "embedded"
    stack = "stack"


def _find_dotenv() -> Path | None:
    """The nearest `.env` in the working directory or its parents (notebooks run from subfolders)."""
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        candidate = folder / ".env"
        if candidate.is_file():
            return candidate
    return None


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
    duckdb_memory_limit: str = "2GB"
    duckdb_threads: int = Field(default=0, description="0 = DuckDB's default (all cores)")
    # Stack profile endpoints
    nessie_uri: str = "http://localhost:19120/api/v2"
    trino_host: str = "localhost"
    trino_port: int = 8080
    trino_user: str = "cascade"
    # Publishing
    postgres_url: SecretStr | None = None
    # The built-in demo Nightscout server (used when no site is configured)
    demo_patients: int = Field(default=2, ge=1, description="simulated patients")
    demo_days: float = Field(default=14, gt=0, description="days of history served")
    demo_seed: int = 42
    demo_end: datetime | None = Field(default=None, description="pin the demo clock (ISO time); default now")

    @field_validator("home", mode="before")
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
    def stage_dir(self) -> Path:
        return self.home / "stage"

    @property
    def runs_dir(self) -> Path:
        return self.home / "runs"

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
        """Create the home folder, or fail with one clear line when it cannot be written."""
        try:
            self.home.mkdir(parents=True, exist_ok=True)
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


def env_value(name: str, default: str | None = None) -> str | None:
    """Read one variable by name (used for secrets whose *name* is configured, e.g. per site)."""
    dotenv = _find_dotenv()
    if name in os.environ:
        return os.environ[name]
    if dotenv is not None:
        from dotenv import dotenv_values

        return dotenv_values(dotenv).get(name, default)
    return default


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment and `.env`; errors become one clear `SettingsError`."""
    try:
        options: dict[str, Any] = dict(overrides)
        return Settings(_env_file=_find_dotenv(), **options)  # type: ignore[call-arg]  # pydantic-settings init kwarg
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
