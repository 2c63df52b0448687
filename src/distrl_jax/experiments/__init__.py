"""Experiments driven from notebooks: sweeps of config variants over seeds, and run folders read
back into curves and the paper-shaped table.

* :mod:`distrl_jax.experiments.sweep` — :class:`Variant`, :data:`ABLATIONS`, the budget presets
  and :func:`run_variants` (one ``python -m distrl_jax.launch`` process per variant x seed);
* :mod:`distrl_jax.experiments.run_reader` — :func:`read_run`, :func:`read_runs`,
  :func:`curves_table`, :func:`plot_curves`.
"""

from distrl_jax.experiments.run_reader import (
    EvalPoint,
    RunData,
    RunReadError,
    TableRow,
    curves_table,
    group_by_variant,
    plot_curves,
    read_run,
    read_runs,
    table_markdown,
)
from distrl_jax.experiments.sweep import (
    ABLATIONS,
    BUDGETS,
    DISTILLED_ACTOR,
    FULL_BUDGET,
    SHORT_BUDGET,
    TINY_BUDGET,
    Budget,
    RunStatus,
    SweepError,
    Variant,
    ablation_variants,
    budget,
    run_variants,
    variant_supported,
)

__all__ = [
    "ABLATIONS",
    "BUDGETS",
    "DISTILLED_ACTOR",
    "FULL_BUDGET",
    "SHORT_BUDGET",
    "TINY_BUDGET",
    "Budget",
    "EvalPoint",
    "RunData",
    "RunReadError",
    "RunStatus",
    "SweepError",
    "TableRow",
    "Variant",
    "ablation_variants",
    "budget",
    "curves_table",
    "group_by_variant",
    "plot_curves",
    "read_run",
    "read_runs",
    "run_variants",
    "table_markdown",
    "variant_supported",
]
