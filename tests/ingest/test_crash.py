"""A load killed with SIGKILL leaves the raw tables as they were; the next run completes it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ingest_helpers import SECRET, SECRET_ENV, count, make_site

from workbench.ingest.demo_server import DemoServer

CHILD = Path(__file__).with_name("crash_child.py")


def _run_and_kill(mode: str, site_url: str, home: Path, tmp_path: Path) -> None:
    marker = tmp_path / f"{mode}.ready"
    env = {**os.environ, "CASCADE_HOME": str(home), SECRET_ENV: SECRET}
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), mode, str(marker), site_url, "site-p001", "p001"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 90
    while not marker.exists():
        if proc.poll() is not None:
            pytest.fail(f"child exited early ({proc.returncode}): {proc.stdout.read() if proc.stdout else ''}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("child never reached the crash point")
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.parametrize("mode", ["commit", "ledger"])
def test_killed_load_leaves_tables_as_before_and_next_run_completes(
    mode: str, demo: DemoServer, run_ingest, lake, cascade_home: Path, tmp_path: Path
) -> None:
    site = make_site(demo)
    run_ingest([site])
    lh = lake()
    before_ids = set(lh.sql("select _id from raw.glucose_entries")["_id"])
    before_snapshot = lh.table("raw.glucose_entries").metadata.current_snapshot_id
    demo.control.advance(90)
    expected = demo.control.dataset.expected_valid_entries("p001")
    assert expected > len(before_ids)

    _run_and_kill(mode, site.url, cascade_home, tmp_path)

    lh = lake()
    if mode == "commit":  # killed inside the Iceberg commit: the table is exactly as before
        assert lh.table("raw.glucose_entries").metadata.current_snapshot_id == before_snapshot
        assert set(lh.sql("select _id from raw.glucose_entries")["_id"]) == before_ids
    else:  # killed after the commits, before the ledger: the rows are there once
        assert count(lh, "raw.glucose_entries") == expected

    report = run_ingest([site]).sites[0]
    assert report.recovered_load_ids, "the staged package of the killed run was not landed"
    lh = lake()
    assert count(lh, "raw.glucose_entries") == expected
    assert lh.sql("select count(distinct _id) as n from raw.glucose_entries")["n"].iloc[0] == expected
    assert count(lh, "raw.treatments") == demo.control.dataset.expected_treatments("p001")
    # and a further run changes nothing
    run_ingest([site])
    assert count(lake(), "raw.glucose_entries") == expected
