"""Trajectory validation and its rebuild from wire arrays + meta."""

from __future__ import annotations

import json

import numpy as np
import pytest

from distrl_jax.types import TRAJECTORY_ARRAYS, StepInfo, Trajectory


def make_trajectory(t: int = 3, seed: int = 0, hw: tuple[int, int] = (8, 4)) -> Trajectory:
    rng = np.random.default_rng(seed)
    return Trajectory(
        screens=rng.integers(0, 256, (t + 1, *hw, 3), dtype=np.uint8),
        context=rng.integers(0, 300, (t + 1, 6), dtype=np.int32),
        actions=rng.integers(0, 300, (t, 5), dtype=np.int32),
        rewards=np.eye(1, t, t - 1, dtype=np.float32)[0],
        penalties=-rng.random(t, dtype=np.float32) * 0.1,
        dones=np.eye(1, t, t - 1, dtype=np.float32)[0],
        behaviour_logp=-rng.random(t, dtype=np.float32),
        task="Open the clock",
        success=True,
        policy_version=7,
        actor_id=2,
        episode_id=41,
    )


def assert_same(a: Trajectory, b: Trajectory) -> None:
    for name in TRAJECTORY_ARRAYS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(x, y)
    assert a.meta() == b.meta()


@pytest.mark.parametrize("t", [1, 2, 10])
def test_valid_trajectory(t: int) -> None:
    traj = make_trajectory(t)
    traj.validate()
    assert traj.length == t


def test_arrays_are_the_fields_without_copies() -> None:
    traj = make_trajectory()
    arrays = traj.arrays()
    assert list(arrays) == list(TRAJECTORY_ARRAYS)
    assert all(arrays[n] is getattr(traj, n) for n in TRAJECTORY_ARRAYS)


def test_meta_is_json_with_python_types() -> None:
    traj = make_trajectory()
    traj.success = np.bool_(True)  # as produced by numpy comparisons on the actor
    traj.policy_version = np.int64(7)
    meta = traj.meta()
    assert json.loads(json.dumps(meta)) == meta
    assert meta == {
        "task": "Open the clock",
        "success": True,
        "policy_version": 7,
        "actor_id": 2,
        "episode_id": 41,
    }
    assert type(meta["success"]) is bool and type(meta["policy_version"]) is int


def test_from_arrays_round_trip() -> None:
    traj = make_trajectory(t=4, seed=3)
    wire_meta = json.loads(json.dumps(traj.meta()))
    # Arrays come off the wire as read-only views of received buffers.
    wire_arrays = {}
    for name, arr in traj.arrays().items():
        view = np.frombuffer(arr.tobytes(), dtype=arr.dtype).reshape(arr.shape)
        assert not view.flags.writeable
        wire_arrays[name] = view
    back = Trajectory.from_arrays(wire_arrays, wire_meta)
    assert_same(back, traj)


def test_from_arrays_defaults_missing_meta() -> None:
    back = Trajectory.from_arrays(make_trajectory().arrays(), {})
    assert back.meta() == {
        "task": "",
        "success": False,
        "policy_version": 0,
        "actor_id": 0,
        "episode_id": 0,
    }


def test_from_arrays_names_missing_fields() -> None:
    arrays = make_trajectory().arrays()
    del arrays["rewards"], arrays["dones"]
    with pytest.raises(ValueError, match=r"missing array fields \['rewards', 'dones'\]"):
        Trajectory.from_arrays(arrays, {})


def test_from_arrays_validates() -> None:
    arrays = make_trajectory().arrays()
    arrays["rewards"] = arrays["rewards"].astype(np.float64)
    with pytest.raises(ValueError, match="'rewards' has dtype float64, expected float32"):
        Trajectory.from_arrays(arrays, {})


@pytest.mark.parametrize("name", list(TRAJECTORY_ARRAYS))
def test_wrong_dtype_names_the_field(name: str) -> None:
    traj = make_trajectory()
    want = TRAJECTORY_ARRAYS[name]
    wrong = np.dtype(np.float32) if want != np.float32 else np.dtype(np.float16)
    setattr(traj, name, getattr(traj, name).astype(wrong))
    with pytest.raises(ValueError, match=f"{name!r} has dtype {wrong}, expected {want}"):
        traj.validate()


@pytest.mark.parametrize("name", [n for n in TRAJECTORY_ARRAYS if n != "actions"])
@pytest.mark.parametrize("delta", [-1, 1])
def test_wrong_length_names_the_field(name: str, delta: int) -> None:
    traj = make_trajectory(t=3)
    arr = getattr(traj, name)
    want = arr.shape[0]
    bad = np.concatenate([arr, arr[:1]]) if delta > 0 else arr[:-1]
    setattr(traj, name, bad)
    with pytest.raises(
        ValueError, match=rf"{name!r} has leading dim {want + delta}, expected {want} \(T=3\)"
    ):
        traj.validate()


def test_actions_set_the_length() -> None:
    traj = make_trajectory(t=3)
    traj.actions = traj.actions[:2]  # now every other field is one too long
    with pytest.raises(ValueError, match=r"'screens' has leading dim 4, expected 3 \(T=2\)"):
        traj.validate()


def test_no_actions_is_refused() -> None:
    traj = make_trajectory(t=1)
    for name in TRAJECTORY_ARRAYS:
        arr = getattr(traj, name)
        setattr(traj, name, arr[:1] if name in ("screens", "context") else arr[:0])
    with pytest.raises(ValueError, match="no actions"):
        traj.validate()


def test_non_array_field_is_refused() -> None:
    traj = make_trajectory()
    traj.rewards = traj.rewards.tolist()
    with pytest.raises(ValueError, match="'rewards' must be a numpy array"):
        traj.validate()


