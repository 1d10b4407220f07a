"""First contact, as a new user meets Cascade: a fresh clone of the repository, `make demo` (its own
virtual environment, the offline demo Nightscout, the whole pipeline, PostgreSQL), then the next
steps the demo's summary prints, followed literally: a patient token and `cascade api` answering
the printed `curl` with the seed's JSON shape, `cascade hub` showing the demo's run, and
`cascade lab` listing and opening every notebook of the clone, and showing each in headless
Chromium's JupyterLab.

The clone is of the checkout's committed HEAD (what CI runs is itself a clean clone of main).
The demo clock is pinned, so nothing depends on the hour."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import start_server, stop_server
from tests.api.test_endpoints import READING_FIELDS
from tests.conftest import demo_end
from tests.publish.conftest import make_pg_home, remove_pg_home
from workbench.viz.report import CHROMIUM_FLAGS

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
DEMO_TIMEOUT_S = 1500


@dataclass(frozen=True)
class Demo:
    clone: Path
    home: Path
    env: dict[str, str]
    summary: str

    def cascade(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.clone / ".venv" / "bin" / "cascade"), *args],
            cwd=self.clone,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def step(self, prefix: str) -> str:
        """The summary's next-step line that starts with `prefix` (stripped)."""
        for line in self.summary.splitlines():
            if line.strip().startswith(prefix):
                return line.strip()
        raise AssertionError(f"the demo summary has no step starting with {prefix!r}:\n{self.summary}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """`git clone` + `make demo` in it, with a fresh CASCADE_HOME and the pinned demo clock."""
    clone = tmp_path_factory.mktemp("first-contact") / "cascade"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True, timeout=300)
    home = make_pg_home()
    shutil.rmtree(home)  # `make demo` creates the home itself (a missing home is not an error for it)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CASCADE_", "VIRTUAL_ENV", "JUPYTER"))}
    env.update(
        {
            "CASCADE_HOME": str(home),
            "CASCADE_DEMO_END": demo_end().isoformat(),
            "PATH": f"{clone / '.venv' / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}",
            "PYTHONUNBUFFERED": "1",
        }
    )
    try:
        done = subprocess.run(
            ["make", "demo"], cwd=clone, env=env, capture_output=True, text=True, timeout=DEMO_TIMEOUT_S
        )
        assert done.returncode == 0, (
            f"make demo failed ({done.returncode}):\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
        )
        yield Demo(clone, home, env, done.stdout)
    finally:
        remove_pg_home(home)


def test_make_demo_summary_names_what_it_made_and_the_next_steps(demo: Demo) -> None:
    assert re.search(r"^run \S+: success", demo.summary, re.M), demo.summary
    for table in ("mrt_glucose_daily_metrics", "mrt_glucose_period_metrics", "fct_glucose_readings"):
        match = re.search(rf"marts\.{table}: (\d+) rows", demo.summary)
        assert match and int(match.group(1)) > 0, demo.summary
    assert str(demo.home) in demo.summary
    # the home and everything in it is its owner's only
    assert demo.home.stat().st_mode & 0o077 == 0


def test_the_printed_token_and_curl_steps_answer_with_the_seeds_shape(demo: Demo, tmp_path: Path) -> None:
    token_step = demo.step("T=$(cascade token create")
    patient = re.search(r"--patient (\S+?)\)", token_step)
    assert patient, token_step
    created = demo.cascade(*shlex.split(token_step.split("$(", 1)[1].split(")", 1)[0])[1:])
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert token.count(".") == 2 and token not in created.stderr

    curl = shlex.split(demo.step("curl "))
    url = next(part for part in curl if part.startswith("http://127.0.0.1:"))
    path = url.split("/", 3)[3]
    assert re.fullmatch(r"api/v1/glucose/readings\?date=\d{4}-\d{2}-\d{2}", path), url
    cascade = str(demo.clone / ".venv" / "bin" / "cascade")
    proc, base = start_server(
        [cascade, "api", "--port", "0"], demo.env, tmp_path / "api.log", r"^api: (http://127\.0\.0\.1:\d+/)"
    )
    try:
        _wait_for(lambda: httpx.get(base + "healthz", timeout=5).status_code == 200)
        answer = httpx.get(base + path, headers={"Authorization": f"Bearer {token}"}, timeout=60)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body and all(set(r) == READING_FIELDS for r in body)
        assert {r["patient_id"] for r in body} == {patient.group(1)}
        denied = httpx.get(base + path, timeout=60)
        assert denied.status_code == 401 and denied.headers["content-type"].startswith("application/json")
    finally:
        stop_server(proc)
    assert token not in (tmp_path / "api.log").read_text()


def test_the_hub_shows_the_demos_run(demo: Demo, tmp_path: Path) -> None:
    match = re.search(r"^run (\S+): success", demo.summary, re.M)
    assert match, demo.summary
    run_id = match.group(1)
    runs = demo.cascade("runs")
    assert runs.returncode == 0 and run_id in runs.stdout, runs.stdout + runs.stderr
    cascade = str(demo.clone / ".venv" / "bin" / "cascade")
    proc, login = start_server(
        [cascade, "hub", "--port", "0"], demo.env, tmp_path / "hub.log", r"^hub: (http://127\.0\.0\.1:\S+)"
    )
    try:
        with httpx.Client(timeout=120, follow_redirects=True) as client:
            page = client.get(login)
            assert page.status_code == 200, page.text[:2000]
            assert run_id in page.text and "success" in page.text
            runs_page = client.get(login.split("?", 1)[0] + "runs")
            assert runs_page.status_code == 200 and run_id in runs_page.text
    finally:
        stop_server(proc)


@pytest.fixture(scope="module")
def lab(demo: Demo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """`cascade lab` started from the clone, as the summary says; yields (base URL, token)."""
    token = uuid.uuid4().hex
    port = _free_port()
    scratch = tmp_path_factory.mktemp("lab-user")
    env = {
        **demo.env,
        "JUPYTER_TOKEN": token,
        "JUPYTERLAB_WORKSPACES_DIR": str(scratch / "workspaces"),
        "JUPYTERLAB_SETTINGS_DIR": str(scratch / "user-settings"),
    }
    assert demo.step("cascade lab")
    log = scratch / "lab.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [str(demo.clone / ".venv" / "bin" / "cascade"), "lab", "--no-browser", "--port", str(port)],
            cwd=demo.clone,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(lambda: _get(base, "/api/status", token) is not None, timeout=180, proc=proc, log=log)
        yield base, token
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _notebooks(clone: Path) -> list[str]:
    return sorted(
        [f"notebooks/{p.name}" for p in (clone / "notebooks").glob("*.py")]
        + [f"dashboards/{p.name}" for p in (clone / "dashboards").glob("*.ipynb")]
    )


def test_cascade_lab_lists_and_opens_every_notebook_of_the_clone(demo: Demo, lab: tuple[str, str]) -> None:
    base, token = lab
    expected = _notebooks(demo.clone)
    assert len(expected) >= 5
    for path in expected:
        model = _get(base, f"/api/contents/{path}?content=1", token)
        assert model is not None and model["type"] == "notebook" and model["content"]["cells"], path


@pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason="needs the Debian packages chromium and chromium-driver (.ci/system-deps.sh installs them)",
)
def test_every_notebook_opens_in_the_jupyterlab_ui(demo: Demo, lab: tuple[str, str]) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    base, token = lab
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (*CHROMIUM_FLAGS, "--window-size=1400,1000"):
        options.add_argument(arg)
    profile = tempfile.mkdtemp(prefix="cascade-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(180)
    failures: list[str] = []
    try:
        driver.get(f"{base}/lab?token={token}")
        for path in _notebooks(demo.clone):
            driver.get(f"{base}/lab/tree/{path}")
            name = path.rsplit("/", 1)[1]
            deadline = time.monotonic() + 120
            opened = False
            while time.monotonic() < deadline and not opened:
                tabs = driver.find_elements("css selector", ".lm-TabBar-tab.jp-mod-current")
                cells = driver.find_elements("css selector", ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell")
                opened = any(name in t.text for t in tabs) and len(cells) >= 1
                if not opened:
                    time.sleep(0.5)
            if not opened:
                ARTIFACTS.mkdir(exist_ok=True)
                driver.save_screenshot(str(ARTIFACTS / f"first_contact_{name}.png"))
                failures.append(name)
        ARTIFACTS.mkdir(exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / "first_contact_lab.png"))
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    assert not failures, f"JupyterLab did not open {failures} (screenshots in test-artifacts/)"


def _get(base: str, path: str, token: str) -> dict | None:  # type: ignore[type-arg]
    request = urllib.request.Request(base + path, headers={"Authorization": f"token {token}"})
    try:
        with urllib.request.urlopen(request, timeout=120) as answer:
            return json.loads(answer.read().decode())  # type: ignore[no-any-return]
    except OSError:
        return None


def _wait_for(ready, timeout: float = 60, proc: subprocess.Popen | None = None, log: Path | None = None) -> None:  # type: ignore[no-untyped-def,type-arg]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if ready():
                return
        except (OSError, httpx.HTTPError):
            pass
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.3)
    raise AssertionError(f"not ready within {timeout}s" + (f": {log.read_text()[-3000:]}" if log else ""))
