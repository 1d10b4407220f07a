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
# # 10 · Ingest Nightscout
# Fetch every configured Nightscout site (`sites.yaml`; the built-in demo server when none is
# configured) with dlt into the Parquet stage, then land it exactly once in the `raw` tables of the
# target branch. Secrets come from the environment variables named in `sites.yaml`, never from here.

# %% tags=["parameters"]
upstream = None
product = None
branch = "dev"
sites = None
full_resync = False
source_state = None  # the sources' state when the pipeline was loaded (equal to the last run's = up to date)

# %%
from workbench.lakehouse import Lakehouse
from workbench.ingest import ingest
from workbench.ingest.figures import readings_figure, recent_readings
from workbench.pipeline.state import demo_end_of

# %%
report = ingest(branch=branch, site=sites, full_resync=full_resync, demo_end=demo_end_of(source_state))
report.save(product["report"])
print(report.summary())

# %% [markdown]
# ## Per site: rows fetched, new, duplicate (already in the lake or served twice), rejected

# %%
report.to_frame()

# %% [markdown]
# ## Rejected documents by reason (kept in `raw.glucose_entries_rejects` with their payload)

# %%
report.reasons_frame()

# %% [markdown]
# ## Latest readings on the branch

# %%
lh = Lakehouse(ref=branch)
lh.sql(
    "select patient_id, count(*) as entries, max(date_string) as latest_reading "
    "from raw.glucose_entries group by 1 order by 1"
)

# %%
readings_figure(recent_readings(lh, hours=24))
