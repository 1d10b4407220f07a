"""Grafana cannot run here, so its provisioned dashboards are checked where it counts: every panel's
PromQL, run against a live Prometheus scraping a real lake (ingested demo data, a failed run, an
audit report) and a real API process, returns a non-empty result."""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from workbench.monitor import prometheus as monitor
from workbench.pipeline.runner import run_pipeline
from workbench.quality.audit import AuditReport, Check
from workbench.settings import Settings, get_settings

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "stack" / "grafana"
POLL_S = 120.0

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("prometheus") is None, reason="needs Debian's prometheus (.ci/system-deps.sh)"),
]


def _panels() -> list[tuple[str, str, str]]:
    out = []
    for path in sorted((GRAFANA / "dashboards").glob("*.json")):
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for target in panel["targets"]:
                out.append((board["title"], panel["title"], target["expr"]))
    return out


def test_provisioning_points_at_the_dashboards_and_prometheus() -> None:
    datasource = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    uid = datasource["datasources"][0]["uid"]
    boards = list((GRAFANA / "dashboards").glob("*.json"))
    assert {json.loads(p.read_text())["title"] for p in boards} == {
        "Cascade: pipeline health", "Cascade: data freshness", "Cascade: API", "Cascade: stack services",
    }  # fmt: skip
    for _, _, expr in _panels():
        assert expr and "$" not in expr  # plain PromQL, no Grafana variables: the live test runs it as is
    for path in boards:
        for panel in json.loads(path.read_text())["panels"]:
            assert panel["datasource"]["uid"] == uid


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _served(app: Any) -> Iterator[str]:
    """`app` served over real HTTP by uvicorn in a thread, for as long as the block runs."""
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.1)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def test_every_panel_query_returns_data(
    run_home: Settings, project: Path, api_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The runs come first, before any server thread exists: Ploomber builds a Python task in a forked
    # worker, and a fork taken while uvicorn's event loop runs in a thread crashed that worker in CI
    # (a segfault in the child's garbage collector) and left multiprocessing.Pool waiting for ever.
    failed = run_pipeline(project / "ingesting.yaml", settings=run_home)
    assert failed.status == "failed" and failed.tasks[0].status == "success"
    AuditReport(
        "dev", "main", datetime(2026, 11, 30, tzinfo=UTC).isoformat(), "abc123",
        [Check("freshness p001", "fail", "old", 30.0, 24.0)],
    ).save(failed.run_dir / "audit" / "audit.json")  # fmt: skip
    run_pipeline(project / "pipeline.yaml", settings=run_home, force=True)  # a success too

    for env in ("CASCADE_PROMETHEUS_PORT", "CASCADE_EXPORTER_PORT"):
        monkeypatch.setenv(env, "0")
    with _served(api_app) as api:
        monkeypatch.setenv("CASCADE_API_METRICS_TARGET", api)
        get_settings.cache_clear()
        _poll_every_panel(api)


def _poll_every_panel(api: str) -> None:
    settings = get_settings()
    try:
        status = monitor.up(settings, scrape_interval="1s", evaluation_interval="1s")
        auth = ("admin", monitor.monitor_password(settings)[0])
        pending = _panels()
        deadline = time.monotonic() + POLL_S
        while pending and time.monotonic() < deadline:
            for path in ("/patients/p001", "/patients/p002", "/boom"):
                httpx.get(f"http://{api}{path}", timeout=10)
            still = []
            for board, title, expr in pending:
                answer = httpx.get(status.url + "api/v1/query", params={"query": expr}, auth=auth, timeout=10)
                assert answer.status_code == 200, (board, title, expr, answer.text)
                if not answer.json()["data"]["result"]:
                    still.append((board, title, expr))
            pending = still
            time.sleep(1)
        assert not pending, f"panels without data after {POLL_S:.0f} s: {pending}"
    finally:
        monitor.down(settings)
