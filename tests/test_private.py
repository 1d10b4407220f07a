"""Private by default, proved by a second, unprivileged local user.

A real pipeline run (the ingest notebook, executed by `cascade run`) and a real publish to the
embedded PostgreSQL; then another user tries to read the lake, the executed notebook and the
passwords, and to connect to PostgreSQL. Needs root (to create that user), as in CI.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg
import pyarrow as pa
import pytest

from tests.conftest import ROOT

PROBE_USER = "cascade_probe"
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="creating a second local user needs root")


@pytest.fixture(scope="module")
def probe() -> pwd.struct_passwd:
    """An unprivileged local user (created once with useradd)."""
    try:
        return pwd.getpwnam(PROBE_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PROBE_USER],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(PROBE_USER)


def _as(
    user: pwd.struct_passwd, command: list[str], env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        user=user.pw_uid,
        group=user.pw_gid,
        extra_groups=[],
        cwd="/",
        env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def as_probe(user: pwd.struct_passwd, code: str) -> dict[str, str]:
    """Run Python `code` with the system's Python as the probe user (the venv's interpreter may
    live in root's private home); it prints one JSON object of outcomes."""
    done = _as(user, ["/usr/bin/python3", "-c", textwrap.dedent(code)])
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def private_home() -> Iterator[Path]:
    """A CASCADE_HOME in a folder every user may enter (so only Cascade's own modes protect it)."""
    shared = Path(tempfile.mkdtemp(prefix="cascade-private-"))
    shared.chmod(0o755)
    home = shared / "home"
    yield home
    from workbench.publish.postgres import EmbeddedPostgres

    EmbeddedPostgres(home).destroy()
    shutil.rmtree(shared, ignore_errors=True)


