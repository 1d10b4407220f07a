"""Ingestion errors: each is one line a user can act on, never carrying a secret."""

from __future__ import annotations

from workbench.errors import CascadeError, SettingsError


class SitesConfigError(SettingsError):
    """The sites file is missing, unreadable or invalid."""


class NightscoutAuthError(CascadeError):
    """The site rejected the credentials (HTTP 401/403)."""


class NightscoutUnavailableError(CascadeError):
    """The site kept failing (5xx, 429, timeouts, connection errors) after all retries."""


class NightscoutResponseError(CascadeError):
    """The site answered something that is not a Nightscout API response."""


class LoadError(CascadeError):
    """Staged data could not be landed in the lake."""


class FetchLimitError(NightscoutResponseError):
    """A site exceeded a fetch bound: the per-site deadline or the maximum response size."""


class SiteIngestError(CascadeError):
    """One or more sites failed in a run; the other sites were landed."""
