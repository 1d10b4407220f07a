"""Fixtures for ingestion tests: a demo Nightscout server over real HTTP and a fresh lake."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the tests import `ingest_helpers` from here

from ingest_helpers import END, FAST_RETRY, SECRET, SECRET_ENV  # noqa: E402

from workbench.demo.server import DemoServer  # noqa: E402
from workbench.demo.simulate import DemoDataset  # noqa: E402
from workbench.ingest.run import IngestReport, ingest  # noqa: E402
from workbench.ingest.sites import Site  # noqa: E402
from workbench.lake.api import DEV_BRANCH


@pytest.fixture
def demo() -> Iterator[DemoServer]:
    """A demo Nightscout server (2 patients, 3 days, fixed seed and end) on a free port."""
    with DemoServer(DemoDataset(seed=7, patients=2, days=3, end=END), secret=SECRET) as server:
        yield server


@pytest.fixture
def run_ingest(cascade_home: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., IngestReport]:
    """Ingest the given sites into a branch (default dev) of the temporary lake, with fast retries."""
    monkeypatch.setenv(SECRET_ENV, SECRET)

    def run(sites: list[Site], **kwargs: Any) -> IngestReport:
        kwargs.setdefault("retry", FAST_RETRY)
        return ingest(branch=kwargs.pop("branch", DEV_BRANCH), sites=sites, **kwargs)

    return run


@pytest.fixture
def lake(cascade_home: Path) -> Callable[[], Any]:
    """A fresh `Lakehouse` on dev on each call (sees the latest commits)."""
    from workbench.lakehouse import Lakehouse

    return lambda: Lakehouse(DEV_BRANCH)
