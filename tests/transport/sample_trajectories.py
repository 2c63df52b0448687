"""Small valid trajectories of random content (seeded), for the transport and wire-fuzzing tests.

A plain module, not a conftest: ``tests/transport/conftest.py`` serves it as the
``make_trajectory`` fixture and ``tests/reliability/test_fuzz_wire.py`` imports it through
``sys.path``.
"""

from __future__ import annotations

import numpy as np

from distrl_jax.types import Trajectory


def build_trajectory(
    length: int = 3, *, seed: int = 0, episode_id: int = 0, screen_hw: tuple[int, int] = (8, 6)
) -> Trajectory:
    """A valid trajectory of ``length`` actions with small random screens (seeded)."""
    rng = np.random.default_rng(seed)
    return Trajectory(
        screens=rng.integers(0, 256, (length + 1, *screen_hw, 3), dtype=np.uint8),
        context=rng.integers(0, 500, (length + 1, 5), dtype=np.int32),
        actions=rng.integers(0, 300, (length, 4), dtype=np.int32),
        rewards=rng.random(length).astype(np.float32),
        penalties=-rng.random(length).astype(np.float32),
        dones=np.zeros(length, np.float32),
        behaviour_logp=rng.normal(size=length).astype(np.float32),
        task="Open the clock app",
        success=bool(seed % 2),
        policy_version=seed,
        actor_id=seed + 1,
        episode_id=episode_id,
    )
