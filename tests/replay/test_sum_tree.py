"""SumTree against brute force: sums, maxima, prefix search, sampling frequencies."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from distrl_jax.replay.sum_tree import SumTree


@pytest.mark.parametrize("capacity", [1, 2, 5, 8, 33, 100])
def test_batched_updates_match_brute_force(capacity: int) -> None:
    rng = np.random.default_rng(capacity)
    tree = SumTree(capacity)
    expected = np.zeros(capacity)
    for _ in range(30):
        n = int(rng.integers(1, 2 * capacity + 2))
        idx = rng.integers(0, capacity, n)  # duplicates on purpose
        val = rng.random(n) * (rng.random(n) > 0.3)  # some zeros
        tree.update(idx, val)
        for i, v in zip(idx, val, strict=True):  # brute force: sequential writes, last one wins
            expected[i] = v
        np.testing.assert_allclose(tree.values(), expected)
        assert tree.total == pytest.approx(expected.sum(), rel=1e-12, abs=1e-12)
        assert tree.max == expected.max()


def test_single_index_update_walks_to_the_root() -> None:
    tree = SumTree(6)
    tree.update(3, 2.5)
    tree.update(np.array([5]), np.array([1.0]))
    tree.update(3, 0.5)
    assert tree.total == pytest.approx(1.5)
    assert tree.max == 1.0
    np.testing.assert_array_equal(tree.get([3, 5, 0]), [0.5, 1.0, 0.0])


def test_prefix_search_matches_cumsum_and_skips_zero_leaves() -> None:
    rng = np.random.default_rng(0)
    values = rng.random(37) * (rng.random(37) > 0.4)
    values[0] = values[-1] = 0.0  # zero leaves at both ends are the edge cases
    tree = SumTree(values.size)
    tree.update(np.arange(values.size), values)
    targets = rng.random(5000) * values.sum()
    got = tree.find_prefix_sum(targets)
    want = np.searchsorted(np.cumsum(values), targets, side="right")
    np.testing.assert_array_equal(got, want)
    assert np.all(values[got] > 0)
    # A target at (or past) the total lands on the last positive leaf, never a zero one.
    last_positive = np.flatnonzero(values)[-1]
    assert tree.find_prefix_sum(np.array([values.sum(), values.sum() * 2]))[0] == last_positive


def test_sampling_never_returns_zero_leaves_and_needs_mass() -> None:
    tree = SumTree(10)
    with pytest.raises(ValueError, match="total is 0"):
        tree.sample(4, np.random.default_rng(0))
    tree.update([2, 7], [0.0, 3.0])
    draws = tree.sample(1000, np.random.default_rng(1))
    assert set(draws.tolist()) == {7}


@pytest.mark.parametrize("stratified", [True, False])
def test_sampling_frequencies_follow_the_values(stratified: bool) -> None:
    values = np.array([0.5, 1.0, 0.0, 4.0, 2.5, 0.25, 1.75])
    tree = SumTree(values.size)
    tree.update(np.arange(values.size), values)
    rng = np.random.default_rng(42)
    draws = np.concatenate([tree.sample(50, rng, stratified=stratified) for _ in range(400)])
    counts = np.bincount(draws, minlength=values.size)
    assert counts[2] == 0
    live = values > 0
    expected = values[live] / values.sum() * draws.size
    chi2 = ((counts[live] - expected) ** 2 / expected).sum()
    assert chi2 < stats.chi2.ppf(0.999, df=live.sum() - 1)
    # The test has power: a uniform expectation is rejected by a wide margin.
    flat = np.full(live.sum(), draws.size / live.sum())
    assert ((counts[live] - flat) ** 2 / flat).sum() > 10 * stats.chi2.ppf(0.999, live.sum() - 1)


def test_stratified_draws_fall_in_their_slices() -> None:
    tree = SumTree(4)
    tree.update(np.arange(4), np.ones(4))
    # With 4 equal leaves and 4 strata, stratum i can only be leaf i.
    np.testing.assert_array_equal(tree.sample(4, np.random.default_rng(3)), np.arange(4))


def test_bad_input_is_refused_with_the_reason() -> None:
    tree = SumTree(4)
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        tree.update([4], [1.0])
    with pytest.raises(ValueError, match="finite and >= 0"):
        tree.update([1], [-1.0])
    with pytest.raises(ValueError, match="finite and >= 0"):
        tree.update([1, 2], [np.nan, 1.0])
    with pytest.raises(ValueError, match="capacity"):
        SumTree(0)
    assert tree.total == 0.0  # nothing was written by the refused updates
