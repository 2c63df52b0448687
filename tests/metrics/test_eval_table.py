"""The evaluation table: Wilson intervals, infra failures kept apart, Markdown and JSON output."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distrl_jax.metrics.eval_table import (
    EpisodeRecord,
    TaskRow,
    build_table,
    to_markdown,
    wilson_interval,
    write_table,
)


def wilson_by_roots(s: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson bounds as the roots in p of (p_hat - p)^2 = z^2 p (1 - p) / n."""
    p_hat = s / n
    k = z * z / n
    # (1 + k) p^2 - (2 p_hat + k) p + p_hat^2 = 0
    roots = np.sort(np.roots([1 + k, -(2 * p_hat + k), p_hat * p_hat]).real)
    return float(roots[0]), float(roots[1])


@pytest.mark.parametrize(
    ("s", "n", "low", "high"),
    [  # published 95% Wilson intervals (e.g. Newcombe 1998, Table I; Brown, Cai & DasGupta 2001)
        (0, 10, 0.0, 0.2775),
        (5, 10, 0.2366, 0.7634),
        (10, 10, 0.7225, 1.0),
        (1, 10, 0.0179, 0.4042),
        (81, 263, 0.2553, 0.3662),
    ],
)
def test_wilson_known_values(s: int, n: int, low: float, high: float) -> None:
    lo, hi = wilson_interval(s, n)
    assert lo == pytest.approx(low, abs=1e-4)
    assert hi == pytest.approx(high, abs=1e-4)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), n=st.integers(1, 500), z=st.sampled_from([1.0, 1.645, 1.96, 2.576]))
def test_wilson_matches_quadratic_roots(data: st.DataObject, n: int, z: float) -> None:
    s = data.draw(st.integers(0, n))
    lo, hi = wilson_interval(s, n, z)
    rlo, rhi = wilson_by_roots(s, n, z)
    assert lo == pytest.approx(max(rlo, 0.0), abs=1e-9)
    assert hi == pytest.approx(min(rhi, 1.0), abs=1e-9)
    # 1e-15: at s=0 the lower bound is centre - half, which can round to ~1e-19 instead of 0.
    assert 0.0 <= lo <= s / n + 1e-15 and s / n - 1e-15 <= hi <= 1.0


def test_wilson_narrows_with_more_trials() -> None:
    widths = [np.subtract(*wilson_interval(n // 2, n)[::-1]) for n in (4, 16, 64, 256)]
    assert all(a > b for a, b in itertools.pairwise(widths))


def test_wilson_no_trials_is_uninformative() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)


def records() -> list[EpisodeRecord]:
    return [
        EpisodeRecord("open clock", True, 3, invalid_actions=1),
        EpisodeRecord("open clock", False, 10, invalid_actions=2),
        EpisodeRecord("open clock", False, 0, infra_failure=True, reason="hang"),
        EpisodeRecord("weather | paris", True, 5),
        EpisodeRecord("weather | paris", True, 4),
        EpisodeRecord("broken device task", False, 0, infra_failure=True),
    ]


def test_rows_per_task_in_first_seen_order() -> None:
    rows, total = build_table(records())
    assert [r.task for r in rows] == ["open clock", "weather | paris", "broken device task"]
    clock, weather, broken = rows

    assert (clock.trials, clock.successes, clock.infra_failures) == (2, 1, 1)
    assert clock.success_rate == pytest.approx(0.5)
    assert (clock.ci_low, clock.ci_high) == pytest.approx(wilson_interval(1, 2))
    assert clock.mean_length == pytest.approx(6.5)  # the infra failure's 0 steps are not counted
    assert clock.invalid_rate == pytest.approx(3 / 13)

    assert (weather.trials, weather.successes, weather.infra_failures) == (2, 2, 0)
    assert weather.success_rate == 1.0 and weather.invalid_rate == 0.0

    # Only infra failures: no trials, an uninformative interval, no success rate.
    assert (broken.trials, broken.successes, broken.infra_failures) == (0, 0, 1)
    assert math.isnan(broken.success_rate) and math.isnan(broken.mean_length)
    assert (broken.ci_low, broken.ci_high) == (0.0, 1.0)

    assert total.task == "ALL"
    assert (total.trials, total.successes, total.infra_failures) == (4, 3, 2)
    assert total.success_rate == pytest.approx(0.75)
    assert (total.ci_low, total.ci_high) == pytest.approx(wilson_interval(3, 4))
    assert total.mean_length == pytest.approx(22 / 4)
    assert total.invalid_rate == pytest.approx(3 / 22)


def test_empty_table() -> None:
    rows, total = build_table([])
    assert rows == []
    assert total.trials == 0 and total.infra_failures == 0


def test_markdown_has_every_task_and_the_all_row() -> None:
    rows, total = build_table(records())
    md = to_markdown(rows, total, title="general / val")
    lines = md.splitlines()
    assert lines[0] == "### general / val"
    table = [ln for ln in lines if ln.startswith("|")]
    assert len(table) == 2 + len(rows) + 1  # header, rule, tasks, ALL
    assert table[-1].startswith("| **ALL** | 4 | 75.0% |")
    assert any(ln.startswith("| open clock | 2 | 50.0% |") for ln in table)
    assert "weather \\| paris" in md  # a pipe in a task name must not split the row
    # Every row has as many cells as the header.
    n_cells = table[0].count(" | ")
    assert all(ln.replace("\\|", "").count(" | ") == n_cells for ln in table[2:])
    assert "### " not in to_markdown(rows, total)


def test_json_round_trip(tmp_path) -> None:
    recs = [r for r in records() if r.task != "broken device task"]  # no NaN rows
    rows, total = build_table(recs)
    md_path, json_path = write_table(rows, total, tmp_path / "eval", name="step_100")
    assert md_path == tmp_path / "eval" / "step_100.md" and md_path.read_text().startswith(
        "### step_100"
    )
    data = json.loads(json_path.read_text())
    assert [TaskRow(**d) for d in data["tasks"]] == rows
    assert TaskRow(**data["total"]) == total
    assert set(data["total"]) == {f.name for f in dataclasses.fields(TaskRow)}
