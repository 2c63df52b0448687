# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Ablations of A-RIDE
#
# The paper's ablations, each changing one component of full A-RIDE: without Retrace
# (ρ and c set to 1), uniform replay instead of DPER, without the entropy bonus, DigiRL's
# algorithm inside the asynchronous runtime, the synchronous runtime, and (where the config has
# `actor.policy`) the actors' distilled policy. Every variant x seed is one
# `python -m distrl_jax.launch` run in `OUT_DIR/<variant>/seed-<s>`; finished runs are reused
# when the notebook is run again.
#
# `DISTRL_NB_BUDGET` picks the size: `tiny` (the default) checks the pipeline in minutes (CI) and
# its numbers mean nothing; `short` is 8 minutes a run from the behaviour-cloning warm start,
# 2 seeds, about 80 minutes on two CPU cores; `full` is the paper-sized budget, 30 minutes a run,
# 3 seeds (about 10 hours on two cores).

# %%
import os
import pathlib

import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from distrl_jax.experiments import (
    ablation_variants,
    budget,
    curves_table,
    group_by_variant,
    plot_curves,
    read_runs,
    run_variants,
    table_markdown,
)

# %% tags=["parameters"]
BUDGET = os.environ.get("DISTRL_NB_BUDGET", "tiny")  # tiny | short | full
SEEDS = list(budget(BUDGET).seeds)
BASE_CONFIG = budget(BUDGET).base_config
TASK_SUITE = "general"  # general | webshop
PARALLEL = 2  # runs at a time (each is a learner plus its actor processes); None = cores / 2
ROOT = next((p for p in [pathlib.Path.cwd(), *pathlib.Path.cwd().parents]
             if (p / "pyproject.toml").is_file()), pathlib.Path.cwd())  # fmt: skip
OUT_DIR = os.environ.get("DISTRL_NB_OUT") or str(ROOT / "runs" / f"ablations-{BUDGET}")
ONLY = os.environ.get("DISTRL_NB_VARIANTS", "")  # comma-separated variant names; '' = all

# %%
suite = [f"tasks.train={TASK_SUITE}", f"tasks.eval={TASK_SUITE}"]
overrides = [*budget(BUDGET).overrides, *suite]
variants = ablation_variants(BASE_CONFIG)
if ONLY:  # e.g. CI's quick pass over a few variants
    variants = [v for v in variants if v.name in ONLY.split(",")]
for v in variants:
    print(f"{v.name:16s} {' '.join(v.overrides) or '(the full method)'}")

# %% [markdown]
# ## Run every variant x seed

# %%
results = run_variants(variants, SEEDS, BASE_CONFIG, overrides, OUT_DIR, parallel=PARALLEL)

# %% [markdown]
# ## Success rate against wall time and against device steps
#
# Mean over seeds, with a 95% band (Student t) when there are two seeds or more; each seed's
# curve is interpolated onto a grid that ends where the shortest run ends.

# %%
runs = read_runs([r.path for r in results])
by_variant = group_by_variant(runs)
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
plot_curves(by_variant, x="wall_s", ax=axes[0])
plot_curves(by_variant, x="device_steps", ax=axes[1])
fig.suptitle(f"{TASK_SUITE}: evaluation success ({BUDGET} budget, {len(SEEDS)} seed(s))")
fig.tight_layout()

# %% [markdown]
# ## The table (final success, relative change vs full A-RIDE)

# %%
table = curves_table(by_variant, baseline="A-RIDE")
display(Markdown(table_markdown(table)))
