"""The jitted learner step on one device: it learns, compiles once, donates, and resumes exactly."""

from __future__ import annotations

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sharded_step_script import make_batch

from distrl_jax.checkpoint.manager import Checkpointer
from distrl_jax.config import LearnerConfig
from distrl_jax.learner import sharding
from distrl_jax.learner import train_step as TS
from distrl_jax.models.spec import tiny

B, H = 8, 10
LR = 1e-3


def host_copy(tree):
    """Owned NumPy copies of every leaf (a plain view would pin the buffer and block donation)."""
    return jax.tree.map(lambda x: np.array(x, copy=True), tree)


def leaves_by_path(tree) -> dict[str, np.ndarray]:
    """{"decoder/.../kernel/value": leaf} for a pytree."""
    return {sharding._path_str(p): x for p, x in jax.tree_util.tree_leaves_with_path(tree)}


@dataclasses.dataclass
class Harness:
    """A compiled trainer, its initial state on the host, and how often its loss was traced."""

    trainer: TS.ShardedTrainer
    initial: TS.TrainState
    traces: list[int]

    def reset(self) -> TS.ShardedTrainer:
        """Put the initial state back (fresh buffers, so they can be donated); no recompile."""
        state = jax.tree.map(jnp.array, self.initial)
        self.trainer.state = jax.device_put(state, self.trainer.state_shardings)
        return self.trainer


def make_harness(loss_factory, seed: int = 0, **create_kwargs) -> Harness:
    """A seeded 1-device trainer whose loss counts its own traces."""
    traces = [0]

    def counted(graphdef):
        inner = loss_factory(graphdef)

        def loss(params, batch, step):
            traces[0] += 1  # Python runs only while jax traces the step
            return inner(params, batch, step)

        return loss

    mesh = sharding.make_mesh(devices=jax.devices()[:1])
    trainer = TS.ShardedTrainer.create(
        tiny(), counted, TS.make_optimizer(LR, 1.0), mesh, seed=seed, **create_kwargs
    )
    return Harness(trainer, host_copy(trainer.state), traces)


@pytest.fixture(scope="module")
def aride() -> Harness:
    """The A-RIDE trainer, compiled once for the whole module."""
    cfg = LearnerConfig(critic_warmup_steps=0)  # the policy moves from the first step
    return make_harness(lambda g: TS.rl_loss(g, cfg))


@pytest.fixture(scope="module")
def batch() -> dict:
    """One seeded batch with variable lengths and some successes."""
    b = make_batch(seed=0, batch_size=B, horizon=H)
    # The loss tests need both outcomes and both ends of the length range in the batch.
    assert 0 < b["success"].sum() < B
    assert b["mask"].sum(1).min() == 1 and b["mask"].sum(1).max() == H
    return b


def run_steps(trainer: TS.ShardedTrainer, batches) -> tuple[list[dict], list[np.ndarray]]:
    """Step through ``batches``; return the metrics and priorities of each step."""
    out = [trainer.step(b) for b in batches]
    return [m for m, _ in out], [p for _, p in out]


def assert_step_outputs(metrics: dict, priorities: np.ndarray) -> None:
    """Finite metrics with loss and grad_norm, and one finite positive priority per trajectory."""
    assert {"loss", "grad_norm", "value_loss", "traj_value_loss"} <= metrics.keys()
    assert all(np.isfinite(v) for v in metrics.values()), metrics
    assert metrics["grad_norm"] > 0
    chex.assert_shape(priorities, (B,))
    assert np.all(np.isfinite(priorities)) and np.all(priorities > 0), priorities


# ------------------------------------------------------------------------------ A-RIDE


def test_batch_fields_are_what_the_step_reads(batch):
    assert set(TS.BATCH_FIELDS) == set(batch)
    chex.assert_shape(batch["screens"], (B, H + 1, *tiny().image_size, 3))
    chex.assert_shape(batch["actions"], (B, H, tiny().action_len))


def test_one_step_outputs_and_step_count(aride, batch):
    trainer = aride.reset()
    assert trainer.step_count == 0
    metrics, priorities = trainer.step(batch)
    assert_step_outputs(metrics, priorities)
    assert trainer.step_count == 1
    assert trainer.state.step.dtype == jnp.int32
    # The RNG advances every step (so a resumed run must restore it to match).
    assert not np.array_equal(np.asarray(trainer.state.rng), aride.initial.rng)


