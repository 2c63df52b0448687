"""DigiRL's objective against the loop-by-loop NumPy reference, the filter and the curriculum."""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import loss_reference as ref
import numpy as np
import pytest

from distrl_jax.learner import digirl
from distrl_jax.learner.losses import LOSS_INPUT_NAMES

HP = {
    "gamma": 0.9,
    "lam": 0.5,
    "advantage_threshold": 0.0,
    "advantage_form": "paper",
    "value_coef": 0.8,
    "traj_value_coef": 0.4,
    "priority_weights": (50.0, 1.0, 0.01),
    "rho_max": 2.0,
}
TERM_HP = {k: v for k, v in HP.items() if k not in ("value_coef", "traj_value_coef")}
TOL = {"rtol": 2e-5, "atol": 2e-5}
CASES = [(6, 1, True), (6, 1, False), (7, 4, True), (7, 4, False), (5, 5, False)]


def args_of(traj: dict) -> list[jnp.ndarray]:
    """The positional arrays in LOSS_INPUT_NAMES order."""
    return [jnp.asarray(traj[name]) for name in LOSS_INPUT_NAMES]


def values_of(traj: dict) -> jnp.ndarray:
    """V(s_0..s_H) as probabilities."""
    return jax.nn.sigmoid(jnp.asarray(traj["value_logits"]))


@pytest.mark.parametrize(("horizon", "length", "terminal"), CASES)
def test_discounted_returns_match_reference(horizon, length, terminal):
    traj = ref.make_trajectory(np.random.default_rng(length), horizon, length, terminal=terminal)
    got = np.asarray(digirl.discounted_returns(traj["rewards"], traj["mask"], gamma=0.9))
    np.testing.assert_allclose(
        got[:length], ref.digirl_mc_returns(traj["rewards"], length, 0.9), **TOL
    )
    assert np.all(got[length:] == 0.0)


@pytest.mark.parametrize("lam", [0.0, 0.5, 1.0])
@pytest.mark.parametrize(("horizon", "length", "terminal"), CASES)
def test_doubly_robust_advantages_match_reference(lam, horizon, length, terminal):
    traj = ref.make_trajectory(
        np.random.default_rng(30 + length), horizon, length, terminal=terminal
    )
    got = np.asarray(
        digirl.doubly_robust_advantages(
            values_of(traj), traj["rewards"], traj["mask"], traj["success"], lam=lam
        )
    )
    want = ref.digirl_advantages(traj, form="paper", lam=lam, gamma=0.9)
    np.testing.assert_allclose(got[:length], want, **TOL)
    assert np.all(got[length:] == 0.0)
    if lam == 1.0:  # pure Monte Carlo: every step gets r(τ)
        np.testing.assert_allclose(got[:length], traj["success"])


@pytest.mark.parametrize(("horizon", "length", "terminal"), CASES)
def test_code_advantages_match_reference(horizon, length, terminal):
    traj = ref.make_trajectory(
        np.random.default_rng(40 + length), horizon, length, terminal=terminal
    )
    got = np.asarray(
        digirl.code_advantages(values_of(traj), traj["rewards"], traj["mask"], gamma=0.9)
    )
    np.testing.assert_allclose(
        got[:length], ref.digirl_advantages(traj, form="code", lam=0.0, gamma=0.9), **TOL
    )


@pytest.mark.parametrize("form", digirl.ADVANTAGE_FORMS)
@pytest.mark.parametrize("threshold", [-0.2, 0.0, 0.3])
def test_digirl_loss_matches_reference(form, threshold):
    rng = np.random.default_rng(50)
    traj = ref.make_trajectory(rng, 8, 6, terminal=True)
    hp = {**HP, "advantage_form": form, "advantage_threshold": threshold}
    loss, metrics, priority = digirl.digirl_loss(*args_of(traj), **hp)
    want = ref.digirl(traj, hp)
    for name in ("policy_loss", "value_loss", "traj_value_loss"):
        np.testing.assert_allclose(metrics[name], want[name], **TOL, err_msg=name)
    total = (
        want["policy_loss"]
        + hp["value_coef"] * want["value_loss"]
        + hp["traj_value_coef"] * want["traj_value_loss"]
    )
    np.testing.assert_allclose(loss, total, **TOL)
    assert np.isfinite(float(priority)) and float(priority) > 0


