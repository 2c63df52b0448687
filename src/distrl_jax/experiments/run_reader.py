"""Read run folders back: evaluation curves, the paper-shaped table, and plots with bands.

A run folder (see :mod:`distrl_jax.run_folder`) holds ``config.yaml``, ``metrics.jsonl`` (rows
``{"step", "time", ...}``; training rows carry ``wall_s`` and ``device_steps_per_s``, periodic
evaluations ``eval_success``) and ``eval/start.json`` / ``eval/final.json``. A run's evaluation
curve starts with the start table (wall 0, step 0), has one point per periodic evaluation (placed
at the training row of the same step) and ends with the final table. Runs laid out by
:func:`distrl_jax.experiments.sweep.run_variants` (``<variant>/seed-<s>``) are named after their
folders; other runs after their folder and ``config.yaml``'s seed. Only JSON and YAML are read.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import math
import pathlib
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import yaml

X_AXES = {"wall_s": "wall time (s)", "device_steps": "device steps", "step": "learner steps"}
# Two-sided 95% Student t quantiles for 1..30 degrees of freedom (then the normal 1.96).
_T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
        2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
        2.060, 2.056, 2.052, 2.048, 2.045, 2.042)  # fmt: skip


class RunReadError(ValueError):
    """A folder is not a readable run: the message says what is missing and what to do."""


@dataclasses.dataclass(frozen=True)
class EvalPoint:
    """One evaluation: when (wall seconds, learner step, cumulative device steps) and success."""

    wall_s: float
    step: int
    device_steps: float
    success: float


@dataclasses.dataclass(frozen=True)
class RunData:
    """One run folder, read."""

    path: pathlib.Path
    variant: str
    seed: int
    config: dict[str, Any]
    rows: list[dict[str, Any]]
    curve: list[EvalPoint]
    final_success: float | None  # None: the run has no eval/final.json (it did not finish)

    @property
    def complete(self) -> bool:
        """Whether the run wrote its final evaluation."""
        return self.final_success is not None


def _read_metrics(path: pathlib.Path) -> list[dict[str, Any]]:
    rows, bad = [], 0
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            bad += 1  # a run killed mid-write leaves a cut last line
            continue
        if isinstance(row, dict) and "step" in row:
            rows.append(row)
    if bad:
        warnings.warn(f"{path}: skipped {bad} unreadable line(s)", stacklevel=3)
    return rows


def _table_success(path: pathlib.Path) -> float:
    try:
        total = json.loads(path.read_text())["total"]
        return float(total["success_rate"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise RunReadError(f"{path} is not an evaluation table ({e}); rerun the run") from e


def _name_and_seed(path: pathlib.Path, config: Mapping[str, Any]) -> tuple[str, int]:
    if path.name.startswith("seed-") and path.name[5:].isdigit():
        return path.parent.name, int(path.name[5:])
    return path.name, int(config.get("seed", 0))


def read_run(path: str | pathlib.Path) -> RunData:
    """Read one run folder; raises :class:`RunReadError` when it has no config or metrics."""
    run = pathlib.Path(path)
    if not (run / "config.yaml").is_file():
        raise RunReadError(f"{run} is not a run folder: it has no config.yaml")
    config = yaml.safe_load((run / "config.yaml").read_text()) or {}
    if not (run / "metrics.jsonl").is_file():
        hint = f" (see {run / 'launch.log'})" if (run / "launch.log").is_file() else ""
        raise RunReadError(f"{run} has no metrics.jsonl: the run never trained{hint}")
    rows = _read_metrics(run / "metrics.jsonl")
    curve: list[EvalPoint] = []
    if (run / "eval" / "start.json").is_file():
        curve.append(EvalPoint(0.0, 0, 0.0, _table_success(run / "eval" / "start.json")))
    last_train: dict[str, Any] | None = None

    def at(row: dict[str, Any] | None) -> tuple[float, float]:
        if row is None:
            return 0.0, 0.0
        wall = float(row["wall_s"])
        # The learner logs a rate since its start: rate x elapsed is the count (an integer).
        return wall, float(round(float(row.get("device_steps_per_s") or 0.0) * wall))

    for row in rows:
        if row.get("wall_s") is not None:
            last_train = row
        elif row.get("eval_success") is not None:
            # An evaluation runs right after the training step it follows.
            wall, steps = at(last_train)
            curve.append(EvalPoint(wall, int(row["step"]), steps, float(row["eval_success"])))
    final = None
    if (run / "eval" / "final.json").is_file():
        final = _table_success(run / "eval" / "final.json")
        wall, steps = at(last_train)
        step = int(last_train["step"]) if last_train else 0
        if curve and curve[-1].step == step and step > 0:
            curve.pop()  # the same parameters as the final evaluation
        curve.append(EvalPoint(wall, step, steps, final))
    variant, seed = _name_and_seed(run, config)
    return RunData(run, variant, seed, config, rows, curve, final)


def read_runs(runs: str | pathlib.Path | Iterable[str | pathlib.Path]) -> list[RunData]:
    """Read a glob (``"runs/ablations/*/seed-*"``) or a list of folders; folders that cannot be
    read are skipped with a warning saying why. Raises :class:`RunReadError` if none is left."""
    if isinstance(runs, (str, pathlib.Path)):
        paths = sorted(pathlib.Path(p) for p in glob.glob(str(runs)))
        where = f"the pattern {str(runs)!r}"
    else:
        paths = [pathlib.Path(p) for p in runs]
        where = f"{len(paths)} given folder(s)"
    out = []
    for p in paths:
        try:
            out.append(read_run(p))
        except RunReadError as e:
            warnings.warn(f"skipped: {e}", stacklevel=2)
    if not out:
        raise RunReadError(f"no readable run folder in {where}; check the path (or run the sweep)")
    return out


def group_by_variant(runs: Iterable[RunData]) -> dict[str, list[RunData]]:
    """``{variant: runs sorted by seed}``, variants in first-seen order."""
    groups: dict[str, list[RunData]] = {}
    for r in runs:
        groups.setdefault(r.variant, []).append(r)
    return {k: sorted(v, key=lambda r: r.seed) for k, v in groups.items()}


def mean_and_ci(values: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Mean over ``axis`` and the half-width of its 95% Student t interval (NaN for one value)."""
    values = np.asarray(values, dtype=float)
    n = values.shape[axis]
    mean = values.mean(axis=axis)
    if n < 2:
        return mean, np.full_like(mean, np.nan)
    t = _T95[n - 2] if n - 1 <= len(_T95) else 1.96
    return mean, t * values.std(axis=axis, ddof=1) / math.sqrt(n)


