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
