"""Superset's own venv: its pins (SQLAlchemy 1.4, pandas 2.1, numpy 1.26) clash with Cascade's, so it
is installed with uv from `stack/superset/requirements.lock` into
`<cache>/cascade/superset/venv-<lock hash>`, with uv's download cache beside it. A second install (CI,
another CASCADE_HOME) reuses the venv; a new lock makes a new venv."""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from workbench.errors import CascadeError
from workbench.settings import Settings, child_environment

LOCK_FILE = Path(__file__).resolve().parents[2] / "stack" / "superset" / "requirements.lock"
INSTALL_TIMEOUT_S = 1800


class SupersetInstallError(CascadeError):
    """Superset's venv could not be installed."""


def venv_dir(settings: Settings) -> Path:
    digest = hashlib.sha256(LOCK_FILE.read_bytes()).hexdigest()[:12]
    return settings.cache_dir / "superset" / f"venv-{digest}"


def _uv() -> str:
    beside = Path(sys.executable).with_name("uv")
    found = str(beside) if beside.exists() else shutil.which("uv")
    if not found:
        raise SupersetInstallError("uv is not installed in this venv: run `make setup`")
    return found


def ensure_venv(settings: Settings, echo: Callable[[str], None] = print) -> Path:
    """The venv's folder, installing it first if needed (a file lock serialises concurrent installs)."""
    venv = venv_dir(settings)
    marker = venv / ".installed"
    if marker.exists():
        return venv
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():
            return venv
        echo(f"installing Superset into {venv} (once; a few minutes cold) ...")
        shutil.rmtree(venv, ignore_errors=True)
        env = {**child_environment(settings), "UV_CACHE_DIR": str(settings.cache_dir / "uv")}
        python = getattr(sys, "_base_executable", sys.executable)
        for argv in (
            [_uv(), "venv", "-q", "--python", python, str(venv)],
            [_uv(), "pip", "install", "-q", "--python", str(venv / "bin" / "python"), "-r", str(LOCK_FILE)],
        ):
            proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=INSTALL_TIMEOUT_S)
            if proc.returncode != 0:
                tail = "\n".join((proc.stderr or proc.stdout).splitlines()[-10:])
                raise SupersetInstallError(f"installing Superset failed ({' '.join(argv[:3])}):\n{tail}")
        marker.write_text(LOCK_FILE.read_text())
    return venv
