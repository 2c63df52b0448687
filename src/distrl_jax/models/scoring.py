"""Pure functions of ``(graphdef, state)`` for the learner and the actors (DESIGN §4, §5).

Every function merges ``nnx.split`` output back into a model inside the function, so callers jit
them with whatever shardings they like: ``jax.jit(action_logprob, static_argnums=0)`` or
``jax.jit(functools.partial(action_logprob, graphdef), in_shardings=...)``.

Log-probabilities are exact sums over an action's real tokens (pad masked, ``<eos>`` included)
under the *grammar-masked* distribution (see :mod:`distrl_jax.models.action_codec`): the same
mask is applied when the actor samples (behaviour μ) and when the learner scores (target π), so
``sample_actions``' log-prob equals ``action_logprob`` on the sampled tokens for the same
parameters at temperature 1. Masked logits are a large finite negative number, not -inf, so an
off-grammar action (never sampled, but possible in hand-made data) scores about -1e9 instead of
producing NaNs.

Screens, contexts and actions may carry any leading batch dims (e.g. [B, T, ...]); the outputs
keep them.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from distrl_jax.models import action_codec as codec
from distrl_jax.models.policy import PolicyModel

NEG = -1e9  # the logit of a token the grammar forbids


def _flat(x: jax.Array, tail: int) -> tuple[jax.Array, tuple[int, ...]]:
    lead = x.shape[: x.ndim - tail]
    return x.reshape((math.prod(lead), *x.shape[x.ndim - tail :])), lead


def grammar_masks(actions: jax.Array, bins: int) -> jax.Array:
    """bool [B, La, V]: the tokens allowed at each position given the actions' prefixes."""
    batch, length = actions.shape

    def body(state, inputs):
        pos, token = inputs
        allowed = codec.grammar_allowed(state, pos, length, bins)
        return codec.grammar_step(state, token), allowed

    _, masks = jax.lax.scan(body, codec.grammar_init(batch), (jnp.arange(length), actions.T))
    return masks.transpose(1, 0, 2)


def _token_scores(model: PolicyModel, memory, mem_mask, actions: jax.Array, context: jax.Array):
    logits = model.action_logits(memory, mem_mask, actions, context)
    allowed = grammar_masks(actions, model.spec.location_bins)
    logp_all = jax.nn.log_softmax(jnp.where(allowed, logits, NEG), axis=-1)
    real = actions != codec.PAD_ID
    token_logp = jnp.take_along_axis(logp_all, actions[..., None], axis=-1)[..., 0]
    token_logp = jnp.where(real, token_logp, 0.0)
    probs = jnp.exp(logp_all)
    token_entropy = -jnp.sum(jnp.where(allowed, probs * logp_all, 0.0), axis=-1)
    entropy = jnp.sum(jnp.where(real, token_entropy, 0.0), axis=-1)
    return token_logp.sum(-1), entropy, token_logp


