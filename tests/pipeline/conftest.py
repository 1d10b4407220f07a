"""Fixtures: a temporary CASCADE_HOME per test, and this area's CLI commands on their own app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import typer

from workbench.pipeline.cli import register
from workbench.settings import Settings, get_settings


@pytest.fixture
def run_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings for a fresh CASCADE_HOME (env set, settings cache cleared before and after)."""
    monkeypatch.setenv("CASCADE_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


@pytest.fixture
def pg_home(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A CASCADE_HOME (the current folder too: no ./sites.yaml of the project in the way) with its own
    embedded PostgreSQL, for runs that publish."""
    from tests.publish.conftest import make_pg_home, remove_pg_home

    home = make_pg_home()
    monkeypatch.setenv("CASCADE_HOME", str(home))
    monkeypatch.setenv("CASCADE_PROFILE", "embedded")
    monkeypatch.delenv("CASCADE_WAREHOUSE", raising=False)
    monkeypatch.chdir(home)
    get_settings.cache_clear()
    yield home
    get_settings.cache_clear()
    remove_pg_home(home)


@pytest.fixture
def cli_app() -> typer.Typer:
    """Only the pipeline commands, registered as `workbench.cli` does (independent of other areas)."""
    app = typer.Typer()
    register(app)
    return app
