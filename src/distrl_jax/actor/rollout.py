"""Many episodes on many devices at once, with one batched policy call per step.

``VectorRollout`` keeps N :class:`TaskEnv` busy: every step it gathers the observations of the
environments that are mid-episode, asks the policy for all their actions in one call (the model
runs one batch, not N), steps the devices (in threads when they are slow, e.g. emulators), and
hands out a finished episode as soon as it ends while that environment starts the next task.
With ``record=True`` each finished episode also comes back as a :class:`Trajectory` ready for
the wire: screens s_0..s_T, their context tokens, action tokens, rewards, penalties, dones and the
behaviour log-probabilities.

A device fault (``InfrastructureError``) restarts that device and plays the episode again from
scratch, up to ``retries`` times; an episode that still fails is reported as an infrastructure
failure, never as a policy failure, and produces no trajectory.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from distrl_jax.core import InfrastructureError, Observation, Policy, PolicyOutput
from distrl_jax.devices.task_env import TaskEnv
from distrl_jax.metrics.eval_table import EpisodeRecord
from distrl_jax.models.tokenizer import ContextEncoder
from distrl_jax.tasks.goals import Task
from distrl_jax.types import StepInfo, Trajectory

log = logging.getLogger(__name__)

# (environments, their observations) -> one output per environment.
BatchActFn = Callable[[Sequence[TaskEnv], Sequence[Observation]], list[PolicyOutput]]


def policy_act(policy: Policy) -> BatchActFn:
    """Adapt a :class:`core.Policy` (which sees only observations) to a ``BatchActFn``."""
    return lambda envs, observations: policy.act(observations)


@dataclasses.dataclass
class EpisodeResult:
    """One finished episode: its evaluation record and, when recording, its trajectory."""

    record: EpisodeRecord
    trajectory: Trajectory | None = None
    slot: int = 0  # which environment played it
    order: int = 0  # the index of its task in the input sequence


@dataclasses.dataclass
class _Episode:
    task: Task
    order: int
    episode_id: int = 0
    attempts: int = 0
    invalid: int = 0
    screens: list[np.ndarray] = dataclasses.field(default_factory=list)
    contexts: list[np.ndarray] = dataclasses.field(default_factory=list)
    tokens: list[np.ndarray] = dataclasses.field(default_factory=list)
    logps: list[float] = dataclasses.field(default_factory=list)
    infos: list[StepInfo] = dataclasses.field(default_factory=list)

    def restart(self) -> None:
        self.attempts += 1
        self.invalid = 0
        for buf in (self.screens, self.contexts, self.tokens, self.logps, self.infos):
            buf.clear()


class VectorRollout:
    """Plays tasks on ``envs`` with ``act``; see the module docstring."""

    def __init__(
        self,
        envs: Sequence[TaskEnv],
        act: BatchActFn,
        *,
        contexts: ContextEncoder | None = None,
        record: bool = False,
        retries: int = 2,
        threads: int = 0,
        actor_id: int = 0,
        policy_version: Callable[[], int] = lambda: 0,
        episode_seed: Callable[[int], int] | None = None,
    ):
        if not envs:
            raise ValueError("VectorRollout needs at least one environment")
        if record and contexts is None:
            raise ValueError("record=True needs a ContextEncoder to write each state's context")
        self.envs = list(envs)
        self.act = act
        self.contexts = contexts
        self.record = record
        self.retries = retries
        self.actor_id = actor_id
        self.policy_version = policy_version
        # order -> start-state seed: results then do not depend on which env plays an episode.
        self.episode_seed = episode_seed
        # Threads only pay off when a step waits on something (an emulator, a latency model).
        self._pool = ThreadPoolExecutor(threads) if threads > 1 else None
        self.episodes_started = 0
        self.infra_restarts = 0

    def close(self) -> None:
        """Stop the stepping threads (the environments stay open; their owner closes them)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    # ------------------------------------------------------------------ public API

    def run(self, tasks: Sequence[Task]) -> list[EpisodeResult]:
        """Play every task once; results in the order of ``tasks``."""
        results = list(self.stream(tasks))
        return sorted(results, key=lambda r: r.order)

    def stream(self, tasks: Iterable[Task]) -> Iterator[EpisodeResult]:
        """Yield each episode as it finishes; stops when ``tasks`` is exhausted and all are done."""
        source = iter(enumerate(tasks))
        live: dict[int, _Episode] = {}
        obs: dict[int, Observation] = {}

        def start(slot: int) -> list[EpisodeResult]:
            """Begin the next task (or a retry) on ``slot``; returns the episodes that failed for
            good on the way (the slot then takes the next task, so none is dropped)."""
            failures: list[EpisodeResult] = []
            while True:
                ep = live.get(slot)
                if ep is None:
                    nxt = next(source, None)
                    if nxt is None:
                        return failures
                    self.episodes_started += 1
                    ep = live[slot] = _Episode(nxt[1], nxt[0], self.episodes_started)
                seed = self.episode_seed(ep.order) if self.episode_seed is not None else None
                try:
                    o = self.envs[slot].reset(ep.task, seed)
                except InfrastructureError as e:
                    failed = self._fault(slot, ep, e)
                    if failed is not None:
                        del live[slot]
                        failures.append(failed)
                    continue
                obs[slot] = o
                if self.record:
                    ep.screens.append(o.screen)
                return failures

        for slot in range(len(self.envs)):
            yield from start(slot)
        while live:
            slots = sorted(s for s in live if s in obs)
            observations = [obs[s] for s in slots]
            outputs = self.act([self.envs[s] for s in slots], observations)
            if len(outputs) != len(slots):
                raise RuntimeError(f"the policy returned {len(outputs)} actions for {len(slots)}")
            if self.record:
                assert self.contexts is not None
                ctx = self.contexts.encode_batch(
                    [o.task for o in observations], [o.history for o in observations]
                )
                for i, s in enumerate(slots):
                    live[s].contexts.append(ctx[i])
            stepped = self._step_all(slots, outputs)
            for s, out, result in zip(slots, outputs, stepped, strict=True):
                ep = live[s]
                del obs[s]
                if isinstance(result, InfrastructureError):
                    failed = self._fault(s, ep, result)
                    if failed is not None:
                        del live[s]
                        yield failed
                    yield from start(s)  # the next task, or this one again from scratch
                    continue
                o, info = result
                ep.invalid += int(info.invalid)
                if self.record:
                    ep.screens.append(o.screen)
                    ep.tokens.append(out.tokens)
                    ep.logps.append(out.logp)
                    ep.infos.append(info)
                if not info.done:
                    obs[s] = o
                    continue
                del live[s]
                yield self._finish(s, ep, o, info)
                yield from start(s)

    # ------------------------------------------------------------------ internals

    def _step_all(
        self, slots: list[int], outputs: list[PolicyOutput]
    ) -> list[tuple[Observation, StepInfo] | InfrastructureError]:
        def one(pair: tuple[int, PolicyOutput]):
            s, out = pair
            try:
                return self.envs[s].step(out.action)
            except InfrastructureError as e:
                return e

        pairs = list(zip(slots, outputs, strict=True))
        if self._pool is None:
            return [one(p) for p in pairs]
        return list(self._pool.map(one, pairs))

    def _fault(self, slot: int, ep: _Episode, error: Exception) -> EpisodeResult | None:
        """Restart the device; the episode is retried, or failed for good (returned)."""
        env = self.envs[slot]
        reason = f"{type(error).__name__}: {error}"
        log.warning("device %d: %s (task %r, attempt %d)", slot, reason, ep.task.text, ep.attempts)
        self.infra_restarts += 1
        try:
            env.device.restart()
        except InfrastructureError as e:
            reason += f"; restart failed: {e}"
        if ep.attempts >= self.retries:
            record = EpisodeRecord(ep.task.text, False, 0, 0, infra_failure=True, reason=reason)
            return EpisodeResult(record, None, slot, ep.order)
        ep.restart()
        return None

    def _finish(self, slot: int, ep: _Episode, last: Observation, info: StepInfo) -> EpisodeResult:
        t = self.envs[slot].t
        record = EpisodeRecord(ep.task.text, info.success, t, ep.invalid)
        traj = None
        if self.record:
            assert self.contexts is not None
            ep.contexts.append(self.contexts.encode(last.task, last.history))
            traj = Trajectory(
                screens=np.stack(ep.screens),
                context=np.stack(ep.contexts).astype(np.int32),
                actions=np.stack(ep.tokens).astype(np.int32),
                rewards=np.asarray([i.reward for i in ep.infos], np.float32),
                penalties=np.asarray([i.penalty for i in ep.infos], np.float32),
                # A horizon cut is not a termination: the learner bootstraps through it.
                dones=np.asarray([i.done and not i.truncated for i in ep.infos], np.float32),
                behaviour_logp=np.asarray(ep.logps, np.float32),
                task=ep.task.text,
                success=info.success,
                policy_version=int(self.policy_version()),
                actor_id=self.actor_id,
                episode_id=ep.episode_id,
            )
        return EpisodeResult(record, traj, slot, ep.order)
