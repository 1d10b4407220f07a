"""Errors of the publishing area (PostgreSQL server and publisher)."""

from __future__ import annotations

from workbench.errors import CascadeError


class PostgresError(CascadeError):
    """The publishing database cannot be started, stopped or reached."""


class PublishConfigError(CascadeError):
    """`publish.yaml` is missing, unreadable or lists something invalid."""


class PublishError(CascadeError):
    """A publish that could not be completed; the previously published marts are left unchanged."""


class UnsupportedTypeError(PublishError):
    """An Arrow column type that has no PostgreSQL counterpart in the publisher."""