def test_only_transitions_above_the_threshold_are_cloned():
    rng = np.random.default_rng(60)
    traj = ref.make_trajectory(rng, 9, 8, terminal=False)
    advs = ref.digirl_advantages(traj, form="paper", lam=HP["lam"], gamma=HP["gamma"])
    threshold = float(np.median(advs))  # half the steps above, half below
    hp = {**HP, "advantage_threshold": threshold}
    grad = jax.grad(lambda lp: digirl.digirl_loss(*args_of({**traj, "target_logp": lp}), **hp)[0])(
        jnp.asarray(traj["target_logp"])
    )
    grad = np.asarray(grad)
    kept = advs > threshold
    assert 0 < kept.sum() < 8
    np.testing.assert_allclose(grad[:8][kept], -1.0 / 8, rtol=1e-6)
    assert np.all(grad[:8][~kept] == 0.0) and np.all(grad[8:] == 0.0)


def test_critics_get_gradients_and_padding_does_not_leak():
    rng = np.random.default_rng(61)
    traj = ref.make_trajectory(rng, 8, 5, terminal=False, pad_scale=1.0)
    other = ref.make_trajectory(np.random.default_rng(62), 8, 5, terminal=False, pad_scale=-2.0)
    for name, arr in traj.items():
        if np.ndim(arr) == 1:
            keep = 6 if name == "value_logits" else 5
            other[name][:keep] = arr[:keep]
        else:
            other[name] = arr

    def loss_of(value_logits, traj_value_logit, *rest):
        out = digirl.digirl_loss(value_logits, traj_value_logit, *rest, **HP)
        return out[0], out

    grad_fn = jax.jit(jax.grad(loss_of, argnums=(0, 1), has_aux=True))
    (g_values, g_traj), out_a = grad_fn(*args_of(traj))
    (g_values_b, g_traj_b), out_b = grad_fn(*args_of(other))
    chex.assert_trees_all_equal(out_a, out_b)
    chex.assert_trees_all_equal((g_values, g_traj), (g_values_b, g_traj_b))
    g_values = np.asarray(g_values)
    assert np.all(g_values[:6] != 0.0) and np.all(g_values[6:] == 0.0)  # s_0..s_T are trained
    assert float(g_traj) != 0.0 and np.all(np.isfinite(g_values))


def test_instruction_advantages_clamp_the_trajectory_value():
    logits = jnp.array([-50.0, 0.0, 50.0], jnp.float32)
    got = np.asarray(digirl.instruction_advantages(jnp.array([1.0, 1.0, 0.0]), logits))
    np.testing.assert_allclose(got, [1.0 - 1e-4, 0.5, -(1.0 - 1e-4)], rtol=1e-6)


# 20 distinct scores: the cutoff quantile(1 − f) interpolates at position (1 − f)·19 of the
# sorted scores, so everything above that position is kept.
@pytest.mark.parametrize(("fraction", "count"), [(0.1, 2), (0.3, 6), (0.5, 10), (1.0, 20)])
def test_curriculum_mask_keeps_the_top_fraction(fraction, count):
    scores = np.random.default_rng(70).normal(size=20).astype(np.float32)
    kept = np.asarray(jax.jit(digirl.curriculum_mask)(scores, fraction))
    top = np.argsort(scores)[20 - count :]
    np.testing.assert_array_equal(np.flatnonzero(kept), np.sort(top))


