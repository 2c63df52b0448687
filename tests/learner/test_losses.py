"""A-RIDE losses against the loop-by-loop NumPy reference, plus the properties DESIGN §5 demands."""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import loss_reference as ref
import numpy as np
import pytest

from distrl_jax.learner import losses

HP = {
    "gamma": 0.9,
    "lam": 0.95,
    "c_bar": 1.0,
    "rho_bar": 1.0,
    "value_target": "vtrace",
    "off_policy_correction": True,
    "entropy_coef": 0.05,
    "value_coef": 0.7,
    "traj_value_coef": 0.3,
    "priority_weights": (50.0, 1.0, 0.01),
    "rho_max": 2.0,
}
TOL = {"rtol": 2e-5, "atol": 2e-5}


def args_of(traj: dict) -> list[jnp.ndarray]:
    """The positional arrays in LOSS_INPUT_NAMES order."""
    return [jnp.asarray(traj[name]) for name in losses.LOSS_INPUT_NAMES]


def jax_targets(traj: dict, hp: dict, kind: str) -> np.ndarray:
    """losses.value_targets on a trajectory dict, with the ratios the loss would use."""
    values = jax.nn.sigmoid(jnp.asarray(traj["value_logits"]))
    rhos = losses.importance_ratios(traj["target_logp"], traj["behaviour_logp"])
    out = losses.value_targets(
        values,
        traj["rewards"],
        traj["dones"],
        traj["mask"],
        rhos,
        kind=kind,
        gamma=hp["gamma"],
        lam=hp["lam"],
        c_bar=hp["c_bar"],
        rho_bar=hp["rho_bar"],
    )
    return np.asarray(out)


# (horizon, length, terminal): length 1, terminal inside padding, horizon cut with and without padding.
CASES = [(6, 1, True), (6, 1, False), (7, 4, True), (7, 4, False), (5, 5, False), (5, 5, True)]


@pytest.mark.parametrize("kind", losses.VALUE_TARGET_KINDS)
@pytest.mark.parametrize(("horizon", "length", "terminal"), CASES)
def test_value_targets_match_reference(kind, horizon, length, terminal):
    rng = np.random.default_rng(100 + 10 * horizon + length)
    hp = {**HP, "c_bar": 1.3, "rho_bar": 1.7}
    traj = ref.make_trajectory(rng, horizon, length, terminal=terminal, logp_gap=1.0)
    got = jax_targets(traj, hp, kind)
    values = ref.sigmoid(traj["value_logits"])
    rhos = ref.ratios(traj["target_logp"], traj["behaviour_logp"], length)
    want = ref.targets(
        kind,
        values,
        traj["rewards"],
        traj["dones"],
        rhos,
        length,
        gamma=hp["gamma"],
        lam=hp["lam"],
        c_bar=hp["c_bar"],
        rho_bar=hp["rho_bar"],
    )
    np.testing.assert_allclose(got[:length], want, **TOL)
    assert np.all(got[length:] == 0.0)


@pytest.mark.parametrize("value_target", losses.VALUE_TARGET_KINDS)
@pytest.mark.parametrize("off_policy_correction", [True, False])
@pytest.mark.parametrize("seed", [0, 1])
def test_aride_loss_matches_reference(value_target, off_policy_correction, seed):
    rng = np.random.default_rng(seed)
    hp = {**HP, "value_target": value_target, "off_policy_correction": off_policy_correction}
    length = int(rng.integers(1, 8))
    traj = ref.make_trajectory(rng, 8, length, terminal=bool(seed % 2))
    loss, metrics, priority = losses.aride_loss(*args_of(traj), **hp)
    want_loss, parts, want_priority = ref.aride(traj, hp)
    np.testing.assert_allclose(loss, want_loss, **TOL)
    np.testing.assert_allclose(priority, want_priority, rtol=2e-5)
    for name in ("policy_loss", "value_loss", "traj_value_loss"):
        np.testing.assert_allclose(metrics[name], parts[name], **TOL, err_msg=name)
    np.testing.assert_allclose(metrics["advantage_mean"], np.mean(parts["advantages"]), **TOL)


