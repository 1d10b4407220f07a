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

# %% [markdown]
# # Audit `dev` before promotion
# dbt tests (the layer tasks' outcomes when `dev` is as they left it, plus the cross-layer tests) and
# data-quality checks (freshness per site against the source's clock, row counts against `main`,
# gaps in what this run brought, value ranges, rejects ratio). The report is saved; the promote task
# refuses to merge if any check failed. A stale site is a warning, never a failure.

# %% tags=["parameters"]
upstream = ["bronze", "silver", "gold", "marts", "ingest"]
product = None
branch = "dev"
baseline = "main"
thresholds = {}
backfill = False

# %%
from IPython.display import Markdown, display

from workbench.quality import audit

report = audit(
    branch=branch,
    baseline=baseline,
    thresholds=thresholds,
    report_path=product["report"],
    ingest_report=upstream["ingest"]["report"],
    backfill=backfill,
    layer_tests=[upstream[layer]["tests"] for layer in ("bronze", "silver", "gold", "marts")],
)
display(Markdown(f"**{report.summary()}**"))

# %%
report.to_frame()

# %%
report.to_frame().query("status != 'pass'")
