"""`ingest()`: fetch every configured Nightscout site into the stage, then land it on a branch.

Per site: (1) land packages a previous run left pending, (2) run the dlt source into the stage,
(3) land the new packages, (4) upsert the site's `raw.patients` row. Without any configured site
the built-in demo Nightscout server is started in-process and its patients are ingested.
"""

from __future__ import annotations

import secrets as _secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from workbench.ingest.client import NightscoutClient, RetryPolicy
from workbench.ingest.errors import SitesConfigError
from workbench.ingest.loader import land_patient, land_pending
from workbench.ingest.sites import Site, load_sites
from workbench.ingest.source import ExtractCounts, nightscout
from workbench.ingest.stage import StageArea, finish_pending, stage
from workbench.ingest.validate import SiteContext
from workbench.settings import Settings, get_settings


@dataclass
class SiteReport:
    """What one run did for one site."""

    site_id: str
    patient_id: str
    fetched: int = 0
    new: int = 0
    duplicate: int = 0
    rejected: int = 0
    new_rejects: int = 0
    treatments_new: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    latest_reading: datetime | None = None
    requests: int = 0
    retries: int = 0
    load_ids: list[str] = field(default_factory=list)
    recovered_load_ids: list[str] = field(default_factory=list)
    recovered_new: int = 0
    seconds: float = 0.0


@dataclass
class IngestReport:
    branch: str
    sites: list[SiteReport]
    demo: bool = False

    def to_frame(self) -> pd.DataFrame:
        """One row per site: fetched / new / duplicate / rejected and the latest reading."""
        columns = [
            "site_id",
            "patient_id",
            "fetched",
            "new",
            "duplicate",
            "rejected",
            "treatments_new",
            "latest_reading",
            "requests",
            "retries",
            "seconds",
        ]
        return pd.DataFrame([{c: getattr(s, c) for c in columns} for s in self.sites], columns=columns)

    def reasons_frame(self) -> pd.DataFrame:
        """Rejected documents per site and reason."""
        rows = [
            {"site_id": s.site_id, "reason": reason, "count": n}
            for s in self.sites
            for reason, n in sorted(s.reasons.items())
        ]
        return pd.DataFrame(rows, columns=["site_id", "reason", "count"])

    def summary(self) -> str:
        lines = [
            f"DEMO DATA: no sites file (./sites.yaml or CASCADE_HOME/sites.yaml), so the built-in demo Nightscout "
            f"server was ingested into branch {self.branch}"
            if self.demo
            else f"ingested into branch {self.branch}"
        ]
        for s in self.sites:
            latest = f"{s.latest_reading:%Y-%m-%d %H:%M} UTC" if s.latest_reading else "none"
            reasons = ", ".join(f"{k} {v}" for k, v in sorted(s.reasons.items()))
            lines.append(
                f"  {s.site_id} ({s.patient_id}): fetched {s.fetched}, new {s.new}, duplicate {s.duplicate}, "
                f"rejected {s.rejected}{' (' + reasons + ')' if reasons else ''}; "
                f"treatments new {s.treatments_new}; latest reading {latest}; {s.seconds:.1f}s"
            )
        return "\n".join(lines)


