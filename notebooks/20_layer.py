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
# # One dbt layer — bronze, silver, gold or marts
#
# Runs `dbt build --select <layer>` (models, data tests, unit tests) on the chosen branch through
# dbt's Python runner; every model is written as an Iceberg table on that branch. The pipeline uses
# this notebook for four tasks (`bronze`, `silver`, `gold`, `marts`), each with its own `layer`.
# The build runs in a warm dbt process shared by the four tasks (`workbench.transform.warm`), so
# dbt is imported and the project loaded once per pipeline run, not once per layer.

# %% tags=["parameters"]
upstream = None
product = None
layer = "bronze"
branch = "dev"
full_refresh = False
models = None  # a digest of the dbt project: a changed model makes this task outdated
sample_table = "bronze.stg_glucose_entries"

# %%
from IPython.display import Markdown, display

from workbench.quality import save_layer_tests
from workbench.transform.warm import build_layer

display(Markdown(f"## Layer `{layer}` on branch `{branch}`"))
result = build_layer(layer, branch=branch, full_refresh=full_refresh)
if product is not None:  # the test outcomes, for the audit (which then re-runs only cross-layer tests)
    save_layer_tests(result, product["tests"], branch)
result.summary()

# %% [markdown]
# ## Models built

# %%
display(result.models_frame())

# %% [markdown]
# ## Tests

# %%
display(result.tests_frame())

# %% [markdown]
# ## Sample rows

# %%
result.raise_for_failures()
display(result.sample(sample_table))
