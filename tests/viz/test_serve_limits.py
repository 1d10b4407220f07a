"""Dashboard server limits with a real Voila: token beyond localhost, no tracebacks in the browser,
a cap on concurrent kernels, kernels culled after their page is gone."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import psutil
import pytest

from workbench.settings import load_settings
from workbench.viz.errors import DashboardServerError
from workbench.viz.serve import start_voila, stop_voila


def _notebook(folder: Path, name: str, source: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = folder / name
    nbformat.write(nb, path)
    return path


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=120) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def _kernels(proc: psutil.Process) -> int:
    return sum(1 for c in proc.children(recursive=True) if "ipykernel" in " ".join(c.cmdline()))


def test_binding_beyond_localhost_needs_a_token(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home", dashboard_token=None)
    nb = _notebook(tmp_path, "ok.ipynb", "print('hello')")
    with pytest.raises(DashboardServerError, match="needs a token: set CASCADE_DASHBOARD_TOKEN"):
        start_voila(nb, host="0.0.0.0", settings=settings)


@pytest.mark.slow
def test_token_no_tracebacks_kernel_cap_and_culling(tmp_path: Path) -> None:
    token = "t0ken-" + "x" * 20
    settings = load_settings(
        home=tmp_path / "home", dashboard_token=token, dashboard_max_kernels=2, dashboard_cull_seconds=5
    )
    _notebook(tmp_path, "ok.ipynb", "print('hello from the dashboard')")
    _notebook(tmp_path, "boom.ipynb", "raise RuntimeError('secret internal detail')")
    folder = tmp_path
    proc, url = start_voila(folder / "ok.ipynb", host="0.0.0.0", settings=settings, log=tmp_path / "voila.log")
    try:
        assert url.endswith(f"?token={token}")
        base = url.split("?")[0]
        assert token not in " ".join(psutil.Process(proc.pid).cmdline())  # never in the process list
        assert _get(base)[0] in (401, 403) or "login" in _get(base)[1].lower()
        status, body = _get(url)
        assert status == 200 and "hello from the dashboard" in body
        # the cap: pages (and the preheated kernel) fill it; the page after that is refused
        statuses = [_get(url) for _ in range(3)]
        assert _kernels(psutil.Process(proc.pid)) <= 2
        assert [code for code, _ in statuses][-1] == 503, [code for code, _ in statuses]
        assert all("Traceback" not in text for _, text in statuses)
        # the pages' kernels are culled (not connected, idle) and the server serves again
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _kernels(psutil.Process(proc.pid)) > 1:
            time.sleep(1)
        assert _kernels(psutil.Process(proc.pid)) <= 1
        assert _get(url)[0] == 200
    finally:
        stop_voila(proc)
    proc, url = start_voila(folder / "boom.ipynb", settings=settings, log=tmp_path / "voila2.log")
    try:
        status, body = _get(url)
        assert "secret internal detail" not in body and "Traceback" not in body
    finally:
        stop_voila(proc)