@pytest.mark.parametrize("kind", ["vtrace", "retrace_paper"])
@pytest.mark.parametrize("lam", [0.0, 0.5, 0.9])
@pytest.mark.parametrize(("horizon", "length", "terminal"), CASES)
def test_on_policy_targets_are_the_lambda_return(kind, lam, horizon, length, terminal):
    rng = np.random.default_rng(7 + length)
    traj = ref.make_trajectory(rng, horizon, length, terminal=terminal)
    traj["behaviour_logp"] = traj["target_logp"].copy()  # π = μ, so ρ = 1 and c = λ
    got = jax_targets(traj, {**HP, "lam": lam}, kind)
    want = ref.lambda_return(
        ref.sigmoid(traj["value_logits"]),
        traj["rewards"],
        traj["dones"],
        length,
        gamma=0.9,
        lam=lam,
    )
    np.testing.assert_allclose(got[:length], want, **TOL)


@pytest.mark.parametrize("kind", ["vtrace", "retrace_paper"])
@pytest.mark.parametrize(("horizon", "length", "terminal"), CASES)
def test_on_policy_targets_with_lambda_one_are_the_monte_carlo_return(
    kind, horizon, length, terminal
):
    rng = np.random.default_rng(11 + length)
    traj = ref.make_trajectory(rng, horizon, length, terminal=terminal)
    traj["behaviour_logp"] = traj["target_logp"].copy()
    got = jax_targets(traj, {**HP, "lam": 1.0}, kind)
    want = ref.monte_carlo_return(
        ref.sigmoid(traj["value_logits"]), traj["rewards"], traj["dones"], length, gamma=0.9
    )
    np.testing.assert_allclose(got[:length], want, **TOL)


def test_zero_ratio_cuts_the_trace_and_the_policy_gradient():
    rng = np.random.default_rng(3)
    traj = ref.make_trajectory(rng, 8, 7, terminal=False)
    cut = 3
    traj["target_logp"][cut] = -1e4  # π(a_cut) ≈ 0, so ρ_cut = 0 and c_cut = 0
    hp = {**HP, "lam": 1.0}
    for kind in ("vtrace", "retrace_paper"):
        before = jax_targets(traj, hp, kind)
        changed = {**traj, "rewards": traj["rewards"].copy()}
        changed["rewards"][cut + 1 :] += 5.0
        after = jax_targets(changed, hp, kind)
        # Nothing after the cut reaches the targets before it (nor, for vtrace, the target at it).
        last_unaffected = cut if kind == "vtrace" else cut - 1
        np.testing.assert_array_equal(before[: last_unaffected + 1], after[: last_unaffected + 1])
        assert not np.allclose(before[cut + 1 : 7], after[cut + 1 : 7])
    vtrace = jax_targets(traj, hp, "vtrace")
    np.testing.assert_allclose(vtrace[cut], ref.sigmoid(traj["value_logits"])[cut], rtol=1e-6)
    want_loss, _, _ = ref.aride(traj, hp)
    loss, _, _ = losses.aride_loss(*args_of(traj), **hp)
    np.testing.assert_allclose(loss, want_loss, **TOL)
    grad_logp = jax.grad(
        lambda lp: losses.aride_loss(*args_of({**traj, "target_logp": lp}), **hp)[0]
    )
    assert float(grad_logp(jnp.asarray(traj["target_logp"]))[cut]) == 0.0


