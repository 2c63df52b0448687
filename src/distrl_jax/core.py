"""The small vocabulary of interfaces every part of distrl_jax speaks (in the spirit of acme's core).

A :class:`Device` is where actions land (simphone, an ADB emulator or phone). An
:class:`Evaluator` decides whether a task's goal holds (simphone's exact judge, a VLM judge for
real devices). A :class:`Policy` maps observations to actions with their behaviour
log-probabilities. A :class:`MetricsSink` receives scalar metrics. Failures of the
infrastructure (a hung or offline device, a judge that did not answer) are raised as
:class:`InfrastructureError` and are never turned into a zero-reward trajectory.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

from distrl_jax.devices.actions import Action
from distrl_jax.tasks.goals import Task


class InfrastructureError(RuntimeError):
    """A device or judge failed (hang, offline, crash, timeout); the episode must be retried."""

    def __init__(self, message: str, *, device: str = "", retryable: bool = True):
        super().__init__(message)
        self.device = device
        self.retryable = retryable


@dataclasses.dataclass(frozen=True)
class Observation:
    """What a policy sees at one step."""

    screen: np.ndarray  # [H, W, 3] uint8
    task: str  # the task string as given
    history: tuple[str, ...] = ()  # the last k actions in compact form, oldest first


@dataclasses.dataclass(frozen=True)
class Verdict:
    """An evaluator's judgement of the current state against a task."""

    success: bool
    reason: str = ""


@dataclasses.dataclass(frozen=True)
class PolicyOutput:
    """One chosen action with what the learner needs to correct for off-policy lag."""

    action: Action
    tokens: np.ndarray  # [La] int32 action tokens as sampled (right-padded with 0)
    logp: float  # log mu(a|s): the sum over the action's tokens
    text: str = ""  # the decoded string (for logs; may be unparseable)


class Device(abc.ABC):
    """A phone, real or simulated, that takes AitW actions and returns screenshots."""

    name: str = "device"
    # True when reset(task, seed=...) picks the start state (simulators); real phones cannot.
    seedable: bool = False

    @abc.abstractmethod
    def reset(self, task: Task) -> np.ndarray:
        """Bring the device to the task's start state; return the first screen [H, W, 3] uint8.

        A ``seedable`` device also accepts ``seed=`` (an int fixing the start state)."""

    @abc.abstractmethod
    def step(self, action: Action) -> np.ndarray:
        """Apply one valid action; return the next screen. Raises InfrastructureError on faults."""

    @abc.abstractmethod
    def screenshot(self) -> np.ndarray:
        """The current screen [H, W, 3] uint8."""

    def healthy(self) -> bool:
        """Whether the device answers; a device that is not healthy gets restarted."""
        return True

    def restart(self) -> None:  # noqa: B027 - optional hook with a no-op default
        """Recover from a fault (reconnect, reboot, reload a snapshot)."""

    def close(self) -> None:  # noqa: B027 - optional hook with a no-op default
        """Release what the device holds."""


class Evaluator(abc.ABC):
    """Decides success of a task on a device (reward 1 on the step it first holds)."""

    @abc.abstractmethod
    def evaluate(
        self, task: Task, device: Device, screen: np.ndarray, history: Sequence[Action]
    ) -> Verdict:
        """Judge the current state. Raises InfrastructureError when it cannot judge."""


class Policy(abc.ABC):
    """Maps a batch of observations to actions (batched because devices are many)."""

    @abc.abstractmethod
    def act(self, observations: Sequence[Observation]) -> list[PolicyOutput]:
        """One action per observation."""

    @property
    def version(self) -> int:
        """The policy version (learner checkpoint number) these parameters come from."""
        return 0


class MetricsSink(abc.ABC):
    """Receives scalar metrics; console, JSONL and TensorBoard sinks fan out from one writer."""

    @abc.abstractmethod
    def write(self, step: int, metrics: Mapping[str, float]) -> None:
        """Record metrics at a step (learner step or environment step, as the caller says)."""

    def close(self) -> None:  # noqa: B027 - optional hook with a no-op default
        """Flush and release."""
