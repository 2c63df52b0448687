"""PrioritizedTrajectoryReplay: sampling law, IS weights, FIFO, staleness, rejection, memory, threads."""

from __future__ import annotations

import re
import threading

import numpy as np
import pytest
from scipy import stats

from distrl_jax.replay.buffer import PrioritizedTrajectoryReplay
from distrl_jax.types import Trajectory


def make_trajectory(
    ident: int, length: int = 3, *, version: int = 0, screen: int = 8, success: bool = False
) -> Trajectory:
    """A trajectory whose every array carries ``ident``, so a sampled row names its source."""
    t = length
    return Trajectory(
        screens=np.full((t + 1, screen, screen, 3), ident % 256, np.uint8),
        context=np.full((t + 1, 5), ident, np.int32),
        actions=np.full((t, 4), ident, np.int32),
        rewards=np.zeros(t, np.float32),
        penalties=np.zeros(t, np.float32),
        dones=np.zeros(t, np.float32),
        behaviour_logp=np.full(t, -float(ident), np.float32),
        success=success,
        policy_version=version,
        episode_id=ident,
    )


def sampled_ids(batch) -> np.ndarray:
    """The ``ident`` of each sampled row (read from its context)."""
    return batch.context[:, 0, 0]


def make_replay(**kwargs) -> PrioritizedTrajectoryReplay:
    defaults = dict(capacity=16, horizon=4, alpha=0.5, beta0=0.4, beta_steps=100, seed=0)
    return PrioritizedTrajectoryReplay(**{**defaults, **kwargs})


def chi_square(counts: np.ndarray, probs: np.ndarray) -> float:
    expected = probs * counts.sum()
    return float(((counts - expected) ** 2 / expected).sum())


@pytest.mark.parametrize(
    "sampling,alpha", [("prioritized", 0.5), ("prioritized", 1.0), ("uniform", 0.5)]
)
def test_sampling_frequencies_follow_p_to_the_alpha(sampling: str, alpha: float) -> None:
    priorities = np.array([0.2, 1.0, 3.0, 0.5, 6.0, 1.5, 0.05, 2.0])
    replay = make_replay(capacity=8, sampling=sampling, alpha=alpha)
    keys = np.array([replay.insert(make_trajectory(i)) for i in range(8)])
    assert replay.update_priorities(keys, priorities) == 8
    rng = np.random.default_rng(123)
    ids = np.concatenate([sampled_ids(replay.sample(64, rng)) for _ in range(300)])
    counts = np.bincount(ids, minlength=8)
    want = priorities**alpha if sampling == "prioritized" else np.ones(8)
    critical = stats.chi2.ppf(0.999, df=7)
    assert chi_square(counts, want / want.sum()) < critical
    # Power check: the other plausible laws are rejected, so the test can fail.
    for wrong in ({0.5: priorities, 1.0: priorities**0.5}.get(alpha, priorities), np.ones(8)):
        if not np.allclose(wrong / wrong.sum(), want / want.sum()):
            assert chi_square(counts, wrong / wrong.sum()) > critical


def test_importance_weights_match_a_hand_computation_and_beta_anneals() -> None:
    replay = make_replay(capacity=3, alpha=0.5, beta0=0.4, beta_steps=4)
    keys = np.array([replay.insert(make_trajectory(i)) for i in range(3)])
    replay.update_priorities(keys, [1.0, 4.0, 9.0])  # masses p^0.5 = 1, 2, 3 -> P = 1/6, 2/6, 3/6
    batch = replay.sample(6, np.random.default_rng(0))
    ids = sampled_ids(batch)
    # Stratified over 6 equal slices of mass 6: item 0 once, item 1 twice, item 2 three times.
    np.testing.assert_array_equal(np.sort(ids), [0, 1, 1, 2, 2, 2])
    beta = 0.4  # first call: beta0
    raw = {0: (3 * 1 / 6) ** -beta, 1: (3 * 2 / 6) ** -beta, 2: (3 * 3 / 6) ** -beta}
    hand = np.array([raw[i] for i in ids]) / raw[0]
    np.testing.assert_allclose(batch.is_weights, hand, rtol=1e-6)
    assert batch.is_weights.dtype == np.float32
    for expected_beta in (0.55, 0.7, 0.85, 1.0, 1.0):
        assert replay.stats()["beta"] == pytest.approx(expected_beta)
        batch = replay.sample(6, np.random.default_rng(0))
    # beta = 1: weights are 1/(N·P) normalised by the largest: P = 1/6, 2/6, 3/6 -> 1, 1/2, 1/3.
    hand = np.array([1, 1 / 2, 1 / 3])[sampled_ids(batch)]
    np.testing.assert_allclose(batch.is_weights, hand, rtol=1e-6)


