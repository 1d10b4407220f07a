"""Start Voila on the glucose dashboard (localhost only) and wait until it answers."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from workbench.viz.errors import DashboardServerError

DASHBOARDS_DIR = Path(__file__).resolve().parents[2] / "dashboards"
DEFAULT_DASHBOARD = "glucose_overview.ipynb"
HOST = "127.0.0.1"
DENIED_EXTENSIONS = ("jupyterlab-jupytext", "ploomber-extension")


def free_port() -> int:
    """A free TCP port on localhost."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def dashboard_path(name: str = DEFAULT_DASHBOARD) -> Path:
    """The dashboard notebook `name` under dashboards/."""
    path = DASHBOARDS_DIR / name
    if not path.is_file():
        known = ", ".join(sorted(p.name for p in DASHBOARDS_DIR.glob("*.ipynb"))) or "(none)"
        raise DashboardServerError(f"no dashboard {name!r} in {DASHBOARDS_DIR}; known: {known}")
    return path


def voila_command(notebook: Path, port: int, browser: bool = False) -> list[str]:
    """The Voila command line: one notebook, localhost only, plotly rendered offline."""
    voila = Path(sys.executable).with_name("voila")
    program = [str(voila)] if voila.exists() else [sys.executable, "-m", "voila"]
    return [
        *program,
        str(notebook),
        f"--port={port}",
        f"--Voila.ip={HOST}",
        "--no-browser" if not browser else "--Voila.open_browser=True",
        "--show_tracebacks=True",
        # a kernel per notebook runs ahead up to `request_query()`, so a page load only renders
        "--preheat_kernel=True",
        # a page's kernel is shut down when the page is left; culling catches those whose page vanished
        "--MappingKernelManager.cull_idle_timeout=900",
        "--MappingKernelManager.cull_interval=60",
        # lab extensions installed for JupyterLab that cannot activate inside Voila
        f"--VoilaConfiguration.extension_denylist={json.dumps(list(DENIED_EXTENSIONS))}",
        *_template_option(),
    ]


def _template_option() -> list[str]:
    """Voila's lab template without CDN links (workbench/viz/templates/cascade), once `make setup` installed it."""
    from workbench.lab import VOILA_TEMPLATE, voila_template_dir

    return [f"--template={VOILA_TEMPLATE}"] if voila_template_dir().is_dir() else []


def wait_until_up(url: str, proc: subprocess.Popen[bytes] | None = None, timeout_s: float = 60.0) -> None:
    """Poll `url` until Voila answers; fail early when the process exits."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise DashboardServerError(f"voila exited with code {proc.returncode} before answering on {url}")
        try:
            with urllib.request.urlopen(url.rstrip("/") + "/api", timeout=2):
                return
        except urllib.error.HTTPError:
            return  # the server answers (even a 404 means it is up)
        except OSError:
            time.sleep(0.25)
    raise DashboardServerError(f"voila did not answer on {url} within {timeout_s:.0f}s")


def stop_voila(proc: subprocess.Popen[bytes], timeout_s: float = 15.0) -> None:
    """Stop a Voila started by `start_voila` (it shuts its kernels down on SIGTERM)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout_s)


def start_voila(
    notebook: Path | None = None,
    port: int | None = None,
    browser: bool = False,
    log: Path | None = None,
    env: dict[str, str] | None = None,
) -> tuple[subprocess.Popen[bytes], str]:
    """Start Voila in the background (environment `env`, default this process's); returns the
    process and the dashboard URL once it answers."""
    notebook = notebook or dashboard_path()
    port = port or free_port()
    url = f"http://{HOST}:{port}/"
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(voila_command(notebook, port, browser), stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        wait_until_up(url, proc)
    except DashboardServerError:
        stop_voila(proc)
        raise
    return proc, url
