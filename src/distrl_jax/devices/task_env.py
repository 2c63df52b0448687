"""One task on one device: rewards, termination, penalties and the action history.

This is the episode semantics of DESIGN §3/§5, shared by every device kind: reward 1 on the step
whose outcome satisfies the goal (as the evaluator judges it); the episode ends then, on a
STATUS_TASK_COMPLETE / STATUS_TASK_IMPOSSIBLE action (reward 1 only if the goal holds), or at the
horizon (a truncation, so the learner bootstraps). An invalid action is a no-op step with a
penalty; repeating the previous action on an unchanged screen is penalised too, because a stuck
agent otherwise burns its horizon for free.
"""

from __future__ import annotations

import collections

import numpy as np

from distrl_jax.core import Device, Evaluator, Observation
from distrl_jax.devices.actions import Action, ActionType, to_compact
from distrl_jax.tasks.goals import Task
from distrl_jax.types import StepInfo

_STATUS = (ActionType.STATUS_TASK_COMPLETE, ActionType.STATUS_TASK_IMPOSSIBLE)


class TaskEnv:
    """Runs a task on a device with an evaluator; ``step`` returns (observation, StepInfo)."""

    def __init__(
        self,
        device: Device,
        evaluator: Evaluator,
        *,
        history_k: int = 3,
        invalid_penalty: float = -0.1,
        repeat_penalty: float = -0.05,
    ):
        if invalid_penalty > 0 or repeat_penalty > 0:
            raise ValueError(
                f"penalties must be <= 0, got invalid_penalty={invalid_penalty}, "
                f"repeat_penalty={repeat_penalty}"
            )
        self.device = device
        self.evaluator = evaluator
        self.history_k = history_k
        self.invalid_penalty = invalid_penalty
        self.repeat_penalty = repeat_penalty
        self.task: Task | None = None
        self._screen: np.ndarray | None = None
        self._actions: list[Action] = []
        self._history: collections.deque[str] = collections.deque(maxlen=max(history_k, 1))
        self._t = 0
        self._done = True

    @property
    def t(self) -> int:
        """Steps taken in the current episode."""
        return self._t

    @property
    def done(self) -> bool:
        """Whether the current episode is over (True before the first reset)."""
        return self._done

    def _observation(self) -> Observation:
        assert self.task is not None and self._screen is not None
        hist = tuple(self._history) if self.history_k > 0 else ()
        return Observation(self._screen, self.task.text, hist)

    def reset(self, task: Task, seed: int | None = None) -> Observation:
        """Start ``task``; raises InfrastructureError when the device fails. ``seed`` fixes the
        episode's start state on devices that can be seeded (simphone), so that an evaluation
        does not depend on which device plays which episode."""
        if task.horizon < 1:
            raise ValueError(f"task horizon must be >= 1, got {task.horizon} for {task.text!r}")
        self.task = task
        if seed is not None and self.device.seedable:
            self._screen = self.device.reset(task, seed=seed)
        else:
            self._screen = self.device.reset(task)
        self._actions.clear()
        self._history.clear()
        self._t = 0
        self._done = False
        return self._observation()

    def step(self, action: Action) -> tuple[Observation, StepInfo]:
        """Apply one action. Raises InfrastructureError on device or judge faults."""
        if self._done or self.task is None:
            raise RuntimeError("step() called on a finished episode; call reset(task) first")
        prev_screen = self._screen
        invalid = not action.is_valid
        latency = 0.0
        if not invalid and action.kind not in _STATUS:
            self._screen = self.device.step(action)
            latency = float(getattr(self.device, "last_latency_s", 0.0))
            effect = getattr(self.device, "last_effect", None)
            invalid = bool(getattr(effect, "invalid", False))
        repeated = (
            bool(self._actions)
            and self._actions[-1] == action
            and np.array_equal(prev_screen, self._screen)
        )
        self._actions.append(action)
        self._history.append(to_compact(action))
        self._t += 1

        verdict = self.evaluator.evaluate(self.task, self.device, self._screen, self._actions)
        success = verdict.success
        terminated = success or action.kind in _STATUS
        truncated = not terminated and self._t >= self.task.horizon
        self._done = terminated or truncated
        penalty = (self.invalid_penalty if invalid else 0.0) + (
            self.repeat_penalty if repeated else 0.0
        )
        info = StepInfo(
            reward=1.0 if success else 0.0,
            penalty=penalty,
            done=self._done,
            success=success,
            invalid=invalid,
            repeated=repeated,
            truncated=truncated,
            latency_s=latency,
        )
        return self._observation(), info