@pytest.fixture(scope="module")
def pipeline_run(private_home: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """`cascade run` of a one-task pipeline (the real ingest notebook) on the demo server, then a
    publish to the embedded PostgreSQL; returns the paths and URLs the probe attacks."""
    folder = tmp_path_factory.mktemp("mini-pipeline")
    (folder / "pipeline.yaml").write_text(
        textwrap.dedent(f"""\
        meta:
          extract_upstream: false
          extract_product: false
        executor: serial
        tasks:
          - source: {ROOT / "notebooks" / "10_ingest_nightscout.py"}
            name: ingest
            product:
              nb: "{{{{products}}}}/10_ingest_nightscout.ipynb"
              report: "{{{{products}}}}/ingest.json"
            params:
              branch: dev
              sites: null
              full_resync: false
        """)
    )
    shutil.copy(ROOT / "env.yaml", folder / "env.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASCADE_")}
    env.update(
        CASCADE_HOME=str(private_home),
        CASCADE_DEMO_DAYS="1",
        CASCADE_DEMO_PATIENTS="1",
        CASCADE_DEMO_END="2026-01-10T12:00:00+00:00",
    )
    exe = Path(sys.executable).with_name("cascade")
    subprocess.run([str(exe), "init"], env=env, capture_output=True, text=True, timeout=120, check=True)
    done = subprocess.run(
        [str(exe), "run", "--pipeline", str(folder / "pipeline.yaml")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=folder,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    notebooks = sorted(private_home.rglob("10_ingest_nightscout.ipynb"))
    assert notebooks, "the executed notebook is missing"

    from workbench.publish.postgres import EmbeddedPostgres
    from workbench.publish.publisher import publish
    from workbench.settings import load_settings

    settings = load_settings(home=private_home, profile="embedded", warehouse=None, postgres_url=None)
    server = EmbeddedPostgres(private_home)
    publish({"probe_table": pa.table({"x": [1, 2, 3]})}, commit_id="c0", url=server.url(), settings=settings)
    parquet = sorted(private_home.rglob("*.parquet"))
    assert parquet
    return {
        "notebook": str(notebooks[0]),
        "parquet": str(parquet[0]),
        "catalog": str(private_home / "catalog.db"),
        "password": str(private_home / "postgres" / "superuser.password"),
        "port": str(server.start().port),
        "url": server.url(),
        "reader_url": server.reader_url(),
        "data_dir": str(server.data_dir),
    }


def test_every_file_is_private_and_no_parent_was_widened(private_home: Path, pipeline_run: dict[str, str]) -> None:
    assert stat.S_IMODE(private_home.stat().st_mode) == 0o700
    assert stat.S_IMODE(private_home.parent.stat().st_mode) == 0o755  # untouched
    assert stat.S_IMODE(Path(tempfile.gettempdir()).stat().st_mode) == 0o1777
    loose = [
        f"{p} {oct(stat.S_IMODE(p.lstat().st_mode))}"
        for p in [private_home, *private_home.rglob("*")]
        if not p.is_symlink() and p.lstat().st_mode & 0o077
    ]
    assert loose == []
    assert stat.S_IMODE(Path(pipeline_run["data_dir"]).stat().st_mode) == 0o700


def test_second_user_reads_nothing(probe: pwd.struct_passwd, pipeline_run: dict[str, str]) -> None:
    paths = {k: pipeline_run[k] for k in ("notebook", "parquet", "catalog", "password")}
    outcome = as_probe(
        probe,
        f"""
        import json, os
        out = {{}}
        for name, path in {paths!r}.items():
            try:
                open(path, "rb").read(1)
                out[name] = "read"
            except PermissionError:
                out[name] = "denied"
        try:
            os.listdir(os.path.dirname({pipeline_run["catalog"]!r}))
            out["home"] = "listed"
        except PermissionError:
            out["home"] = "denied"
        print(json.dumps(out))
        """,
    )
    assert outcome == {
        "notebook": "denied",
        "parquet": "denied",
        "catalog": "denied",
        "password": "denied",
        "home": "denied",
    }


def test_second_user_cannot_connect_to_postgres(probe: pwd.struct_passwd, pipeline_run: dict[str, str]) -> None:
    port = pipeline_run["port"]
    attempts = {
        "superuser without password": (["-h", "127.0.0.1", "-U", "postgres"], {}),
        "reader without password": (["-h", "127.0.0.1", "-U", "cascade_reader"], {}),
        "superuser guessed password": (["-h", "127.0.0.1", "-U", "postgres"], {"PGPASSWORD": "postgres"}),
        "unix socket": (["-h", "/tmp", "-U", "postgres"], {}),
    }
    for name, (args, env) in attempts.items():
        done = _as(probe, ["psql", "-w", "-p", port, "-d", "cascade", *args, "-c", "select 1"], env)
        assert done.returncode != 0, f"{name}: connected"
        assert "password" in done.stderr or "No such file" in done.stderr, f"{name}: {done.stderr}"


def test_server_is_local_password_only_and_without_root_group(pipeline_run: dict[str, str]) -> None:
    data_dir = Path(pipeline_run["data_dir"])
    rules = [line.split() for line in (data_dir / "pg_hba.conf").read_text().splitlines()]
    methods = {r[-1] for r in rules if r and not r[0].startswith("#")}
    assert methods == {"scram-sha-256"}
    pid = int((data_dir / "postmaster.pid").read_text().split()[0])
    server = psutil.Process(pid)
    assert 0 not in server.gids() and 0 not in server.uids()
    groups = Path(f"/proc/{pid}/status").read_text().split("Groups:")[1].splitlines()[0].split()
    assert "0" not in groups
    listening = {c.laddr.ip for c in server.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN}
    assert listening == {"127.0.0.1"}


def test_readers_role_reads_published_marts_and_nothing_more(pipeline_run: dict[str, str]) -> None:
    with psycopg.connect(pipeline_run["reader_url"]) as con:
        assert con.execute("select count(*) from marts.probe_table").fetchone() == (3,)
        assert con.execute("select rolsuper from pg_roles where rolname = current_user").fetchone() == (False,)
    with psycopg.connect(pipeline_run["reader_url"]) as con, pytest.raises(psycopg.errors.InsufficientPrivilege):
        con.execute("copy (select 1) to program 'id'")
    with psycopg.connect(pipeline_run["reader_url"]) as con, pytest.raises(psycopg.errors.InsufficientPrivilege):
        con.execute("create table marts.planted (x int)")
