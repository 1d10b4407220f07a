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
# # Promote `dev` → `main`
# An atomic merge of every table, only if the audit passed and `dev` has not moved since.
# When the audit failed this cell fails with the list of failed checks and `main` is unchanged.

# %% tags=["parameters"]
upstream = ["audit"]
product = None
baseline = "main"  # the promoted branch (pipeline.yaml: baseline)

# %%
from IPython.display import Markdown, display

from workbench import Lakehouse
from workbench.quality import promote_audited

commit = promote_audited(upstream["audit"]["report"], target=baseline)
display(Markdown(f"promoted: merge commit `{commit}`" if commit else f"nothing new to promote: `{baseline}` is up to date"))

# %%
Lakehouse(baseline).log_df(limit=5)[["id", "created_at", "author", "message", "tables"]]
