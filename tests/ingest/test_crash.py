"""A load killed with SIGKILL leaves the raw tables as they were; the next run completes it.

The loading process is a fork of the test process (it inherits the imported modules, so no
interpreter start-up), patched to stop at the chosen point and then killed with SIGKILL.
"""

from __future__ import annotations

import gc
import os
import signal
import time
from pathlib import Path

import pytest
from ingest_helpers import FAST_RETRY, count, make_site

from workbench.demo.server import DemoServer
from workbench.ingest.sites import Site


def _child(mode: str, marker: Path, site: Site) -> None:
    """Runs in the forked child: ingest, hanging at the crash point (never returns)."""
    from pyiceberg.table import Transaction

    from workbench.ingest.run import ingest
    from workbench.ingest.stage import StageArea
    from workbench.lake import store

    store._lakes.clear()  # fresh SQLite connections in this process

    def hang(*_: object, **__: object) -> None:
        marker.write_text("ready")
        time.sleep(120)

    if mode == "commit":  # inside the Iceberg commit of raw.glucose_entries, data files written
        original = Transaction.commit_transaction

        def commit_transaction(self: Transaction):  # type: ignore[no-untyped-def]
            if self._table.name()[-1] == "glucose_entries":
                hang()
            return original(self)

        Transaction.commit_transaction = commit_transaction  # type: ignore[method-assign]
    elif mode == "stage":  # dlt extracted and normalized the package, killed while loading the stage
        import dlt

        dlt.Pipeline.load = hang  # type: ignore[method-assign,assignment]
    else:  # after every Iceberg commit, before the landed ledger is written
        StageArea.mark_landed = hang  # type: ignore[method-assign,assignment]
    ingest(branch="dev", sites=[site], retry=FAST_RETRY)


def _fork_and_kill(mode: str, site: Site, tmp_path: Path) -> None:
    marker = tmp_path / f"{mode}.ready"
    # objects inherited from this process (DuckDB/SQLite handles, native thread pools) must never be
    # finalized in the child: freeze them out of the garbage collector's reach across the fork
    gc.freeze()
    pid = os.fork()
    if pid != 0:
        gc.unfreeze()
    if pid == 0:  # pragma: no cover - the child never reports back except through the marker
        try:
            _child(mode, marker, site)
        finally:
            os._exit(3)
    deadline = time.monotonic() + 90
    while not marker.exists():
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            pytest.fail(f"the loading process exited before the crash point (status {status})")
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            pytest.fail("the loading process never reached the crash point")
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL


@pytest.mark.parametrize("mode", ["stage", "commit", "ledger"])
def test_killed_load_leaves_tables_as_before_and_next_run_completes(
    mode: str, demo: DemoServer, run_ingest, lake, tmp_path: Path
) -> None:
    site = make_site(demo)
    run_ingest([site])
    lh = lake()
    before_ids = set(lh.sql("select _id from raw.glucose_entries")["_id"])
    before_snapshot = lh.table("raw.glucose_entries").metadata.current_snapshot_id
    demo.control.advance(90)
    expected = demo.control.dataset.expected_valid_entries("p001")
    assert expected > len(before_ids)

    _fork_and_kill(mode, site, tmp_path)

    lh = lake()
    if mode in ("stage", "commit"):  # killed before/inside the Iceberg commit: the table is as before
        assert lh.table("raw.glucose_entries").metadata.current_snapshot_id == before_snapshot
        assert set(lh.sql("select _id from raw.glucose_entries")["_id"]) == before_ids
    else:  # killed after the commits, before the ledger: the rows are there, once
        assert count(lh, "raw.glucose_entries") == expected

    report = run_ingest([site]).sites[0]
    assert report.recovered_load_ids, "the package of the killed run was not finished and landed first"
    assert report.new == 0 and report.recovered_new == (0 if mode == "ledger" else expected - len(before_ids))
    lh = lake()
    assert count(lh, "raw.glucose_entries") == expected
    assert lh.sql("select count(distinct _id) as n from raw.glucose_entries")["n"].iloc[0] == expected
    assert count(lh, "raw.treatments") == demo.control.dataset.expected_treatments("p001")
    run_ingest([site])  # and a further run changes nothing
    assert count(lake(), "raw.glucose_entries") == expected
