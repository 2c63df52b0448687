"""DigiRL's objective (Bai et al. 2024, arXiv 2406.11896) as a second ``algo``, on the same inputs.

DigiRL is advantage-weighted RL with a hard filter: a transition is behaviour-cloned (−log π)
only when its doubly-robust step advantage is above a threshold, and only trajectories whose
instruction-level advantage r(τ) − V_traj(task, s_0) is in the top fraction are used for the
policy at all (the automatic curriculum). Both critics are trained with cross-entropy toward
success labels. The public code (DigiRL-agent/digirl, ``algorithms/digirl/trainer.py`` and
``offpolicy_train_loop.filter_buffer``) is the reference for the details the paper leaves open;
where it differs from the paper, ``advantage_form`` picks which one.

Inputs and padding conventions are those of ``losses`` (one trajectory, padded to H; the
batched function vmaps). ``digirl_loss`` returns the same ``(loss, metrics, priority)`` triple
as ``losses.aride_loss`` so that the train step can switch ``algo``; the priority is A-RIDE's
p(τ), so prioritized replay keeps working (use uniform sampling for a faithful DigiRL).
DigiRL has no penalties and no entropy bonus: ``penalties`` and ``entropy`` only feed metrics.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import chex
import jax
import jax.numpy as jnp
import optax

from distrl_jax.learner.losses import (
    LOSS_INPUT_NAMES,
    check_priority_weights,
    check_trajectory_shapes,
    discounted_sums,
    importance_ratios,
    masked_mean,
    td_errors,
    trajectory_critic_loss,
    trajectory_priority,
)

Array = chex.Array

ADVANTAGE_FORMS = ("paper", "code")
# The public code's advantage subtracts this constant (trainer.py: "nv - v - 0.05 + ...").
CODE_ADVANTAGE_OFFSET = 0.05
# label_trajectories() clamps V_traj to this range before taking r(τ) − V_traj.
TRAJ_VALUE_CLAMP = 1e-4


def discounted_returns(rewards: Array, mask: Array, *, gamma: float) -> Array:
    """Monte Carlo return Σ_{k≥t} γ^{k−t} r_k over the real steps (DigiRL's ``mc_return``), 0 on padding."""
    chex.assert_equal_shape([rewards, mask])
    rewards = jnp.where(mask > 0, rewards, 0.0)
    return discounted_sums(rewards, jnp.full_like(rewards, gamma), mask)


def doubly_robust_advantages(
    values: Array, rewards: Array, mask: Array, success: Array, *, lam: float
) -> Array:
    """DigiRL's step advantage (paper, §4.3), 0 on padding, no gradient.

    A_h = λ^{T−h}·r(τ) + (1 − λ^{T−h})·(V(s_{h+1}) + r_h − V(s_h)), where s_T is the state after
    the last of the T actions (the paper's s_H) and r(τ) = ``success``: the Monte Carlo estimate
    dominates near the end of the episode, the one-step estimate near its start. ``values [H+1]``
    are probabilities. As in the paper there is no discount and no done mask on V(s_{h+1}).
    """
    chex.assert_equal_shape([values[:-1], rewards, mask])
    real = mask > 0
    length = jnp.sum(real)
    steps_to_end = jnp.maximum(length - jnp.arange(rewards.shape[0]), 0).astype(values.dtype)
    weight = jnp.power(lam, steps_to_end)
    one_step = values[1:] + rewards - values[:-1]
    adv = weight * success + (1.0 - weight) * one_step
    return jax.lax.stop_gradient(jnp.where(real, adv, 0.0))


def code_advantages(values: Array, rewards: Array, mask: Array, *, gamma: float) -> Array:
    """The public code's step advantage: V(s_{t+1}) − V(s_t) − 0.05 + r_t + mc_return_t (no gradient)."""
    chex.assert_equal_shape([values[:-1], rewards, mask])
    mc = discounted_returns(rewards, mask, gamma=gamma)
    adv = values[1:] - values[:-1] - CODE_ADVANTAGE_OFFSET + rewards + mc
    return jax.lax.stop_gradient(jnp.where(mask > 0, adv, 0.0))


def instruction_advantages(success: Array, traj_value_logit: Array) -> Array:
    """r(τ) − V_traj(task, s_0) with V_traj clamped to [1e-4, 1 − 1e-4] (no gradient); any shape."""
    v = jnp.clip(jax.nn.sigmoid(traj_value_logit), TRAJ_VALUE_CLAMP, 1.0 - TRAJ_VALUE_CLAMP)
    return jax.lax.stop_gradient(success - v)


def curriculum_mask(scores: Array, top_fraction: float) -> Array:
    """Boolean mask of the entries whose score is in the top ``top_fraction`` (ties kept).

    DigiRL's automatic curriculum: keep ``scores >= quantile(scores, 1 − top_fraction)``, as
    ``filter_buffer`` does with 0.1. Pass per-trajectory ``instruction_advantages`` to filter a
    batch, or one score per task (e.g. each task's mean instruction advantage, or its V_traj) to
    pick the tasks to sample. ``top_fraction = 1`` keeps everything. Jittable.
    """
    if isinstance(top_fraction, int | float) and not 0.0 < top_fraction <= 1.0:
        raise ValueError(f"top_fraction={top_fraction!r} must be in (0, 1]")
    chex.assert_rank(scores, 1)
    cutoff = jnp.quantile(scores, 1.0 - top_fraction)
    return scores >= cutoff


def step_critic_labels(rewards: Array, mask: Array, *, gamma: float) -> Array:
    """DigiRL's step-critic label 1[mc_return_t > 0]: success happens at or after step t."""
    return (discounted_returns(rewards, mask, gamma=gamma) > 0).astype(rewards.dtype)


def digirl_terms(
    value_logits: Array,
    traj_value_logit: Array,
    target_logp: Array,
    entropy: Array,
    rewards: Array,
    penalties: Array,
    dones: Array,
    mask: Array,
    behaviour_logp: Array,
    success: Array,
    *,
    gamma: float,
    lam: float,
    advantage_threshold: float,
    advantage_form: str,
    priority_weights: Sequence[float],
    rho_max: float,
) -> tuple[dict[str, Array], Array]:
    """The separate DigiRL loss terms of one trajectory, ``(terms, priority)``.

    terms: ``policy_loss`` = −mean_t[1(A_t > threshold)·log π_t] over real steps (filtered BC;
    the mean counts filtered-out steps, as the public code does), ``value_loss`` = mean BCE of
    V(s_t) and of V(s_{t+1}) toward 1[mc_return_t > 0] (the public code trains both heads on
    both states), ``traj_value_loss`` = BCE(V_traj, success), plus metrics.
    """
    steps = (target_logp, entropy, rewards, penalties, dones, mask, behaviour_logp)
    check_trajectory_shapes(
        value_logits,
        traj_value_logit,
        success,
        **dict(zip(LOSS_INPUT_NAMES[2:9], steps, strict=True)),
    )
    if advantage_form not in ADVANTAGE_FORMS:
        raise ValueError(f"advantage_form={advantage_form!r} is not one of {ADVANTAGE_FORMS}")
    check_priority_weights(priority_weights)

    values = jax.lax.stop_gradient(jax.nn.sigmoid(value_logits))
    if advantage_form == "paper":
        advs = doubly_robust_advantages(values, rewards, mask, success, lam=lam)
    else:
        advs = code_advantages(values, rewards, mask, gamma=gamma)
    keep = jnp.logical_and(mask > 0, advs > advantage_threshold)
    policy_loss = -masked_mean(jnp.where(keep, target_logp, 0.0), mask)

    labels = step_critic_labels(rewards, mask, gamma=gamma)
    bce_now = optax.sigmoid_binary_cross_entropy(value_logits[:-1], labels)
    bce_next = optax.sigmoid_binary_cross_entropy(value_logits[1:], labels)
    value_loss = masked_mean(bce_now, mask) + masked_mean(bce_next, mask)
    traj_value_loss = trajectory_critic_loss(traj_value_logit, success)

    rhos = importance_ratios(target_logp, behaviour_logp)
    deltas = td_errors(values, rewards, dones, mask, gamma=gamma)
    priority = trajectory_priority(
        deltas, rhos, target_logp, mask, priority_weights=priority_weights, rho_max=rho_max
    )
    terms = {
        "policy_loss": policy_loss,
        "value_loss": value_loss,
        "traj_value_loss": traj_value_loss,
        "entropy": masked_mean(entropy, mask),
        "penalty_mean": masked_mean(penalties, mask),
        "advantage_mean": masked_mean(advs, mask),
        "kept_step_frac": masked_mean(keep.astype(values.dtype), mask),
        "value_mean": masked_mean(values[:-1], mask),
        "td_error_abs_mean": masked_mean(jnp.abs(deltas), mask),
        "rho_mean": masked_mean(rhos, mask),
        "traj_value": jax.nn.sigmoid(jax.lax.stop_gradient(traj_value_logit)),
        "instruction_advantage": instruction_advantages(success, traj_value_logit),
        "length": jnp.sum(mask > 0).astype(values.dtype),
        "priority": priority,
    }
    return terms, priority


def digirl_loss(
    value_logits: Array,
    traj_value_logit: Array,
    target_logp: Array,
    entropy: Array,
    rewards: Array,
    penalties: Array,
    dones: Array,
    mask: Array,
    behaviour_logp: Array,
    success: Array,
    *,
    gamma: float,
    lam: float,
    advantage_threshold: float,
    advantage_form: str,
    value_coef: float,
    traj_value_coef: float,
    priority_weights: Sequence[float],
    rho_max: float,
) -> tuple[Array, dict[str, Array], Array]:
    """DigiRL's loss on one trajectory: ``(loss, metrics, priority)``, like ``aride_loss``.

    loss = policy + value_coef·value + traj_value_coef·traj_value, the terms of ``digirl_terms``.
    The curriculum needs the other trajectories, so it lives in ``batched_digirl_loss``.
    """
    terms, priority = digirl_terms(
        value_logits,
        traj_value_logit,
        target_logp,
        entropy,
        rewards,
        penalties,
        dones,
        mask,
        behaviour_logp,
        success,
        gamma=gamma,
        lam=lam,
        advantage_threshold=advantage_threshold,
        advantage_form=advantage_form,
        priority_weights=priority_weights,
        rho_max=rho_max,
    )
    loss = (
        terms["policy_loss"]
        + value_coef * terms["value_loss"]
        + traj_value_coef * terms["traj_value_loss"]
    )
    return loss, {"loss": loss, **terms}, priority


def batched_digirl_loss(
    value_logits: Array,
    traj_value_logit: Array,
    target_logp: Array,
    entropy: Array,
    rewards: Array,
    penalties: Array,
    dones: Array,
    mask: Array,
    behaviour_logp: Array,
    success: Array,
    is_weights: Array,
    *,
    curriculum_fraction: float,
    value_coef: float,
    traj_value_coef: float,
    **hyperparams,
) -> tuple[Array, dict[str, Array], Array]:
    """DigiRL over a batch (leading dim B): ``(loss, metrics, priorities [B])``.

    The critics train on every trajectory; the policy only on those whose instruction-level
    advantage is in the batch's top ``curriculum_fraction`` (the in-batch form of the public
    code's ``filter_buffer``), averaged over the kept trajectories. ``is_weights`` weight each
    trajectory as in ``batched_aride_loss``; ``hyperparams`` are ``digirl_terms``' keywords
    (gamma, lam, advantage_threshold, advantage_form, priority_weights, rho_max).
    """
    if jnp.ndim(value_logits) != 2:
        raise ValueError(f"value_logits must have shape [B, H+1], got {jnp.shape(value_logits)}")
    batch = jnp.shape(value_logits)[0]
    if jnp.shape(is_weights) != (batch,):
        raise ValueError(f"is_weights has shape {jnp.shape(is_weights)}, expected ({batch},) = [B]")
    per_trajectory = jax.vmap(functools.partial(digirl_terms, **hyperparams))
    terms, priorities = per_trajectory(
        value_logits,
        traj_value_logit,
        target_logp,
        entropy,
        rewards,
        penalties,
        dones,
        mask,
        behaviour_logp,
        success,
    )

    weights = jax.lax.stop_gradient(is_weights)
    kept = curriculum_mask(instruction_advantages(success, traj_value_logit), curriculum_fraction)
    kept_f = kept.astype(weights.dtype)
    policy_loss = jnp.sum(kept_f * weights * terms["policy_loss"]) / jnp.maximum(
        jnp.sum(kept_f), 1.0
    )
    critic_loss = jnp.mean(
        weights * (value_coef * terms["value_loss"] + traj_value_coef * terms["traj_value_loss"])
    )
    loss = policy_loss + critic_loss

    metrics = jax.tree.map(jnp.mean, terms)
    metrics.update(
        loss=loss,
        policy_loss=policy_loss,
        critic_loss=critic_loss,
        curriculum_kept_frac=jnp.mean(kept_f),
    )
    return loss, metrics, priorities