def test_curriculum_mask_keeps_ties_and_rejects_bad_fractions():
    kept = np.asarray(digirl.curriculum_mask(jnp.array([0.2, 0.9, 0.9, 0.1]), 0.25))
    np.testing.assert_array_equal(kept, [False, True, True, False])
    for bad in (0.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="top_fraction"):
            digirl.curriculum_mask(jnp.ones(4), bad)


def test_bad_inputs_get_clear_errors():
    traj = ref.make_trajectory(np.random.default_rng(80), 5, 3, terminal=True)
    with pytest.raises(ValueError, match="advantage_form='gae'"):
        digirl.digirl_loss(*args_of(traj), **{**HP, "advantage_form": "gae"})
    with pytest.raises(ValueError, match=r"rewards has shape \(4,\)"):
        digirl.digirl_loss(*args_of({**traj, "rewards": traj["rewards"][:4]}), **HP)


def make_batch(seed: int) -> tuple[list[dict], list[jnp.ndarray]]:
    """Four trajectories: two successes and two failures, mixed lengths and endings."""
    rng = np.random.default_rng(seed)
    trajs = []
    for b, length in enumerate((3, 6, 1, 5)):
        traj = ref.make_trajectory(rng, 6, length, terminal=bool(b % 2))
        traj["success"] = np.float32(b < 2)
        trajs.append(traj)
    stacked = [jnp.stack([jnp.asarray(t[n]) for t in trajs]) for n in LOSS_INPUT_NAMES]
    return trajs, stacked


class BatchedDigiRLTest(chex.TestCase):
    """The batched DigiRL loss with its in-batch curriculum, with and without jit."""

    @chex.variants(with_jit=True, without_jit=True)
    def test_batched_loss_matches_reference_and_filters_trajectories(self):
        trajs, stacked = make_batch(seed=90)
        is_weights = jnp.array([1.0, 0.5, 1.0, 0.25], jnp.float32)
        fraction = 0.5
        fn = self.variant(
            functools.partial(digirl.batched_digirl_loss, curriculum_fraction=fraction, **HP)
        )
        loss, metrics, priorities = fn(*stacked, is_weights)

        w = np.asarray(is_weights)
        parts = [ref.digirl(t, HP) for t in trajs]
        v_traj = np.clip(ref.sigmoid([t["traj_value_logit"] for t in trajs]), 1e-4, 1 - 1e-4)
        scores = np.array([t["success"] for t in trajs]) - v_traj
        kept = scores >= np.quantile(scores, 1.0 - fraction)
        policy = sum(w[b] * parts[b]["policy_loss"] for b in range(4) if kept[b]) / kept.sum()
        critic = np.mean(
            [
                w[b]
                * (
                    HP["value_coef"] * p["value_loss"]
                    + HP["traj_value_coef"] * p["traj_value_loss"]
                )
                for b, p in enumerate(parts)
            ]
        )
        np.testing.assert_allclose(loss, policy + critic, **TOL)
        np.testing.assert_allclose(metrics["curriculum_kept_frac"], kept.mean())
        chex.assert_shape(priorities, (4,))

        grad_logp = self.variant(
            jax.grad(
                lambda lp: digirl.batched_digirl_loss(
                    *stacked[:2], lp, *stacked[3:], is_weights, curriculum_fraction=fraction, **HP
                )[0]
            )
        )(stacked[2])
        grad_logp = np.asarray(grad_logp)
        assert 0 < kept.sum() < 4
        assert np.all(grad_logp[~kept] == 0.0)  # outside the curriculum: no policy update
        assert np.all(np.isfinite(grad_logp))


def test_term_keywords_are_the_loss_keywords_minus_the_coefficients():
    traj = ref.make_trajectory(np.random.default_rng(95), 4, 4, terminal=True)
    terms, priority = digirl.digirl_terms(*args_of(traj), **TERM_HP)
    _, metrics, priority_b = digirl.digirl_loss(*args_of(traj), **HP)
    assert float(priority) == float(priority_b)
    assert float(terms["policy_loss"]) == float(metrics["policy_loss"])
