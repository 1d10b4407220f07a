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
from tests.chromium import chromium, needs_chromium
from tests.conftest import demo_end
from tests.lab.server import running_lab
from tests.publish.conftest import make_pg_home, remove_pg_home

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
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


def _user_umask() -> None:
    os.umask(0o022)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """`git clone` + `make demo` in it, with a fresh CASCADE_HOME and the pinned demo clock."""
    # where a user keeps a checkout: a folder other local users may enter (the embedded PostgreSQL
    # runs its binaries from the clone's .venv as its own system user when we are root), made with a
    # shell's usual umask; the lake home is what Cascade keeps private
    parent = Path(tempfile.mkdtemp(prefix="cascade-first-contact-"))
    parent.chmod(0o755)
    clone = parent / "cascade"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True, timeout=300, preexec_fn=_user_umask)
    home = make_pg_home()
    shutil.rmtree(home)  # `make demo` creates the home itself (a missing home is not an error for it)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CASCADE_", "VIRTUAL_ENV", "JUPYTER"))}
    env.update(
        {
            "CASCADE_HOME": str(home),
            "CASCADE_DEMO_END": demo_end().isoformat(),
            "PATH": f"{clone / '.venv' / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}",
            "PYTHONUNBUFFERED": "1",
            # a user's machine is rarely in UTC as CI's is: the whole first contact runs in a zone
            # far from it (Iceberg refused DuckDB's local-zone timestamps there once)
            "TZ": "Pacific/Auckland",
        }
    )
    try:
        done = subprocess.run(
            ["make", "demo"],
            cwd=clone,
            env=env,
            capture_output=True,
            text=True,
            timeout=DEMO_TIMEOUT_S,
            preexec_fn=_user_umask,
        )
        assert done.returncode == 0, (
            f"make demo failed ({done.returncode}):\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
        )
        yield Demo(clone, home, env, done.stdout)
    finally:
        remove_pg_home(home)
        shutil.rmtree(parent, ignore_errors=True)


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
    assert demo.step("cascade lab")
    token = uuid.uuid4().hex
    cascade = demo.clone / ".venv" / "bin" / "cascade"
    with running_lab(cascade, demo.clone, demo.env, token, tmp_path_factory.mktemp("lab-user")) as base:
        yield base, token


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


@needs_chromium
def test_every_notebook_opens_in_the_jupyterlab_ui(demo: Demo, lab: tuple[str, str]) -> None:
    base, token = lab
    failures: list[str] = []
    with chromium() as driver:
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
    assert not failures, f"JupyterLab did not open {failures} (screenshots in test-artifacts/)"


def _get(base: str, path: str, token: str) -> dict | None:  # type: ignore[type-arg]
    request = urllib.request.Request(base + path, headers={"Authorization": f"token {token}"})
    try:
        with urllib.request.urlopen(request, timeout=120) as answer:
            return json.loads(answer.read().decode())  # type: ignore[no-any-return]
    except OSError:
        return None


def _wait_for(ready, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if ready():
                return
        except (OSError, httpx.HTTPError):
            pass
        time.sleep(0.3)
    raise AssertionError(f"not ready within {timeout}s")
