"""Shared fixtures for the transport tests: small valid trajectories."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from distrl_jax.types import Trajectory


def build_trajectory(length: int = 3, *, seed: int = 0, episode_id: int = 0) -> Trajectory:
    """A valid trajectory of ``length`` actions with small random screens (seeded)."""
    rng = np.random.default_rng(seed)
    return Trajectory(
        screens=rng.integers(0, 256, (length + 1, 8, 6, 3), dtype=np.uint8),
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


@pytest.fixture
def make_trajectory() -> Callable[..., Trajectory]:
    """Factory fixture: ``make_trajectory(length, seed=..., episode_id=...)``."""
    return build_trajectory


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Every channel's close() must have stopped the threads it started.

    Only our threads are checked: pyzmq starts one garbage-collector thread for zero-copy sends
    on first use and keeps it for the life of the process.
    """
    ours = {"param-latest", "param-subscriber", "control-server", "heartbeat"}
    yield
    leaked = [t.name for t in threading.enumerate() if t.name in ours and t.is_alive()]
    assert not leaked, f"threads left running: {leaked}"
