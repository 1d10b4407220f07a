"""Errors of the dashboards and reports (each message says what to do)."""

from __future__ import annotations

from workbench.errors import CascadeError


class VizError(CascadeError):
    """A dashboard, figure or report that cannot be produced as asked."""


class NoGlucoseDataError(VizError):
    """The marts hold no data for the chosen patient, period or ref."""


class UnknownPatientError(VizError):
    """A patient id that is not in the marts."""


class DashboardServerError(VizError):
    """Voila could not be started or did not answer."""


class PdfExportError(VizError):
    """Chromium is missing or could not print the report to PDF."""