def test_stratified_batches_are_shuffled_out_of_age_order() -> None:
    replay = make_replay(capacity=64)
    for i in range(64):
        replay.insert(make_trajectory(i))
    ids = sampled_ids(replay.sample(64, np.random.default_rng(0)))
    assert len(set(ids.tolist())) == 64  # equal masses: stratum i is slot i, each drawn once
    assert not np.array_equal(ids, np.sort(ids))


def test_uniform_mode_gives_unit_weights() -> None:
    replay = make_replay(sampling="uniform")
    keys = [replay.insert(make_trajectory(i)) for i in range(5)]
    replay.update_priorities(keys, [0.1, 10, 1, 1, 1])
    np.testing.assert_array_equal(replay.sample(32).is_weights, np.ones(32, np.float32))


def test_padding_mask_and_contents_round_trip() -> None:
    replay = make_replay(horizon=4, capacity=2)
    replay.insert(make_trajectory(7, length=2, version=3, success=True))
    b = replay.sample(1)
    assert b.screens.shape == (1, 5, 8, 8, 3) and b.actions.shape == (1, 4, 4)
    np.testing.assert_array_equal(b.mask, [[1, 1, 0, 0]])
    assert np.all(b.screens[0, :3] == 7) and np.all(b.screens[0, 3:] == 0)
    np.testing.assert_array_equal(b.behaviour_logp, [[-7, -7, 0, 0]])
    assert b.success.tolist() == [1.0] and b.policy_version.tolist() == [3]
    assert b.policy_version.dtype == np.int32 and b.indices.dtype == np.int64
    # A shorter trajectory later written into the same slot leaves no trace of the longer one.
    replay = make_replay(horizon=4, capacity=1)
    replay.insert(make_trajectory(5, length=4))
    replay.insert(make_trajectory(6, length=1))
    b = replay.sample(1)
    assert np.all(b.context[0, 2:] == 0) and np.all(b.actions[0, 1:] == 0)


def test_fifo_eviction_keeps_the_newest() -> None:
    replay = make_replay(capacity=3)
    keys = [replay.insert(make_trajectory(i)) for i in range(5)]
    assert set(sampled_ids(replay.sample(200)).tolist()) == {2, 3, 4}
    s = replay.stats()
    assert (s["size"], s["inserts"], s["evicted"], s["steps"]) == (3, 5, 2, 9)
    assert np.isnan(replay.get_priorities(keys[:2])).all()
    assert not np.isnan(replay.get_priorities(keys[2:])).any()


def test_new_items_enter_at_the_current_max_priority() -> None:
    replay = make_replay(capacity=4, alpha=0.7)
    keys = [replay.insert(make_trajectory(i)) for i in range(2)]
    np.testing.assert_array_equal(replay.get_priorities(keys), [1.0, 1.0])
    replay.update_priorities(keys, [5.0, 2.0])
    new = replay.insert(make_trajectory(2))
    assert replay.get_priorities([new])[0] == pytest.approx(5.0)
    replay.update_priorities([*keys, new], [0.3, 0.2, 0.1])
    assert replay.get_priorities([replay.insert(make_trajectory(3))])[0] == pytest.approx(0.3)
    assert replay.stats()["max_priority"] == pytest.approx(0.3)


def test_priorities_are_clipped_and_must_be_finite() -> None:
    replay = make_replay(priority_eps=1e-3)
    keys = [replay.insert(make_trajectory(i)) for i in range(2)]
    replay.update_priorities(keys, [0.0, -4.0])
    np.testing.assert_allclose(replay.get_priorities(keys), [1e-3, 1e-3])
    assert set(sampled_ids(replay.sample(100)).tolist()) == {0, 1}  # still sampleable
    with pytest.raises(ValueError, match="non-finite"):
        replay.update_priorities(keys, [np.nan, 1.0])
    with pytest.raises(ValueError, match="2 keys but 1 priorities"):
        replay.update_priorities(keys, [1.0])


