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
# # 91 · A tour of the lake
# Exploration, not part of the pipeline. The lake holds Apache Iceberg tables in layers
# (raw → bronze → silver → gold → marts) on branches: the pipeline builds on `dev` and promotes
# to `main`. Every table is visible to SQL as `schema.table`, on any ref.

# %% tags=["parameters"]
ref = "main"

# %%
from workbench.lakehouse import Lakehouse

lh = Lakehouse(ref)
lh

# %% [markdown]
# ## Tables by layer

# %%
# NBVAL_CHECK_OUTPUT
print(sorted({table.split(".")[0] for table in lh.tables()}))

# %%
lh.tables()

# %% [markdown]
# ## Branches, tags and the latest commits
# Each write is one commit on a branch; a merge moves every table of a branch at once.

# %%
[(r.name, r.kind, r.commit_id) for r in lh.refs()]

# %%
lh.log_df(limit=8)

# %% [markdown]
# ## SQL with the `%sql` magic
# `%sql_ref` picks the ref; `%%sql name` also stores the result in a variable.

# %%
# %load_ext workbench.magic
# %sql_ref {ref}

# %%
# NBVAL_CHECK_OUTPUT
# %sql select patient_id, time_zone from raw.patients order by patient_id

# %%
# %%sql layers
select 'raw' as layer, count(*) as readings from raw.glucose_entries
union all select 'bronze', count(*) from bronze.stg_glucose_entries
union all select 'silver', count(*) from silver.fct_glucose_readings

# %% [markdown]
# Raw keeps every fetched entry (calibrations, duplicates served twice are already dropped at
# landing); bronze keeps valid sensor glucose values; silver has one row per reading.

# %%
layers

# %% [markdown]
# ## The marts the dashboards read

# %%
# %%sql daily
select patient_id, reading_date, reading_count, mean_glucose, pct_in_range, gri
from marts.mrt_glucose_daily_metrics
order by patient_id, reading_date

# %%
daily.groupby("patient_id").agg(days=("reading_date", "count"), readings=("reading_count", "sum"))

# %%
# %sql select * from gold.dim_patient

# %% [markdown]
# ## Iceberg metadata tables
# `$snapshots`, `$history`, `$files`, `$manifests`, `$refs` and `$partitions` of any table.

# %%
# %sql select snapshot_id, committed_at, operation from raw."glucose_entries$snapshots" order by committed_at

# %%
# %sql select count(*) as data_files, sum(record_count) as records from silver."fct_glucose_readings$files"
