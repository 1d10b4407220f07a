"""The shared demo-lake fixture at several pinned clocks: `make test` must pass at any hour.

The shared demo lake (tests/conftest.py `demo_home`) is pinned to one clock; this check reruns the
tests built on it with the clock at midnight in each demo patient's time zone and across a DST
change, in a separate pytest process per clock (the fixture is session-scoped).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DEMO_END_VARIABLE

ROOT = Path(__file__).resolve().parents[2]
CLOCKS = {
    # the demo lake's two patients live in Europe/Berlin and America/New_York (seed 42)
    "midnight-berlin": "2026-01-14T23:00:00+00:00",
    "midnight-new-york": "2026-01-15T05:00:00+00:00",
    # Europe's spring-forward instant; America's (2026-03-08) lies inside the 14 days before it
    "dst-change": "2026-03-29T01:00:00+00:00",
}
FIXTURE_TESTS = ("tests/viz/test_data.py", "tests/viz/test_today.py")

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("clock", sorted(CLOCKS))
def test_shared_fixture_tests_pass_at_a_pinned_clock(clock: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASCADE_")}
    env[DEMO_END_VARIABLE] = CLOCKS[clock]
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-x",
            "-p",
            "no:cacheprovider",
            "--basetemp",
            str(tmp_path / "t"),
            *FIXTURE_TESTS,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, f"at {CLOCKS[clock]}:\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}"


def test_the_demo_patients_live_where_the_clocks_say() -> None:
    from workbench.demo.simulate import DemoDataset

    zones = [p.time_zone for p in DemoDataset(seed=42, patients=2, days=1, end=None).members]
    assert zones == ["Europe/Berlin", "America/New_York"]
