"""The demo lake (2 patients × 14 days, built once per test session and shared by tests/viz,
tests/dashboards and tests/notebooks), and settings pointing at it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from workbench.settings import Settings, load_settings
from workbench.viz.demo import demo_lake


@pytest.fixture(scope="session")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """CASCADE_HOME of the shared demo lake (ingest → dbt build on dev → merge into main)."""
    return demo_lake(tmp_path_factory.getbasetemp() / "cascade-viz-demo")


@pytest.fixture
def demo_settings(demo_home: Path) -> Settings:
    """Settings for the demo lake (embedded profile, no PostgreSQL URL)."""
    return load_settings(home=demo_home, profile="embedded", warehouse=None, postgres_url=None)


@pytest.fixture(scope="session")
def demo_env(demo_home: Path) -> dict[str, str]:
    """Environment for subprocesses (CLI, kernels, Voila) on the demo lake."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASCADE_")}
    return {**env, "CASCADE_HOME": str(demo_home), "CASCADE_PROFILE": "embedded"}
