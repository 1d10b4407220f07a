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
    save_layer_tests,
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
    "save_layer_tests",
]
