# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Results from run folders
#
# Reads any set of run folders — a glob or a list — and draws their evaluation curves and the
# final table. Runs in `<variant>/seed-<s>` folders (as the sweep writes them) are grouped by
# variant; any other run folder is a variant of its own. Unfinished runs are drawn as far as
# they got and left out of the table, with a warning.

# %%
import os
import pathlib

import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from distrl_jax.experiments import (
    curves_table,
    group_by_variant,
    plot_curves,
    read_runs,
    table_markdown,
)

# %% tags=["parameters"]
BUDGET = os.environ.get("DISTRL_NB_BUDGET", "tiny")
ROOT = next((p for p in [pathlib.Path.cwd(), *pathlib.Path.cwd().parents]
             if (p / "pyproject.toml").is_file()), pathlib.Path.cwd())  # fmt: skip
OUT_DIR = os.environ.get("DISTRL_NB_OUT") or str(ROOT / "runs" / f"ablations-{BUDGET}")
RUNS = f"{OUT_DIR}/*/seed-*"  # a glob, or a list of run folders
BASELINE = "A-RIDE"  # the variant the relative change is measured against

# %%
runs = read_runs(RUNS)
by_variant = group_by_variant(runs)
for name, group in by_variant.items():
    done = sum(r.complete for r in group)
    print(f"{name:16s} {len(group)} run(s), {done} finished: {[str(r.path) for r in group]}")

# %%
fig, axes = plt.subplots(1, 3, figsize=(16, 4))
for ax, x in zip(axes, ("wall_s", "device_steps", "step"), strict=True):
    plot_curves(by_variant, x=x, ax=ax)
fig.tight_layout()

# %%
if BASELINE in by_variant:
    display(Markdown(table_markdown(curves_table(by_variant, baseline=BASELINE))))
else:
    print(f"no {BASELINE!r} runs among {list(by_variant)}: set BASELINE to one of them")
