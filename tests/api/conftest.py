"""A running API (`cascade api --port 0`, a real uvicorn process) over a real PostgreSQL holding what
`publish.yaml` publishes from the session's demo lake (2 patients x 14 days)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from workbench.lake.api import MAIN_BRANCH
from workbench.settings import Settings

SECRET = "test-signing-key-" + "x" * 40
RATE_LIMIT = "400/hour"  # an exact moving window: the rate test needs no timing (405 requests in < 1 h)


@dataclass(frozen=True)
class Api:
    url: str  # base URL, ends with /
    settings: Settings  # same home, secret and database as the server
    log: Path  # the server's stderr

    def token(self, patient: str | None = None, admin: bool = False, expires: str = "1h") -> str:
        from workbench.api.auth import create_token

        return create_token(patient=patient, admin=admin, expires=expires, settings=self.settings)

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)


@pytest.fixture(scope="session")
def published_settings(demo_home: Path) -> Iterator[Settings]:
    """A real PostgreSQL with everything publish.yaml lists, published from the demo lake's main."""
    from workbench.publish.postgres import EmbeddedPostgres
    from workbench.publish.publisher import load_config, publish_marts
    from workbench.settings import load_settings

    # outside pytest's tmp folders: PostgreSQL runs as its own system user and must reach its data dir
    pg_home = Path(tempfile.mkdtemp(prefix="cascade-api-pg-"))
    server = EmbeddedPostgres(pg_home)
    try:
        url = server.url()
        settings = load_settings(
            home=demo_home,
            profile="embedded",
            warehouse=None,
            postgres_url=SecretStr(url),
            api_secret=SecretStr(SECRET),
            api_rate_limit=RATE_LIMIT,
        )
        publish_marts(MAIN_BRANCH, config=load_config(), settings=settings)
        yield settings
    finally:
        server.stop()
        shutil.rmtree(pg_home, ignore_errors=True)


def start_server(command: list[str], env: dict[str, str], log: Path, pattern: str) -> tuple[subprocess.Popen[str], str]:
    """Start a cascade server; returns it and the first stdout line's URL matching `pattern`."""
    with open(log, "w") as err:
        proc = subprocess.Popen(
            command,
            env={**env, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            start_new_session=True,
        )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    match = re.search(pattern, first)
    if match is None:
        stop_server(proc)
        raise AssertionError(f"unexpected output {first!r}; log: {log.read_text()[-3000:]}")
    return proc, match.group(1)


def stop_server(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def api(
    published_settings: Settings, demo_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Api]:
    """`cascade api --port 0` on the demo lake and the published PostgreSQL."""
    assert published_settings.postgres_url is not None
    env = {
        **demo_env,
        "CASCADE_POSTGRES_URL": published_settings.postgres_url.get_secret_value(),
        "CASCADE_API_SECRET": SECRET,
        "CASCADE_API_RATE_LIMIT": RATE_LIMIT,
    }
    log = tmp_path_factory.mktemp("api") / "cascade-api.log"
    cascade = str(Path(sys.executable).with_name("cascade"))
    proc, url = start_server([cascade, "api", "--port", "0"], env, log, r"^api: (http://127\.0\.0\.1:\d+/)")
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + "healthz", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield Api(url, published_settings, log)
    finally:
        stop_server(proc)


def published_rows(settings: Settings, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    import psycopg

    assert settings.postgres_url is not None
    with psycopg.connect(settings.postgres_url.get_secret_value()) as con:
        return list(con.execute(sql, params).fetchall())  # type: ignore[arg-type]