def test_loss_decreases_on_a_fixed_batch(aride, batch):
    trainer = aride.reset()
    metrics, priorities = run_steps(trainer, [batch] * 5)
    losses = [m["loss"] for m in metrics]
    for m, p in zip(metrics, priorities, strict=True):
        assert_step_outputs(m, p)
    assert losses[-1] < 0.8 * losses[0], losses
    assert trainer.step_count == 5


def test_every_param_changes_after_one_step(aride, batch):
    """Gradients reach every Param, including both critic heads (only their losses touch them)."""
    trainer = aride.reset()
    before = leaves_by_path(host_copy(trainer.state.params))
    trainer.step(batch)
    after = leaves_by_path(host_copy(trainer.state.params))
    assert before.keys() == after.keys()
    unchanged = [k for k in before if np.array_equal(before[k], after[k])]
    assert not unchanged, f"parameters a step did not change: {unchanged}"
    assert any(k.startswith("traj_value_head/") for k in before)
    assert any(k.startswith("value_head/") for k in before)


def test_step_compiles_once_across_steps_and_batches(aride):
    trainer = aride.reset()
    for seed in (1, 2, 3):  # different contents, same shapes: no retrace
        trainer.step(make_batch(seed=seed, batch_size=B, horizon=H))
    # Counted over every test of this module that used the trainer, not just this one.
    assert aride.traces[0] == 1


def test_step_donates_the_old_state(aride, batch):
    trainer = aride.reset()
    old = trainer.state
    trainer.step(batch)
    old_leaves = jax.tree.leaves(old)
    assert old_leaves and all(x.is_deleted() for x in old_leaves)
    assert not any(x.is_deleted() for x in jax.tree.leaves(trainer.state))


def test_put_batch_places_fields_with_the_step_dtypes(aride, batch):
    loose = {
        k: (v.astype(np.int64) if v.dtype != np.float32 else v.astype(np.float64))
        for k, v in batch.items()
    }
    placed = aride.trainer.put_batch(loose)
    assert placed.keys() == set(TS.BATCH_FIELDS)
    assert placed["screens"].dtype == jnp.uint8
    assert placed["context"].dtype == jnp.int32 and placed["actions"].dtype == jnp.int32
    assert placed["rewards"].dtype == jnp.float32 and placed["is_weights"].dtype == jnp.float32
    for k, v in placed.items():
        np.testing.assert_array_equal(np.asarray(v), batch[k], err_msg=k)
        assert v.sharding.spec == jax.sharding.PartitionSpec(sharding.DATA), k


# ------------------------------------------------------------------------------ other losses


def test_digirl_algo_trains(batch):
    cfg = LearnerConfig(algo="digirl", critic_warmup_steps=0)
    trainer = make_harness(lambda g: TS.rl_loss(g, cfg)).trainer
    metrics, priorities = run_steps(trainer, [batch] * 5)
    for m, p in zip(metrics, priorities, strict=True):
        assert_step_outputs(m, p)
        assert 0 < m["curriculum_kept_frac"] <= 1
    losses = [m["loss"] for m in metrics]
    assert losses[-1] < 0.8 * losses[0], losses


def test_unknown_algo_is_refused():
    with pytest.raises(ValueError, match=r"learner\.algo='ppo' is not allowed"):
        TS.rl_loss(None, LearnerConfig(algo="ppo"))


def bc_states(batch: dict, n: int, gamma: float = 0.9) -> dict:
    """``n`` real states of a trajectory batch as a behaviour-cloning batch.

    Laid out as ``pretrain.DemoStates`` does: V(s_t) targets γ^(steps to the end)·success,
    ``first`` marks s_0.
    """
    # Time-major, so that every trajectory (successes and failures) contributes states.
    rows = [(b, t) for t in range(H) for b in range(B) if batch["mask"][b, t]][:n]
    assert len(rows) == n
    bi, ti = np.array(rows).T
    length = batch["mask"].sum(1)[bi]
    success = batch["success"][bi]
    return {
        "screens": batch["screens"][bi, ti],
        "context": batch["context"][bi, ti],
        "actions": batch["actions"][bi, ti],
        "value_target": (success * gamma ** (length - 1 - ti)).astype(np.float32),
        "first": (ti == 0).astype(np.float32),
        "success": success,
    }


