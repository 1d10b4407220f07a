"""The hub and the pipeline-runs UI: real runs (two small Ploomber pipelines, one failing in a cell)
recorded by the runner into the demo lake, `cascade hub` serving them, headless Chromium reading
them (screenshots in test-artifacts/, no JavaScript errors)."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import SECRET, start_server, stop_server
from tests.chromium import CHROMEDRIVER, CHROMIUM, MISSING, chromium
from workbench.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
PIPELINES = Path(__file__).resolve().parent / "pipelines"

pytestmark = pytest.mark.slow  # two real pipeline runs and a browser


@pytest.fixture(scope="module")
def runs(
    published_settings: Settings, tmp_path_factory: pytest.TempPathFactory, monkeypatch_module: Any
) -> dict[str, str]:
    """Run a succeeding and a failing pipeline through `run_pipeline` (lock, run folder, history,
    `ops.pipeline_runs`); returns status -> run id."""
    from workbench.pipeline.runner import run_pipeline

    folder = tmp_path_factory.mktemp("pipelines") / "p"
    shutil.copytree(PIPELINES, folder)
    monkeypatch_module.chdir(folder)  # Ploomber reads env.yaml beside the spec / in the working directory
    monkeypatch_module.setenv("PLOOMBER_STATS_ENABLED", "false")
    out = {}
    for name in ("ok", "failing"):
        result = run_pipeline(folder / f"{name}.yaml", settings=published_settings)
        out[result.status] = result.run_id
    assert set(out) == {"success", "failed"}, out
    return out


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


@pytest.fixture(scope="module")
def hub(
    published_settings: Settings,
    demo_env: dict[str, str],
    runs: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """`cascade hub --port 0`; yields the login URL it prints."""
    assert published_settings.postgres_url is not None
    env = {
        **demo_env,
        "CASCADE_POSTGRES_URL": published_settings.postgres_url.get_secret_value(),
        "CASCADE_API_SECRET": SECRET,
        "CASCADE_DASHBOARD_URL": "http://127.0.0.1:9/",  # nothing listens there: shown as down
    }
    log = tmp_path_factory.mktemp("hub") / "cascade-hub.log"
    cascade = str(Path(sys.executable).with_name("cascade"))
    proc, url = start_server([cascade, "hub", "--port", "0"], env, log, r"^hub: (http://127\.0\.0\.1:\d+/\?token=\S+)$")
    try:
        yield url
    finally:
        stop_server(proc)


def base_of(login: str) -> str:
    return login.split("?")[0]


def test_hub_needs_an_admin_token(hub: str, published_settings: Settings) -> None:
    from workbench.api.auth import create_token

    base = base_of(hub)
    anonymous = httpx.get(base, timeout=60)
    assert anonymous.status_code == 401 and "cascade hub" in anonymous.text
    patient = create_token(patient="p001", settings=published_settings)
    assert httpx.get(base, params={"token": patient}, timeout=60).status_code == 401
    login = httpx.get(hub, timeout=60)
    assert login.status_code == 303 and login.headers["location"] == "/"
    cookie = login.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert httpx.get(base + "runs/" + "x" * 3, timeout=60).status_code == 401


def test_runs_filters_and_refresh(hub: str, runs: dict[str, str], published_settings: Settings) -> None:
    from workbench.api.auth import create_token
    from workbench.pipeline.history import record_task
    from workbench.pipeline.runs import new_run_id

    headers = {"Authorization": f"Bearer {create_token(admin=True, settings=published_settings)}"}
    base = base_of(hub)
    with httpx.Client(base_url=base, headers=headers, timeout=120) as client:
        failed = client.get("runs", params={"status": "failed"}).text
        assert runs["failed"] in failed and runs["success"] not in failed
        day = datetime.strptime(runs["success"][:8], "%Y%m%d").date().isoformat()  # the run's own start day
        assert runs["success"] in client.get("runs", params={"since": day, "until": day}).text
        assert runs["success"] not in client.get("runs", params={"until": "2000-01-01"}).text
        assert client.get("runs", params={"status": "nonsense"}).status_code == 422
        assert client.get("runs", params={"since": "yesterday"}).status_code == 422
        assert 'http-equiv="refresh"' not in client.get("runs").text
        # a run that is still going makes the pages refresh themselves
        started = datetime.now(UTC)
        running = new_run_id(started)
        record_task(running, "ingest", started_at=started, status="running", settings=published_settings)
        try:
            page = client.get("runs").text
            assert 'http-equiv="refresh"' in page and running in page
        finally:
            record_task(
                running,
                "ingest",
                started_at=started,
                ended_at=datetime.now(UTC),
                status="success",
                settings=published_settings,
            )
        assert 'http-equiv="refresh"' not in client.get("runs").text
        # run files stay inside the run folder
        assert client.get(f"runs/{runs['success']}/files/../../api-secret").status_code == 404
        assert client.get(f"runs/{runs['success']}/files/%2e%2e/%2e%2e/api-secret").status_code == 404


# ---- the browser -------------------------------------------------------------------------------------
@pytest.fixture
def browser() -> Iterator[Any]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip(MISSING)
    with chromium(1400, 1800, console=True) as driver:
        yield driver


def _errors(driver: Any) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def test_hub_and_runs_in_chromium(hub: str, runs: dict[str, str], browser: Any) -> None:
    from selenium.webdriver.common.by import By

    ARTIFACTS.mkdir(exist_ok=True)
    base = base_of(hub)
    browser.get(hub)  # logs in, then lands on / without the token
    assert browser.current_url == base
    services = {
        row.get_attribute("data-service"): row.get_attribute("data-up")
        for row in browser.find_elements(By.CSS_SELECTOR, "tr.service")
    }
    assert {"API docs (OpenAPI)", "Voila dashboards", "JupyterLab", "PostgreSQL (published marts)", "Lake catalog",
            "Documentation site", "dbt docs (lineage)"} <= set(services)  # fmt: skip
    assert services["API docs (OpenAPI)"] == "up" and services["PostgreSQL (published marts)"] == "up"
    assert services["Lake catalog"] == "up" and services["Voila dashboards"] == "down"
    patients = [row.get_attribute("data-patient") for row in browser.find_elements(By.CSS_SELECTOR, "tr.patient")]
    assert patients == ["p001", "p002"]
    statuses = {
        row.get_attribute("data-run"): row.get_attribute("data-status")
        for row in browser.find_elements(By.CSS_SELECTOR, "tr.run")
    }
    assert statuses[runs["failed"]] == "failed" and statuses[runs["success"]] == "success"
    browser.save_screenshot(str(ARTIFACTS / "hub.png"))

    browser.get(base + "runs")
    failed_row = browser.find_element(By.CSS_SELECTOR, f'tr.run[data-run="{runs["failed"]}"]')
    assert "failed" in failed_row.text and "bronze" in failed_row.text
    assert failed_row.find_elements(By.CSS_SELECTOR, ".timeline .bar.failed")
    browser.save_screenshot(str(ARTIFACTS / "runs.png"))

    failed_row.find_element(By.TAG_NAME, "a").click()
    assert browser.find_element(By.ID, "run-status").text == "failed"
    failure = browser.find_element(By.ID, "failure").text
    assert "bronze" in failure and "In [4]" in failure and "ValueError: simulated failure after 3 rows" in failure
    browser.save_screenshot(str(ARTIFACTS / "run-failed.png"))

    browser.get(base + f"runs/{runs['success']}")
    checks = [row.text for row in browser.find_elements(By.CSS_SELECTOR, "tr.check")]
    assert len(checks) == 2 and "warn" in checks[1] and "7.5" in checks[1] and "6.0" in checks[1]
    links = {a.text: a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "ul.files a")}
    assert {"ingest/10_ingest.html", "audit/60_audit.html", "reports/reports/agp_p001.html"} <= set(links)
    tasks = [row.get_attribute("data-task") for row in browser.find_elements(By.CSS_SELECTOR, "tr.task")]
    assert tasks == ["ingest", "audit", "reports"]
    browser.save_screenshot(str(ARTIFACTS / "run-success.png"))
    assert _errors(browser) == []  # the hub's own pages: no JavaScript or loading errors at all
    browser.get(links["reports/reports/agp_p001.html"])
    assert "AGP report p001" in browser.find_element(By.TAG_NAME, "h1").text
    browser.get(links["audit/60_audit.html"])
    assert "audit report" in browser.page_source.lower()
