"""Background servers Cascade starts and stops itself (Prometheus, the exporter, Superset): a pid file
that remembers the process and its start time (so a reused pid is never mistaken for ours), start in
its own session with output to a 0600 log, stop by SIGTERM then SIGKILL, and generated passwords."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from workbench.errors import CascadeError


class ServiceError(CascadeError):
    """A server Cascade manages did not start, or cannot be reached."""


def private_dir(path: Path) -> Path:
    """A folder only the owner can enter (0700)."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def write_private(path: Path, text: str) -> Path:
    """Write a file created 0600 (never readable by others, not even briefly)."""
    if not path.parent.exists():
        private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    path.chmod(0o600)
    return path


def password(configured: str | None, path: Path) -> tuple[str, bool]:
    """The configured password, else the one generated earlier into `path`, else a new one written
    there 0600. Returns (password, newly generated) so the caller prints it once."""
    if configured:
        return configured, False
    if path.is_file():
        return path.read_text().strip(), False
    value = secrets.token_urlsafe(18)
    write_private(path, value + "\n")
    return value, True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Service:
    """One managed server process, remembered in `<folder>/<name>.pid` (JSON: pid, create time)."""

    name: str
    folder: Path

    @property
    def pid_file(self) -> Path:
        return self.folder / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.folder / f"{self.name}.log"

    def pid(self) -> int | None:
        """The pid if our process still runs (same pid AND same start time), else None."""
        try:
            info = json.loads(self.pid_file.read_text())
            proc = psutil.Process(int(info["pid"]))
            if abs(proc.create_time() - float(info["created"])) < 0.01 and proc.status() != psutil.STATUS_ZOMBIE:
                return proc.pid
        except (OSError, ValueError, KeyError, psutil.Error):
            pass
        return None

    def start(self, argv: Sequence[str], env: Mapping[str, str] | None = None, cwd: Path | None = None) -> int:
        """Start the process detached (it outlives the CLI); output goes to the 0600 log file."""
        private_dir(self.folder)
        fd = os.open(self.log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=fd,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=True,
            )
        except OSError as exc:
            raise ServiceError(f"cannot start {self.name} ({argv[0]}): {exc.strerror or exc}") from None
        finally:
            os.close(fd)
        created = psutil.Process(proc.pid).create_time()
        write_private(self.pid_file, json.dumps({"pid": proc.pid, "created": created}))
        return proc.pid

    def stop(self, timeout_s: float = 20.0) -> bool:
        """SIGTERM the process group, then SIGKILL after `timeout_s`; True if something was running."""
        pid = self.pid()
        self.pid_file.unlink(missing_ok=True)
        if pid is None:
            return False
        for sig, wait_s in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, sig)
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).wait(wait_s)
                return True
        return True

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def wait_http(
    url: str,
    service: Service,
    timeout_s: float,
    auth: tuple[str, str] | None = None,
    ok: Sequence[int] = (200,),
) -> None:
    """Poll `url` until it answers with one of `ok`; fail with the log's tail if the process dies."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if service.pid() is None:
            raise ServiceError(f"{service.name} exited while starting; its log ({service.log_file}):\n{service.tail()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, auth=auth, timeout=5).status_code in ok:
                return
        time.sleep(0.5)
    raise ServiceError(f"{service.name} did not answer at {url} within {timeout_s:.0f} s; log: {service.log_file}")