@pytest.mark.parametrize(
    "shape", [(4, 8, 4), (4, 8, 4, 4), (4, 8, 4, 1)], ids=["no-channels", "rgba", "gray"]
)
def test_screens_must_be_rgb(shape: tuple[int, ...]) -> None:
    traj = make_trajectory(t=3)
    traj.screens = np.zeros(shape, np.uint8)
    with pytest.raises(ValueError, match="screens"):
        traj.validate()


@pytest.mark.parametrize("bad", [[[1, 2]], np.array(5, np.int32)], ids=["list", "0-d"])
def test_malformed_actions_give_value_error(bad) -> None:
    traj = make_trajectory()
    traj.actions = bad
    with pytest.raises(ValueError, match="actions"):
        traj.validate()


@pytest.mark.parametrize(
    ("name", "shape"),
    [("rewards", (3, 2)), ("actions", (3,)), ("context", (4,))],
)
def test_wrong_rank_names_the_field(name: str, shape: tuple[int, ...]) -> None:
    traj = make_trajectory(t=3)
    setattr(traj, name, np.zeros(shape, TRAJECTORY_ARRAYS[name]))
    with pytest.raises(ValueError, match=name):
        traj.validate()


def test_step_info_defaults_are_a_plain_step() -> None:
    info = StepInfo()
    assert (info.reward, info.penalty, info.latency_s) == (0.0, 0.0, 0.0)
    assert not (info.done or info.success or info.invalid or info.repeated or info.truncated)


# ---------------------------------------------------------------- poisoned values


def _poison(traj: Trajectory, name: str, index: tuple[int, ...], value) -> Trajectory:
    arr = getattr(traj, name).copy()
    arr[index] = value
    setattr(traj, name, arr)
    return traj


POISONED = [
    ("rewards", (1,), np.nan, "'rewards' has a non-finite"),
    ("rewards", (0,), np.inf, "'rewards' has a non-finite"),
    ("penalties", (2,), -np.inf, "'penalties' has a non-finite"),
    ("behaviour_logp", (0,), np.nan, "'behaviour_logp' has a non-finite"),
    ("behaviour_logp", (1,), -np.inf, "'behaviour_logp' has a non-finite"),
    ("dones", (0,), 0.5, "'dones' has a value other than 0 or 1"),
    ("dones", (1,), np.nan, "'dones' has a value other than 0 or 1"),
    ("dones", (2,), -1.0, "'dones' has a value other than 0 or 1"),
    ("context", (3, 5), -1, r"'context' has token ids in \[-1, "),
    ("actions", (0, 0), -(2**31), "'actions' has token ids in"),
]


@pytest.mark.parametrize(("name", "index", "value", "error"), POISONED)
def test_poisoned_values_are_refused(name: str, index, value, error: str) -> None:
    """Well-formed but poisoned trajectories (NaN priorities, ids outside any embedding) are
    refused by validate and so by from_arrays (the wire's decoder)."""
    traj = _poison(make_trajectory(t=3), name, index, value)
    with pytest.raises(ValueError, match=error):
        traj.validate()
    with pytest.raises(ValueError, match=error):
        Trajectory.from_arrays(traj.arrays(), traj.meta())


def test_token_ids_are_bounded_by_the_vocabulary_when_given() -> None:
    traj = make_trajectory(t=3)  # ids in [0, 300)
    traj.validate(vocab_size=300)
    top = int(max(traj.context.max(), traj.actions.max()))
    traj.validate(vocab_size=top + 1)
    _poison(traj, "actions", (2, 4), 300)
    traj.validate()  # no vocabulary given: only negative ids are refused
    with pytest.raises(ValueError, match=r"'actions' has token ids in \[\d+, 300\]; .*\[0, 300\)"):
        traj.validate(vocab_size=300)
    with pytest.raises(ValueError, match="'actions' has token ids"):
        Trajectory.from_arrays(traj.arrays(), traj.meta(), vocab_size=300)


def test_the_vocabulary_bound_matches_the_models() -> None:
    """What the learner would pass: every id the codec makes is < VOCAB_SIZE."""
    from distrl_jax.models import action_codec

    traj = make_trajectory(t=2)
    traj.actions = np.full_like(traj.actions, action_codec.VOCAB_SIZE - 1)
    traj.validate(vocab_size=action_codec.VOCAB_SIZE)
    traj.actions[0, 0] = action_codec.VOCAB_SIZE
    with pytest.raises(ValueError, match="token ids"):
        traj.validate(vocab_size=action_codec.VOCAB_SIZE)


def test_policy_version_must_be_one_that_was_made() -> None:
    traj = make_trajectory()  # version 7
    traj.validate(max_policy_version=7)
    with pytest.raises(ValueError, match=r"policy_version 7 .*\(the newest is 6\)"):
        traj.validate(max_policy_version=6)
    traj.policy_version = -1
    with pytest.raises(ValueError, match="policy_version -1"):
        traj.validate()


def test_legal_extremes_pass() -> None:
    """Every done pattern of 0/1, zero penalties, very negative (finite) log-probs, id 0."""
    traj = make_trajectory(t=4)
    traj.dones = np.array([0, 1, 1, 0], np.float32)
    traj.penalties = np.zeros(4, np.float32)
    traj.behaviour_logp = np.array([-1e30, 0.0, -3.5, -80.0], np.float32)
    traj.context = np.zeros_like(traj.context)
    traj.actions = np.zeros_like(traj.actions)
    traj.policy_version = 0
    traj.validate(vocab_size=1, max_policy_version=0)
