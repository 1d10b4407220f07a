"""A Nightscout site with no treatments (CGM-only users are common) on a fresh lake.

Regression: `raw.treatments` was never created (the loader skipped empty tables), so bronze's
source tests failed and the pipeline stopped.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ingest"))

from ingest_helpers import END, FAST_RETRY, SECRET, SECRET_ENV, make_site  # noqa: E402

from workbench.demo.server import DemoServer  # noqa: E402
from workbench.demo.simulate import DemoDataset  # noqa: E402


@pytest.fixture
def cgm_only() -> Iterator[DemoServer]:
    dataset = DemoDataset(seed=7, patients=1, days=2, end=END)
    dataset.members[0].treatments.clear()
    with DemoServer(dataset, secret=SECRET) as server:
        yield server


def test_a_cgm_only_site_gets_an_empty_treatments_table_and_bronze_builds(
    cascade_home: Path, cgm_only: DemoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workbench.ingest.run import ingest
    from workbench.lakehouse import Lakehouse
    from workbench.transform.runner import build

    monkeypatch.setenv(SECRET_ENV, SECRET)
    report = ingest(branch="dev", sites=[make_site(cgm_only)], retry=FAST_RETRY)
    assert report.sites[0].new > 0 and report.sites[0].treatments_new == 0
    lh = Lakehouse("dev")
    assert "raw.treatments" in lh.tables()
    assert int(lh.sql("select count(*) as n from raw.treatments")["n"][0]) == 0
    assert {"_id", "patient_id", "event_type", "created_at", "entered_by"} <= set(
        lh.table("raw.treatments").schema().column_names
    )

    result = build(select="bronze", branch="dev")
    assert result.success, result.failures()
    assert int(Lakehouse("dev").sql("select count(*) as n from bronze.stg_treatments")["n"][0]) == 0
    # a second run adds no commit for the (still empty) table
    head = Lakehouse("dev").log(limit=1)[0].id
    ingest(branch="dev", sites=[make_site(cgm_only)], retry=FAST_RETRY)
    assert Lakehouse("dev").log(limit=1)[0].id == head
