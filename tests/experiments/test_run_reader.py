"""Reading run folders: curves from metrics.jsonl + eval tables, interpolation, the table, CIs."""

from __future__ import annotations

import dataclasses
import math
import pathlib

import chex
import matplotlib
import numpy as np
import pytest

from distrl_jax.config import Config, save_yaml
from distrl_jax.experiments.run_reader import (
    EvalPoint,
    RunReadError,
    curves_table,
    group_by_variant,
    interpolate_curves,
    mean_and_ci,
    plot_curves,
    read_run,
    read_runs,
    table_markdown,
)
from distrl_jax.metrics.eval_table import EpisodeRecord, build_table, write_table
from distrl_jax.metrics.writers import JsonlSink

matplotlib.use("Agg")


def _table(folder: pathlib.Path, name: str, successes: int, trials: int = 4) -> None:
    records = [EpisodeRecord(f"task {i}", i < successes, 3) for i in range(trials)]
    write_table(*build_table(records), folder / "eval", name)


def make_run(
    path: pathlib.Path,
    *,
    seed: int = 0,
    start: int | None = 1,
    evals: dict[int, float] | None = None,
    final: int | None = 2,
    steps: int = 4,
    wall_per_step: float = 10.0,
    device_steps_per_s: float = 5.0,
) -> pathlib.Path:
    """A run folder as training writes it: success counts are out of 4 evaluation tasks."""
    path.mkdir(parents=True)
    save_yaml(dataclasses.replace(Config(), seed=seed), path / "config.yaml")
    sink = JsonlSink(path / "metrics.jsonl")
    for step in range(1, steps + 1):
        wall = step * wall_per_step
        sink.write(step, {"loss": 1.0, "wall_s": wall, "device_steps_per_s": device_steps_per_s})
        if evals and step in evals:
            sink.write(step, {"eval_success": evals[step], "time_eval_s": 0.5})
    sink.close()
    if start is not None:
        _table(path, "start", start)
    if final is not None:
        _table(path, "final", final)
    return path


def test_curve_has_start_periodic_and_final_points(tmp_path: pathlib.Path) -> None:
    run = read_run(make_run(tmp_path / "A-RIDE" / "seed-3", seed=3, evals={2: 0.5}, final=3))
    assert (run.variant, run.seed, run.complete) == ("A-RIDE", 3, True)
    assert run.curve == [
        EvalPoint(0.0, 0, 0.0, 0.25),  # start table: 1 of 4
        EvalPoint(20.0, 2, 100.0, 0.5),  # at the training row of step 2: 20 s x 5 steps/s
        EvalPoint(40.0, 4, 200.0, 0.75),  # final table: 3 of 4, at the last training row
    ]
    assert run.final_success == 0.75
    assert len(run.rows) == 5 and run.config["seed"] == 3


def test_periodic_eval_at_the_last_step_gives_way_to_the_final_table(tmp_path):
    run = read_run(make_run(tmp_path / "r", evals={2: 0.5, 4: 0.0}, final=2))
    assert [p.step for p in run.curve] == [0, 2, 4]
    assert run.curve[-1].success == 0.5
    # Outside the <variant>/seed-<s> layout the folder names the run, config.yaml the seed.
    assert (run.variant, run.seed) == ("r", 0)


def test_unfinished_run_reads_without_final_point_and_is_left_out_of_table(tmp_path):
    make_run(tmp_path / "A-RIDE" / "seed-0", final=2)
    make_run(tmp_path / "A-RIDE" / "seed-1", evals={2: 1.0}, final=None)
    runs = read_runs(str(tmp_path / "*" / "seed-*"))
    partial = runs[1]
    assert not partial.complete and partial.final_success is None
    assert [p.success for p in partial.curve] == [0.25, 1.0]
    with pytest.warns(UserWarning, match="1 unfinished run"):
        (row,) = curves_table(runs)
    assert row.seeds == 1 and row.success == 0.5 and math.isnan(row.ci)


def test_cut_last_line_is_skipped_with_a_warning(tmp_path: pathlib.Path) -> None:
    path = make_run(tmp_path / "r", evals={2: 0.5})
    with (path / "metrics.jsonl").open("a") as f:
        f.write('{"step": 5, "wall_')
    with pytest.warns(UserWarning, match="skipped 1 unreadable line"):
        run = read_run(path)
    assert len(run.rows) == 5