@pytest.mark.parametrize("kind", losses.VALUE_TARGET_KINDS)
def test_huge_ratios_stay_finite_and_are_clipped(kind):
    rng = np.random.default_rng(4)
    traj = ref.make_trajectory(rng, 6, 5, terminal=True)
    traj["behaviour_logp"][:5] = traj["target_logp"][:5] - 200.0  # ρ = e^200: inf in float32
    hp = {**HP, "value_target": kind, "c_bar": 1.5, "rho_bar": 1.2}
    loss, metrics, priority = losses.aride_loss(*args_of(traj), **hp)
    want_loss, _, want_priority = ref.aride(traj, hp)
    assert all(np.isfinite(np.asarray(v)) for v in metrics.values())
    np.testing.assert_allclose(loss, want_loss, **TOL)
    np.testing.assert_allclose(priority, want_priority, rtol=2e-5)
    assert float(metrics["rho_clipped_frac"]) == 1.0


def test_importance_ratios_edge_cases():
    target = jnp.array([-jnp.inf, -jnp.inf, 0.0, -1.0, 300.0], jnp.float32)
    behaviour = jnp.array([-2.0, -jnp.inf, -1e30, -1.0, 0.0], jnp.float32)
    rhos = np.asarray(losses.importance_ratios(target, behaviour))
    assert rhos[0] == 0.0 and rhos[1] == 1.0 and rhos[3] == 1.0
    assert np.isfinite(rhos).all() and rhos[2] == rhos[4] == np.float32(np.exp(losses.LOG_RHO_MAX))


@functools.lru_cache(maxsize=8)
def jitted_loss_and_grads(hp_items: tuple):
    """jit(grad) of aride_loss w.r.t. its four differentiable inputs, compiled once per hp."""
    hp = dict(hp_items)

    def total(value_logits, traj_value_logit, target_logp, entropy, *rest):
        out = losses.aride_loss(value_logits, traj_value_logit, target_logp, entropy, *rest, **hp)
        return out[0], out

    return jax.jit(jax.grad(total, argnums=(0, 1, 2, 3), has_aux=True))


def loss_and_grads(traj: dict, hp: dict):
    """((loss, metrics, priority), gradients w.r.t. the four differentiable inputs)."""
    grads, out = jitted_loss_and_grads(tuple(sorted(hp.items())))(*args_of(traj))
    return out, grads


def test_padding_garbage_does_not_leak():
    rng = np.random.default_rng(5)
    traj = ref.make_trajectory(rng, 9, 4, terminal=False, pad_scale=1.0)
    other = ref.make_trajectory(np.random.default_rng(6), 9, 4, terminal=False, pad_scale=-3.0)
    for name, arr in traj.items():  # same real steps (and s_T), different padding
        if np.ndim(arr) == 1:
            keep = 5 if name == "value_logits" else 4
            other[name][:keep] = arr[:keep]
        else:
            other[name] = arr
    for kind in losses.VALUE_TARGET_KINDS:
        hp = {**HP, "value_target": kind}
        (loss_a, metrics_a, prio_a), grads_a = loss_and_grads(traj, hp)
        (loss_b, metrics_b, prio_b), grads_b = loss_and_grads(other, hp)
        assert float(loss_a) == float(loss_b) and float(prio_a) == float(prio_b)
        chex.assert_trees_all_equal(metrics_a, metrics_b)
        chex.assert_trees_all_equal(grads_a, grads_b)
        for grad in (grads_a[0][4:], grads_a[2][4:], grads_a[3][4:]):
            assert np.all(np.asarray(grad) == 0.0)


def test_gradients_flow_and_value_loss_has_gradient():
    rng = np.random.default_rng(8)
    traj = ref.make_trajectory(rng, 6, 5, terminal=False)
    hp = {**HP, "value_coef": 0.7}
    (_, _, _), grads = loss_and_grads(traj, hp)
    for grad in grads:
        assert np.all(np.isfinite(np.asarray(grad)))
    g_values, g_traj, g_logp, g_entropy = (np.asarray(g) for g in grads)
    assert np.all(g_values[:5] != 0.0) and g_traj != 0.0
    assert np.any(g_logp[:5] != 0.0)
    np.testing.assert_allclose(g_entropy[:5], -hp["entropy_coef"] / 5, rtol=1e-6)
    # The critic inputs reach the loss only through the value loss (targets and advantages are
    # constants), so this is exactly value_coef·∂BCE/∂logit = value_coef·(σ(x_t) − v_t)/T.
    _, parts, _ = ref.aride(traj, hp)
    want = (
        hp["value_coef"]
        * (ref.sigmoid(traj["value_logits"][:5]) - np.clip(parts["targets"], 0, 1))
        / 5
    )
    np.testing.assert_allclose(g_values[:5], want, rtol=1e-4, atol=1e-7)
    assert g_values[5] == 0.0  # V(s_T) is only ever a bootstrap target


