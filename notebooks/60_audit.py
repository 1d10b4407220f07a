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
# dbt tests plus data-quality checks (freshness, row counts against `main`, gaps, value ranges,
# rejects ratio). The report is saved; the promote task refuses to merge if any check failed.

# %% tags=["parameters"]
upstream = ["marts"]
product = None
branch = "dev"
baseline = "main"
thresholds = {}

# %%
from IPython.display import Markdown, display

from workbench.quality import audit

report = audit(branch=branch, baseline=baseline, thresholds=thresholds, report_path=product["report"])
display(Markdown(f"**{report.summary()}**"))

# %%
report.to_frame()

# %%
report.to_frame().query("status != 'pass'")
