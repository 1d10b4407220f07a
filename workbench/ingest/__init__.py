"""Nightscout ingestion: dlt source → Parquet stage → Iceberg `raw` tables, plus a demo server.

    from workbench.ingest import ingest
    report = ingest(branch="dev")          # every site in sites.yaml, or the demo server
    report.to_frame()

See `workbench/ingest/README.md` for the design (exactly-once landing, rejects, fallback keys).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workbench.ingest.run import IngestReport, SiteReport, ingest
    from workbench.ingest.sites import Site, load_sites

__all__ = ["IngestReport", "Site", "SiteReport", "ingest", "load_sites"]
_WHERE = {"IngestReport": "run", "SiteReport": "run", "ingest": "run", "Site": "sites", "load_sites": "sites"}


def __getattr__(name: str) -> Any:
    """Import lazily: `cascade` loads this package for its commands and must start fast (dlt is heavy)."""
    if name in _WHERE:
        return getattr(import_module(f"workbench.ingest.{_WHERE[name]}"), name)
    raise AttributeError(name)
