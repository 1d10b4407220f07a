# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---
# ruff: noqa: E402  (a notebook: imports sit in the cell that uses them)

# %% [markdown]
# # An audit report with a pass, a warning and a value against its threshold

# %% tags=["parameters"]
upstream = ["ingest"]
product = None

# %%
from pathlib import Path

from workbench.quality.audit import AuditReport, Check

report = AuditReport(
    branch="dev",
    baseline="main",
    checked_at="2026-11-20T10:00:00+00:00",
    commit_id="0123456789abcdef",
    checks=[
        Check("freshness p001", "pass", "newest reading 0.2 h old", 0.2, 24.0),
        Check("gaps p002", "warn", "one gap of 7.5 h", 7.5, 6.0),
    ],
)
report.save(Path(product["report"]))
