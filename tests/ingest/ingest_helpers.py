"""Helpers shared by the ingestion tests (importable as `ingest_helpers`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from workbench.demo.server import DemoServer
from workbench.ingest.client import RetryPolicy
from workbench.ingest.sites import Site

SECRET = "s3cr3t-value-never-printed"
SECRET_ENV = "CASCADE_TEST_NS_SECRET"
END = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
FAST_RETRY = RetryPolicy(attempts=4, base_seconds=0.01, max_seconds=0.05)


def make_site(server: DemoServer, patient_id: str = "p001", **overrides: Any) -> Site:
    """A site for one demo patient whose secret is read from SECRET_ENV."""
    member = server.control.dataset.patient(patient_id)
    assert member is not None
    fields: dict[str, Any] = {
        "site_id": f"site-{patient_id}",
        "patient_id": patient_id,
        "url": server.site_url(patient_id),
        "time_zone": member.time_zone,
        "secret_env": SECRET_ENV,
        "overlap_minutes": 120.0,
    }
    fields.update(overrides)
    return Site(**fields)


def count(lh: Any, table: str, where: str = "true") -> int:
    """Rows of a table on the Lakehouse's ref."""
    return int(lh.sql(f"select count(*) as n from {table} where {where}")["n"].iloc[0])