def test_value_target_switch_switches_something():
    rng = np.random.default_rng(9)
    traj = ref.make_trajectory(rng, 8, 8, terminal=False, logp_gap=1.0)
    results = {}
    for kind in losses.VALUE_TARGET_KINDS:
        results[kind] = jax_targets(traj, HP, kind)
    assert not np.allclose(results["none"], results["vtrace"], atol=1e-3)
    assert not np.allclose(results["retrace_paper"], results["vtrace"], atol=1e-3)
    loss_none = losses.aride_loss(*args_of(traj), **{**HP, "value_target": "none"})[0]
    loss_vtrace = losses.aride_loss(*args_of(traj), **HP)[0]
    assert abs(float(loss_none) - float(loss_vtrace)) > 1e-4


def test_off_policy_correction_flag_sets_ratios_to_one():
    rng = np.random.default_rng(10)
    traj = ref.make_trajectory(rng, 7, 6, terminal=True, logp_gap=1.0)
    on = losses.aride_loss(*args_of(traj), **HP)
    off = losses.aride_loss(*args_of(traj), **{**HP, "off_policy_correction": False})
    assert abs(float(on[0]) - float(off[0])) > 1e-4
    assert float(on[2]) == float(off[2])  # the priority still sees the real ratios
    same = {**traj, "behaviour_logp": traj["target_logp"].copy()}  # π = μ: the flag is moot
    np.testing.assert_allclose(
        losses.aride_loss(*args_of(same), **HP)[0],
        losses.aride_loss(*args_of(same), **{**HP, "off_policy_correction": False})[0],
        rtol=1e-6,
    )


def test_rlax_vtrace_agrees():
    rlax = pytest.importorskip("rlax")
    rng = np.random.default_rng(12)
    for length, terminal in ((8, False), (5, True), (1, False)):
        traj = ref.make_trajectory(rng, 8, length, terminal=terminal, logp_gap=1.0)
        hp = {**HP, "c_bar": 1.0, "rho_bar": 1.4}  # rlax fixes c̄ = 1
        values = jax.nn.sigmoid(jnp.asarray(traj["value_logits"]))
        rhos = losses.importance_ratios(traj["target_logp"], traj["behaviour_logp"])
        errors = rlax.vtrace(
            values[:-1],
            values[1:],
            jnp.asarray(traj["rewards"]),
            hp["gamma"] * (1.0 - jnp.asarray(traj["dones"])),
            rhos,
            lambda_=hp["lam"],
            clip_rho_threshold=hp["rho_bar"],
            sample_mask=jnp.asarray(traj["mask"]) > 0,
        )
        want = np.asarray(values[:-1] + errors)[:length]
        np.testing.assert_allclose(jax_targets(traj, hp, "vtrace")[:length], want, **TOL)


def test_bad_inputs_get_clear_errors():
    rng = np.random.default_rng(13)
    traj = ref.make_trajectory(rng, 5, 3, terminal=True)
    with pytest.raises(ValueError, match="value_target='retrace'"):
        losses.aride_loss(*args_of(traj), **{**HP, "value_target": "retrace"})
    with pytest.raises(ValueError, match="priority_weights"):
        losses.aride_loss(*args_of(traj), **{**HP, "priority_weights": (1.0, 2.0)})
    bad = {**traj, "entropy": traj["entropy"][:4]}
    with pytest.raises(ValueError, match=r"entropy has shape \(4,\), expected \(5,\)"):
        losses.aride_loss(*args_of(bad), **HP)
    with pytest.raises(ValueError, match="success must be a scalar"):
        losses.aride_loss(*args_of({**traj, "success": np.ones(2, np.float32)}), **HP)
    batch = [jnp.stack([a, a]) for a in args_of(traj)]
    with pytest.raises(ValueError, match="is_weights has shape"):
        losses.batched_aride_loss(*batch, jnp.ones(3), **HP)


