"""The publishing database: embedded server lifecycle, state reuse, external URL, CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psutil
import psycopg
import pytest
import typer
from typer.testing import CliRunner

from workbench.publish import postgres
from workbench.publish.cli import register
from workbench.publish.errors import PostgresError
from workbench.publish.postgres import EmbeddedPostgres, redact_url
from workbench.settings import get_settings


def _app() -> typer.Typer:
    """Only this area's commands (as `workbench.cli` registers them), independent of other areas."""
    app = typer.Typer()
    register(app)
    return app


def _child_url() -> str:
    """`connection_url()` computed in a separate process (same environment)."""
    code = "from workbench.publish.postgres import connection_url; print(connection_url())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.strip()


def test_start_reuse_stop_restart(own_home: Path) -> None:
    url = postgres.connection_url()
    assert url.startswith("postgresql://postgres:") and "@127.0.0.1:" in url and url.endswith("/cascade")
    with psycopg.connect(url, autocommit=True) as con:
        assert con.execute("select current_database()").fetchone() == ("cascade",)
        con.execute("create table kept (x int)")
        con.execute("insert into kept values (42)")

    state_file = own_home / "postgres" / "state.json"
    state = json.loads(state_file.read_text())
    assert f":{state['port']}/" in url
    assert (EmbeddedPostgres(own_home).data_dir / "PG_VERSION").exists()

    # another process reuses the running server instead of starting one
    assert _child_url() == url
    assert json.loads(state_file.read_text())["pid"] == state["pid"]
    status = postgres.status()
    assert status.running and status.pid == state["pid"] and status.port == state["port"]

    assert postgres.stop() is True
    assert not state_file.exists()
    assert postgres.status().running is False
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=3)
    assert postgres.stop() is False

    # started again on demand, with the data kept
    again = postgres.connection_url()
    with psycopg.connect(again) as con:
        assert con.execute("select x from kept").fetchall() == [(42,)]


def test_stale_state_file_is_ignored(own_home: Path) -> None:
    url = postgres.connection_url()
    state_file = own_home / "postgres" / "state.json"
    state = json.loads(state_file.read_text())
    state["pid"] = 999_999_999  # no such process: the state must not be trusted
    state_file.write_text(json.dumps(state))
    assert postgres.status().running is False
    # the running postmaster is adopted again rather than a second server started
    assert postgres.connection_url() == url
    assert json.loads(state_file.read_text())["pid"] != 999_999_999


def test_external_url_is_used_and_redacted(
    pg_server: EmbeddedPostgres, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    base = pg_server.url()
    with_password = base.replace("postgres@", "postgres:s3cret-pw@")
    monkeypatch.setenv("CASCADE_HOME", str(tmp_path))
    monkeypatch.setenv("CASCADE_POSTGRES_URL", with_password)
    get_settings.cache_clear()
    try:
        assert postgres.connection_url() == with_password
        status = postgres.status()
        assert status.kind == "external" and status.running
        assert "s3cret-pw" not in "\n".join(status.lines())
        assert not (tmp_path / "postgres").exists()  # nothing embedded was started
        with pytest.raises(PostgresError, match="external"):
            postgres.stop()
        result = CliRunner().invoke(_app(), ["postgres", "status"])
        assert result.exit_code == 0 and "***" in result.output and "s3cret-pw" not in result.output
    finally:
        get_settings.cache_clear()


def test_redact_url() -> None:
    assert redact_url("postgresql://u:pw@h:5432/db?sslmode=require") == "postgresql://u:***@h:5432/db?sslmode=require"
    assert redact_url("postgresql://u@h/db") == "postgresql://u@h/db"


def test_cli_url_status_stop(own_home: Path) -> None:
    runner = CliRunner()
    app = _app()
    result = runner.invoke(app, ["postgres", "url"])
    assert result.exit_code == 0, result.output
    url = result.output.strip()
    with psycopg.connect(url) as con:
        assert con.execute("select 1").fetchone() == (1,)
    status = runner.invoke(app, ["postgres", "status"])
    assert "running: yes" in status.output and redact_url(url) in status.output
    assert url.split(":")[2].split("@")[0] not in status.output  # never the password
    stopped = runner.invoke(app, ["postgres", "stop"])
    assert stopped.output.strip() == "stopped"
    assert "running: no" in runner.invoke(app, ["postgres", "status"]).output


def test_concurrent_first_use_starts_one_server(own_home: Path) -> None:
    code = "from workbench.publish.postgres import connection_url; print(connection_url())"
    children = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for _ in range(3)]
    urls = {child.communicate(timeout=120)[0].strip() for child in children}
    assert all(child.returncode == 0 for child in children)
    assert len(urls) == 1
    (url,) = urls
    status = postgres.status()
    assert status.running and status.url == redact_url(url)
    data_dir = str(EmbeddedPostgres(own_home).data_dir)
    postmasters = [
        proc.pid
        for proc in psutil.process_iter(["cmdline"])
        if (cmd := proc.info["cmdline"]) and cmd[0].endswith("/postgres") and data_dir in cmd
    ]
    assert postmasters == [status.pid]


def test_stop_and_restart_after_the_home_became_private(own_home: Path) -> None:
    # what pytest does to /tmp/pytest-of-<user> and a careful user to ~: the server's user can no
    # longer traverse to its data dir; stopping and starting again must still work
    url = postgres.connection_url()
    pid = postgres.status().pid
    assert pid is not None
    own_home.chmod(0o700)
    assert postgres.stop() is True
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    again = postgres.connection_url()
    with psycopg.connect(again) as con:
        assert con.execute("select 1").fetchone() == (1,)
    assert again.rsplit(":", 1)[0] == url.rsplit(":", 1)[0]