def test_priority_update_after_overwrite_is_ignored() -> None:
    replay = make_replay(capacity=2)
    replay.insert(make_trajectory(0))
    replay.insert(make_trajectory(1))
    batch = replay.sample(8)
    newcomer = replay.insert(make_trajectory(2))  # overwrites trajectory 0's slot
    applied = replay.update_priorities(batch.indices, np.full(8, 50.0))
    ids = sampled_ids(batch)
    assert applied == len(set(ids[ids == 1].tolist()))  # one update per distinct live key
    assert replay.get_priorities([newcomer])[0] == pytest.approx(1.0)  # untouched
    assert replay.stats()["ignored_priority_updates"] == int((ids == 0).any())
    assert 0 in ids  # otherwise the test tested nothing (fixed seed: it is sampled)


def test_staleness_drops_old_items_and_never_samples_them() -> None:
    replay = make_replay(capacity=8, max_staleness=2)
    for v in range(4):
        replay.insert(make_trajectory(v, version=v))
    assert replay.set_policy_version(4) == 2  # versions 0 and 1 are more than 2 behind
    assert set(sampled_ids(replay.sample(300)).tolist()) == {2, 3}
    assert replay.insert(make_trajectory(9, version=1)) is None  # stale on arrival
    s = replay.stats()
    assert (s["dropped_stale"], s["size"], s["steps"]) == (3, 2, 6)
    replay.set_policy_version(10)
    assert len(replay) == 0
    with pytest.raises(ValueError, match="empty replay"):
        replay.sample(1)


def test_rejected_trajectories_leave_the_buffer_intact() -> None:
    replay = make_replay(capacity=3, horizon=4)
    keys = [replay.insert(make_trajectory(i)) for i in range(2)]
    before = replay.get_priorities(keys)
    bad_dtype = make_trajectory(8)
    bad_dtype.rewards = bad_dtype.rewards.astype(np.float64)
    with pytest.raises(ValueError, match="T=5 actions, more than the replay horizon H=4"):
        replay.insert(make_trajectory(5, length=5))
    with pytest.raises(ValueError, match=re.escape("'screens' has per-step shape (9, 9, 3)")):
        replay.insert(make_trajectory(6, screen=9))
    with pytest.raises(ValueError, match="'rewards' has dtype float64"):
        replay.insert(bad_dtype)
    s = replay.stats()
    assert (s["rejected"], s["size"], s["inserts"], s["evicted"]) == (3, 2, 2, 0)
    np.testing.assert_array_equal(replay.get_priorities(keys), before)
    replay.insert(make_trajectory(2))  # the next insert goes to the next free slot: no eviction
    assert replay.stats()["evicted"] == 0
    assert set(sampled_ids(replay.sample(200)).tolist()) == {0, 1, 2}


def test_memory_budget_refusal_names_a_capacity_that_fits() -> None:
    shapes = {"screens": (8, 8, 3), "context": (5,), "actions": (4,)}
    with pytest.raises(ValueError, match="a capacity of at most") as err:
        make_replay(capacity=1000, memory_budget_bytes=200_000, step_shapes=shapes)
    fits = int(re.search(r"at most (\d+) fits", str(err.value)).group(1))
    assert "capacity=1000" in str(err.value) and "memory_budget_bytes=200,000" in str(err.value)
    assert 0 < fits < 1000
    ok = make_replay(capacity=fits, memory_budget_bytes=200_000, step_shapes=shapes)
    assert ok.bytes_in_use() <= 200_000
    with pytest.raises(ValueError, match="at most"):
        make_replay(capacity=fits + 1, memory_budget_bytes=200_000, step_shapes=shapes)
    # Without step_shapes the check happens at the first insert, which is refused.
    lazy = make_replay(capacity=1000, memory_budget_bytes=200_000)
    with pytest.raises(ValueError, match=f"at most {fits} fits"):
        lazy.insert(make_trajectory(0))
    assert len(lazy) == 0


