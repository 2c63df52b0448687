"""Running one episode of a task on a TaskEnv with some way of choosing actions.

Used by evaluation (greedy policy, scripted expert, random baseline) and, with trajectory
recording, by the actors. A device fault (``InfrastructureError``) restarts the device and
retries the episode from scratch, up to ``retries`` times; an episode that still fails is an
infrastructure failure, reported as such and never as a policy failure with zero reward.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable

from distrl_jax.core import InfrastructureError, Observation
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

log = logging.getLogger(__name__)

ActFn = Callable[[TaskEnv, Observation], Action]


def run_episode(env: TaskEnv, task: Task, act: ActFn, *, retries: int = 2) -> EpisodeRecord:
    """Play ``task`` to the end; returns its record (``infra_failure`` when retries ran out)."""
    last_error = ""
    for attempt in range(retries + 1):
        try:
            obs = env.reset(task)
            invalid = 0
            while True:
                obs, info = env.step(act(env, obs))
                invalid += int(info.invalid)
                if info.done:
                    return EpisodeRecord(task.text, info.success, env.t, invalid)
        except InfrastructureError as e:
            last_error = f"{type(e).__name__}: {e}"
            log.warning(
                "episode %r attempt %d failed: %s; restarting device", task.text, attempt, e
            )
            try:
                env.device.restart()
            except InfrastructureError as e2:
                last_error += f"; restart failed: {e2}"
    return EpisodeRecord(task.text, False, 0, 0, infra_failure=True, reason=last_error)


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
