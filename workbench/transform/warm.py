"""A warm dbt process for the pipeline's layer tasks.

`ploomber build` runs the four layer tasks (bronze, silver, gold, marts) in four fresh notebook
kernels; each used to import dbt and load the parsed project again — most of a layer task's time
when a layer has little to do. `build_layer` sends the build to one warm process instead: the first
layer task starts it (`python -m workbench.transform.warm`), the next ones find it waiting, and it
exits after `CASCADE_DBT_WARM_SECONDS` idle (0: every task builds in its own kernel, as before).
`ploomber task <layer>` and `--partially` work as before: each task still builds exactly its layer.

One server per CASCADE_HOME, environment (`CASCADE_*`) and version of the code (the package's files
and the dbt project), so a changed setting or model never reaches an old server. It listens on a Unix
socket in a private (0700) folder; the request is the build's arguments, the answer the pickled
`BuildResult` (or the exception the build raised).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import socket
import socketserver
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from workbench.lake.api import DEV_BRANCH
from workbench.settings import Settings, get_settings
from workbench.transform.runner import PROJECT_DIR, BuildResult, build

PACKAGE_DIR = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 120.0  # importing dbt on a loaded 2-core machine takes up to ~25 s


def _code_version() -> str:
    """The package's Python files and the dbt project's own files (name, size, mtime)."""
    digest = hashlib.sha256()
    for root in (PACKAGE_DIR, PROJECT_DIR):
        for path in sorted(root.rglob("*")):
            if path.suffix in (".py", ".sql", ".yml", ".yaml") and "target" not in path.parts:
                stat = path.stat()
                digest.update(f"{path}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def socket_path(settings: Settings) -> Path:
    """Where the warm server of this home, environment and code listens."""
    key = hashlib.sha256()
    key.update(str(settings.home.resolve()).encode())
    for name in sorted(n for n in os.environ if n.upper().startswith("CASCADE_")):
        key.update(f"\n{name}={os.environ[name]}".encode())
    key.update(_code_version().encode())
    folder = Path(tempfile.gettempdir()) / f"cascade-dbt-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    info = folder.stat()
    if info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise PermissionError(f"{folder} is not private to this user; remove it")
    return folder / f"{key.hexdigest()[:24]}.sock"


def _send(conn: socket.socket, payload: bytes) -> None:
    conn.sendall(struct.pack("!Q", len(payload)) + payload)


def _receive(conn: socket.socket) -> bytes:
    def exactly(n: int) -> bytes:
        chunks = []
        while n:
            chunk = conn.recv(min(n, 1 << 20))
            if not chunk:
                raise ConnectionError("the warm dbt process closed the connection")
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    (size,) = struct.unpack("!Q", exactly(8))
    return exactly(size)


def _ask(path: Path, request: dict[str, Any]) -> Any:
    """The server's answer: a BuildResult, or the exception the build raised there."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(str(path))
        _send(conn, pickle.dumps(request))
        return pickle.loads(_receive(conn))  # noqa: S301 - our own server, on a socket private to this user


def _start(path: Path, settings: Settings) -> None:
    log = settings.ensure_home() / "dbt" / "warm.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        os.chmod(log, 0o600)
        process = subprocess.Popen(
            [sys.executable, "-m", "workbench.transform.warm", str(path), str(settings.dbt_warm_seconds)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,  # outlives the notebook kernel that started it
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while not path.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)


def build_layer(
    select: str, branch: str = DEV_BRANCH, full_refresh: bool = False, *, settings: Settings | None = None
) -> BuildResult:
    """`runner.build(select, branch, full_refresh)` in the warm dbt process (started if none is
    waiting); in this process when `CASCADE_DBT_WARM_SECONDS` is 0 or no server can be started."""
    settings = settings or get_settings()
    request: dict[str, Any] = {"select": select, "branch": branch, "full_refresh": full_refresh}
    if settings.dbt_warm_seconds <= 0:
        return build(select, branch, full_refresh, settings=settings)
    path = socket_path(settings)
    answer: Any = None
    for attempt in range(2):
        try:
            answer = _ask(path, request)
            break
        except OSError:  # no server (yet), or one that died
            if attempt == 0:
                with contextlib.suppress(OSError):
                    _remove_if_dead(path)
                _start(path, settings)
    if answer is None:  # no warm process could be started: build here
        return build(select, branch, full_refresh, settings=settings)
    if isinstance(answer, BaseException):
        raise answer
    return answer  # type: ignore[no-any-return]


def server_pid(path: Path) -> int | None:
    """The process id of the server listening on `path` (None: none listening)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        try:
            conn.connect(str(path))
        except OSError:
            return None
        pid, _, _ = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
        return int(pid)


def _remove_if_dead(path: Path) -> None:
    """Remove the socket a server that died left behind."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        try:
            conn.connect(str(path))
        except ConnectionRefusedError:
            path.unlink()


_LAST_BUILD = [time.monotonic()]  # when the server last answered a build (probes do not count)


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        try:
            request = pickle.loads(_receive(self.request))  # noqa: S301 - from a socket private to this user
        except ConnectionError:  # a probe (connect and close)
            return
        try:
            answer: Any = build(request["select"], request["branch"], bool(request["full_refresh"]))
        except Exception as exc:  # the client re-raises it
            answer = exc
        try:
            data = pickle.dumps(answer)
        except Exception as exc:
            data = pickle.dumps(RuntimeError(f"warm dbt: the result could not be sent back: {exc}"))
        _send(self.request, data)
        _LAST_BUILD[0] = time.monotonic()


def serve(path: Path, idle_seconds: float) -> None:
    """Answer builds on `path` until `idle_seconds` pass without one."""
    tmp = path.with_suffix(".starting")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    # dbt is imported and the project parsed before the socket appears (the first build is warm too)
    from workbench.transform.runner import run_dbt

    run_dbt("parse")
    server = socketserver.UnixStreamServer(str(tmp), _Handler)
    os.chmod(tmp, 0o600)
    tmp.rename(path)
    _LAST_BUILD[0] = time.monotonic()
    try:
        while path.exists():  # (a removed socket stops it too)
            left = _LAST_BUILD[0] + idle_seconds - time.monotonic()
            if left <= 0:
                break
            server.timeout = left
            server.handle_request()
    finally:
        server.server_close()
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


if __name__ == "__main__":  # python -m workbench.transform.warm SOCKET IDLE_SECONDS
    serve(Path(sys.argv[1]), float(sys.argv[2]))