def make_batch(seed: int, batch: int = 4, horizon: int = 6) -> tuple[list[dict], list[jnp.ndarray]]:
    """``batch`` trajectories of mixed lengths and endings, and their stacked arrays."""
    rng = np.random.default_rng(seed)
    trajs = [
        ref.make_trajectory(rng, horizon, int(rng.integers(1, horizon + 1)), terminal=bool(b % 2))
        for b in range(batch)
    ]
    stacked = [jnp.stack([jnp.asarray(t[n]) for t in trajs]) for n in losses.LOSS_INPUT_NAMES]
    return trajs, stacked


class BatchedAndJittedTest(chex.TestCase):
    """The batched loss, with and without jit."""

    @chex.variants(with_jit=True, without_jit=True)
    def test_batched_loss_weights_trajectories_by_is_weights(self):
        trajs, stacked = make_batch(seed=20)
        is_weights = jnp.array([1.0, 0.5, 0.25, 0.0], jnp.float32)
        fn = self.variant(functools.partial(losses.batched_aride_loss, **HP))
        loss, metrics, priorities = fn(*stacked, is_weights)
        refs = [ref.aride(t, HP) for t in trajs]
        want = np.mean([w * r[0] for w, r in zip(np.asarray(is_weights), refs, strict=True)])
        np.testing.assert_allclose(loss, want, **TOL)
        np.testing.assert_allclose(priorities, [r[2] for r in refs], rtol=2e-5)
        chex.assert_shape(priorities, (4,))
        np.testing.assert_allclose(
            metrics["value_loss"], np.mean([r[1]["value_loss"] for r in refs]), **TOL
        )

    @chex.variants(with_jit=True)
    def test_batched_gradients_are_finite_and_respect_zero_weights(self):
        _, stacked = make_batch(seed=21)
        is_weights = jnp.array([1.0, 1.0, 0.0, 1.0], jnp.float32)

        def total(value_logits, traj_value_logit, target_logp, entropy):
            out = losses.batched_aride_loss(
                value_logits, traj_value_logit, target_logp, entropy, *stacked[4:], is_weights, **HP
            )
            return out[0]

        grads = self.variant(jax.grad(total, argnums=(0, 1, 2, 3)))(*stacked[:4])
        for grad in grads:
            assert np.all(np.isfinite(np.asarray(grad)))
            assert np.all(np.asarray(grad)[2] == 0.0)  # weight 0: no gradient at all
            assert np.any(np.asarray(grad)[[0, 1, 3]] != 0.0)


@pytest.mark.parametrize("jit", [False, True])
def test_clipped_surrogate_stops_pushing_outside_the_trust_region(jit):
    """PPO's clip: inside [1-ε, 1+ε] the gradient is -A·ρ per step; an action already pushed
    past the band in its advantage's direction gets no gradient; against it, it still does."""
    behaviour = jnp.log(jnp.full(5, 0.5))
    # ratios 1.0, 1.5, 0.6, 1.5, 0.6 with advantages +1, +1, -1, -1, +1
    target = behaviour + jnp.log(jnp.array([1.0, 1.5, 0.6, 1.5, 0.6]))
    advs = jnp.array([1.0, 1.0, -1.0, -1.0, 1.0])
    mask = jnp.ones(5)

    def loss(t):
        return losses.clipped_surrogate_loss(t, behaviour, advs, mask, clip=0.2)

    grad_fn = jax.jit(jax.grad(loss)) if jit else jax.grad(loss)
    grad = grad_fn(target)
    expected = -advs * jnp.exp(target - behaviour) / 5
    expected = expected.at[1].set(0.0).at[2].set(0.0)  # past the band in A's direction
    np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-7)


