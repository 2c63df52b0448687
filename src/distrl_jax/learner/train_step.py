"""One jitted, sharded learner step: ``(state, batch) -> (state, metrics, priorities)``.

purejaxrl style: everything the step needs is in :class:`TrainState` (parameters, optimizer
state, step counter, RNG), the step is one pure function, jitted once with explicit
``NamedSharding``s over a ``(data, model)`` mesh and the state buffers donated, so the update
happens in place. The batch is split over ``data``; parameters (and the optimizer moments, which
have their shapes) follow the sharding rules over ``model`` (DESIGN §6).

The loss is chosen by ``learner.algo``: A-RIDE (``losses.batched_aride_loss``) or DigiRL
(``digirl.batched_digirl_loss``); both read the same model scores and return fresh replay
priorities. Behaviour cloning (``bc_loss``) reuses the same step for the warm start.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from distrl_jax.config import LearnerConfig
from distrl_jax.learner import digirl, losses, sharding
from distrl_jax.models import policy as P
from distrl_jax.models import scoring
from distrl_jax.models.spec import ModelSpec
from distrl_jax.types import Batch

# The batch arrays the step reads (``Batch`` field names); indices and versions stay on the host.
BATCH_FIELDS: tuple[str, ...] = (
    "screens",
    "context",
    "actions",
    "rewards",
    "penalties",
    "dones",
    "behaviour_logp",
    "mask",
    "success",
    "is_weights",
)

# (params, batch, step) -> (loss, (metrics, priorities [B]))
LossFn = Callable[
    [nnx.State, Mapping[str, jax.Array], jax.Array], tuple[jax.Array, tuple[dict, jax.Array]]
]


class TrainState(NamedTuple):
    """Everything a learner step reads and writes; checkpointed as a whole."""

    params: nnx.State
    opt_state: optax.OptState
    step: jax.Array  # int32 []: optimizer steps taken (= the policy version)
    rng: jax.Array  # uint32 [2]: raw key data (plain array, so it checkpoints as-is)


def make_optimizer(
    lr: float, grad_clip: float, decay_steps: int = 0
) -> optax.GradientTransformation:
    """Adam after global-norm clipping; with ``decay_steps`` a cosine decay of lr to 10%."""
    schedule = optax.cosine_decay_schedule(lr, decay_steps, alpha=0.1) if decay_steps else lr
    return optax.chain(optax.clip_by_global_norm(grad_clip), optax.adam(schedule))


def _loss_inputs(
    scores: scoring.TrajectoryScores, batch: Mapping[str, jax.Array], policy_on: jax.Array
) -> tuple:
    f32 = jnp.float32

    def policy_grad(x: jax.Array) -> jax.Array:
        # During the critic warm-up the policy terms are computed (for metrics and priorities)
        # but pass no gradient: a fresh critic's advantages would only push the policy around.
        return jnp.where(policy_on, x, jax.lax.stop_gradient(x)).astype(f32)

    return (
        scores.value_logits.astype(f32),
        scores.traj_value_logits.astype(f32),
        policy_grad(scores.logp),
        policy_grad(scores.entropy),
        batch["rewards"],
        batch["penalties"],
        batch["dones"],
        batch["mask"],
        batch["behaviour_logp"],
        batch["success"],
        batch["is_weights"],
    )


def rl_loss(graphdef: nnx.GraphDef, cfg: LearnerConfig) -> LossFn:
    """The configured RL objective (``cfg.algo``) as a function of (params, batch)."""
    if cfg.algo == "aride":
        batched = losses.batched_aride_loss
        hyper: dict[str, Any] = dict(
            gamma=cfg.gamma,
            lam=cfg.lam,
            c_bar=cfg.c_bar,
            rho_bar=cfg.rho_bar,
            value_target=cfg.value_target,
            off_policy_correction=cfg.off_policy_correction,
            entropy_coef=cfg.entropy_coef,
            value_coef=cfg.value_coef,
            traj_value_coef=cfg.traj_value_coef,
            priority_weights=tuple(cfg.priority_weights),
            rho_max=cfg.rho_max,
            policy_clip=cfg.policy_clip,
            positive_advantages=cfg.pg_advantages == "positive",
        )
    elif cfg.algo == "digirl":
        batched = digirl.batched_digirl_loss
        hyper = dict(
            curriculum_fraction=cfg.digirl_curriculum_fraction,
            value_coef=cfg.value_coef,
            traj_value_coef=cfg.traj_value_coef,
            gamma=cfg.gamma,
            lam=cfg.digirl_lambda,
            advantage_threshold=cfg.digirl_advantage_threshold,
            advantage_form=cfg.digirl_advantage_form,
            priority_weights=tuple(cfg.priority_weights),
            rho_max=cfg.rho_max,
        )
    else:
        raise ValueError(f"learner.algo={cfg.algo!r} is not allowed: aride or digirl")

    def loss(params, batch, step):
        scores = scoring.score_trajectories(
            graphdef, params, batch["screens"], batch["context"], batch["actions"]
        )
        policy_on = step >= cfg.critic_warmup_steps
        value, metrics, priorities = batched(*_loss_inputs(scores, batch, policy_on), **hyper)
        metrics["policy_updates_on"] = policy_on.astype(jnp.float32)
        return value, (metrics, priorities)

    return loss


# The fields of a behaviour-cloning batch of N unrelated demonstration states.
BC_FIELDS: tuple[str, ...] = ("screens", "context", "actions", "value_target", "first", "success")


def bc_loss(graphdef: nnx.GraphDef, critic_coef: float) -> LossFn:
    """Behaviour cloning on demonstration states: −mean log π(label) + critic_coef · critic BCE.

    ``actions`` hold the demonstrator's labels; the critics learn Monte Carlo targets of the
    demonstrating policy (V(s) → ``value_target``, V_traj(task, s_0) → ``success`` on the first
    states), a warm start that RL then corrects. "Priorities" are the per-state NLL (for logs).
    """

    def loss(params, batch, step):
        del step  # behaviour cloning has no schedule inside the loss
        scores = scoring.score_states(
            graphdef, params, batch["screens"], batch["context"], batch["actions"]
        )
        nll = -scores.logp
        first = batch["first"]
        value = jnp.mean(
            optax.sigmoid_binary_cross_entropy(
                scores.value_logits.astype(jnp.float32), batch["value_target"]
            )
        )
        traj = jnp.sum(
            first
            * optax.sigmoid_binary_cross_entropy(
                scores.traj_value_logits.astype(jnp.float32), batch["success"]
            )
        ) / jnp.maximum(jnp.sum(first), 1.0)
        total = jnp.mean(nll) + critic_coef * (value + traj)
        # An action is "right" when every real token is the argmax-likely one (p > 1/2 suffices).
        real = batch["actions"] != 0
        exact = jnp.all((scores.token_logp > jnp.log(0.5)) | ~real, axis=-1)
        metrics = {
            "loss": total,
            "nll": jnp.mean(nll),
            "value_loss": value,
            "traj_value_loss": traj,
            "entropy": jnp.mean(scores.entropy),
            "action_accuracy": jnp.mean(exact.astype(jnp.float32)),
        }
        return total, (metrics, jax.lax.stop_gradient(nll))

    return loss


def train_step(
    tx: optax.GradientTransformation,
    loss: LossFn,
    state: TrainState,
    batch: Mapping[str, jax.Array],
) -> tuple[TrainState, dict[str, jax.Array], jax.Array]:
    """One optimizer step (pure; jit it with ``tx`` and ``loss`` bound)."""
    (_, (metrics, priorities)), grads = jax.value_and_grad(loss, has_aux=True)(
        state.params, batch, state.step
    )
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    metrics = dict(metrics, grad_norm=optax.tree.norm(grads))
    rng = jax.random.key_data(jax.random.split(jax.random.wrap_key_data(state.rng))[0])
    return TrainState(params, opt_state, state.step + 1, rng), metrics, priorities


@dataclasses.dataclass
class ShardedTrainer:
    """A model, its optimizer and one compiled step over a mesh.

    Build with :meth:`create`; ``step(batch)`` runs the compiled step on a host batch and returns
    host metrics and priorities. ``state`` is what checkpoints save and restore.
    """

    spec: ModelSpec
    graphdef: nnx.GraphDef
    mesh: jax.sharding.Mesh
    state: TrainState
    state_shardings: Any
    _step: Callable[..., Any]
    fields: tuple[str, ...] = BATCH_FIELDS

    @classmethod
    def create(
        cls,
        spec: ModelSpec,
        loss: Callable[[nnx.GraphDef], LossFn],
        tx: optax.GradientTransformation,
        mesh: jax.sharding.Mesh,
        *,
        rules: Sequence[str] = (),
        seed: int = 0,
        params: nnx.State | None = None,
        fields: Sequence[str] = BATCH_FIELDS,
    ) -> ShardedTrainer:
        """Initialise (or adopt ``params``), lay the state out on ``mesh``, compile lazily."""
        with nnx.use_eager_sharding(False):
            graphdef, init_params = nnx.split(P.init_model(spec, seed))
        params = init_params if params is None else params
        state_shardings = state_shardings_for(graphdef, spec, tx, mesh, rules)
        rng = jax.random.key_data(jax.random.key(seed))
        state = TrainState(params, tx.init(params), jnp.zeros((), jnp.int32), rng)
        state = jax.device_put(state, state_shardings)
        batch_sh = sharding.batch_sharding(mesh)
        rep = sharding.replicated(mesh)
        step = jax.jit(
            lambda s, b: train_step(tx, loss(graphdef), s, b),
            in_shardings=(state_shardings, {k: batch_sh for k in fields}),
            out_shardings=(state_shardings, rep, rep),
            donate_argnums=0,
        )
        return cls(spec, graphdef, mesh, state, state_shardings, step, tuple(fields))

    def abstract_state(self) -> TrainState:
        """ShapeDtypeStructs with shardings: the target for restoring a checkpoint."""
        return jax.tree.map(
            lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
            self.state,
            self.state_shardings,
        )

    def put_batch(self, batch: Batch | Mapping[str, np.ndarray]) -> dict[str, jax.Array]:
        """Place a host batch on the mesh (each process passes its own shard of the batch)."""
        get = (lambda k: getattr(batch, k)) if isinstance(batch, Batch) else batch.__getitem__
        arrays = {k: get(k) for k in self.fields}
        sharding.check_batch_size(len(arrays[self.fields[0]]) * jax.process_count(), self.mesh)
        sh = sharding.batch_sharding(self.mesh)
        return {
            k: jax.make_array_from_process_local_data(sh, np.asarray(v, _DTYPES.get(k, np.float32)))
            for k, v in arrays.items()
        }

    def compile(self, example: Batch | Mapping[str, np.ndarray]) -> float:
        """Compile the step for ``example``'s shapes now (at start-up, not on the first update);
        later batches must have the same shapes. Returns the seconds it took."""
        t0 = time.perf_counter()
        self._step = self._step.lower(self.state, self.put_batch(example)).compile()
        return time.perf_counter() - t0

    def step(self, batch: Batch | Mapping[str, np.ndarray]) -> tuple[dict[str, float], np.ndarray]:
        """One update on ``batch``; returns (metrics as floats, new priorities [B])."""
        self.state, metrics, priorities = self._step(self.state, self.put_batch(batch))
        metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
        return metrics, np.asarray(jax.device_get(priorities))

    @property
    def step_count(self) -> int:
        """Optimizer steps taken so far (the policy version of ``state.params``)."""
        return int(self.state.step)


_DTYPES = {"screens": np.uint8, "context": np.int32, "actions": np.int32}


def example_batch(spec: ModelSpec, batch_size: int, horizon: int) -> dict[str, np.ndarray]:
    """An all-padding RL batch of the learner's shapes (for compiling ahead of the data)."""
    h, w = spec.image_size
    b, t = batch_size, horizon
    zeros = {
        "screens": np.zeros((b, t + 1, h, w, 3), np.uint8),
        "context": np.zeros((b, t + 1, spec.context_len), np.int32),
        "actions": np.zeros((b, t, spec.action_len), np.int32),
        "success": np.zeros((b,), np.float32),
        "is_weights": np.ones((b,), np.float32),
    }
    for k in ("rewards", "penalties", "dones", "behaviour_logp", "mask"):
        zeros[k] = np.zeros((b, t), np.float32)
    return zeros


def state_shardings_for(
    graphdef: nnx.GraphDef,
    spec: ModelSpec,
    tx: optax.GradientTransformation,
    mesh: jax.sharding.Mesh,
    rules: Sequence[str] = (),
) -> Any:
    """NamedShardings for a :class:`TrainState`: parameters by ``rules`` (default: the model's),
    optimizer moments like their parameters, counters and RNG replicated."""
    rules = tuple(rules) or P.SHARDING_RULES

    def abstract_state() -> TrainState:
        with nnx.use_eager_sharding(False):
            params = nnx.state(P.init_model(spec, 0))
        return TrainState(
            params, tx.init(params), jnp.zeros((), jnp.int32), jnp.zeros(2, jnp.uint32)
        )

    abstract = jax.eval_shape(abstract_state)
    param_sh = sharding.param_shardings(abstract.params, mesh, rules)
    rep = sharding.replicated(mesh)
    # Adam's moments mirror the parameter tree, so they take the parameters' shardings.
    opt_sh = optax.tree_map_params(
        tx, lambda _, s: s, abstract.opt_state, param_sh, transform_non_params=lambda _: rep
    )
    return TrainState(param_sh, opt_sh, rep, rep)
