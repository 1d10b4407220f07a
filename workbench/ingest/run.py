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

from workbench.errors import CascadeError
from workbench.ingest.client import NightscoutClient, RetryPolicy
from workbench.ingest.errors import SiteIngestError, SitesConfigError
from workbench.ingest.loader import ensure_source_tables, land_patient, land_pending
from workbench.ingest.sites import Site, load_sites
from workbench.ingest.source import ExtractCounts, nightscout
from workbench.ingest.stage import StageArea, finish_pending, stage
from workbench.ingest.validate import SiteContext
from workbench.settings import DEV_BRANCH, Settings, get_settings


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
    updated: int = 0  # corrections landed (entries)
    treatments_updated: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    latest_reading: datetime | None = None
    requests: int = 0
    retries: int = 0
    load_ids: list[str] = field(default_factory=list)
    recovered_load_ids: list[str] = field(default_factory=list)
    recovered_new: int = 0
    seconds: float = 0.0
    error: str | None = None  # why this site failed (the other sites still ran)
    quarantined: dict[str, str] = field(default_factory=dict)  # load id -> why it could not be landed
    notes: list[str] = field(default_factory=list)
    exception: BaseException | None = field(default=None, repr=False, compare=False)
    # the source's own clock when it was asked (Nightscout status.json serverTimeEpoch; the ingest
    # time when a site does not say): freshness is judged against what the source has, not our clock
    source_time: datetime | None = None
    audit: dict[str, Any] = field(default_factory=dict)
    patient_changed: bool = False  # the raw.patients row was new or changed (e.g. a corrected time zone)


@dataclass
class IngestReport:
    branch: str
    sites: list[SiteReport]
    demo: bool = False

    @property
    def failed(self) -> list[SiteReport]:
        return [s for s in self.sites if s.error is not None]

    def raise_for_failures(self) -> None:
        """`SiteIngestError` naming every failed site (after the others were landed)."""
        if len(self.sites) == 1 and self.failed:  # the site's own error, e.g. NightscoutAuthError
            cause = self.failed[0].exception
            if isinstance(cause, CascadeError):
                raise cause
            raise SiteIngestError(str(self.failed[0].error))
        if self.failed:
            ok = [s.site_id for s in self.sites if s.error is None]
            problems = "; ".join(f"site {s.site_id}: {s.error}" for s in self.failed)
            landed = f" (landed: {', '.join(ok)})" if ok else ""
            raise SiteIngestError(f"{len(self.failed)} of {len(self.sites)} sites failed{landed}: {problems}")

    @property
    def new_rows(self) -> int:
        """Rows this run added to the raw tables (entries, treatments, rejects, recovered packages)."""
        return sum(s.new + s.treatments_new + s.new_rejects + s.recovered_new for s in self.sites)

    @property
    def changed(self) -> bool:
        """The raw tables changed: new rows, corrected rows or a new/changed patient (time zone)."""
        return self.new_rows > 0 or any(s.updated or s.treatments_updated or s.patient_changed for s in self.sites)

    def to_json(self) -> dict[str, Any]:
        def stamp(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "branch": self.branch,
            "demo": self.demo,
            "new_rows": self.new_rows,
            "note": "no new data" if self.new_rows == 0 else f"{self.new_rows} new rows",
            "sites": [
                {
                    "site_id": s.site_id,
                    "patient_id": s.patient_id,
                    "fetched": s.fetched,
                    "new": s.new,
                    "treatments_new": s.treatments_new,
                    "rejected": s.rejected,
                    "new_rejects": s.new_rejects,
                    "recovered_new": s.recovered_new,
                    "latest_reading": stamp(s.latest_reading),
                    "source_time": stamp(s.source_time),
                    "audit": s.audit,
                }
                for s in self.sites
            ],
        }

    def save(self, path: str | Path) -> Path:
        """The report as JSON (the pipeline's ingest product: the audit and the skip logic read it)."""
        import json

        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(self.to_json(), indent=2))
        return target

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
            if s.error is not None:
                lines.append(f"  {s.site_id} ({s.patient_id}): FAILED: {s.error}")
                continue
            latest = f"{s.latest_reading:%Y-%m-%d %H:%M} UTC" if s.latest_reading else "none"
            corrected = (
                f"corrected {s.updated} entries, {s.treatments_updated} treatments; "
                if s.updated or s.treatments_updated
                else ""
            )
            reasons = ", ".join(f"{k} {v}" for k, v in sorted(s.reasons.items()))
            lines.append(
                f"  {s.site_id} ({s.patient_id}): fetched {s.fetched}, new {s.new}, duplicate {s.duplicate}, "
                f"rejected {s.rejected}{' (' + reasons + ')' if reasons else ''}; "
                f"treatments new {s.treatments_new}; {corrected}latest reading {latest}; {s.seconds:.1f}s"
            )
            for load_id, why in s.quarantined.items():
                lines.append(f"    package {load_id} quarantined ({why}); see cascade-home/stage/_quarantine")
            lines.extend(f"    note: {n}" for n in s.notes)
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
    report = SiteReport(site_id=site.site_id, patient_id=site.patient_id, audit=dict(site.audit))
    with area.lock():
        # first whatever an interrupted run left behind: dlt packages not yet in the stage, then
        # staged packages not yet in the lake; only then fetch anew
        finish_pending(area)
        recovered = land_pending(lakehouse, area)
        report.quarantined.update(recovered.quarantined)
        report.recovered_load_ids = recovered.load_ids
        if "raw.glucose_entries" in recovered.tables:
            report.recovered_new = recovered.tables["raw.glucose_entries"].new
        counts = ExtractCounts()
        now = datetime.now(UTC)
        ctx = SiteContext(site.site_id, site.patient_id, site.time_zone, ingested_at=now)
        client = NightscoutClient(
            site,
            page_size=page_size,
            retry=retry,
            deadline_s=settings.ingest_deadline_seconds,
            max_response_bytes=int(settings.ingest_max_response_mb * 1_000_000),
        )
        with client:
            source = nightscout(client, ctx, counts, devicestatus=site.devicestatus)
            report.load_ids = stage(area, source, full_resync=full_resync)
            report.source_time = _source_time(client) or now
            report.requests, report.retries = client.stats.requests, client.stats.retries
            report.notes = list(client.stats.notes or [])
        landed = land_pending(lakehouse, area)
        report.quarantined.update(landed.quarantined)
        report.patient_changed = land_patient(lakehouse, site, now)
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
    report.updated = entries.updated if entries else 0
    report.treatments_updated = treatments.updated if treatments else 0
    report.duplicate -= report.updated
    if "raw.glucose_entries" in lakehouse.tables():
        latest = lakehouse.sql("select max(date) as d from raw.glucose_entries where site_id = ?", [site.site_id])[
            "d"
        ].iloc[0]
        if pd.notna(latest):
            report.latest_reading = datetime.fromtimestamp(int(latest) / 1000, tz=UTC)
    report.seconds = time.monotonic() - started
    return report


