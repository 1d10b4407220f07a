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
# ruff: noqa: E402  (a notebook: imports sit in the cell that uses them)

# %% [markdown]
# # An AGP report per patient (a tiny HTML file)

# %% tags=["parameters"]
upstream = ["audit"]
product = None

# %%
from pathlib import Path

folder = Path(product["reports"])
folder.mkdir(parents=True, exist_ok=True)
(folder / "agp_p001.html").write_text("<html><body><h1>AGP report p001</h1></body></html>")
