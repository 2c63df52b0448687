"""TaskEnv episode semantics (DESIGN §3/§5) on a tiny scripted device."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import pytest

from distrl_jax.core import Device, Evaluator, InfrastructureError, Verdict
from distrl_jax.devices.actions import (
    BACK,
    COMPLETE,
    HOME,
    IMPOSSIBLE,
    Action,
    invalid,
    tap,
    to_compact,
    type_text,
)
from distrl_jax.devices.task_env import TaskEnv
from distrl_jax.tasks.goals import Task

GOAL_ACTION = type_text("done")


@dataclasses.dataclass
class Effect:
    invalid: bool = False


class CounterDevice(Device):
    """A 2x2 screen that shows how many screen-changing actions happened; BACK changes nothing."""

    name = "counter"

    def __init__(self, fail_on_step: int = 0, inert: tuple[Action, ...] = (BACK,)):
        self.fail_on_step = fail_on_step  # raise InfrastructureError on this step call (1-based)
        self.inert = inert  # actions that do not change the screen
        self.rejects: tuple[Action, ...] = ()  # actions the device reports as not applied
        self.changes = 0
        self.step_calls: list[Action] = []
        self.resets = 0
        self.last_latency_s = 0.25
        self.last_effect = Effect()

    def _screen(self) -> np.ndarray:
        return np.full((2, 2, 3), self.changes % 256, dtype=np.uint8)

    def reset(self, task: Task) -> np.ndarray:
        self.resets += 1
        self.changes = 0
        return self._screen()

    def step(self, action: Action) -> np.ndarray:
        self.step_calls.append(action)
        if len(self.step_calls) == self.fail_on_step:
            raise InfrastructureError("device hung", device=self.name)
        self.last_effect = Effect(invalid=action in self.rejects)
        if action not in self.inert and action not in self.rejects:
            self.changes += 1
        return self._screen()

    def screenshot(self) -> np.ndarray:
        return self._screen()


class ActionHappened(Evaluator):
    """Succeeds once ``target`` is among the actions taken."""

    def __init__(self, target: Action = GOAL_ACTION):
        self.target = target
        self.calls = 0

    def evaluate(
        self, task: Task, device: Device, screen: np.ndarray, history: Sequence[Action]
    ) -> Verdict:
        self.calls += 1
        return Verdict(self.target in history, "target seen" if self.target in history else "")


class BrokenJudge(Evaluator):
    def evaluate(self, task, device, screen, history) -> Verdict:
        raise InfrastructureError("judge timed out")


def make_env(horizon: int = 5, **kw) -> tuple[TaskEnv, CounterDevice, Task]:
    device = CounterDevice(**{k: kw.pop(k) for k in ("fail_on_step", "inert") if k in kw})
    env = TaskEnv(device, ActionHappened(), **kw)
    task = Task("type done", goal=None, horizon=horizon)
    return env, device, task


def test_reset_gives_first_observation() -> None:
    env, device, task = make_env()
    assert env.done  # before the first reset
    obs = env.reset(task)
    assert obs.task == "type done"
    assert obs.history == ()
    np.testing.assert_array_equal(obs.screen, device.screenshot())
    assert env.t == 0 and not env.done and device.resets == 1


def test_success_gives_reward_one_and_ends() -> None:
    env, device, task = make_env()
    env.reset(task)
    _, info = env.step(tap(0.1, 0.1))
    assert (info.reward, info.done, info.success) == (0.0, False, False)
    obs, info = env.step(GOAL_ACTION)
    assert info.reward == 1.0 and info.done and info.success
    assert not info.truncated and not info.invalid and info.penalty == 0.0
    assert info.latency_s == pytest.approx(device.last_latency_s)
    assert env.done and env.t == 2
    assert obs.history == (to_compact(tap(0.1, 0.1)), to_compact(GOAL_ACTION))


@pytest.mark.parametrize("status", [COMPLETE, IMPOSSIBLE], ids=["complete", "impossible"])
def test_status_action_ends_without_reward_when_goal_does_not_hold(status: Action) -> None:
    env, device, task = make_env()
    env.reset(task)
    _, info = env.step(status)
    assert info.done and not info.truncated
    assert info.reward == 0.0 and not info.success
    assert device.step_calls == []  # STATUS actions never reach the device


def test_complete_gives_reward_when_goal_holds() -> None:
    class Flag(Evaluator):
        holds = False

        def evaluate(self, task, device, screen, history) -> Verdict:
            return Verdict(self.holds)

    judge = Flag()
    device = CounterDevice()
    env = TaskEnv(device, judge)
    env.reset(Task("t", goal=None, horizon=5))
    _, info = env.step(tap(0.5, 0.5))
    assert not info.done
    judge.holds = True  # e.g. the state was reached by a change the judge only sees now
    _, info = env.step(COMPLETE)
    assert info.done and info.success and info.reward == 1.0 and not info.truncated
    assert device.step_calls == [tap(0.5, 0.5)]


def test_horizon_truncates() -> None:
    env, _, task = make_env(horizon=3)
    env.reset(task)
    infos = [env.step(tap(0.1 * i, 0.5))[1] for i in range(1, 4)]
    assert [i.done for i in infos] == [False, False, True]
    assert [i.truncated for i in infos] == [False, False, True]
    assert all(i.reward == 0.0 for i in infos)
    assert env.done and env.t == 3


def test_success_on_the_last_step_is_termination_not_truncation() -> None:
    env, _, task = make_env(horizon=2)
    env.reset(task)
    env.step(tap(0.5, 0.5))
    _, info = env.step(GOAL_ACTION)
    assert info.done and info.success and not info.truncated


def test_invalid_action_is_a_penalised_no_op() -> None:
    env, device, task = make_env(invalid_penalty=-0.3, repeat_penalty=0.0)
    obs0 = env.reset(task)
    bad = invalid("garbage")
    obs, info = env.step(bad)
    assert info.invalid and info.penalty == pytest.approx(-0.3)
    assert not info.done and info.reward == 0.0
    assert device.step_calls == []  # the device never saw it
    np.testing.assert_array_equal(obs.screen, obs0.screen)
    assert obs.history == ("INVALID",)
    assert env.t == 1  # an invalid action still uses a step of the horizon


def test_device_reported_invalid_is_penalised() -> None:
    env, device, task = make_env(invalid_penalty=-0.2, repeat_penalty=0.0)
    device.rejects = (tap(0.9, 0.9),)
    env.reset(task)
    _, info = env.step(tap(0.9, 0.9))
    assert info.invalid and info.penalty == pytest.approx(-0.2)
    assert device.step_calls == [tap(0.9, 0.9)]
    _, info = env.step(tap(0.1, 0.1))
    assert not info.invalid and info.penalty == 0.0


def test_repeat_on_unchanged_screen_is_penalised() -> None:
    env, _, task = make_env(repeat_penalty=-0.05)
    env.reset(task)
    _, first = env.step(BACK)  # BACK leaves the screen unchanged
    _, second = env.step(BACK)
    assert not first.repeated and first.penalty == 0.0
    assert second.repeated and second.penalty == pytest.approx(-0.05)


def test_repeat_that_changes_the_screen_is_not_penalised() -> None:
    env, _, task = make_env(repeat_penalty=-0.05)
    env.reset(task)
    env.step(tap(0.5, 0.5))
    _, info = env.step(tap(0.5, 0.5))  # the counter screen changes on every tap
    assert not info.repeated and info.penalty == 0.0


def test_different_action_on_unchanged_screen_is_not_a_repeat() -> None:
    env, _, task = make_env(inert=(BACK, HOME))
    env.reset(task)
    env.step(BACK)
    _, info = env.step(HOME)
    assert not info.repeated


def test_repeated_invalid_action_gets_both_penalties() -> None:
    env, _, task = make_env(invalid_penalty=-0.1, repeat_penalty=-0.05)
    env.reset(task)
    env.step(invalid("x"))
    _, info = env.step(invalid("x"))
    assert info.invalid and info.repeated
    assert info.penalty == pytest.approx(-0.15)


def test_history_keeps_last_k() -> None:
    env, _, task = make_env(horizon=10, history_k=2)
    env.reset(task)
    for i in range(4):
        obs, _ = env.step(tap(0.1 * (i + 1), 0.5))
    assert obs.history == (to_compact(tap(0.3, 0.5)), to_compact(tap(0.4, 0.5)))


def test_history_k_zero_shows_no_history() -> None:
    env, _, task = make_env(history_k=0)
    env.reset(task)
    obs, _ = env.step(tap(0.5, 0.5))
    assert obs.history == ()


def test_step_after_done_raises() -> None:
    env, _, task = make_env()
    with pytest.raises(RuntimeError, match="reset"):
        env.step(BACK)  # never reset
    env.reset(task)
    env.step(GOAL_ACTION)
    with pytest.raises(RuntimeError, match="finished episode"):
        env.step(BACK)


def test_reset_starts_a_fresh_episode() -> None:
    env, _, task = make_env()
    env.reset(task)
    env.step(BACK)
    env.step(GOAL_ACTION)
    obs = env.reset(task)
    assert obs.history == () and env.t == 0 and not env.done
    _, info = env.step(BACK)  # not a repeat: the previous episode's actions are gone
    assert not info.repeated and not info.success


def test_device_fault_propagates() -> None:
    env, _, task = make_env(fail_on_step=2)
    env.reset(task)
    env.step(tap(0.5, 0.5))
    with pytest.raises(InfrastructureError, match="device hung") as exc:
        env.step(tap(0.6, 0.5))
    assert exc.value.device == "counter" and exc.value.retryable


def test_judge_fault_propagates() -> None:
    env = TaskEnv(CounterDevice(), BrokenJudge())
    env.reset(Task("t", goal=None))
    with pytest.raises(InfrastructureError, match="judge"):
        env.step(BACK)


@pytest.mark.parametrize("kw", [{"invalid_penalty": 0.1}, {"repeat_penalty": 0.01}])
def test_positive_penalty_is_refused(kw: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="<= 0"):
        TaskEnv(CounterDevice(), ActionHappened(), **kw)


def test_zero_horizon_is_refused() -> None:
    env, _, _ = make_env()
    with pytest.raises(ValueError, match="horizon"):
        env.reset(Task("t", goal=None, horizon=0))