def test_policy_clip_switches_the_aride_policy_loss():
    """policy_clip > 0 changes the A-RIDE loss only through the policy term."""
    rng = np.random.default_rng(3)
    h = 6
    args = dict(
        value_logits=jnp.asarray(rng.normal(size=h + 1), jnp.float32),
        traj_value_logit=jnp.float32(0.3),
        target_logp=jnp.asarray(-rng.uniform(0.1, 3, size=h), jnp.float32),
        entropy=jnp.asarray(rng.uniform(0, 1, size=h), jnp.float32),
        rewards=jnp.zeros(h).at[h - 1].set(1.0),
        penalties=jnp.zeros(h),
        dones=jnp.zeros(h).at[h - 1].set(1.0),
        mask=jnp.ones(h),
        behaviour_logp=jnp.asarray(-rng.uniform(0.1, 3, size=h), jnp.float32),
        success=jnp.float32(1.0),
    )
    hp = {k: v for k, v in HP.items() if k != "policy_clip"}
    _, plain, _ = losses.aride_loss(**args, **hp)
    _, clipped, _ = losses.aride_loss(**args, **hp, policy_clip=0.2)
    assert float(plain["pg_loss"]) != pytest.approx(float(clipped["pg_loss"]))
    for key in ("value_loss", "traj_value_loss", "entropy", "advantage_mean"):
        assert float(plain[key]) == pytest.approx(float(clipped[key]))


@pytest.mark.parametrize("jit", [False, True])
def test_positive_advantages_leave_negative_steps_without_policy_gradient(jit):
    """pg_advantages=positive: steps with A_t <= 0 give log π no gradient, steps with A_t > 0
    the same gradient as the signed loss; the critics' losses are unchanged."""
    rng = np.random.default_rng(5)
    h = 8
    args = dict(
        value_logits=jnp.asarray(rng.normal(size=h + 1), jnp.float32),
        traj_value_logit=jnp.float32(-0.2),
        entropy=jnp.asarray(rng.uniform(0, 1, size=h), jnp.float32),
        rewards=jnp.zeros(h).at[h - 1].set(1.0),
        penalties=jnp.zeros(h).at[2].set(-0.1),
        dones=jnp.zeros(h).at[h - 1].set(1.0),
        mask=jnp.ones(h),
        behaviour_logp=jnp.asarray(-rng.uniform(0.1, 3, size=h), jnp.float32),
        success=jnp.float32(1.0),
    )
    target = jnp.asarray(-rng.uniform(0.1, 3, size=h), jnp.float32)
    hp = {k: v for k, v in HP.items() if k != "policy_clip"}

    def grads(positive):
        def f(t):
            loss, metrics, _ = losses.aride_loss(
                target_logp=t, **args, **hp, positive_advantages=positive
            )
            return loss, metrics

        fn = jax.grad(f, has_aux=True)
        return (jax.jit(fn) if jit else fn)(target)

    signed_grad, signed = grads(False)
    pos_grad, pos = grads(True)
    frac = float(pos["advantage_positive_frac"])
    assert 0 < frac < 1, "the case must mix signs"
    # The entropy term has no target_logp dependence here, so the gradient is the pg term's.
    negative = np.asarray(signed_grad) > 0  # d(-w·logp)/dlogp > 0  <=>  w < 0
    assert negative.any() and (~negative).any()
    np.testing.assert_allclose(np.asarray(pos_grad)[negative], 0.0, atol=1e-7)
    np.testing.assert_allclose(
        np.asarray(pos_grad)[~negative], np.asarray(signed_grad)[~negative], rtol=1e-5
    )
    for key in ("value_loss", "traj_value_loss", "advantage_mean"):
        assert float(pos[key]) == pytest.approx(float(signed[key]))
