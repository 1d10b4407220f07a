"""JupyterLab for the project: `cascade lab`, and the contents manager that makes it open notebooks.

Why a contents manager of our own: jupyter_server 2 defaults to an *async* contents manager
(`AsyncLargeFileManager`). jupytext's server extension derives its async text-notebook manager from
it, and Ploomber's server extension then wraps that in `PloomberContentsManager`, whose `get()` is
synchronous: it calls `super().get(...)` and indexes the coroutine it gets back
(`TypeError: 'coroutine' object is not subscriptable`), so every `/api/contents` request fails with
500. Ploomber's manager needs a synchronous base. `ContentsManager` below is Ploomber's manager over
jupytext's *synchronous* manager (itself over jupyter_server's `LargeFileManager`); naming it as
`ServerApp.contents_manager_class` makes both extensions see that they are already installed
(jupytext checks for `formats`, Ploomber for `load_dag`) and leave it alone.

`make setup` writes that setting into the venv's Jupyter configuration (so a plain
`.venv/bin/jupyter lab` works too); `cascade lab` also passes it on the command line.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

CONTENTS_MANAGER = "workbench.lab.ContentsManager"
SERVER_CONFIG = {"ServerApp": {"contents_manager_class": CONTENTS_MANAGER}}
VOILA_TEMPLATE = "cascade"
DOCMANAGER = "@jupyterlab/docmanager-extension:plugin"
DEFAULT_VIEWERS = {"python": "Jupytext Notebook"}


def __getattr__(name: str) -> object:
    # Built on first use: importing jupytext/ploomber costs a second the CLI should not pay.
    if name == "ContentsManager":
        from jupytext import TextFileContentsManager
        from ploomber.jupyter.manager import derive_class

        cls = derive_class(TextFileContentsManager)
        cls.__name__ = cls.__qualname__ = "ContentsManager"
        cls.__module__ = __name__
        globals()["ContentsManager"] = cls
        return cls
    raise AttributeError(name)


def project_root(start: Path | None = None) -> Path | None:
    """The nearest folder (from `start`, default the working directory) holding pipeline.yaml."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "pipeline.yaml").is_file():
            return folder
    return None


def install_config(prefix: Path | None = None) -> Path:
    """Merge the contents-manager setting into `<prefix>/etc/jupyter/jupyter_server_config.json` (the
    `.d` folder next to it only carries extension switches, not settings)."""
    folder = Path(prefix or sys.prefix) / "etc" / "jupyter"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "jupyter_server_config.json"
    config = json.loads(target.read_text()) if target.is_file() else {}
    config.setdefault("ServerApp", {}).update(SERVER_CONFIG["ServerApp"])
    target.write_text(json.dumps(config, indent=2) + "\n")
    # JupyterLab opens `.py` files in its text editor unless told otherwise: open them
    # as notebooks with jupytext's document factory; "Open With > Editor" still shows the text.
    settings = Path(prefix or sys.prefix) / "share" / "jupyter" / "lab" / "settings"
    settings.mkdir(parents=True, exist_ok=True)
    overrides_file = settings / "overrides.json"
    overrides = json.loads(overrides_file.read_text()) if overrides_file.is_file() else {}
    overrides.setdefault(DOCMANAGER, {}).setdefault("defaultViewers", {}).update(DEFAULT_VIEWERS)
    overrides_file.write_text(json.dumps(overrides, indent=2) + "\n")
    install_voila_template(prefix)
    return target


def voila_template_dir(prefix: Path | None = None) -> Path:
    """Where the dashboard's Voila template `cascade` is installed (a Jupyter data folder)."""
    return Path(prefix or sys.prefix) / "share" / "jupyter" / "voila" / "templates" / VOILA_TEMPLATE


def install_voila_template(prefix: Path | None = None) -> Path:
    """Copy `workbench/viz/templates/cascade` (Voila's lab template without CDN links) into place."""
    import shutil

    source = Path(__file__).parent / "viz" / "templates" / VOILA_TEMPLATE
    target = voila_template_dir(prefix)
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target)
    return target


def lab_command(root: Path, port: int, browser: bool, token: str | None) -> list[str]:
    """The `jupyter lab` command line `cascade lab` runs (127.0.0.1, a token, our contents manager)."""
    argv = [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.contents_manager_class={CONTENTS_MANAGER}",
        "--ServerApp.allow_remote_access=False",
        f"--ServerApp.open_browser={browser}",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        argv.append("--ServerApp.allow_root=True")  # containers and CI run as root; still 127.0.0.1 + token
    if token is not None:
        argv.append(f"--IdentityProvider.token={token}")
    return argv


def lab_environment() -> dict[str, str]:
    """The environment of the server and its kernels: the caller's, without Ploomber's telemetry."""
    env = dict(os.environ)
    env.setdefault("PLOOMBER_STATS_ENABLED", "false")
    env.setdefault("PLOOMBER_VERSION_CHECK_DISABLED", "true")
    return env


if __name__ == "__main__":  # `python -m workbench.lab install-config` (make setup)
    if sys.argv[1:] == ["install-config"]:
        print(f"wrote {install_config()}")
    else:
        sys.exit("usage: python -m workbench.lab install-config")
