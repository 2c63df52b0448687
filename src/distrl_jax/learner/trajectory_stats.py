"""Reductions over one trajectory's real steps: the masked mean, and DistRL's replay priority.

Shared by the A-RIDE and DigiRL losses (``losses.py``, ``digirl.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

import chex
import jax
import jax.numpy as jnp

Array = chex.Array


def masked_mean(x: Array, mask: Array) -> Array:
    """Mean of ``x`` over the entries where ``mask`` > 0 (0 when there are none)."""
    keep = mask > 0
    return jnp.sum(jnp.where(keep, x, 0.0)) / jnp.maximum(jnp.sum(keep), 1)


def check_priority_weights(priority_weights: Sequence[float]) -> None:
    """Raise ValueError unless the priority weights are (w1, w2, w3)."""
    if len(priority_weights) != 3:
        raise ValueError(
            f"priority_weights={tuple(priority_weights)!r} must be three numbers (w1, w2, w3)"
        )


def trajectory_priority(
    deltas: Array,
    rhos: Array,
    target_logp: Array,
    mask: Array,
    *,
    priority_weights: Sequence[float],
    rho_max: float,
) -> Array:
    """p(τ) = w1·mean|δ_t| + w2·mean min(ρ_t, ρ_max) + w3·mean(−log π(a_t|s_t)) over real steps.

    DistRL's distributed prioritized replay (DESIGN §5): large TD errors, stale-but-relevant
    actions and unlikely actions are replayed more often. A constant (no gradient).
    """
    check_priority_weights(priority_weights)
    w1, w2, w3 = priority_weights
    priority = (
        w1 * masked_mean(jnp.abs(deltas), mask)
        + w2 * masked_mean(jnp.minimum(rhos, rho_max), mask)
        + w3 * masked_mean(-target_logp, mask)
    )
    return jax.lax.stop_gradient(priority)
