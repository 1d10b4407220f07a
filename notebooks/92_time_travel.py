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
# # 92 · Time travel on `raw.glucose_entries`
# Exploration, not part of the pipeline. Every write to an Iceberg table is a snapshot; any
# snapshot can be read again by id or by time, in Python or in SQL (Trino's syntax on both engines).

# %% tags=["parameters"]
ref = "dev"
table = "raw.glucose_entries"

# %%
import pandas as pd

from workbench.lakehouse import Lakehouse

lh = Lakehouse(ref)
history = lh.history(table)
history

# %% [markdown]
# ## The table at its first snapshot and now

# %%
first = history.iloc[0]
then = lh.at(table, snapshot_id=int(first.snapshot_id))
now = lh.sql(f"select * from {table}")
then.groupby("patient_id").size().rename("at first snapshot").to_frame().join(
    now.groupby("patient_id").size().rename("now"), how="outer"
)

# %%
# NBVAL_CHECK_OUTPUT
print(len(then) == int(first.total_rows), len(now) == int(history.iloc[-1].total_rows))

# %% [markdown]
# ## The same in SQL: `for version as of` and `for timestamp as of`

# %%
# %load_ext workbench.magic
# %sql_ref {ref}

# %%
first_id = int(first.snapshot_id)
first_time = first.committed_at.tz_convert("UTC").strftime("%Y-%m-%d %H:%M:%S.%f")

# %%
# %sql select count(*) as rows_then from raw.glucose_entries for version as of {first_id}

# %%
# %sql select count(*) as rows_then from raw.glucose_entries for timestamp as of timestamp '{first_time}'

# %% [markdown]
# ## A whole lake as of a time
# `Lakehouse(ref, as_of=...)` shows every table as it was then (tables created later are absent).

# %%
past = Lakehouse(ref, as_of=first.committed_at)
past.sql(f"select count(*) as readings, count(distinct patient_id) as patients from {table}")

# %% [markdown]
# ## What each snapshot added
# The ingest lands one commit per site and load; the readings added per snapshot, by patient:

# %%
rows = []
for snapshot_id in history.snapshot_id:
    rows.append(
        lh.sql(
            f"select {int(snapshot_id)} as snapshot_id, patient_id, count(*) as readings "
            f"from {table} for version as of {int(snapshot_id)} group by patient_id"
        )
    )
pd.concat(rows).pivot(index="snapshot_id", columns="patient_id", values="readings")
