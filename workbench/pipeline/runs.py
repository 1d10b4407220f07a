"""Run ids and per-run report folders under `settings.runs_dir/<run_id>/`."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from pathlib import Path

from workbench.pipeline.errors import PipelineError
from workbench.settings import Settings, get_settings

_RUN_ID = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{6}$")


def new_run_id(now: datetime | None = None) -> str:
    """A sortable, unique run id such as `20261128T101500Z-1a2b3c` (UTC start time + random)."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def is_run_id(value: str) -> bool:
    return bool(_RUN_ID.match(value))


def run_dir(run_id: str, settings: Settings | None = None, *, create: bool = True) -> Path:
    """The report folder of a run (created unless `create=False`)."""
    if not is_run_id(run_id):
        raise PipelineError(f"{run_id!r} is not a run id (expected e.g. 20261128T101500Z-1a2b3c)")
    settings = settings or get_settings()
    folder = settings.runs_dir / run_id
    if create:
        folder.mkdir(parents=True, exist_ok=True)
    return folder