def test_bc_loss_nll_decreases(batch):
    states = bc_states(batch, n=16)
    assert set(states) == set(TS.BC_FIELDS)
    assert 0 < states["first"].sum() < 16 and 0 < states["value_target"].max() <= 1
    trainer = make_harness(lambda g: TS.bc_loss(g, critic_coef=0.5), fields=TS.BC_FIELDS).trainer
    metrics, priorities = run_steps(trainer, [states] * 5)
    nll = [m["nll"] for m in metrics]
    assert nll[-1] < 0.9 * nll[0], nll
    for m, p in zip(metrics, priorities, strict=True):
        assert np.isfinite(m["loss"]) and m["grad_norm"] > 0
        assert 0.0 <= m["action_accuracy"] <= 1.0
        chex.assert_shape(p, (16,))
        assert np.all(p > 0)  # per-state NLL of the demonstrated actions
    # The priorities are the per-state NLLs that the mean NLL is made of.
    np.testing.assert_allclose(np.mean(priorities[0]), nll[0], rtol=1e-5)
    # The critic terms train too: the total falls along with the NLL.
    assert metrics[-1]["loss"] < metrics[0]["loss"]


# ------------------------------------------------------------------------------ resume


def test_resume_from_checkpoint_is_exact(aride, tmp_path):
    """4 steps straight == 2 steps, save, restore into a differently seeded trainer, 2 steps."""
    batches = [make_batch(seed=100 + i, batch_size=B, horizon=H) for i in range(4)]

    trainer = aride.reset()
    straight, _ = run_steps(trainer, batches)
    final_a = host_copy(trainer.state)

    trainer = aride.reset()
    first, _ = run_steps(trainer, batches[:2])
    assert [m["loss"] for m in first] == [m["loss"] for m in straight[:2]]  # deterministic
    with Checkpointer(tmp_path / "ckpt", keep=2, use_async=False) as ckpt:
        assert ckpt.save_train_state(trainer.state, {"run": "B"})
        assert ckpt.steps() == [2]

        cfg = LearnerConfig(critic_warmup_steps=0)  # the policy moves from the first step
        fresh = TS.ShardedTrainer.create(
            tiny(), lambda g: TS.rl_loss(g, cfg), TS.make_optimizer(LR, 1.0), trainer.mesh, seed=1
        )
        # A different seed: restoring has to overwrite every parameter and the RNG to match.
        saved = leaves_by_path(host_copy(trainer.state.params))
        other = leaves_by_path(host_copy(fresh.state.params))
        assert all(not np.array_equal(saved[k], other[k]) for k in saved)
        assert not np.array_equal(np.asarray(fresh.state.rng), np.asarray(trainer.state.rng))

        state, meta = ckpt.restore_train_state(fresh.abstract_state())
    assert meta == {"run": "B", "step": 2}
    assert jax.tree.structure(state) == jax.tree.structure(fresh.state)
    assert [x.sharding for x in jax.tree.leaves(state)] == jax.tree.leaves(fresh.state_shardings)
    fresh.state = state
    assert fresh.step_count == 2
    rest, _ = run_steps(fresh, batches[2:])

    np.testing.assert_allclose(
        [m["loss"] for m in rest], [m["loss"] for m in straight[2:]], rtol=1e-6, atol=0
    )
    final_b = host_copy(fresh.state)
    assert int(final_b.step) == int(final_a.step) == 4
    np.testing.assert_array_equal(final_b.rng, final_a.rng)
    a, b = leaves_by_path(final_a), leaves_by_path(final_b)
    assert a.keys() == b.keys()
    for k in a:  # params and both Adam moments
        np.testing.assert_allclose(b[k], a[k], rtol=1e-6, atol=1e-7, err_msg=k)


def test_critic_warmup_freezes_the_policy_but_trains_the_critics(batch):
    """Before ``critic_warmup_steps`` the gradient reaches the critics only; after, everything."""
    from flax import nnx

    from distrl_jax.models import policy as P

    graphdef, params = nnx.split(P.init_model(tiny(), 0))
    loss = TS.rl_loss(graphdef, dataclasses.replace(LearnerConfig(), critic_warmup_steps=3))
    arrays = {k: jnp.asarray(v) for k, v in batch.items()}
    grad = jax.jit(jax.grad(lambda p, s: loss(p, arrays, s)[0]))

    def norms(step: int) -> dict[str, float]:
        g = nnx.to_pure_dict(grad(params, jnp.int32(step)))
        return {
            "decoder": float(optax_norm(g["decoder"])),
            "value_head": float(optax_norm(g["value_head"])),
        }

    during, after = norms(2), norms(3)
    assert during["decoder"] == 0.0 and during["value_head"] > 0
    assert after["decoder"] > 0 and after["value_head"] > 0
    _, (metrics, _) = loss(params, arrays, jnp.int32(0))
    assert float(metrics["policy_updates_on"]) == 0.0


def optax_norm(tree) -> jax.Array:
    """Global L2 norm of a pytree."""
    return jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in jax.tree.leaves(tree)))
