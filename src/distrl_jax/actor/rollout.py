"""Many episodes on many devices at once, with one batched policy call per step.

``VectorRollout`` keeps N :class:`TaskEnv` busy: it gathers the observations of the environments
waiting for an action, asks the policy for all their actions in one call (the model runs one
batch, not N), steps the devices, and hands out a finished episode as soon as it ends while that
environment starts the next task. Without threads the devices move in lockstep (fast simulators:
deterministic and cheapest). With ``threads`` (slow devices: emulators, latency models) every
device steps and resets in the pool on its own, and the policy acts on whichever devices are
ready: one slow or hung device never holds the others back (DESIGN §6).
With ``record=True`` each finished episode also comes back as a :class:`Trajectory` ready for
the wire: screens s_0..s_T, their context tokens, action tokens, rewards, penalties, dones and the
behaviour log-probabilities.

A device fault (``InfrastructureError``) restarts that device and plays the episode again from
scratch, up to ``retries`` times; an episode that still fails is reported as an infrastructure
failure, never as a policy failure, and produces no trajectory. A fault marked
``retryable=False`` (a misconfiguration: a judge rejecting its key, a missing test-server
command) is raised instead: retrying it would only fail every episode of the run.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

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
        # Cumulative stage timers (seconds) and counts, read by the actor's heartbeat: where an
        # actor's time goes (inference vs waiting on devices) is the first question when it lags.
        self.timers = {"inference_s": 0.0, "device_step_s": 0.0, "reset_s": 0.0}
        self.device_steps = 0
        self.policy_calls = 0

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
        if self._pool is not None:
            yield from self._stream_overlapped(source)
            return
        live: dict[int, _Episode] = {}
        obs: dict[int, Observation] = {}

        def start(slot: int) -> list[EpisodeResult]:
            """Begin the next task (or a retry) on ``slot``; returns the episodes that failed for
            good on the way (the slot then takes the next task, so none is dropped)."""
            failures: list[EpisodeResult] = []
            while True:
                ep = live.get(slot) or self._next_episode(source)
                if ep is None:
                    return failures
                live[slot] = ep
                seed = self.episode_seed(ep.order) if self.episode_seed is not None else None
                t0 = time.perf_counter()
                try:
                    o = self.envs[slot].reset(ep.task, seed)
                except InfrastructureError as e:
                    self.timers["reset_s"] += time.perf_counter() - t0
                    failed = self._fault(slot, ep, e)
                    if failed is not None:
                        del live[slot]
                        failures.append(failed)
                    continue
                self.timers["reset_s"] += time.perf_counter() - t0
                obs[slot] = o
                if self.record:
                    ep.screens.append(o.screen)
                return failures

        for slot in range(len(self.envs)):
            yield from start(slot)
        while live:
            slots = sorted(s for s in live if s in obs)
            observations = [obs[s] for s in slots]
            outputs = self._act(slots, observations, live)
            t0 = time.perf_counter()
            stepped = [self._step_one(s, out) for s, out in zip(slots, outputs, strict=True)]
            self.timers["device_step_s"] += time.perf_counter() - t0
            self.device_steps += len(slots)
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
                self._record_step(ep, out, o, info)
                if not info.done:
                    obs[s] = o
                    continue
                del live[s]
                yield self._finish(s, ep, o, info)
                yield from start(s)

    def _next_episode(self, source: Iterator[tuple[int, Task]]) -> _Episode | None:
        nxt = next(source, None)
        if nxt is None:
            return None
        self.episodes_started += 1
        return _Episode(nxt[1], nxt[0], self.episodes_started)

    def _stream_overlapped(self, source: Iterator[tuple[int, Task]]) -> Iterator[EpisodeResult]:
        """Each device resets and steps in the pool independently; the policy acts, in one
        batch, on the devices whose previous step or reset has completed."""
        assert self._pool is not None
        live: dict[int, _Episode] = {}
        ready: dict[int, Observation] = {}
        # future -> (slot, the action it applies; None for a reset)
        pending: dict[Future, tuple[int, PolicyOutput | None]] = {}

        def begin(slot: int) -> None:
            """Reset ``slot`` for its episode (a retry) or the next task, in the pool."""
            ep = live.get(slot) or self._next_episode(source)
            if ep is None:
                return
            live[slot] = ep
            seed = self.episode_seed(ep.order) if self.episode_seed is not None else None
            pending[self._pool.submit(self._reset_one, slot, ep.task, seed)] = (slot, None)

        for slot in range(len(self.envs)):
            begin(slot)
        while pending or ready:
            if ready:
                slots = sorted(ready)
                observations = [ready.pop(s) for s in slots]
                for s, out in zip(slots, self._act(slots, observations, live), strict=True):
                    pending[self._pool.submit(self._step_one, s, out)] = (s, out)
            t0 = time.perf_counter()
            done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            self.timers["device_step_s"] += time.perf_counter() - t0
            for fut in sorted(done, key=lambda f: pending[f][0]):
                slot, out = pending.pop(fut)
                ep, result = live[slot], fut.result()
                if isinstance(result, InfrastructureError):
                    failed = self._fault(slot, ep, result)
                    if failed is not None:
                        del live[slot]
                        yield failed
                    begin(slot)  # this episode again from scratch, or the next task
                    continue
                if out is None:  # a reset completed
                    ready[slot] = result
                    if self.record:
                        ep.screens.append(result.screen)
                    continue
                self.device_steps += 1
                o, info = result
                self._record_step(ep, out, o, info)
                if not info.done:
                    ready[slot] = o
                    continue
                del live[slot]
                yield self._finish(slot, ep, o, info)
                begin(slot)

    def _reset_one(self, slot: int, task: Task, seed: int | None):
        t0 = time.perf_counter()
        try:
            return self.envs[slot].reset(task, seed)
        except InfrastructureError as e:
            return e
        finally:
            self.timers["reset_s"] += time.perf_counter() - t0

    def _step_one(self, slot: int, out: PolicyOutput):
        try:
            return self.envs[slot].step(out.action)
        except InfrastructureError as e:
            return e

    def _act(
        self, slots: list[int], observations: list[Observation], live: dict[int, _Episode]
    ) -> list[PolicyOutput]:
        """One batched policy call (timed as inference), recording each state's context."""
        t0 = time.perf_counter()
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
        self.timers["inference_s"] += time.perf_counter() - t0
        self.policy_calls += 1
        return outputs

    def _record_step(self, ep: _Episode, out: PolicyOutput, o: Observation, info: StepInfo) -> None:
        ep.invalid += int(info.invalid)
        if self.record:
            ep.screens.append(o.screen)
            ep.tokens.append(out.tokens)
            ep.logps.append(out.logp)
            ep.infos.append(info)

    # ------------------------------------------------------------------ internals

    def _fault(self, slot: int, ep: _Episode, error: Exception) -> EpisodeResult | None:
        """Restart the device; the episode is retried, or failed for good (returned).

        An error marked ``retryable=False`` (a judge refusing the API key, ``sim_control`` on a
        device without it) is a misconfiguration that no retry fixes: it is raised, stopping the
        rollout with its message, instead of failing every episode of the run one by one."""
        env = self.envs[slot]
        self._stop_if_not_retryable(slot, ep, error)
        reason = f"{type(error).__name__}: {error}"
        log.warning("device %d: %s (task %r, attempt %d)", slot, reason, ep.task.text, ep.attempts)
        self.infra_restarts += 1
        try:
            env.device.restart()
        except InfrastructureError as e:
            self._stop_if_not_retryable(slot, ep, e)
            reason += f"; restart failed: {e}"
        if ep.attempts >= self.retries:
            record = EpisodeRecord(ep.task.text, False, 0, 0, infra_failure=True, reason=reason)
            return EpisodeResult(record, None, slot, ep.order)
        ep.restart()
        return None

    def _stop_if_not_retryable(self, slot: int, ep: _Episode, error: Exception) -> None:
        if getattr(error, "retryable", True):
            return
        name = getattr(self.envs[slot].device, "name", "") or f"device {slot}"
        log.error("%s: %s is not retryable; stopping the rollout", name, error)
        raise InfrastructureError(
            f"{name} (slot {slot}, task {ep.task.text!r}): {error} -- this error is not "
            "retryable (a configuration problem, not a flaky device), so the rollout stops "
            "instead of retrying; fix the cause and start again",
            device=getattr(error, "device", "") or name,
            retryable=False,
        ) from error

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
