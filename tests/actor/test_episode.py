"""run_episode: retries after device faults, infra failures kept apart; the random baseline."""

from __future__ import annotations

import numpy as np
import pytest

from distrl_jax.actor.episode import RandomPolicy, run_episode
from distrl_jax.core import Device, Evaluator, InfrastructureError, Observation, Verdict
from distrl_jax.devices.actions import (
    ENTER,
    Action,
    ActionType,
    invalid,
    tap,
    type_text,
    validate,
)
from distrl_jax.devices.task_env import TaskEnv
from distrl_jax.tasks.goals import Task

TASK = Task("search for blue shoes", goal=None, horizon=4)


class FlakyDevice(Device):
    """Raises InfrastructureError on the first ``failing_episodes`` episodes (at their 2nd step)."""

    name = "flaky"

    def __init__(self, failing_episodes: int = 0, restart_fails: bool = False):
        self.failing_episodes = failing_episodes
        self.restart_fails = restart_fails
        self.episodes = 0
        self.steps = 0
        self.restarts = 0

    def reset(self, task: Task) -> np.ndarray:
        self.episodes += 1
        self.steps = 0
        return np.zeros((2, 2, 3), np.uint8)

    def step(self, action: Action) -> np.ndarray:
        self.steps += 1
        if self.episodes <= self.failing_episodes and self.steps == 2:
            raise InfrastructureError(f"hang in episode {self.episodes}", device=self.name)
        return np.full((2, 2, 3), self.steps, np.uint8)

    def screenshot(self) -> np.ndarray:
        return np.full((2, 2, 3), self.steps, np.uint8)

    def restart(self) -> None:
        self.restarts += 1
        if self.restart_fails:
            raise InfrastructureError("reboot failed")


class EnterWins(Evaluator):
    def evaluate(self, task, device, screen, history) -> Verdict:
        return Verdict(bool(history) and history[-1] == ENTER)


def scripted(actions: list[Action]):
    """An act function that plays ``actions`` in order, restarting with each new episode."""

    def act(env: TaskEnv, obs: Observation) -> Action:
        return actions[env.t]

    return act


def make_env(device: FlakyDevice) -> TaskEnv:
    return TaskEnv(device, EnterWins())


def test_success_record() -> None:
    env = make_env(FlakyDevice())
    rec = run_episode(env, TASK, scripted([tap(0.5, 0.5), invalid("x"), ENTER]))
    assert rec.task == TASK.text
    assert rec.success and rec.length == 3 and rec.invalid_actions == 1
    assert not rec.infra_failure


def test_policy_failure_is_not_an_infra_failure() -> None:
    env = make_env(FlakyDevice())
    rec = run_episode(env, TASK, scripted([tap(0.5, 0.5)] * 4))
    assert not rec.success and not rec.infra_failure
    assert rec.length == TASK.horizon


def test_retry_after_a_fault_then_succeed() -> None:
    device = FlakyDevice(failing_episodes=1)
    rec = run_episode(make_env(device), TASK, scripted([tap(0.5, 0.5), tap(0.4, 0.5), ENTER]))
    assert rec.success and not rec.infra_failure and rec.length == 3
    assert device.restarts == 1 and device.episodes == 2  # restarted, then replayed from scratch


@pytest.mark.parametrize("retries", [0, 1, 3])
def test_retries_exhausted_is_an_infra_failure(retries: int) -> None:
    device = FlakyDevice(failing_episodes=100)
    rec = run_episode(make_env(device), TASK, scripted([tap(0.5, 0.5)] * 4), retries=retries)
    assert rec.infra_failure and not rec.success
    assert rec.length == 0 and rec.invalid_actions == 0
    assert device.episodes == retries + 1 and device.restarts == retries + 1
    assert "InfrastructureError" in rec.reason and f"hang in episode {retries + 1}" in rec.reason


def test_failed_restart_is_reported() -> None:
    device = FlakyDevice(failing_episodes=100, restart_fails=True)
    rec = run_episode(make_env(device), TASK, scripted([tap(0.5, 0.5)] * 4), retries=1)
    assert rec.infra_failure
    assert "restart failed: reboot failed" in rec.reason


def test_other_errors_are_not_swallowed() -> None:
    def broken(env: TaskEnv, obs: Observation) -> Action:
        raise KeyError("policy bug")

    with pytest.raises(KeyError, match="policy bug"):
        run_episode(make_env(FlakyDevice()), TASK, broken)


def test_random_policy_gives_valid_actions() -> None:
    env = make_env(FlakyDevice())
    obs = env.reset(TASK)
    policy = RandomPolicy(seed=3)
    actions = [policy(env, obs) for _ in range(500)]
    assert all(validate(a) == a and a.is_valid for a in actions)
    kinds = {a.kind for a in actions}
    assert ActionType.DUAL_POINT in kinds and ActionType.TYPE in kinds and ENTER.kind in kinds
    assert any(a.is_tap for a in actions) and any(
        not a.is_tap for a in actions if a.kind is ActionType.DUAL_POINT
    )
    typed = {a.text for a in actions if a.kind is ActionType.TYPE}
    assert typed <= set(TASK.text.split())


def test_random_policy_with_empty_task_types_something() -> None:
    env = make_env(FlakyDevice())
    obs = env.reset(Task("", goal=None))
    policy = RandomPolicy(seed=0)
    typed = [a for a in (policy(env, obs) for _ in range(200)) if a.kind is ActionType.TYPE]
    assert typed and all(a == type_text("a") for a in typed)


def test_random_policy_is_seeded() -> None:
    env = make_env(FlakyDevice())
    obs = env.reset(TASK)
    p1, p2, p3 = RandomPolicy(seed=7), RandomPolicy(seed=7), RandomPolicy(seed=8)
    run1 = [p1(env, obs) for _ in range(50)]
    run2 = [p2(env, obs) for _ in range(50)]
    run3 = [p3(env, obs) for _ in range(50)]
    assert run1 == run2
    assert run1 != run3


def test_random_policy_episodes_are_reproducible() -> None:
    recs = [run_episode(make_env(FlakyDevice()), TASK, RandomPolicy(seed=11)) for _ in range(2)]
    assert recs[0] == recs[1]