def _source_time(client: NightscoutClient) -> datetime | None:
    """The site's clock (`serverTimeEpoch` of status.json), or None when it does not say."""
    from workbench.errors import CascadeError

    try:
        status = client.get_json("/api/v1/status.json")
        epoch = status.get("serverTimeEpoch") if isinstance(status, dict) else None
        return datetime.fromtimestamp(int(epoch) / 1000, tz=UTC) if epoch is not None else None
    except (CascadeError, ValueError, TypeError, OverflowError):
        return None


@contextmanager
def demo_sites(
    seed: int | None = None,
    patients: int | None = None,
    days: float | None = None,
    end: datetime | None = None,
) -> Iterator[list[Site]]:
    """Start the demo Nightscout server in-process; yield one site per simulated patient.

    Unset arguments come from settings (`CASCADE_DEMO_SEED`, `_PATIENTS`, `_DAYS`; `CASCADE_DEMO_END`
    pins the clock so repeated runs see the same data).
    """
    from workbench.demo.server import DemoServer
    from workbench.demo.simulate import DemoDataset

    settings = get_settings()
    dataset = DemoDataset(
        seed=settings.demo_seed if seed is None else seed,
        patients=settings.demo_patients if patients is None else patients,
        days=settings.demo_days if days is None else days,
        end=settings.demo_end if end is None else end,
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
    branch: str = DEV_BRANCH,
    site: str | list[str] | None = None,
    full_resync: bool = False,
    config: str | Path | None = None,
    *,
    sites: list[Site] | None = None,
    page_size: int = 10_000,
    retry: RetryPolicy | None = None,
    settings: Settings | None = None,
    raise_on_failure: bool = True,
    demo_end: datetime | str | None = None,
) -> IngestReport:
    """Ingest the configured Nightscout sites (or the demo server when none) into `raw` on `branch`.

    Every site is isolated: a site that fails is reported and the others are still landed; then
    (with `raise_on_failure`) one `SiteIngestError` names each failed site, so the run fails
    visibly. Documents that cannot be represented are quarantined, not failures (see validate).

    >>> report = ingest(branch="dev", site="alice")
    >>> report.to_frame()
    """
    from workbench.lakehouse import Lakehouse

    settings = settings or get_settings()
    settings.ensure_home()
    configured = sites if sites is not None else load_sites(config)
    lakehouse = Lakehouse(ref=branch, settings=settings)

    def run_all(candidates: list[Site]) -> list[SiteReport]:
        reports = []
        for s in _select(candidates, site):  # each site isolated: one failure never stops the others
            started = time.monotonic()
            try:
                reports.append(
                    ingest_site(
                        lakehouse,
                        s,
                        branch=branch,
                        full_resync=full_resync,
                        settings=settings,
                        page_size=page_size,
                        retry=retry,
                    )
                )
            except Exception as exc:  # reported per site, never a traceback; see raise_for_failures
                reports.append(
                    SiteReport(
                        s.site_id,
                        s.patient_id,
                        error=_one_line(exc),
                        seconds=time.monotonic() - started,
                        exception=exc,
                    )
                )
        ensure_source_tables(lakehouse)
        return reports

    if not configured:
        end = datetime.fromisoformat(demo_end) if isinstance(demo_end, str) else demo_end
        with demo_sites(end=end) as demo:
            report = IngestReport(branch=branch, sites=run_all(demo), demo=True)
    else:
        report = IngestReport(branch=branch, sites=run_all(configured))
    if raise_on_failure:
        report.raise_for_failures()
    return report


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, CascadeError):
        return text[:600]
    return f"{type(exc).__name__}: {text}"[:600]


def _select(sites: list[Site], wanted: str | list[str] | None) -> list[Site]:
    if wanted is None or wanted == []:
        return sites
    names = [wanted] if isinstance(wanted, str) else list(wanted)
    known = {s.site_id: s for s in sites}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SitesConfigError(f"unknown site {', '.join(unknown)}; configured: {', '.join(known) or '(none)'}")
    return [known[n] for n in names]
