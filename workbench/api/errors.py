"""Errors of the API area (all `CascadeError`s: the CLI prints them as one line)."""

from __future__ import annotations

from workbench.errors import CascadeError


class ApiError(CascadeError):
    """The API cannot start or serve as asked (bad settings, no published data)."""


class TokenError(CascadeError):
    """A token that cannot be made or used: bad arguments, or missing/expired/forged/wrong audience."""
