"""Start Voila on the glucose dashboard and wait until it answers.

Safe by default: it listens on 127.0.0.1; any other address needs a token (`CASCADE_DASHBOARD_TOKEN`,
handed to Voila in a 0600 config file under CASCADE_HOME, never on the command line). Tracebacks are
never sent to the browser; a kernel whose page was closed is culled after `CASCADE_DASHBOARD_CULL_SECONDS`
(60); at most `CASCADE_DASHBOARD_MAX_KERNELS` (4) kernels run at once (`viz.kernels`), more page
loads get HTTP 503.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from workbench.settings import Settings, get_settings
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


def voila_command(
    notebook: Path,
    port: int,
    browser: bool = False,
    host: str = HOST,
    settings: Settings | None = None,
) -> list[str]:
    """The Voila command line: one notebook, plotly rendered offline, bounded kernels, no tracebacks."""
    settings = settings or get_settings()
    voila = Path(sys.executable).with_name("voila")
    program = [str(voila)] if voila.exists() else [sys.executable, "-m", "voila"]
    cull = settings.dashboard_cull_seconds
    return [
        *program,
        str(notebook),
        f"--port={port}",
        f"--Voila.ip={host}",
        "--no-browser" if not browser else "--Voila.open_browser=True",
        "--show_tracebacks=False",  # errors are logged on the server, never shown to the browser
        # a kernel per notebook runs ahead up to `request_query()`, so a page load only renders
        "--preheat_kernel=True",
        # a page's kernel is culled soon after the page is closed (idle and no longer connected)
        "--VoilaConfiguration.multi_kernel_manager_class=workbench.viz.kernels.CappedKernelManager",
        f"--CappedKernelManager.max_kernels={settings.dashboard_max_kernels}",
        f"--MappingKernelManager.cull_idle_timeout={cull}",
        f"--MappingKernelManager.cull_interval={max(2, cull // 4)}",
        "--MappingKernelManager.cull_connected=False",
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


def _token_config(token: str, settings: Settings) -> Path:
    """A private Voila config folder holding the token (so it never shows in the process list)."""
    folder = settings.ensure_home() / "dashboard" / "voila-config"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / "voila.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"Voila": {"token": token}}, handle)
    return folder


def start_voila(
    notebook: Path | None = None,
    port: int | None = None,
    browser: bool = False,
    log: Path | None = None,
    env: dict[str, str] | None = None,
    host: str = HOST,
    settings: Settings | None = None,
) -> tuple[subprocess.Popen[bytes], str]:
    """Start Voila in the background (environment `env`, default this process's); returns the
    process and the dashboard URL once it answers. Any `host` other than 127.0.0.1 needs
    `CASCADE_DASHBOARD_TOKEN` (the URL returned then carries it)."""
    settings = settings or get_settings()
    notebook = notebook or dashboard_path()
    port = port or free_port()
    child_env = dict(env if env is not None else os.environ)
    query = ""
    if host != HOST:
        if settings.dashboard_token is None or len(settings.dashboard_token.get_secret_value()) < 16:
            raise DashboardServerError(
                f"serving the dashboard on {host} (beyond this machine) needs a token: set "
                "CASCADE_DASHBOARD_TOKEN (16+ characters) in the environment or .env, or use 127.0.0.1"
            )
        token = settings.dashboard_token.get_secret_value()
        folder = _token_config(token, settings)
        child_env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(
            p for p in (str(folder), child_env.get("JUPYTER_CONFIG_PATH", "")) if p
        )
        query = f"?token={token}"
    url = f"http://{HOST if host in ('0.0.0.0', '::') else host}:{port}/"
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - handed to the child
    command = voila_command(notebook, port, browser, host=host, settings=settings)
    proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=child_env)
    try:
        wait_until_up(url, proc)
    except DashboardServerError:
        stop_voila(proc)
        raise
    return proc, url + query