def interpolate_curves(
    runs: Sequence[RunData], x: str = "wall_s", points: int = 50
) -> tuple[np.ndarray, np.ndarray]:
    """Each run's success curve on a common grid ``[0, shortest run's end]``: ``(grid,
    values[n_runs, points])`` (linear interpolation between evaluations)."""
    if x not in X_AXES:
        raise ValueError(f"x={x!r}: choose one of {', '.join(X_AXES)}")
    curves = [r.curve for r in runs if r.curve]
    if not curves:
        raise RunReadError("none of these runs has an evaluation; were they started?")
    xs = [np.array([getattr(p, x) for p in c], dtype=float) for c in curves]
    ys = [np.array([p.success for p in c], dtype=float) for c in curves]
    end = min(float(v.max()) for v in xs)
    grid = np.linspace(0.0, end, points)
    return grid, np.stack([np.interp(grid, xv, yv) for xv, yv in zip(xs, ys, strict=True)])


@dataclasses.dataclass(frozen=True)
class TableRow:
    """One line of the paper's table: final success over seeds and the change vs the baseline."""

    variant: str
    seeds: int
    success: float
    ci: float  # half-width of the 95% interval over seeds (NaN with one seed)
    relative_change: float  # (success - baseline) / baseline (NaN for a zero baseline)


def curves_table(
    runs: Iterable[RunData] | Mapping[str, Sequence[RunData]], baseline: str = "A-RIDE"
) -> list[TableRow]:
    """Final success per variant (mean ± 95% CI over seeds) and its relative change vs
    ``baseline``; unfinished runs are left out (with a warning)."""
    groups = dict(runs) if isinstance(runs, Mapping) else group_by_variant(runs)
    means: dict[str, tuple[int, float, float]] = {}
    for name, group in groups.items():
        done = [r.final_success for r in group if r.final_success is not None]
        if len(done) < len(group):
            warnings.warn(
                f"{name}: {len(group) - len(done)} unfinished run(s) left out", stacklevel=2
            )
        if done:
            mean, ci = mean_and_ci(np.array(done))
            means[name] = (len(done), float(mean), float(ci))
    if baseline not in means:
        raise RunReadError(
            f"baseline variant {baseline!r} has no finished run; variants: {', '.join(groups)}"
        )
    base = means[baseline][1]
    return [
        TableRow(name, n, m, ci, (m - base) / base if base > 0 else float("nan"))
        for name, (n, m, ci) in means.items()
    ]


def table_markdown(rows: Sequence[TableRow]) -> str:
    """The table as Markdown: variant | seeds | success (%) | relative change."""
    out = ["| variant | seeds | success (%) | relative change |", "|---|---:|---:|---:|"]
    for r in rows:
        ci = f" ± {100 * r.ci:.1f}" if math.isfinite(r.ci) else ""
        change = f"{100 * r.relative_change:+.1f}%" if math.isfinite(r.relative_change) else "n/a"
        out.append(f"| {r.variant} | {r.seeds} | {100 * r.success:.1f}{ci} | {change} |")
    return "\n".join(out) + "\n"


def plot_curves(
    runs_by_variant: Mapping[str, Sequence[RunData]] | Iterable[RunData],
    x: str = "wall_s",
    ax=None,
    points: int = 50,
):
    """Success rate against ``x`` (wall_s | device_steps | step): the mean over seeds per
    variant with a 95% band (with two or more seeds); returns the matplotlib Axes."""
    import matplotlib.pyplot as plt  # the notebooks extra; only plotting needs it

    if x not in X_AXES:
        raise ValueError(f"x={x!r}: choose one of {', '.join(X_AXES)}")
    groups = (
        dict(runs_by_variant)
        if isinstance(runs_by_variant, Mapping)
        else group_by_variant(runs_by_variant)
    )
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    for name, group in groups.items():
        grid, values = interpolate_curves(group, x, points)
        mean, ci = mean_and_ci(values)
        (line,) = ax.plot(grid, mean, label=f"{name} (n={len(values)})")
        if np.isfinite(ci).any():
            ax.fill_between(grid, mean - ci, mean + ci, color=line.get_color(), alpha=0.2)
    ax.set_xlabel(X_AXES[x])
    ax.set_ylabel("success rate")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize="small")
    return ax
