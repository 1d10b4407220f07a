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
# # 94 · CGM analysis of one patient
# Exploration, not part of the pipeline. The consensus report for one patient and period, read from
# the marts (the published PostgreSQL marts on `main` when the server runs, else the lake), then
# checked against the metrics recomputed from the readings.

# %% tags=["parameters"]
ref = "main"
patient = None
days = 14

# %%
import pandas as pd
import plotly.io as pio
from IPython.display import HTML

from workbench import metrics
from workbench.viz.view import load_view

pio.renderers.default = "plotly_mimetype"
view = load_view(ref=ref, patient=patient, days=days)
HTML(view.header_html())

# %% [markdown]
# ## Headline metrics and consensus targets

# %%
HTML(view.cards_html())

# %%
pd.Series(view.summary.as_dict()).to_frame(view.patient_id)

# %% [markdown]
# ## Time in ranges and the ambulatory glucose profile

# %%
view.time_in_ranges_figure()

# %%
view.agp_figure()

# %%
view.trend_figure()

# %%
view.stats_frame()

# %% [markdown]
# ## Cross-check against the readings
# The period figures above are combined from the daily mart; `workbench.metrics` recomputes them from
# the individual readings (and adds the variability indices that need the whole series).

# %%
readings = view.data.readings(view.patient_id, view.start, view.end)
seconds = (readings["reading_ts_utc"] - pd.Timestamp(0)).dt.total_seconds()
full = metrics.summarize(readings["glucose_value"], seconds, readings["reading_date"])
columns = ["reading_count", "mean_glucose", "sd_glucose", "cv_glucose", "gmi", "pct_in_range", "pct_below_70", "gri"]
check = pd.DataFrame(
    {
        "from the daily mart": [getattr(view.summary, c) for c in columns],
        "from the readings": [getattr(full, c) for c in columns],
    },
    index=columns,
)
check

# %%
# NBVAL_CHECK_OUTPUT
print(bool(((check.iloc[:, 0] - check.iloc[:, 1]).abs() < 1e-6).all()))

# %%
pd.Series({k: full.as_dict()[k] for k in ("mage", "modd", "conga_1", "lbgi", "hbgi", "adrr", "j_index")}).round(2)

# %% [markdown]
# ## Glucose by hour of the local day

# %%
readings.assign(hour=readings["reading_ts_local"].dt.hour).groupby("hour")["glucose_value"].describe().round(1)
