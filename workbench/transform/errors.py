"""Errors of the transform area (dbt runs)."""

from __future__ import annotations

from workbench.errors import CascadeError


class TransformError(CascadeError):
    """A dbt invocation that could not run (bad selection, project error, missing raw tables)."""


class ModelWriteError(TransformError):
    """A model whose result could not be written to its Iceberg table."""