def ingest_site(
    lakehouse: Any,
    site: Site,
    *,
    branch: str,
    full_resync: bool = False,
    settings: Settings | None = None,
    page_size: int = 10_000,
    retry: RetryPolicy | None = None,
) -> SiteReport:
    """Fetch one site into the stage and land it on `branch` (see the module docstring)."""
    settings = settings or get_settings()
    started = time.monotonic()
    area = StageArea(settings, site.site_id, branch)
    report = SiteReport(site_id=site.site_id, patient_id=site.patient_id)
    with area.lock():
        # first whatever an interrupted run left behind: dlt packages not yet in the stage, then
        # staged packages not yet in the lake; only then fetch anew
        finish_pending(area)
        recovered = land_pending(lakehouse, area)
        report.recovered_load_ids = recovered.load_ids
        if "raw.glucose_entries" in recovered.tables:
            report.recovered_new = recovered.tables["raw.glucose_entries"].new
        counts = ExtractCounts()
        now = datetime.now(UTC)
        ctx = SiteContext(site.site_id, site.patient_id, site.time_zone, ingested_at=now)
        with NightscoutClient(site, page_size=page_size, retry=retry) as client:
            source = nightscout(client, ctx, counts, devicestatus=site.devicestatus)
            report.load_ids = stage(area, source, full_resync=full_resync)
            report.requests, report.retries = client.stats.requests, client.stats.retries
        landed = land_pending(lakehouse, area)
        land_patient(lakehouse, site)
    entries = landed.tables.get("raw.glucose_entries")
    treatments = landed.tables.get("raw.treatments")
    rejects = landed.tables.get("raw.glucose_entries_rejects")
    report.fetched = counts.fetched["glucose_entries"]
    report.rejected = counts.rejected["glucose_entries"]
    report.reasons = dict(counts.reasons)
    report.new = entries.new if entries else 0
    report.duplicate = report.fetched - report.rejected - report.new
    report.new_rejects = rejects.new if rejects else 0
    report.treatments_new = treatments.new if treatments else 0
    if "raw.glucose_entries" in lakehouse.tables():
        latest = lakehouse.sql("select max(date) as d from raw.glucose_entries where site_id = ?", [site.site_id])[
            "d"
        ].iloc[0]
        if pd.notna(latest):
            report.latest_reading = datetime.fromtimestamp(int(latest) / 1000, tz=UTC)
    report.seconds = time.monotonic() - started
    return report


@contextmanager
def demo_sites(seed: int | None = None, patients: int | None = None, days: float | None = None) -> Iterator[list[Site]]:
    """Start the demo Nightscout server in-process; yield one site per simulated patient.

    Unset arguments come from settings (`CASCADE_DEMO_SEED`, `_PATIENTS`, `_DAYS`; `CASCADE_DEMO_END`
    pins the clock so repeated runs see the same data).
    """
    from workbench.ingest.demo_server import DemoServer
    from workbench.ingest.simulate import DemoDataset

    settings = get_settings()
    dataset = DemoDataset(
        seed=settings.demo_seed if seed is None else seed,
        patients=settings.demo_patients if patients is None else patients,
        days=settings.demo_days if days is None else days,
        end=settings.demo_end,
    )
    secret = _secrets.token_hex(16)  # lives only in this process
    with DemoServer(dataset, secret=secret) as server:
        yield [
            Site(
                site_id=f"demo-{p.patient_id}",
                patient_id=p.patient_id,
                url=server.site_url(p.patient_id),
                time_zone=p.time_zone,
                display_name=p.display_name,
                secret=secret,
            )
            for p in server.control.dataset.members
        ]


def ingest(
    branch: str = "dev",
    site: str | list[str] | None = None,
    full_resync: bool = False,
    config: str | Path | None = None,
    *,
    sites: list[Site] | None = None,
    page_size: int = 10_000,
    retry: RetryPolicy | None = None,
    settings: Settings | None = None,
) -> IngestReport:
    """Ingest the configured Nightscout sites (or the demo server when none) into `raw` on `branch`.

    >>> report = ingest(branch="dev", site="alice")
    >>> report.to_frame()
    """
    from workbench.lakehouse import Lakehouse

    settings = settings or get_settings()
    settings.ensure_home()
    configured = sites if sites is not None else load_sites(config)
    lakehouse = Lakehouse(ref=branch, settings=settings)

    def run_all(candidates: list[Site]) -> list[SiteReport]:
        return [
            ingest_site(
                lakehouse,
                s,
                branch=branch,
                full_resync=full_resync,
                settings=settings,
                page_size=page_size,
                retry=retry,
            )
            for s in _select(candidates, site)
        ]

    if not configured:
        with demo_sites() as demo:
            return IngestReport(branch=branch, sites=run_all(demo), demo=True)
    return IngestReport(branch=branch, sites=run_all(configured))


def _select(sites: list[Site], wanted: str | list[str] | None) -> list[Site]:
    if wanted is None or wanted == []:
        return sites
    names = [wanted] if isinstance(wanted, str) else list(wanted)
    known = {s.site_id: s for s in sites}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SitesConfigError(f"unknown site {', '.join(unknown)}; configured: {', '.join(known) or '(none)'}")
    return [known[n] for n in names]