def test_compressed_screens_round_trip_and_shrink_memory() -> None:
    plain, packed = make_replay(capacity=4), make_replay(capacity=4, compress_screens=True)
    for replay in (plain, packed):
        for i in range(6):
            replay.insert(make_trajectory(i, length=1 + i % 4, screen=16))
    a, b = plain.sample(16, np.random.default_rng(5)), packed.sample(16, np.random.default_rng(5))
    for name in ("screens", "context", "mask", "is_weights", "indices"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert packed.bytes_in_use() < plain.bytes_in_use() / 4
    assert packed.stats()["bytes_per_step"] < plain.stats()["bytes_per_step"]


def test_compressed_mode_evicts_oldest_to_stay_in_budget() -> None:
    rng = np.random.default_rng(0)
    replay = make_replay(capacity=50, compress_screens=True, memory_budget_bytes=40_000)
    for i in range(30):
        traj = make_trajectory(i, length=4, screen=16)
        traj.screens = rng.integers(0, 256, traj.screens.shape, dtype=np.uint8)  # incompressible
        replay.insert(traj)
        assert replay.bytes_in_use() <= 40_000
    s = replay.stats()
    assert s["evicted_for_memory"] > 0 and s["size"] + s["evicted_for_memory"] == 30
    assert min(sampled_ids(replay.sample(100)).tolist()) == 30 - s["size"]  # the newest remain


def test_bad_arguments_name_the_field() -> None:
    with pytest.raises(ValueError, match="sampling='greedy'"):
        make_replay(sampling="greedy")
    with pytest.raises(ValueError, match="capacity=0"):
        make_replay(capacity=0)
    with pytest.raises(ValueError, match=r"beta0=1\.5"):
        make_replay(beta0=1.5)
    with pytest.raises(ValueError, match="batch_size=0"):
        make_replay().sample(0)


@pytest.mark.parametrize("compress", [False, True])
def test_threaded_gather_matches_single_threaded(compress: bool) -> None:
    # 64 x 5 x 48x48x3 screens = 2.2 MB per batch: above the size where the gather is split.
    single = make_replay(capacity=32, gather_threads=1, compress_screens=compress)
    split = make_replay(capacity=32, gather_threads=3, compress_screens=compress)
    for replay in (single, split):
        for i in range(40):
            replay.insert(make_trajectory(i, length=1 + i % 4, screen=48))
    a, b = single.sample(64, np.random.default_rng(9)), split.sample(64, np.random.default_rng(9))
    for name in ("screens", "context", "actions", "mask", "is_weights", "indices"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    # Real states 0..T hold the trajectory's id in every pixel; padding states are zero.
    real_state = np.arange(5)[None, :] <= b.mask.sum(axis=1, keepdims=True)
    want = np.where(real_state, sampled_ids(b)[:, None] % 256, 0)
    np.testing.assert_array_equal(b.screens[:, :, 0, 0, 0], want)
    assert np.all(b.screens == b.screens[:, :, :1, :1, :1])
    split.close()
    np.testing.assert_array_equal(split.sample(64, np.random.default_rng(9)).screens, a.screens)


@pytest.mark.timeout(60)
def test_concurrent_insert_and_sample_never_return_torn_rows() -> None:
    replay = make_replay(capacity=4, horizon=4)
    for i in range(4):
        replay.insert(make_trajectory(i, length=4, screen=32))
    stop = threading.Event()
    errors: list[BaseException] = []

    def ingest() -> None:
        i = 4
        try:
            while not stop.is_set():
                replay.insert(make_trajectory(i, length=4, screen=32))
                i += 1
        except BaseException as exc:  # surfaced to the test below
            errors.append(exc)

    thread = threading.Thread(target=ingest)
    thread.start()
    try:
        rng = np.random.default_rng(0)
        for _ in range(200):
            b = replay.sample(16, rng)
            ids = sampled_ids(b)
            # Every array of a row must come from the same trajectory.
            assert np.all(b.screens == (ids % 256)[:, None, None, None, None])
            assert np.all(b.behaviour_logp == -ids[:, None].astype(np.float32))
            assert np.all(b.actions == ids[:, None, None])
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not errors and not thread.is_alive()
    assert replay.stats()["inserts"] > 4  # the two threads really overlapped
