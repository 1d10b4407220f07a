"""Data-quality audit and promotion (write-audit-publish)."""

from workbench.quality.audit import (
    AuditFailedError,
    AuditReport,
    Check,
    SourceState,
    Thresholds,
    audit,
    promote,
    promote_audited,
    run_audit,
)

__all__ = [
    "AuditFailedError",
    "AuditReport",
    "Check",
    "SourceState",
    "Thresholds",
    "audit",
    "promote",
    "promote_audited",
    "run_audit",
]
