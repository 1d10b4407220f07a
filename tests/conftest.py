"""Shared fixtures: every test gets its own CASCADE_HOME (a fresh embedded lake)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The clock of the shared demo lake: pinned, so no result depends on the hour the suite runs at.
# tests/e2e/test_clocks.py reruns the fixture's tests with other pinned clocks through this variable.
DEMO_END_VARIABLE = "CASCADE_TEST_DEMO_END"
DEFAULT_DEMO_END = "2026-01-14T09:42:00+00:00"


def demo_end() -> datetime:
    """The pinned demo clock of the shared demo lake (UTC)."""
    value = os.environ.get(DEMO_END_VARIABLE) or DEFAULT_DEMO_END
    return datetime.fromisoformat(value).astimezone(UTC)


@pytest.fixture
def cascade_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A temporary CASCADE_HOME, with cached settings cleared before and after."""
    from workbench.settings import get_settings

    home = tmp_path / "home"
    home.mkdir()  # an existing (empty) home, as `cascade init` leaves it: the CLI refuses a missing one
    monkeypatch.setenv("CASCADE_HOME", str(home))
    monkeypatch.setenv("CASCADE_PROFILE", "embedded")
    monkeypatch.delenv("CASCADE_WAREHOUSE", raising=False)
    get_settings.cache_clear()
    yield home
    get_settings.cache_clear()


@pytest.fixture
def lh(cascade_home: Path):  # type: ignore[no-untyped-def]
    """A Lakehouse on `dev` in a fresh lake."""
    from workbench.lake.api import DEV_BRANCH
    from workbench.lakehouse import Lakehouse

    return Lakehouse(DEV_BRANCH)


def run_cli(*args: str, home: Path, check: bool = False, timeout: int = 120) -> subprocess.CompletedProcess[str]:
    """Run the real `cascade` console script with CASCADE_HOME=home (created, as `cascade init` would)."""
    with contextlib.suppress(OSError):  # an impossible home stays missing: the CLI reports it
        home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "CASCADE_HOME": str(home)}
    exe = Path(sys.executable).with_name("cascade")
    proc = subprocess.run([str(exe), *args], capture_output=True, text=True, env=env, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"cascade {' '.join(args)} failed: {proc.stderr}")
    return proc


# ---- the shared demo lake (tests/viz, tests/dashboards, tests/notebooks) -----------------------------
@pytest.fixture(scope="session")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """CASCADE_HOME of the demo lake (2 patients × 14 days ending at the pinned `demo_end()`: ingest →
    dbt build on dev → merge into main), built once per test session."""
    from workbench.demo.lake import demo_lake

    return demo_lake(tmp_path_factory.getbasetemp() / "cascade-viz-demo", end=demo_end())


@pytest.fixture
def demo_settings(demo_home: Path):  # type: ignore[no-untyped-def]
    """Settings for the demo lake (embedded profile, no PostgreSQL URL, the pinned demo clock)."""
    from workbench.settings import load_settings

    return load_settings(home=demo_home, profile="embedded", warehouse=None, postgres_url=None, demo_end=demo_end())


@pytest.fixture(scope="session")
def demo_env(demo_home: Path) -> dict[str, str]:
    """Environment for subprocesses (CLI, kernels, Voila) on the demo lake."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASCADE_")}
    return {
        **env,
        "CASCADE_HOME": str(demo_home),
        "CASCADE_PROFILE": "embedded",
        "CASCADE_DEMO_END": demo_end().isoformat(),
    }


# ---- the native stack (tests/contract, tests/stack) --------------------------------------------------
@pytest.fixture(scope="session")
def stack_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """CASCADE_HOME of a running native stack of the tests' own (never the user's lake: tests wipe it).

    CASCADE_TEST_STACK_HOME reuses one across sessions (started if needed, left running); otherwise a
    fresh one is started under the session's temp folder and stopped at the end."""
    from workbench.stack import launcher

    reuse = os.environ.get("CASCADE_TEST_STACK_HOME")
    home = Path(reuse) if reuse else tmp_path_factory.mktemp("stack-home")
    started = launcher.ensure_up(home)
    try:
        yield home
    finally:
        if started and not reuse:
            launcher.down(home)


@pytest.fixture(scope="session")
def stack_env(stack_home: Path) -> dict[str, str]:
    """The CASCADE_* client settings of the test stack."""
    from workbench.stack import launcher

    return launcher.client_env(stack_home)


@pytest.fixture
def stack_settings(stack_home: Path, stack_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Settings of the test stack's lake (also in the environment, as `CASCADE_PROFILE=stack` sees it)."""
    from workbench import profiles
    from workbench.settings import get_settings, load_settings

    for key, value in stack_env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("CASCADE_PROFILE", "stack")
    monkeypatch.setenv("CASCADE_HOME", str(stack_home))
    get_settings.cache_clear()
    profiles.forget_lakes()
    yield load_settings()
    get_settings.cache_clear()
    profiles.forget_lakes()
