"""Issue 9's "done when", end to end: scheduled `ploomber build`s on one lake while the demo clock
moves (10 min, 2 h, 1 day), each promoting or recording "no new data"; then a CGM-only site; then a
backfill of data a year old — each without hand-edited thresholds.

Real components: `ploomber build` / `cascade run` in subprocesses, papermill kernels, dbt, Iceberg,
the embedded PostgreSQL, demo Nightscout servers over HTTP. Clocks are pinned (no wall clock).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.homes import e2e_home

ROOT = Path(__file__).resolve().parents[2]
T0 = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)
SECRET_ENV = "CASCADE_TEST_DONE_WHEN_SECRET"
SECRET = "done-when-secret-never-printed"

# five pipeline builds and two `cascade run`s: ~8 min on an idle 2-core machine, far longer under load
pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]


@pytest.fixture(scope="module")
def home() -> Iterator[Path]:
    with e2e_home(CASCADE_DEMO_DAYS="3", **{SECRET_ENV: SECRET}) as home:
        yield home


def _env(home: Path, clock: dt.datetime) -> dict[str, str]:
    return {
        **os.environ,
        "PLOOMBER_STATS_ENABLED": "false",
        "CASCADE_HOME": str(home),
        "CASCADE_DEMO_END": clock.isoformat(),
    }


def _build(home: Path, clock: dt.datetime) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("ploomber")
    return subprocess.run(
        [str(exe), "build", "--env--products", str(home / "pipeline")],
        cwd=ROOT,
        env=_env(home, clock),
        capture_output=True,
        text=True,
        timeout=1800,
    )


def _cascade(home: Path, clock: dt.datetime, *args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("cascade")
    return subprocess.run(
        [str(exe), *args], cwd=ROOT, env=_env(home, clock), capture_output=True, text=True, timeout=1800
    )


def _main_head() -> str:
    from workbench.lakehouse import Lakehouse

    return Lakehouse("main").log(limit=1)[0].id


def _readings(site_id: str) -> int:
    from workbench.lakehouse import Lakehouse

    frame = Lakehouse("main").sql("select count(*) as n from raw.glucose_entries where site_id = ?", [site_id])
    return int(frame["n"][0])


def _promoted_or_no_new_data(proc: subprocess.CompletedProcess[str], head_before: str | None) -> str:
    """'promoted' (main moved, the promote task ran) or 'no new data' (no task ran, main unchanged)."""
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    print(proc.stdout[-1500:])  # Ploomber's table: each task's Ran? and seconds (shown with -s)
    ran = {
        words[0]: words[1] == "True"
        for words in (line.split() for line in proc.stdout.splitlines())
        if len(words) >= 2 and words[1] in ("True", "False")
    }
    assert "ingest" in ran, proc.stdout[-2000:]  # Ploomber's build table
    if _main_head() != head_before:
        assert ran["promote"], proc.stdout[-2000:]
        return "promoted"
    assert not any(ran.values()), proc.stdout[-2000:]
    return "no new data"


def test_scheduled_builds_with_the_clock_moving_then_cgm_only_then_a_backfill(home: Path) -> None:
    from workbench.demo.server import DemoServer
    from workbench.demo.simulate import DemoDataset

    outcomes = []
    head = None
    for step in (dt.timedelta(0), dt.timedelta(minutes=10), dt.timedelta(hours=2), dt.timedelta(days=1)):
        proc = _build(home, T0 + step)
        outcomes.append(_promoted_or_no_new_data(proc, head))
        head = _main_head()
    assert outcomes == ["promoted"] * 4, outcomes
    before_p1 = _readings("demo-p001")
    assert before_p1 > 3 * 250

    # the same clock again: nothing new -> nothing done, recorded as such
    proc = _cascade(home, T0 + dt.timedelta(days=1), "run")
    assert proc.returncode == 0 and "no new data" in proc.stdout.splitlines()[0], proc.stdout[-2000:]
    assert _main_head() == head

    # a CGM-only site (no treatments at all) joins, configured in sites.yaml
    cgm = DemoDataset(seed=11, patients=1, days=2, end=T0 + dt.timedelta(days=1))
    cgm.members[0].treatments.clear()
    # and a site whose data is a year old (an import of history)
    old = DemoDataset(seed=12, patients=1, days=2, end=T0 - dt.timedelta(days=365))
    with DemoServer(cgm, secret=SECRET) as cgm_server, DemoServer(old, secret=SECRET) as old_server:
        (home / "sites.yaml").write_text(
            "sites:\n"
            f"  - id: cgm-only\n    patient_id: c001\n    url: {cgm_server.site_url('p001')}\n"
            f"    time_zone: {cgm.members[0].time_zone}\n    secret_env: {SECRET_ENV}\n"
        )
        proc = _build(home, T0 + dt.timedelta(days=1))
        assert _promoted_or_no_new_data(proc, head) == "promoted"
        head = _main_head()
        assert _readings("cgm-only") > 2 * 250
        from workbench.lakehouse import Lakehouse

        assert (
            int(Lakehouse("main").sql("select count(*) as n from raw.treatments where site_id = 'cgm-only'")["n"][0])
            == 0
        )

        (home / "sites.yaml").write_text(
            (home / "sites.yaml").read_text()
            + f"  - id: history\n    patient_id: h001\n    url: {old_server.site_url('p001')}\n"
            f"    time_zone: {old.members[0].time_zone}\n    secret_env: {SECRET_ENV}\n"
        )
        proc = _cascade(home, T0 + dt.timedelta(days=1), "run", "--backfill")
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert _main_head() != head  # promoted, though the data is a year old
        assert _readings("history") > 2 * 250
        audit = json.loads((home / "pipeline" / "audit.json").read_text())
        fresh = {c["name"]: c for c in audit["checks"] if c["name"].startswith("freshness ")}
        assert fresh["freshness history"]["status"] == "pass" and fresh["freshness history"]["detail"].startswith(
            "backfill"
        )
    # PostgreSQL has what main has
    from workbench.publish.postgres import connect

    with connect() as con:
        row = con.execute("select count(distinct patient_id) from marts.mrt_glucose_daily_metrics").fetchone()
    assert row is not None and row[0] == 4  # p001, p002, c001, h001
