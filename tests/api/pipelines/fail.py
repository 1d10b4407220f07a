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
# # A task that fails in its third cell

# %% tags=["parameters"]
upstream = ["ingest"]
product = None

# %%
rows = 3

# %%
raise ValueError(f"simulated failure after {rows} rows")
