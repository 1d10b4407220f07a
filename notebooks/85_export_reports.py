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
# # Export the AGP reports
# One self-contained HTML report per patient (and a PDF where Chromium is installed), from the
# marts on `main`: the clinic-style Ambulatory Glucose Profile people can share.

# %% tags=["parameters"]
upstream = ["publish"]
product = None
baseline = "main"  # the promoted branch (pipeline.yaml: baseline)
days = 14

# %%
from workbench.viz.report import export_reports

written = export_reports(product["reports"], ref=baseline, days=days)
for path in written:
    print(path.name)
