"""Shared fixtures for the transport tests: small valid trajectories (``sample_trajectories.py``)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
from sample_trajectories import build_trajectory

from distrl_jax.types import Trajectory


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
