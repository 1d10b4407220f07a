"""Nightscout sites to ingest, from a `sites.yaml` file (see `sites.example.yaml`).

A site names the *environment variable* holding its secret (`secret_env`), never the secret itself;
the secret is resolved with `workbench.settings.env_value` only when a client is built.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from workbench.ingest.errors import SitesConfigError
from workbench.settings import SECRET_ENV_PREFIXES, Settings, env_value, get_settings

_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
AuthKind = Literal["api_secret", "token"]


@dataclass(frozen=True)
class Site:
    """One Nightscout site (one patient). `secret` is resolved at run time and never printed."""

    site_id: str
    patient_id: str
    url: str
    time_zone: str = "UTC"
    secret_env: str | None = None
    auth: AuthKind = "api_secret"
    display_name: str | None = None
    overlap_minutes: float = 360.0
    devicestatus: bool = False
    # per-site audit thresholds over env.yaml's `audit:` (same keys, checked by workbench.config)
    audit: dict[str, Any] = field(default_factory=dict, compare=False)
    secret: str | None = field(default=None, repr=False, compare=False)

    def with_secret(self) -> Site:
        """A copy with the secret read from `secret_env` (one clear error when it is not set)."""
        if self.secret is not None or self.secret_env is None:
            return self
        value = env_value(self.secret_env)
        if not value:
            raise SitesConfigError(
                f"site {self.site_id}: environment variable {self.secret_env} (its API secret) is not set"
            )
        return Site(**{**self.__dict__, "secret": value})


def default_sites_path(settings: Settings | None = None) -> Path:
    """`./sites.yaml` when present, else `CASCADE_HOME/sites.yaml`."""
    local = Path.cwd() / "sites.yaml"
    if local.is_file():
        return local
    return (settings or get_settings()).home / "sites.yaml"


def _site(raw: Any, index: int) -> Site:
    if not isinstance(raw, dict):
        raise SitesConfigError(f"sites[{index}] must be a mapping")
    where = f"sites[{index}]"
    try:
        site_id = str(raw["id"])
        url = str(raw["url"]).rstrip("/")
    except KeyError as exc:
        raise SitesConfigError(f"{where}: missing key {exc.args[0]!r}") from None
    if not _ID.match(site_id):
        raise SitesConfigError(f"{where}: id {site_id!r} must be lowercase letters, digits, '-' or '_'")
    if not url.startswith(("http://", "https://")):
        raise SitesConfigError(f"site {site_id}: url must start with http:// or https://")
    if "secret" in raw or "api_secret" in raw or "token" in raw:
        raise SitesConfigError(f"site {site_id}: put the secret in an environment variable and name it with secret_env")
    tz = str(raw.get("time_zone", "UTC"))
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise SitesConfigError(f"site {site_id}: unknown time zone {tz!r} (use an IANA name)") from None
    secret_env = raw.get("secret_env")
    if secret_env is not None and (not isinstance(secret_env, str) or not secret_env.startswith(SECRET_ENV_PREFIXES)):
        raise SitesConfigError(
            f"site {site_id}: secret_env {secret_env!r} must name a variable starting with "
            f"{' or '.join(SECRET_ENV_PREFIXES)} (e.g. NIGHTSCOUT_{site_id.upper().replace('-', '_')}_SECRET)"
        )
    auth = str(raw.get("auth", "api_secret"))
    if auth not in ("api_secret", "token"):
        raise SitesConfigError(f"site {site_id}: auth must be api_secret or token")
    audit = raw.get("audit") or {}
    if not isinstance(audit, dict):
        raise SitesConfigError(f"site {site_id}: audit must be a mapping of thresholds, e.g. max_staleness_hours: 72")
    from workbench.quality.audit import Thresholds

    unknown = sorted(set(audit) - set(Thresholds.site_keys()))
    if unknown:
        raise SitesConfigError(
            f"site {site_id}: unknown audit threshold(s) {', '.join(unknown)}; use {', '.join(Thresholds.site_keys())}"
        )
    return Site(
        audit=dict(audit),
        site_id=site_id,
        patient_id=str(raw.get("patient_id", site_id)),
        url=url,
        time_zone=tz,
        secret_env=secret_env,
        auth=auth,  # type: ignore[arg-type]
        display_name=raw.get("display_name"),
        overlap_minutes=float(raw.get("overlap_minutes", 360)),
        devicestatus=bool(raw.get("devicestatus", False)),
    )


def load_sites(path: Path | str | None = None) -> list[Site]:
    """Sites from a YAML file (`sites: [...]`); an empty list when the default file does not exist."""
    explicit = path is not None
    file = Path(path) if path is not None else default_sites_path()
    if not file.is_file():
        if explicit:
            raise SitesConfigError(f"sites file {file} does not exist")
        return []
    from workbench.config import ConfigError, validate_sites

    try:
        doc = validate_sites(file)  # strict schema: unknown keys, wrong top level, empty file → one line
    except ConfigError as exc:
        raise SitesConfigError(str(exc)) from None
    raw_sites = doc.get("sites", []) if isinstance(doc, dict) else None
    if not isinstance(raw_sites, list):
        raise SitesConfigError(f"{file}: expected a top-level 'sites:' list")
    sites = [_site(raw, i) for i, raw in enumerate(raw_sites)]
    seen: set[str] = set()
    for site in sites:
        if site.site_id in seen:
            raise SitesConfigError(f"{file}: site id {site.site_id} appears twice")
        seen.add(site.site_id)
    return sites
