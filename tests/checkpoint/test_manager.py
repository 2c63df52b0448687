"""The Orbax checkpointer: exact round trips, keep-N, corrupt-step fallback, train-state resume.

Every test writes real Orbax checkpoints under ``tmp_path``. Small pytrees stand in for the
model where only the manager's bookkeeping is under test (fast); the model-level tests use the
tiny preset, restore into ``abstract_model`` targets the way an actor does, and check that a
policy built from the restored parameters behaves exactly like one built from the originals.
"""

from __future__ import annotations

import logging
import pathlib

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from distrl_jax import core
from distrl_jax.checkpoint.manager import Checkpointer, CheckpointError
from distrl_jax.config import LearnerConfig
from distrl_jax.learner.sharding import make_mesh
from distrl_jax.learner.train_step import ShardedTrainer, TrainState, make_optimizer, rl_loss
from distrl_jax.models import policy as P
from distrl_jax.models import scoring
from distrl_jax.models.jax_policy import JaxPolicy
from distrl_jax.models.spec import ModelSpec, tiny

SPEC = tiny()
LOGGER = "distrl_jax.checkpoint.manager"
LOGPROB = jax.jit(scoring.action_logprob, static_argnums=0)


def _tree(step: int) -> dict:
    """A small pytree whose values identify ``step`` (fast stand-in for model parameters)."""
    rng = np.random.default_rng(step)
    return {
        "w": rng.normal(size=(16, 8)).astype(np.float32),
        "inner": {"b": np.full((5,), step, np.int32)},
    }


def _abstract(tree: dict) -> dict:
    """ShapeDtypeStruct restore target of ``tree``."""
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), tree)


def _assert_trees_equal(expected, actual) -> None:
    """Same tree paths, shapes, dtypes and exactly equal values.

    Paths, not tree definitions, are compared: NNX variables carry metadata (e.g. whether they
    were created under eager sharding) that differs between a learner's and an actor's model
    without changing what the parameters are.
    """
    want = jax.tree_util.tree_flatten_with_path(expected)[0]
    got = jax.tree_util.tree_flatten_with_path(actual)[0]
    assert len(want) > 0
    assert [jax.tree_util.keystr(p) for p, _ in got] == [jax.tree_util.keystr(p) for p, _ in want]
    for (path, w), (_, g) in zip(want, got, strict=True):
        where = jax.tree_util.keystr(path)
        assert np.asarray(g).dtype == np.asarray(w).dtype, where
        np.testing.assert_array_equal(np.asarray(g), np.asarray(w), err_msg=where)


def _observations(spec: ModelSpec) -> list[core.Observation]:
    """Three fixed observations (seeded screens, distinct tasks and histories)."""
    rng = np.random.default_rng(7)
    h, w = spec.image_size
    screens = rng.integers(0, 256, (3, h, w, 3), dtype=np.uint8)
    return [
        core.Observation(screens[0], "open the clock app"),
        core.Observation(screens[1], "search for pizza nearby", ("HOME",)),
        core.Observation(screens[2], "turn on wifi", ("HOME", "BACK")),
    ]