def action_logprob(
    graphdef: nnx.GraphDef,
    state: nnx.State,
    screens: jax.Array,
    context: jax.Array,
    actions: jax.Array,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(logp [...], entropy [...], token_logp [..., La])`` of the given actions (teacher-forced).

    ``logp`` is log π(a|s) summed over the action's real tokens; ``entropy`` sums each real
    position's entropy of the masked next-token distribution along the taken action.
    """
    model = nnx.merge(graphdef, state)
    scr, lead = _flat(screens, 3)
    ctx, _ = _flat(context, 1)
    act, _ = _flat(actions, 1)
    logp, ent, tok = _token_scores(model, *model.encode(scr, ctx), act, ctx)
    return logp.reshape(lead), ent.reshape(lead), tok.reshape((*lead, act.shape[-1]))


def values(
    graphdef: nnx.GraphDef, state: nnx.State, screens: jax.Array, context: jax.Array
) -> jax.Array:
    """Step-critic logits V(s) float32 [...] (sigmoid = probability of eventual success)."""
    model = nnx.merge(graphdef, state)
    scr, lead = _flat(screens, 3)
    ctx, _ = _flat(context, 1)
    return model.value_logits(scr, ctx).reshape(lead)


def traj_value(
    graphdef: nnx.GraphDef, state: nnx.State, first_screens: jax.Array, task_context: jax.Array
) -> jax.Array:
    """Trajectory-critic logits V_traj(task, s_0) float32 [...] (context of s_0: no history)."""
    model = nnx.merge(graphdef, state)
    scr, lead = _flat(first_screens, 3)
    ctx, _ = _flat(task_context, 1)
    return model.traj_value_logits(scr, ctx).reshape(lead)


class TrajectoryScores(NamedTuple):
    """Everything the A-RIDE loss needs from the model for a batch of trajectories."""

    logp: jax.Array  # [B, T] log π(a_t|s_t)
    entropy: jax.Array  # [B, T] summed token entropy along a_t
    token_logp: jax.Array  # [B, T, La]
    value_logits: jax.Array  # [B, T+1] V(s_t) logits
    traj_value_logits: jax.Array  # [B] V_traj(task, s_0) logits


def score_trajectories(
    graphdef: nnx.GraphDef,
    state: nnx.State,
    screens: jax.Array,
    context: jax.Array,
    actions: jax.Array,
) -> TrajectoryScores:
    """Scores for ``screens [B, T+1, H, W, 3]``, ``context [B, T+1, Lc]``, ``actions [B, T, La]``.

    Each state is encoded once and shared by the policy, V and V_traj (which reads s_0).
    """
    model = nnx.merge(graphdef, state)
    b, t1 = screens.shape[:2]
    if actions.shape[:2] != (b, t1 - 1):
        raise ValueError(f"actions {actions.shape} must be [B, T, La] for screens {screens.shape}")
    scr, _ = _flat(screens, 3)
    ctx, _ = _flat(context, 1)
    memory, mem_mask = model.encode(scr, ctx)

    def per_step(x: jax.Array) -> jax.Array:  # [B*(T+1), ...] -> the first T states of each
        return x.reshape((b, t1, *x.shape[1:]))[:, :-1].reshape((b * (t1 - 1), *x.shape[1:]))

    act, _ = _flat(actions, 1)
    logp, ent, tok = _token_scores(model, per_step(memory), per_step(mem_mask), act, per_step(ctx))
    c_mem, c_mask = model.critic_encode(scr, ctx, (memory, mem_mask))
    v = model.value_head(c_mem, c_mask).reshape(b, t1)
    first = (c_mem.reshape((b, t1, *c_mem.shape[1:]))[:, 0], c_mask.reshape(b, t1, -1)[:, 0])
    return TrajectoryScores(
        logp=logp.reshape(b, t1 - 1),
        entropy=ent.reshape(b, t1 - 1),
        token_logp=tok.reshape(b, t1 - 1, -1),
        value_logits=v,
        traj_value_logits=model.traj_value_head(*first),
    )


class StateScores(NamedTuple):
    """The model's outputs for a flat batch of states and the actions taken in them."""

    logp: jax.Array  # [N] log π(a|s)
    entropy: jax.Array  # [N]
    token_logp: jax.Array  # [N, La]
    value_logits: jax.Array  # [N] V(s)
    traj_value_logits: jax.Array  # [N] V_traj(task, s), meaningful where s is a first screen


def score_states(
    graphdef: nnx.GraphDef,
    state: nnx.State,
    screens: jax.Array,
    context: jax.Array,
    actions: jax.Array,
) -> StateScores:
    """Scores for unrelated states ``screens [N, H, W, 3]``, ``context [N, Lc]``, ``actions [N, La]``.

    One encoder pass feeds the policy and both critics (behaviour cloning trains on states, not
    padded trajectories, so no compute goes to padding).
    """
    model = nnx.merge(graphdef, state)
    memory, mem_mask = model.encode(screens, context)
    logp, ent, tok = _token_scores(model, memory, mem_mask, actions, context)
    c_mem, c_mask = model.critic_encode(screens, context, (memory, mem_mask))
    return StateScores(
        logp, ent, tok, model.value_head(c_mem, c_mask), model.traj_value_head(c_mem, c_mask)
    )


def sample_actions(
    graphdef: nnx.GraphDef,
    state: nnx.State,
    screens: jax.Array,
    context: jax.Array,
    rng: jax.Array,
    temperature: jax.Array | float = 1.0,
    greedy: jax.Array | bool = False,
    active: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Decode ``(tokens int32 [B, La], logp float32 [B])`` autoregressively under the grammar.

    Fixed shapes: a ``while_loop`` over positions with a key/value cache that stops once every
    row has emitted ``<eos>`` (positions after it stay pad). ``temperature`` and ``greedy`` are
    traced, so changing them never recompiles. ``logp`` is log μ(a|s) of the distribution
    sampled from (temperature-scaled); for greedy decoding it is log π(a|s) at temperature 1.
    Rows with ``active`` False emit only padding with logp 0 (batch padding on the actor).
    """
    model = nnx.merge(graphdef, state)
    spec = model.spec
    batch, length = screens.shape[0], spec.action_len
    memory, mem_mask = model.encode(screens, context)
    cross_kv = model.decoder.cross_kv(memory)
    source = model.copy_source(memory, context)
    temperature = jnp.asarray(temperature, jnp.float32)
    greedy = jnp.asarray(greedy, bool)

    def cond(carry):
        pos, _, _, _, grammar, _ = carry
        return (pos < length) & jnp.any(grammar.phase != codec.DONE)

    def body(carry):
        pos, prev, tokens, logp, grammar, cache = carry
        logits, cache = model.decoder.step(
            model.embed_tokens(prev), pos, cache, cross_kv, mem_mask, source
        )
        allowed = codec.grammar_allowed(grammar, pos, length, spec.location_bins)
        # One log-softmax per token: at temperature 1 when greedy (log π), else log μ. At batch
        # 1 the loop's cost is per-op overhead, and this was a second pass over the vocabulary.
        scale = jnp.where(greedy, jnp.float32(1.0), temperature)
        logp_step = jax.nn.log_softmax(jnp.where(allowed, logits / scale, NEG), axis=-1)
        sampled = jax.random.categorical(jax.random.fold_in(rng, pos), logp_step, axis=-1)
        token = jnp.where(greedy, jnp.argmax(logp_step, axis=-1), sampled).astype(jnp.int32)
        step_logp = jnp.take_along_axis(logp_step, token[:, None], axis=-1)[:, 0]
        tokens = jax.lax.dynamic_update_slice_in_dim(tokens, token[:, None], pos, 1)
        return pos + 1, token, tokens, logp + step_logp, codec.grammar_step(grammar, token), cache

    carry = (
        jnp.int32(0),
        jnp.full((batch,), codec.BOS_ID, jnp.int32),
        jnp.zeros((batch, length), jnp.int32),
        jnp.zeros((batch,), jnp.float32),
        codec.grammar_init(batch, active),
        model.decoder.init_cache(batch, jnp.dtype(spec.dtype)),
    )
    _, _, tokens, logp, _, _ = jax.lax.while_loop(cond, body, carry)
    return tokens, logp
