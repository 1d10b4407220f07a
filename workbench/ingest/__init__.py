"""Nightscout ingestion: dlt source → Parquet stage → Iceberg `raw` tables, plus a demo server.

    from workbench.ingest import ingest
    report = ingest(branch="dev")          # every site in sites.yaml, or the demo server
    report.to_frame()

See `workbench/ingest/README.md` for the design (exactly-once landing, rejects, fallback keys).
"""

from __future__ import annotations

from workbench.ingest.run import IngestReport, SiteReport, ingest
from workbench.ingest.sites import Site, load_sites

__all__ = ["IngestReport", "Site", "SiteReport", "ingest", "load_sites"]