def _corrupt(step_dir: pathlib.Path, how: str) -> None:
    """Damage the ``params`` item of a committed step the way a bad disk or a stray rm would."""
    files = [f for f in (step_dir / "params").rglob("*") if f.is_file()]
    assert files, f"no files under {step_dir / 'params'}"
    rng = np.random.default_rng(0)
    if how == "garbage":
        for f in files:
            f.write_bytes(rng.integers(0, 256, max(f.stat().st_size, 64), dtype=np.uint8).tobytes())
    elif how == "truncate":
        for f in files:
            f.write_bytes(f.read_bytes()[: f.stat().st_size // 3])
    elif how == "delete_data":
        # The array chunks live in OCDBT data files under `d/` folders; metadata stays intact.
        data = [f for f in files if f.parent.name == "d"]
        assert data, f"no OCDBT data files under {step_dir / 'params'}"
        for f in data:
            f.unlink()
    else:
        raise ValueError(how)


def test_model_params_round_trip_gives_the_same_policy(tmp_path: pathlib.Path) -> None:
    """Params saved and restored into the abstract model are bit-identical and act identically."""
    original = nnx.state(P.init_model(SPEC, seed=3))
    with Checkpointer(tmp_path / "ckpt", use_async=False) as ckpt:
        assert ckpt.save(5, original, {"policy_version": 5, "config": "tiny"})
        step, restored, opt, meta = ckpt.restore(nnx.state(P.abstract_model(SPEC)))
    assert step == 5
    assert opt is None  # no optimizer state was saved or asked for
    assert meta == {"policy_version": 5, "config": "tiny"}
    assert isinstance(restored, nnx.State)
    _assert_trees_equal(original, restored)

    # One policy (one compilation): act with the original parameters, then load the restored
    # ones through set_params, which is how an actor picks up a checkpoint.
    obs = _observations(SPEC)
    policy = JaxPolicy(SPEC, original, greedy=True, buckets=(4,))
    before = policy.act(obs)
    # The comparison below must be able to fail: other parameters change the outputs.
    policy.set_params(jax.tree.map(lambda x: x * 1.5 + 0.01, original), version=1)
    perturbed = policy.act(obs)
    assert [p.logp for p in perturbed] != [b.logp for b in before]
    policy.set_params(restored, version=step)
    after = policy.act(obs)
    assert policy.version == 5
    assert policy.trace_count == 1
    assert len(before) == len(after) == len(obs)
    for b, a in zip(before, after, strict=True):
        assert a.action == b.action
        np.testing.assert_array_equal(a.tokens, b.tokens)
        assert a.logp == b.logp
        assert a.text == b.text

    # Teacher-forced scores of the greedy actions agree exactly as well.
    screens = np.stack([o.screen for o in obs])
    context = policy.contexts.encode_batch([o.task for o in obs], [o.history for o in obs])
    actions = np.stack([b.tokens for b in before])
    chex.assert_shape(actions, (len(obs), SPEC.action_len))
    want = LOGPROB(policy.graphdef, original, screens, context, actions)
    got = LOGPROB(policy.graphdef, restored, screens, context, actions)
    for w, g in zip(want, got, strict=True):
        np.testing.assert_array_equal(np.asarray(g), np.asarray(w))
    # Greedy log-probs are log π at temperature 1, i.e. what scoring computes.
    np.testing.assert_allclose(np.asarray(got[0]), [b.logp for b in before], rtol=1e-5, atol=1e-5)


def test_keep_n_steps_latest_and_path(tmp_path: pathlib.Path) -> None:
    """``keep=2`` leaves the two newest steps on disk; steps/latest_step/path describe them."""
    directory = tmp_path / "ckpt"
    with Checkpointer(directory, keep=2, use_async=False) as ckpt:
        assert ckpt.directory == directory.resolve()
        assert ckpt.steps() == []
        assert ckpt.latest_step() is None
        for step in (10, 20, 30, 40):
            assert ckpt.save(step, _tree(step), {"step": step})
        assert ckpt.steps() == [30, 40]
        assert ckpt.latest_step() == 40
        assert ckpt.path(40) == directory.resolve() / "40"
        assert ckpt.path(40).is_dir() and (ckpt.path(40) / "params").is_dir()
        assert ckpt.path(30).is_dir()
        assert not ckpt.path(10).exists() and not ckpt.path(20).exists()
        step, params, _, meta = ckpt.restore(_abstract(_tree(0)))
        assert step == 40 and meta == {"step": 40}
        _assert_trees_equal(_tree(40), params)
        step, params, _, meta = ckpt.restore(_abstract(_tree(0)), step=30)
        assert step == 30 and meta == {"step": 30}
        _assert_trees_equal(_tree(30), params)
    # A fresh manager on the same folder (a restarted learner) sees the same steps.
    with Checkpointer(directory, keep=2, use_async=False) as again:
        assert again.steps() == [30, 40]


def test_empty_directory_raises_naming_it(tmp_path: pathlib.Path) -> None:
    """Restoring from a folder without checkpoints is an error, never a silent fresh start."""
    with Checkpointer(tmp_path / "empty", use_async=False) as ckpt:
        assert (tmp_path / "empty").is_dir()
        with pytest.raises(CheckpointError, match="no checkpoint") as info:
            ckpt.restore(_abstract(_tree(0)))
        assert str(ckpt.directory) in str(info.value)


# A failed Orbax read can leave its internal asyncio loop to be closed under a pending callback;
# that noise comes from Orbax's cleanup, not from the manager.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("how", ["garbage", "truncate", "delete_data"])
def test_corrupt_newest_step_falls_back_to_previous(
    tmp_path: pathlib.Path, caplog: pytest.LogCaptureFixture, how: str
) -> None:
    """A damaged newest step is logged and skipped; with every step damaged restore fails."""
    with Checkpointer(tmp_path / "ckpt", keep=5, use_async=False) as ckpt:
        for step in (1, 2, 3):
            ckpt.save(step, _tree(step), {"step": step})
        _corrupt(ckpt.path(3), how)
        target = _abstract(_tree(0))

        with caplog.at_level(logging.ERROR, logger=LOGGER):
            step, params, _, meta = ckpt.restore(target)
        assert step == 2 and meta == {"step": 2}
        _assert_trees_equal(_tree(2), params)
        errors = [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.ERROR]
        assert len(errors) == 1
        assert "step 3" in errors[0].getMessage()
        assert str(ckpt.directory) in errors[0].getMessage()

        # The damaged step is moved aside (kept for inspection), so that step is saved afresh.
        assert ckpt.steps() == [1, 2]
        moved = list((tmp_path / "ckpt-unreadable").iterdir())
        assert [p.name.split("-")[0] for p in moved] == ["3"]
        # Asking for the damaged step explicitly must not hand back another step.
        with pytest.raises(CheckpointError, match="step 3"):
            ckpt.restore(target, step=3)
        ckpt.save(3, _tree(3), {"step": 3})
        assert ckpt.restore(target)[0] == 3

        for s in (1, 2, 3):
            _corrupt(ckpt.path(s), how)
        caplog.clear()
        with (
            caplog.at_level(logging.ERROR, logger=LOGGER),
            pytest.raises(CheckpointError, match="no usable checkpoint") as info,
        ):
            ckpt.restore(target)
        message = str(info.value)
        assert str(ckpt.directory) in message
        assert all(f"step {s}" in message for s in (1, 2, 3))
        assert len([r for r in caplog.records if r.name == LOGGER]) == 3
        assert ckpt.steps() == []


def test_other_preset_does_not_restore_into_tiny(tmp_path: pathlib.Path) -> None:
    """Parameters of a width-32 model are refused by a tiny (width-64) target with a clear error."""
    narrow = ModelSpec(name="narrow", width=32)
    with Checkpointer(tmp_path / "ckpt", use_async=False) as ckpt:
        # Concrete arrays of the narrow model's shapes (values do not matter; numpy avoids
        # compiling the initialisers for a second set of shapes).
        rng = np.random.default_rng(0)
        params = jax.tree.map(
            lambda s: rng.normal(size=s.shape).astype(s.dtype),
            nnx.state(P.abstract_model(narrow)),
        )
        assert params["encoder"]["token_embed"]["embedding"].shape[-1] == 32
        ckpt.save(1, params, {"config": "narrow"})
        with pytest.raises(
            CheckpointError, match=r"not compatible with the stored shape|do not match"
        ) as info:
            ckpt.restore(nnx.state(P.abstract_model(SPEC)))
        assert "step 1" in str(info.value)


def _trainer() -> ShardedTrainer:
    """A tiny-model learner on all local devices, as the learner process builds it."""
    return ShardedTrainer.create(
        SPEC,
        lambda g: rl_loss(g, LearnerConfig()),
        make_optimizer(1e-3, 1.0),
        make_mesh(-1, 1),
    )


def _perturbed(trainer: ShardedTrainer) -> TrainState:
    """The trainer's state with distinctive values everywhere (fresh Adam moments are all zero,
    which would make an exact-restore check unable to tell restored moments from fresh ones)."""
    rng = np.random.default_rng(11)

    def change(x: jax.Array) -> jax.Array:
        if jnp.issubdtype(x.dtype, jnp.floating):
            return x + rng.normal(size=x.shape).astype(x.dtype)
        return jnp.full(x.shape, 7, x.dtype)  # Adam's count

    state = trainer.state
    state = TrainState(
        jax.tree.map(change, state.params),
        jax.tree.map(change, state.opt_state),
        jnp.int32(7),
        jax.random.key_data(jax.random.key(1234)),
    )
    return jax.device_put(state, trainer.state_shardings)


def test_train_state_round_trip_and_params_only_restore(tmp_path: pathlib.Path) -> None:
    """A learner state restores exactly (with shardings); an actor can read the params alone."""
    trainer = _trainer()
    state = _perturbed(trainer)
    assert not np.array_equal(np.asarray(state.rng), np.asarray(trainer.state.rng))
    with Checkpointer(tmp_path / "ckpt", use_async=False) as ckpt:
        assert ckpt.save_train_state(state, {"config": "tiny", "replay_added": 12})
        assert ckpt.steps() == [7]  # saved at the state's own step

        restored, meta = ckpt.restore_train_state(trainer.abstract_state())
        assert isinstance(restored, TrainState)
        assert meta == {"config": "tiny", "replay_added": 12, "step": 7}
        _assert_trees_equal(state, restored)
        assert int(restored.step) == 7
        for got, want in zip(
            jax.tree.leaves(restored), jax.tree.leaves(trainer.state_shardings), strict=True
        ):
            assert got.sharding == want

        # The actor's case: no optimizer target, an unsharded abstract model as the params target.
        step, params, opt, meta = ckpt.restore(nnx.state(P.abstract_model(SPEC)))
        assert step == 7 and opt is None and meta["step"] == 7
        _assert_trees_equal(state.params, params)


def test_async_save_wait_and_context_manager(tmp_path: pathlib.Path) -> None:
    """Async saves are committed by ``wait`` and by leaving the ``with`` block (``close``)."""
    directory = tmp_path / "ckpt"
    ckpt = Checkpointer(directory, keep=3, use_async=True)
    assert ckpt.save(1, _tree(1), {"step": 1})
    ckpt.wait()
    assert ckpt.steps() == [1]
    assert (ckpt.path(1) / "params").is_dir()
    step, params, _, meta = ckpt.restore(_abstract(_tree(0)))
    assert step == 1 and meta == {"step": 1}
    _assert_trees_equal(_tree(1), params)
    ckpt.close()

    with Checkpointer(directory, keep=3, use_async=True) as ckpt:
        assert ckpt.save(2, _tree(2), {"step": 2})
    # A new manager (another process, in practice) sees step 2 committed after close().
    with Checkpointer(directory, keep=3, use_async=True) as reader:
        assert reader.steps() == [1, 2]
        step, params, _, meta = reader.restore(_abstract(_tree(0)))
        assert step == 2 and meta == {"step": 2}
        _assert_trees_equal(_tree(2), params)
