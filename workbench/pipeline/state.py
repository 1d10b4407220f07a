"""What the pipeline's up-to-date check compares: the sources' state and the transforms' code.

Ploomber re-runs a task when its code or parameters changed or an upstream product is newer. The
ingest task therefore gets the *state of the sources* as a parameter (computed when the DAG is
loaded, through a Ploomber dotted-path parameter): for every site, a digest of the newest entries
and treatments it serves (the window an incremental fetch re-reads). When no site has anything
new, ingest's parameters equal the stored ones, ingest is up to date, and so is everything after
it — a scheduled `ploomber build` with nothing new runs no notebook at all, and `ploomber task
audit` right after a build works. The layer tasks get a digest of the dbt project, so changing a
model re-runs them.

```yaml
params:
  source_state: {dotted_path: "workbench.pipeline.state::source_state", sites: "{{sites}}"}
```
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from workbench.settings import Settings, get_settings

PROBE_ENTRIES = 200  # newest entries asked of each site: more than the default 6-hour overlap window
PROBE_TREATMENTS = 50
PROJECT_DIR = Path(__file__).resolve().parents[2] / "transforms"


def _digest(docs: Any) -> str:
    if not isinstance(docs, list):
        return "not-a-list"
    keys = sorted(f"{d.get('_id')}:{d.get('date', d.get('created_at'))}" for d in docs if isinstance(d, dict))
    return hashlib.sha256("\n".join(keys).encode()).hexdigest()[:16]


def probe_site(site: Any) -> dict[str, Any]:
    """The digest of one site's newest entries and treatments; `unreachable: reason` when it fails
    (a failing site's state never equals a stored one, so ingest runs and reports it)."""
    from workbench.errors import CascadeError
    from workbench.ingest.client import NightscoutClient, RetryPolicy

    try:
        with NightscoutClient(site, retry=RetryPolicy(attempts=2, base_seconds=0.2, max_seconds=0.5)) as client:
            entries = client.get_json("/api/v1/entries.json", {"count": PROBE_ENTRIES})
            treatments = client.get_json("/api/v1/treatments.json", {"count": PROBE_TREATMENTS})
    except CascadeError as exc:
        return {"unreachable": str(exc)}
    return {"entries": _digest(entries), "treatments": _digest(treatments)}


def demo_state(settings: Settings) -> dict[str, Any]:
    """The demo server's state: its clock (pinned by CASCADE_DEMO_END, else now on the 5-minute
    grid). The ingest task serves the demo at exactly this clock, so what it lands is what was probed."""
    from datetime import UTC, datetime

    from workbench.demo.simulate import STEP_MS

    end = settings.demo_end or datetime.now(UTC)
    end_ms = int(end.timestamp() * 1000) // STEP_MS * STEP_MS
    return {
        "demo_end": datetime.fromtimestamp(end_ms / 1000, tz=UTC).isoformat(),
        "demo": [settings.demo_seed, settings.demo_patients, settings.demo_days],
    }


def source_state(sites: str | list[str] | None = None, config: str | None = None) -> str:
    """The sources' state as a JSON string (a Ploomber parameter: equal strings = nothing new)."""
    from workbench.ingest.run import _select
    from workbench.ingest.sites import load_sites

    settings = get_settings()
    configured = load_sites(config)
    if not configured:
        return json.dumps(demo_state(settings), sort_keys=True)
    state = {}
    for site in _select(configured, sites):
        state[site.site_id] = {"config": _site_config(site), **probe_site(site.with_secret())}
    return json.dumps(state, sort_keys=True)


def _site_config(site: Any) -> str:
    """A site's settings that change what lands (a corrected time zone re-runs ingest)."""
    fields = (site.patient_id, site.url, site.time_zone, site.display_name, site.overlap_minutes, site.devicestatus)
    return hashlib.sha256(repr(fields).encode()).hexdigest()[:16]


def demo_end_of(state: str | None) -> str | None:
    """The demo clock a `source_state` was taken at (None for configured sites)."""
    if not state:
        return None
    try:
        data = json.loads(state)
    except ValueError:
        return None
    return data.get("demo_end") if isinstance(data, dict) else None


def models_state(project: str | None = None) -> str:
    """A digest of the dbt project (models, macros, tests, seeds, project file): changing any of
    them re-runs the layer tasks."""
    root = Path(project) if project else PROJECT_DIR
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if not path.is_file() or any(part in ("target", "logs", "dbt_packages") for part in path.parts):
            continue
        if path.suffix not in (".sql", ".yml", ".yaml", ".csv", ".md", ".py"):
            continue
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
