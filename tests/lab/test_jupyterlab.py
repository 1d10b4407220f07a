"""`cascade lab` in a real JupyterLab server: the contents API lists, opens and saves every notebook
(jupytext `.py` notebooks with Ploomber's contents manager), a kernel runs cells of
`91_tour_of_the_lake` over the server's REST + websocket API, and headless Chromium opens a notebook
in the JupyterLab UI (screenshot under test-artifacts/).

The project's notebooks, dashboards and pipeline.yaml are copied to a temporary folder, so saving
does not touch the checkout."""

from __future__ import annotations

import json
import shutil
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.chromium import chromium, needs_chromium
from tests.lab.server import STARTUP_S, running_lab

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
TOKEN = uuid.uuid4().hex


class Lab:
    def __init__(self, base: str, root: Path) -> None:
        self.base = base
        self.root = root

    def request(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            self.base + path,
            data=data,
            method=method,
            headers={"Authorization": f"token {TOKEN}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=120) as resp:
            text = resp.read().decode()
            return json.loads(text) if text else None


@pytest.fixture(scope="module")
def lab(demo_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    project = tmp_path_factory.mktemp("lab-project")
    for name in ("notebooks", "dashboards"):
        shutil.copytree(ROOT / name, project / name)
    for name in ("pipeline.yaml", "env.yaml"):
        shutil.copy(ROOT / name, project / name)
    cascade = Path(sys.executable).with_name("cascade")
    with running_lab(cascade, project / "notebooks", demo_env, TOKEN, project.parent) as base:
        yield Lab(base, project)


def test_server_listens_only_on_loopback_and_needs_the_token(lab: Lab) -> None:
    req = urllib.request.Request(lab.base + "/api/contents/notebooks")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, timeout=30)
    assert info.value.code == 403


def test_contents_api_lists_and_opens_every_notebook(lab: Lab) -> None:
    expected = {f"notebooks/{p.name}" for p in (ROOT / "notebooks").glob("*.py")} | {
        f"dashboards/{p.name}" for p in (ROOT / "dashboards").glob("*.ipynb")
    }
    listed: dict[str, str] = {}
    for folder in ("notebooks", "dashboards"):
        for entry in lab.request("GET", f"/api/contents/{folder}")["content"]:
            listed[entry["path"]] = entry["type"]
    assert expected <= set(listed)
    for path in sorted(expected):
        assert listed[path] == "notebook", f"{path} is listed as {listed[path]}, not as a notebook"
        model = lab.request("GET", f"/api/contents/{path}?content=1")
        assert model["type"] == "notebook" and model["content"]["cells"], path


def test_a_notebook_is_edited_and_saved_as_percent_py(lab: Lab) -> None:
    path = "notebooks/91_tour_of_the_lake.py"
    model = lab.request("GET", f"/api/contents/{path}?content=1")
    marker = f"print('edited in JupyterLab {uuid.uuid4().hex[:8]}')"
    model["content"]["cells"].append(
        {"cell_type": "code", "source": marker, "metadata": {}, "outputs": [], "execution_count": None}
    )
    lab.request("PUT", f"/api/contents/{path}", {"type": "notebook", "format": "json", "content": model["content"]})
    text = (lab.root / path).read_text()
    assert marker in text and "# %%" in text  # still a percent-format script, not JSON
    again = lab.request("GET", f"/api/contents/{path}?content=1")
    assert any(marker in "".join(c["source"]) for c in again["content"]["cells"])


def _execute(ws: Any, code: str, timeout_s: float = 180) -> tuple[str, list[str]]:
    """Send one execute_request on a kernel's websocket; (status, text outputs)."""
    import websocket

    msg_id = uuid.uuid4().hex
    ws.send(
        json.dumps(
            {
                "header": {
                    "msg_id": msg_id,
                    "msg_type": "execute_request",
                    "username": "test",
                    "session": "t",
                    "version": "5.3",
                    "date": "",
                },
                "parent_header": {},
                "metadata": {},
                "content": {
                    "code": code,
                    "silent": False,
                    "store_history": False,
                    "user_expressions": {},
                    "allow_stdin": False,
                    "stop_on_error": True,
                },
                "channel": "shell",
                "buffers": [],
            }
        )
    )
    outputs: list[str] = []
    status = ""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ws.settimeout(max(1.0, deadline - time.monotonic()))  # the whole wait is bounded, not each message
        try:
            msg = json.loads(ws.recv())
        except websocket.WebSocketTimeoutException:
            break
        if msg.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        kind = msg["msg_type"]
        if kind == "stream":
            outputs.append(msg["content"]["text"])
        elif kind in ("execute_result", "display_data"):
            outputs.append(msg["content"]["data"].get("text/plain", ""))
        elif kind == "error":
            outputs.append("\n".join(msg["content"]["traceback"]))
        elif kind == "execute_reply":
            status = msg["content"]["status"]
        if status and kind == "status" and msg["content"]["execution_state"] == "idle":
            return status, outputs
    raise AssertionError(f"no reply within {timeout_s}s; outputs so far: {outputs}")


def test_a_kernel_runs_cells_of_the_tour_notebook(lab: Lab) -> None:
    import websocket

    path = "notebooks/91_tour_of_the_lake.py"
    cells = [
        "".join(c["source"])
        for c in lab.request("GET", f"/api/contents/{path}?content=1")["content"]["cells"]
        if c["cell_type"] == "code"
    ]
    session = lab.request(
        "POST", "/api/sessions", {"path": path, "type": "notebook", "name": "", "kernel": {"name": "python3"}}
    )
    kernel_id = session["kernel"]["id"]
    ws = websocket.create_connection(
        f"{lab.base.replace('http', 'ws')}/api/kernels/{kernel_id}/channels?token={TOKEN}", timeout=180
    )
    try:
        # the parameters cell, the Lakehouse cell, the "tables by layer" cell
        for code in cells[:2]:
            status, outputs = _execute(ws, code)
            assert status == "ok", outputs
        status, outputs = _execute(ws, cells[2])
        assert status == "ok", outputs
        assert "'marts'" in "".join(outputs) and "'raw'" in "".join(outputs)
    finally:
        ws.close()
        lab.request("DELETE", f"/api/sessions/{session['id']}")


@needs_chromium
def test_jupyterlab_ui_opens_a_notebook_in_chromium(lab: Lab) -> None:
    with chromium(timeout_s=STARTUP_S) as driver:
        driver.get(f"{lab.base}/lab/tree/notebooks/92_time_travel.py?token={TOKEN}")
        deadline = time.monotonic() + STARTUP_S
        text = ""
        while time.monotonic() < deadline:
            cells = driver.find_elements("css selector", ".jp-NotebookPanel .jp-Cell")
            text = " ".join(c.text for c in cells[:6])
            if len(cells) >= 3 and "Time travel" in text:
                break
            time.sleep(0.5)
        ARTIFACTS.mkdir(exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / "jupyterlab_92_time_travel.png"))
        assert "Time travel" in text, driver.find_element("tag name", "body").text[:2000]
        tab = driver.find_elements("css selector", ".lm-TabBar-tab.jp-mod-current")
        assert any("92_time_travel.py" in t.text for t in tab)
