"""The profile registry: the one place that picks the lake and the SQL engine for a profile.

    embedded  SQLite ledger + PyIceberg SqlCatalog (`EmbeddedLake`)  ·  DuckDB (`DuckDBSession`)
    stack     Project Nessie REST v2 + Iceberg REST (`NessieLake`)   ·  Trino (`TrinoSession`)

Implementations are imported lazily, so the embedded profile never imports the stack's client
libraries; a profile whose libraries are missing fails with one line saying what to install.
"""

from __future__ import annotations

import importlib
import importlib.util
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import SettingsError
from workbench.settings import Settings

if TYPE_CHECKING:  # pragma: no cover
    from workbench.lake.api import VersionedLake
    from workbench.sql.engine import SqlSession


@dataclass(frozen=True)
class ProfileSpec:
    """What one profile is made of (implementations as ``module:attribute``, imported on use)."""

    name: str
    lake: str
    engine: str
    dbt_target: str
    description: str
    requires: tuple[str, ...] = ()  # importable modules the profile needs
    extra: str | None = None  # the pyproject extra that installs them
    # Bulk reads of whole tables (the computed metrics' inputs): through the SQL engine when it reads
    # Iceberg files in-process (DuckDB), else the ref's data files directly with PyIceberg — Trino's
    # client protocol sends rows as JSON, ~10x slower than Parquet for a million readings.
    bulk_reads_from_files: bool = False


PROFILES: dict[str, ProfileSpec] = {
    "embedded": ProfileSpec(
        name="embedded",
        lake="workbench.lake.store:EmbeddedLake",
        engine="workbench.sql.duckdb:DuckDBSession",
        dbt_target="duckdb",
        description="SQLite-backed Iceberg catalog + DuckDB on this machine",
    ),
    "stack": ProfileSpec(
        name="stack",
        lake="workbench.lake.nessie:NessieLake",
        engine="workbench.sql.trino:TrinoSession",
        dbt_target="trino",
        description="Project Nessie + Trino + S3 + PostgreSQL (`cascade stack up`)",
        requires=("trino", "httpx"),
        extra="stack",
        bulk_reads_from_files=True,
    ),
}


def spec(settings: Settings) -> ProfileSpec:
    """The profile the settings choose."""
    name = settings.profile.value if hasattr(settings.profile, "value") else str(settings.profile)
    try:
        return PROFILES[name]
    except KeyError:
        raise SettingsError(f"unknown profile '{name}'; use one of {', '.join(PROFILES)}") from None


def _load(profile: ProfileSpec, target: str) -> Any:
    missing = [m for m in profile.requires if importlib.util.find_spec(m) is None]
    if missing:
        raise SettingsError(
            f"CASCADE_PROFILE={profile.name} needs {', '.join(missing)}, which is not installed; "
            f"install the '{profile.extra}' extra: .venv/bin/pip install -e '.[{profile.extra}]'"
        )
    module_name, _, attribute = target.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attribute)


_lakes: dict[tuple[str, Path, str], VersionedLake] = {}
_lock = threading.Lock()


def open_lake(settings: Settings) -> VersionedLake:
    """The lake for these settings (one instance per process, profile and home)."""
    profile = spec(settings)
    key = (profile.name, settings.home.resolve(), settings.warehouse_uri)
    with _lock:
        if key not in _lakes:
            _lakes[key] = _load(profile, profile.lake)(settings)
        return _lakes[key]


def forget_lakes() -> None:
    """Drop cached lake instances (tests that restart services or recreate a home)."""
    with _lock:
        _lakes.clear()


def open_session(
    lake: VersionedLake, ref: str, settings: Settings, as_of: datetime | None = None, **options: Any
) -> SqlSession:
    """An SQL session on `ref` with the profile's engine (every table visible as schema.table)."""
    profile = spec(settings)
    return _load(profile, profile.engine)(lake, ref, settings=settings, as_of=as_of, **options)  # type: ignore[no-any-return]


def dbt_target(settings: Settings) -> str:
    """The dbt target (transforms/profiles.yml) of the settings' profile."""
    return spec(settings).dbt_target


__all__ = ["PROFILES", "ProfileSpec", "dbt_target", "forget_lakes", "open_lake", "open_session", "spec"]
