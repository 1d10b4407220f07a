"""`cascade lab` as a test starts it: a real JupyterLab server on a free loopback port, its token in
the environment, its own workspace and settings folders; stopped (its whole process group) after."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

STARTUP_S = 180


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_lab(cascade: Path, cwd: Path, env: dict[str, str], token: str, scratch: Path) -> Iterator[str]:
    """`cascade lab --no-browser` started in `cwd`; yields its base URL once `/api/status` answers."""
    port = free_port()
    env = {
        **env,
        "JUPYTER_TOKEN": token,
        "PYTHONUNBUFFERED": "1",
        # a workspace of its own: JupyterLab reopens a remembered tab with the viewer it had then
        "JUPYTERLAB_WORKSPACES_DIR": str(scratch / "workspaces"),
        "JUPYTERLAB_SETTINGS_DIR": str(scratch / "user-settings"),
    }
    log = scratch / "cascade-lab.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [str(cascade), "lab", "--no-browser", "--port", str(port)],
            cwd=cwd,  # `cascade lab` finds the project root (pipeline.yaml) upwards
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            request = urllib.request.Request(base + "/api/status", headers={"Authorization": f"token {token}"})
            try:
                with urllib.request.urlopen(request, timeout=30):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"cascade lab did not start: {log.read_text()[-3000:]}") from None
                time.sleep(0.5)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
