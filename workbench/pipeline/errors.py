"""Errors of the pipeline area (run lock errors are `workbench.errors.LockedError`)."""

from __future__ import annotations

from workbench.errors import CascadeError


class ScheduleError(CascadeError):
    """An interval that cannot be scheduled as asked, or a scheduler that is not available."""


class PipelineError(CascadeError):
    """`pipeline.yaml` is missing or invalid, or a run could not be set up."""


class RunHistoryError(CascadeError):
    """A run-history record that is invalid or cannot be stored."""
