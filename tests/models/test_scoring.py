"""Scoring and sampling over nnx.split state: exact log-probs, μ = π, gradients, shapes."""

from __future__ import annotations

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from distrl_jax.devices import actions as A
from distrl_jax.models import action_codec as C
from distrl_jax.models import policy as P
from distrl_jax.models import scoring as S
from distrl_jax.models.spec import ModelSpec
from distrl_jax.models.tokenizer import ContextEncoder

# Smaller than tiny so that compiling stays quick; La = 12 still holds a swipe and short text.
SPEC = ModelSpec(
    width=32,
    heads=2,
    decoder_depth=1,  # the two-block KV cache is covered by test_policy's tiny JaxPolicy
    context_len=24,
    action_len=12,
    history_budget=8,
    location_bins=8,
)


def _perturbed(spec: ModelSpec, seed: int = 0, scale: float = 0.3):
    """A model whose distributions are far from uniform (fresh inits are nearly uniform)."""
    graphdef, state = nnx.split(P.init_model(spec, seed))
    rng = np.random.default_rng(seed)  # NumPy noise: no per-shape XLA compilations
    noisy = jax.tree.map(lambda x: x + scale * rng.standard_normal(x.shape).astype(x.dtype), state)
    return graphdef, noisy


@pytest.fixture(scope="module")
def model():
    return _perturbed(SPEC)


