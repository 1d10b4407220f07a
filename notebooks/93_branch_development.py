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
# # 93 · Developing on a branch
# Exploration, not part of the pipeline. Branch from `dev` (zero-copy: no data is copied), change a
# model, build it on the branch, compare with `dev`, and merge when it looks right. Nobody reading
# `dev` or `main` sees anything until the merge, which moves every changed table at once.
#
# The change tried here: an ambulatory glucose profile over the last 7 days instead of 14
# (the dbt variable `agp_days` of `marts.mrt_agp_profile`).

# %% tags=["parameters"]
base = "dev"
feature = None
agp_days = 7

# %%
import secrets

from workbench.lakehouse import Lakehouse
from workbench.transform.runner import build

feature = feature or f"feature-agp-{agp_days}d-{secrets.token_hex(3)}"
lh = Lakehouse(base)
lh.branch(feature, from_ref=base)
[(r.name, r.kind, r.commit_id) for r in lh.refs() if r.name in (base, feature)]

# %% [markdown]
# ## Build the changed model on the branch
# The model's data tests run; its unit test is left out, because its hand-computed expectation is
# for the 14-day window that this change deliberately alters.

# %%
result = build(select="mrt_agp_profile", branch=feature, extra_vars={"agp_days": agp_days}, exclude="test_type:unit")
print(result.summary())
result.models_frame()[["name", "status", "rows_written", "seconds"]]

# %% [markdown]
# ## Compare with `dev`

# %%
branch = Lakehouse(feature)
query = (
    "select patient_id, any_value(period_days) as period_days, sum(grid_points) as readings, "
    "round(avg(p50), 1) as mean_median from marts.mrt_agp_profile group by patient_id order by patient_id"
)
comparison = lh.sql(query).merge(branch.sql(query), on="patient_id", suffixes=(f" @{base}", " @branch"))
comparison

# %%
# NBVAL_CHECK_OUTPUT
print(
    (comparison[f"period_days @{base}"] == 14).all(),
    (comparison["period_days @branch"] == agp_days).all(),
    bool((comparison["readings @branch"] < comparison[f"readings @{base}"]).all()),
)

# %% [markdown]
# Only the changed table has new commits on the branch:

# %%
branch.log_df(limit=3)

# %% [markdown]
# ## Merge into `dev`
# One atomic commit on `dev`; the next pipeline run builds `dev` with the project's own variables again.

# %%
merge_commit = lh.merge(feature, into=base, message=f"merge {feature}: AGP over {agp_days} days")
Lakehouse(base).sql("select distinct period_days from marts.mrt_agp_profile")
