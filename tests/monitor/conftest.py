"""Fixtures: a tiny real Ploomber project whose runs succeed or fail, in a fresh CASCADE_HOME."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from workbench.settings import Settings, get_settings


@pytest.fixture
def run_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    monkeypatch.setenv("CASCADE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CASCADE_PROFILE", "embedded")
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`pipeline.yaml` (one task that works), `failing.yaml` (plus one that raises) and `ingesting.yaml`
    (a task `ingest` landing one day of the demo server on `dev`, then one that raises)."""
    folder = tmp_path / "project"
    folder.mkdir()
    module = f"cascade_monitor_tasks_{tmp_path.name.replace('-', '_')}"
    (folder / f"{module}.py").write_text(
        textwrap.dedent(
            """
            from pathlib import Path

            def report(product):
                Path(str(product)).parent.mkdir(parents=True, exist_ok=True)
                Path(str(product)).write_text("<html>ok</html>")

            def broken(product):
                raise ValueError("glucose out of range")

            def ingest_demo(product):
                from workbench.ingest.run import demo_sites, ingest

                with demo_sites(seed=7, patients=2, days=1) as sites:
                    ingest(branch="dev", sites=sites)
                Path(str(product)).parent.mkdir(parents=True, exist_ok=True)
                Path(str(product)).write_text("ingested")
            """
        )
    )
    ok = f'tasks:\n  - source: {module}.report\n    name: report\n    product: "{{{{products}}}}/report.html"\n'
    (folder / "pipeline.yaml").write_text(ok)
    (folder / "failing.yaml").write_text(
        ok + f'  - source: {module}.broken\n    name: broken\n    product: "{{{{products}}}}/broken.html"\n'
    )
    (folder / "ingesting.yaml").write_text(
        f'tasks:\n  - source: {module}.ingest_demo\n    name: ingest\n    product: "{{{{products}}}}/ingest.txt"\n'
        f'  - source: {module}.broken\n    name: broken\n    product: "{{{{products}}}}/broken.html"\n'
    )
    (folder / "env.yaml").write_text('products: "{{root}}/out"\n')
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.chdir(folder)
    monkeypatch.setenv("PLOOMBER_STATS_ENABLED", "false")
    monkeypatch.setenv("PLOOMBER_VERSION_CHECK_DISABLED", "true")
    return folder


@pytest.fixture
def api_app(run_home: Settings) -> FastAPI:
    """A small API the way workbench/api wires metrics: the middleware plus the mounted /metrics, with
    a route template (`/patients/{patient_id}`) and a route that fails (500)."""
    from workbench.monitor.api_metrics import PrometheusMiddleware
    from workbench.monitor.exporter import metrics_app

    app = FastAPI()
    app.add_middleware(PrometheusMiddleware)
    app.mount("/metrics", metrics_app(run_home))

    @app.get("/patients/{patient_id}")
    def patient(patient_id: str) -> dict[str, str]:
        return {"id": patient_id}

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("boom")

    return app
