"""Running one episode of a task on a TaskEnv with some way of choosing actions.

Used by the baseline evaluation (scripted expert, random policy); many environments at once, and
trajectory recording for the actors, are :mod:`distrl_jax.actor.rollout`'s. A device fault (``InfrastructureError``) restarts the device and
retries the episode from scratch, up to ``retries`` times; an episode that still fails is an
infrastructure failure, reported as such and never as a policy failure with zero reward.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import numpy as np

from distrl_jax.core import Observation, PolicyOutput
from distrl_jax.devices.actions import (
    BACK,
    COMPLETE,
    ENTER,
    HOME,
    Action,
    swipe,
    tap,
    type_text,
)
from distrl_jax.devices.task_env import TaskEnv
from distrl_jax.metrics.eval_table import EpisodeRecord
from distrl_jax.tasks.goals import Task

ActFn = Callable[[TaskEnv, Observation], Action]


def run_episode(env: TaskEnv, task: Task, act: ActFn, *, retries: int = 2) -> EpisodeRecord:
    """Play ``task`` to the end; returns its record (``infra_failure`` when retries ran out).

    One environment's case of :class:`~distrl_jax.actor.rollout.VectorRollout`, which owns the
    restart-and-retry logic."""
    from distrl_jax.actor.rollout import VectorRollout

    def batch_act(envs, observations):
        return [
            PolicyOutput(act(e, o), _NO_TOKENS, 0.0)
            for e, o in zip(envs, observations, strict=True)
        ]

    (result,) = VectorRollout([env], batch_act, retries=retries).run([task])
    return result.record


_NO_TOKENS = np.zeros(0, np.int32)  # scripted actions have no model tokens


class RandomPolicy:
    """The random baseline: uniform taps and swipes, keys, and TYPE of a word from the task."""

    def __init__(self, seed: int = 0):
        self.rng = random.Random(seed)

    def __call__(self, env: TaskEnv, obs: Observation) -> Action:
        """One random action."""
        r = self.rng.random()
        u = self.rng.random
        if r < 0.6:
            return tap(u(), u())
        if r < 0.7:
            return swipe(u(), u(), u(), u())
        if r < 0.8:
            words = obs.task.split() or ["a"]
            return type_text(self.rng.choice(words))
        return self.rng.choice([BACK, HOME, ENTER, COMPLETE])