def test_missing_files_give_clear_errors(tmp_path: pathlib.Path) -> None:
    with pytest.raises(RunReadError, match=r"no config\.yaml"):
        read_run(tmp_path)
    path = make_run(tmp_path / "v" / "seed-0")
    (path / "metrics.jsonl").unlink()
    (path / "launch.log").write_text("Traceback ...")
    with pytest.raises(RunReadError, match=r"no metrics.jsonl.*launch.log"):
        read_run(path)
    with (
        pytest.warns(UserWarning, match="skipped"),
        pytest.raises(RunReadError, match="no readable"),
    ):
        read_runs([path])
    with pytest.raises(RunReadError, match="no readable run folder in the pattern"):
        read_runs(str(tmp_path / "nothing-*"))
    (path / "metrics.jsonl").write_text("")
    (path / "eval" / "final.json").write_text("{}")
    with pytest.raises(RunReadError, match="not an evaluation table"):
        read_run(path)


def test_interpolation_to_common_grid(tmp_path: pathlib.Path) -> None:
    fast = read_run(make_run(tmp_path / "v" / "seed-0", evals={2: 1.0}, final=4, steps=4))
    slow = read_run(make_run(tmp_path / "v" / "seed-1", final=0, steps=8, wall_per_step=10.0))
    grid, values = interpolate_curves([fast, slow], x="wall_s", points=5)
    chex.assert_shape(values, (2, 5))
    np.testing.assert_allclose(grid, [0, 10, 20, 30, 40])  # up to the shorter run's end
    np.testing.assert_allclose(values[0], [0.25, 0.625, 1.0, 1.0, 1.0])
    # The slow run goes from 0.25 at 0 s to 0.0 at 80 s: linear in between.
    np.testing.assert_allclose(values[1], [0.25, 0.21875, 0.1875, 0.15625, 0.125])
    grid, _ = interpolate_curves([fast, slow], x="device_steps", points=3)
    np.testing.assert_allclose(grid, [0, 100, 200])
    with pytest.raises(ValueError, match="choose one of"):
        interpolate_curves([fast], x="minutes")


def test_mean_and_ci_uses_student_t() -> None:
    mean, ci = mean_and_ci(np.array([[0.2, 1.0], [0.4, 1.0], [0.6, 1.0]]))
    np.testing.assert_allclose(mean, [0.4, 1.0])
    np.testing.assert_allclose(ci, [4.303 * 0.2 / math.sqrt(3), 0.0])  # t(0.975, df=2)
    _, ci = mean_and_ci(np.array([[0.5]]))
    assert np.isnan(ci).all()


def test_table_values_ci_and_relative_change(tmp_path: pathlib.Path) -> None:
    for seed, ok in enumerate((2, 2, 3)):
        make_run(tmp_path / "A-RIDE" / f"seed-{seed}", final=ok)
    for seed, ok in enumerate((1, 1)):
        make_run(tmp_path / "no-retrace" / f"seed-{seed}", final=ok)
    make_run(tmp_path / "sync" / "seed-0", final=0)
    by_variant = group_by_variant(read_runs(str(tmp_path / "*" / "seed-*")))
    assert list(by_variant) == ["A-RIDE", "no-retrace", "sync"]
    rows = {r.variant: r for r in curves_table(by_variant)}
    base = rows["A-RIDE"]
    assert base.seeds == 3 and base.success == pytest.approx(7 / 12)
    assert base.ci == pytest.approx(4.303 * np.std([0.5, 0.5, 0.75], ddof=1) / math.sqrt(3))
    assert base.relative_change == 0.0
    assert rows["no-retrace"].success == 0.25 and rows["no-retrace"].ci == 0.0
    assert rows["no-retrace"].relative_change == pytest.approx(0.25 / (7 / 12) - 1)
    assert rows["sync"].relative_change == -1.0
    text = table_markdown(list(rows.values()))
    assert "| A-RIDE | 3 | 58.3 ± 35.9 | +0.0% |" in text
    assert "| no-retrace | 2 | 25.0 ± 0.0 | -57.1% |" in text
    assert "| sync | 1 | 0.0 | -100.0% |" in text
    with pytest.raises(RunReadError, match="baseline variant 'full'"):
        curves_table(by_variant, baseline="full")


def test_plot_draws_mean_and_band_per_variant(tmp_path: pathlib.Path) -> None:
    make_run(tmp_path / "A-RIDE" / "seed-0", final=2)
    make_run(tmp_path / "A-RIDE" / "seed-1", final=4)
    make_run(tmp_path / "sync" / "seed-0", final=0)
    runs = read_runs(str(tmp_path / "*" / "seed-*"))
    ax = plot_curves(runs, x="device_steps", points=11)
    lines = ax.get_lines()
    assert [ln.get_label() for ln in lines] == ["A-RIDE (n=2)", "sync (n=1)"]
    np.testing.assert_allclose(lines[0].get_ydata()[[0, -1]], [0.25, 0.75])
    assert lines[0].get_xdata()[-1] == 200.0
    assert len(ax.collections) == 1  # a band for the two-seed variant only
    assert ax.get_xlabel() == "device steps"
