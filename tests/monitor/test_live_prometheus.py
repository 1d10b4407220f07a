"""End to end: `cascade monitor up` (the real Debian Prometheus and the exporter), a failing pipeline
run fires CascadePipelineRunFailed in the live Prometheus, a successful run resolves it."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from workbench.monitor import prometheus as monitor
from workbench.pipeline.runner import run_pipeline
from workbench.settings import Settings, get_settings

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("prometheus") is None, reason="needs Debian's prometheus (.ci/system-deps.sh)"),
]
POLL_S = 120.0


class Live:
    def __init__(self, settings: Settings, url: str) -> None:
        self.url = url
        self.auth = ("admin", monitor.monitor_password(settings)[0])

    def get(self, path: str, **params: str) -> Any:
        answer = httpx.get(self.url + path, params=params, auth=self.auth, timeout=10)
        answer.raise_for_status()
        return answer.json()["data"]

    def alerts(self) -> dict[str, str]:
        return {a["labels"]["alertname"]: a["state"] for a in self.get("api/v1/alerts")["alerts"]}

    def wait(self, predicate: Any, what: str) -> None:
        deadline = time.monotonic() + POLL_S
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(1)
        raise AssertionError(f"{what} within {POLL_S:.0f} s; alerts: {self.alerts()}")


@pytest.fixture
def live(run_home: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Live]:
    monkeypatch.setenv("CASCADE_PROMETHEUS_PORT", "0")
    monkeypatch.setenv("CASCADE_EXPORTER_PORT", "0")
    get_settings.cache_clear()
    settings = get_settings()
    try:
        status = monitor.up(settings, scrape_interval="1s", evaluation_interval="1s")
        assert status.url and status.url.startswith("http://127.0.0.1:")
        assert status.new_password  # generated and shown once
        again = monitor.up(settings)  # idempotent: the same servers
        assert (again.prometheus_pid, again.exporter_pid) == (status.prometheus_pid, status.exporter_pid)
        assert again.new_password is None
        yield Live(settings, status.url)
    finally:
        monitor.down(settings)
    assert not monitor.status(settings).running


def test_failing_run_fires_the_alert_and_a_good_run_resolves_it(live: Live, run_home: Settings, project: Path) -> None:
    assert httpx.get(live.url + "api/v1/alerts", timeout=10).status_code == 401  # the API asks for a login
    live.wait(lambda: live.get("api/v1/query", query='up{job="cascade"}')["result"], "the exporter is scraped")
    assert "CascadePipelineRunFailed" not in live.alerts()

    assert run_pipeline(project / "failing.yaml", settings=run_home).status == "failed"
    live.wait(lambda: live.alerts().get("CascadePipelineRunFailed") == "firing", "the alert fires")
    assert "CascadeServiceDown" not in live.alerts()

    assert run_pipeline(project / "pipeline.yaml", settings=run_home, force=True).status == "success"
    live.wait(lambda: "CascadePipelineRunFailed" not in live.alerts(), "the alert resolves")
    result = live.get("api/v1/query", query='cascade_pipeline_last_run_status{status="success"}')["result"]
    assert [r["value"][1] for r in result] == ["1"]
