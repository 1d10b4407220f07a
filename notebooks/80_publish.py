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
# # Publish marts from `main` to PostgreSQL
# The marts listed in `publish.yaml` are copied (binary COPY) into staging tables and swapped into
# schema `marts` in one transaction: readers see the old marts or the new ones, never a mix.

# %% tags=["parameters"]
upstream = ["promote"]
product = None
baseline = "main"  # the promoted branch (pipeline.yaml: baseline)

# %%
from workbench.publish.postgres import status
from workbench.publish.publisher import publish_marts

summary = publish_marts(baseline)
print("\n".join(summary.lines()))

# %%
print("\n".join(status().lines()))