def _observations(spec: ModelSpec, batch: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    screens = rng.integers(0, 256, (batch, *spec.image_size, 3), dtype=np.uint8)
    enc = ContextEncoder(spec)
    tasks = [f"search for item {i}" for i in range(batch)]
    hist = [("HOME", "TAP 0.2 0.3")[: i % 3] for i in range(batch)]
    return screens, enc.encode_batch(tasks, hist)


# Jitted once for the module: un-jitted calls compile op by op (seconds each on a small CPU).
LOGPROB = jax.jit(S.action_logprob, static_argnums=0)
VALUES = jax.jit(S.values, static_argnums=0)
TRAJ_VALUE = jax.jit(S.traj_value, static_argnums=0)
SAMPLE = jax.jit(S.sample_actions, static_argnums=0)


def _sample(graphdef, state, screens, context, seed=0, temperature=1.0, greedy=False, active=None):
    if active is None:
        active = np.ones(len(screens), bool)
    rng = jax.random.key(seed)
    return SAMPLE(graphdef, state, screens, context, rng, temperature, greedy, active)


@pytest.mark.parametrize(
    "jit",
    # Without jit every primitive compiles on its own: seconds on a small CPU, so marked slow.
    [True, pytest.param(False, marks=pytest.mark.slow)],
    ids=["jit", "nojit"],
)
def test_shapes_and_dtypes_with_leading_dims(model, jit: bool) -> None:
    graphdef, state = model
    b, t, la = 2, 2, SPEC.action_len  # T actions, T + 1 states: the learner's layout
    screens, context = _observations(SPEC, b * (t + 1))
    screens = screens.reshape(b, t + 1, *screens.shape[1:])
    context = context.reshape(b, t + 1, -1)
    codec = C.ActionCodec.from_spec(SPEC)
    actions = codec.encode_batch([A.tap(0.5, 0.5), A.BACK, A.type_text("hi"), A.HOME])
    actions = actions.reshape(b, t, la)
    wrap = (lambda f: jax.jit(f, static_argnums=0)) if jit else (lambda f: f)
    logp, ent, tok = wrap(S.action_logprob)(
        graphdef, state, screens[:, :-1], context[:, :-1], actions
    )
    chex.assert_shape([logp, ent], (b, t))
    chex.assert_shape(tok, (b, t, la))
    chex.assert_type([logp, ent, tok], jnp.float32)
    chex.assert_tree_all_finite((logp, ent, tok))
    v = wrap(S.values)(graphdef, state, screens, context)
    tv = wrap(S.traj_value)(graphdef, state, screens[:, 0], context[:, 0])
    chex.assert_shape(v, (b, t + 1))
    chex.assert_shape(tv, (b,))
    chex.assert_type([v, tv], jnp.float32)
    assert np.all(np.asarray(tok)[np.asarray(actions) == C.PAD_ID] == 0)  # pad masked
    assert np.all(np.asarray(ent) >= 0)
    np.testing.assert_allclose(np.asarray(tok).sum(-1), logp, rtol=1e-6)


def test_probabilities_sum_to_one_over_an_enumerable_action_set() -> None:
    spec = dataclasses.replace(SPEC, location_bins=2)
    graphdef, state = _perturbed(spec, seed=3)
    y, x = C.Y_OFFSET, C.X_OFFSET
    seqs = [[C.TAP_ID, y + i, x + j, C.EOS_ID] for i in range(2) for j in range(2)]
    seqs += [
        [C.SWIPE_ID, y + a, x + b, y + c, x + d, C.EOS_ID]
        for a in range(2)
        for b in range(2)
        for c in range(2)
        for d in range(2)
    ]
    seqs += [[C.VERB_OFFSET + k, C.EOS_ID] for k in range(3, 8)]
    n_complete = len(seqs)
    # <type> then every first byte the grammar allows (ASCII, UTF-8 lead bytes): only the first
    # two tokens' log-probs are used, so the rest of each row does not matter.
    first_bytes = [*range(0x20, 0x7F), *range(0xC2, 0xF5)]
    seqs += [[C.TYPE_ID, C.BYTE_OFFSET + b, C.EOS_ID] for b in first_bytes]
    actions = np.zeros((len(seqs), spec.action_len), np.int32)
    for i, s in enumerate(seqs):
        actions[i, : len(s)] = s
    screens, context = _observations(spec, 1, seed=5)
    screens = np.repeat(screens, len(seqs), 0)
    context = np.repeat(context, len(seqs), 0)
    logp, _, tok = LOGPROB(graphdef, state, screens, context, actions)
    logp, tok = np.asarray(logp, np.float64), np.asarray(tok, np.float64)
    # The 25 complete non-TYPE actions + P(<type> first) must cover all the mass.
    p_type = np.exp(tok[n_complete, 0])
    assert np.exp(logp[:n_complete]).sum() + p_type == pytest.approx(1.0, abs=1e-5)
    assert p_type > 1e-4  # TYPE has real mass, so the check is not vacuous
    # After <type>, the first byte's distribution is normalised over the allowed bytes.
    assert np.exp(tok[n_complete:, 1]).sum() == pytest.approx(1.0, abs=1e-5)


def test_sampled_logp_equals_action_logprob(model) -> None:
    graphdef, state = model
    screens, context = _observations(SPEC, 8, seed=1)
    tokens, logp_mu = _sample(graphdef, state, screens, context, seed=7)
    chex.assert_shape(tokens, (8, SPEC.action_len))
    chex.assert_type(tokens, jnp.int32)
    logp_pi, _, _ = LOGPROB(graphdef, state, screens, context, tokens)
    np.testing.assert_allclose(logp_mu, logp_pi, rtol=1e-5, atol=1e-4)
    decoded = C.ActionCodec.from_spec(SPEC).decode_batch(np.asarray(tokens))
    assert all(a.is_valid for a in decoded)
    assert len({tuple(r) for r in np.asarray(tokens).tolist()}) > 1


def test_greedy_is_deterministic_and_matches_low_temperature(model) -> None:
    graphdef, state = model
    screens, context = _observations(SPEC, 8, seed=2)
    t1, lp1 = _sample(graphdef, state, screens, context, seed=1, greedy=True)
    t2, lp2 = _sample(graphdef, state, screens, context, seed=2, greedy=True)
    np.testing.assert_array_equal(t1, t2)
    np.testing.assert_array_equal(lp1, lp2)
    logp_pi, _, _ = LOGPROB(graphdef, state, screens, context, t1)
    np.testing.assert_allclose(lp1, logp_pi, rtol=1e-5, atol=1e-4)
    cold, _ = _sample(graphdef, state, screens, context, seed=3, temperature=1e-4)
    np.testing.assert_array_equal(cold, t1)


def test_inactive_rows_emit_only_padding(model) -> None:
    graphdef, state = model
    screens, context = _observations(SPEC, 8)
    active = np.arange(8) % 2 == 0
    tokens, logp = _sample(graphdef, state, screens, context, active=active)
    assert not np.asarray(tokens)[~active].any() and np.all(np.asarray(logp)[~active] == 0)
    assert np.asarray(tokens)[active, 0].min() >= C.VERB_OFFSET


def test_off_grammar_action_scores_very_low_without_nan(model) -> None:
    graphdef, state = model
    screens, context = _observations(SPEC, 8)
    bad = np.zeros((8, SPEC.action_len), np.int32)
    bad[:, :3] = [C.Y_OFFSET, C.TAP_ID, C.EOS_ID]
    logp, ent, _ = LOGPROB(graphdef, state, screens, context, bad)
    assert np.isfinite(logp).all() and float(logp.max()) < -1e8 and np.isfinite(ent).all()


def test_gradients_are_finite_and_nonzero_for_every_parameter() -> None:
    # With the critics' own encoder every module is in the loss, and the two parts separate.
    spec = dataclasses.replace(SPEC, share_critic_encoder=False)
    graphdef, state = nnx.split(P.init_model(spec, seed=4))
    screens, context = _observations(spec, 4, seed=4)
    codec = C.ActionCodec.from_spec(spec)
    # A TYPE that fills La uses every decoder position, so every position embedding trains.
    actions = codec.encode_batch(
        [A.type_text("x" * 40), A.swipe(0.9, 0.5, 0.1, 0.5), A.tap(0.3, 0.6), A.HOME]
    )

    def policy_loss(st):
        logp, ent, _ = S.action_logprob(graphdef, st, screens, context, actions)
        return -logp.mean() - 0.1 * ent.mean()

    def critic_loss(st):
        v = S.values(graphdef, st, screens, context)
        tv = S.traj_value(graphdef, st, screens, context)
        return jnp.mean(v**2) + jnp.mean(tv**2)

    g_pi, g_v = jax.jit(lambda st: (jax.grad(policy_loss)(st), jax.grad(critic_loss)(st)))(state)

    def nonzero(tree) -> dict[str, bool]:
        flat = jax.tree_util.tree_flatten_with_path(tree)[0]
        assert all(np.isfinite(np.asarray(g)).all() for _, g in flat)
        return {jax.tree_util.keystr(p): bool(np.any(np.asarray(g) != 0)) for p, g in flat}

    pi, v = nonzero(g_pi), nonzero(g_v)
    dead = [k for k in pi if not (pi[k] or v[k])]
    assert not dead, f"parameters without gradient: {dead}"
    critic_part = ("critic_encoder", "value_head", "traj_value_head")
    for k in pi:
        is_critic = any(f"['{name}']" in k for name in critic_part)
        assert (pi[k] and is_critic) is False, f"policy loss moved critic parameter {k}"
        assert (v[k] and not is_critic) is False, f"critic loss moved policy parameter {k}"


def test_score_trajectories_matches_the_separate_functions(model) -> None:
    graphdef, state = model
    b, t = 2, 2
    screens, context = _observations(SPEC, b * (t + 1), seed=8)
    screens = screens.reshape(b, t + 1, *screens.shape[1:])
    context = context.reshape(b, t + 1, -1)
    actions = (
        C.ActionCodec.from_spec(SPEC)
        .encode_batch([A.tap(0.1, 0.2), A.type_text("ok"), A.BACK, A.swipe(0.2, 0.2, 0.8, 0.2)])
        .reshape(b, t, -1)
    )
    out = jax.jit(S.score_trajectories, static_argnums=0)(
        graphdef, state, screens, context, actions
    )
    logp, ent, tok = LOGPROB(graphdef, state, screens[:, :-1], context[:, :-1], actions)
    np.testing.assert_allclose(out.logp, logp, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out.entropy, ent, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out.token_logp, tok, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        out.value_logits, VALUES(graphdef, state, screens, context), rtol=1e-4, atol=1e-5
    )
    tv = TRAJ_VALUE(graphdef, state, screens[:, 0], context[:, 0])
    np.testing.assert_allclose(out.traj_value_logits, tv, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="actions"):
        S.score_trajectories(graphdef, state, screens, context, actions[:, :1])
