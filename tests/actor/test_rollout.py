"""VectorRollout: batched stepping of many simphones, recorded trajectories, faults, streaming."""

from __future__ import annotations

import dataclasses
import itertools
import threading
from collections.abc import Iterator, Sequence

import chex
import numpy as np
import pytest

from distrl_jax.actor.rollout import EpisodeResult, VectorRollout, policy_act
from distrl_jax.core import InfrastructureError, Observation, PolicyOutput
from distrl_jax.devices.actions import Action, invalid, to_compact
from distrl_jax.devices.simphone.expert import ScriptedExpert
from distrl_jax.devices.simphone.judge import SimEvaluator
from distrl_jax.devices.simphone.latency import FaultModel, LatencyModel
from distrl_jax.devices.simphone.phone import SimPhone
from distrl_jax.devices.task_env import TaskEnv
from distrl_jax.models import spec as specs
from distrl_jax.models.action_codec import encode_action
from distrl_jax.models.jax_policy import JaxPolicy
from distrl_jax.models.tokenizer import ContextEncoder
from distrl_jax.tasks.goals import Task
from distrl_jax.tasks.suites import load_tasks

SPEC = specs.tiny()
HISTORY_K = 3  # TaskEnv's default, and the tiny spec's history_k


@pytest.fixture(scope="module")
def val_tasks() -> list[Task]:
    """The first 12 general val tasks (unique texts, so a task's text identifies its episode)."""
    tasks = load_tasks("general", split="val")[:12]
    assert len(tasks) == 12 and len({t.text for t in tasks}) == 12
    return tasks


@pytest.fixture(scope="module")
def contexts() -> ContextEncoder:
    """One encoder for the module (loading the tokenizer is the slow part)."""
    return ContextEncoder(SPEC)


class ExpertAct:
    """A scripted-expert ``BatchActFn`` that logs, per task, what it saw and what it chose."""

    def __init__(self) -> None:
        self.expert = ScriptedExpert(noise=0.0)
        self.calls: list[int] = []  # batch size of every call
        self.actions: dict[str, list[Action]] = {}
        self.first_screens: dict[str, np.ndarray] = {}

    def __call__(
        self, envs: Sequence[TaskEnv], observations: Sequence[Observation]
    ) -> list[PolicyOutput]:
        """One expert action per environment (log-probability 0: the expert is deterministic)."""
        self.calls.append(len(envs))
        outs = []
        for env, obs in zip(envs, observations, strict=True):
            assert env.task is not None and obs.task == env.task.text
            if env.t == 0:  # a new episode (or a retry from scratch) starts a fresh log
                self.actions[obs.task] = []
                self.first_screens[obs.task] = obs.screen
            action = self.expert.act(env.task.goal, env.device)
            self.actions[obs.task].append(action)
            outs.append(PolicyOutput(action, encode_action(action), 0.0))
        return outs


class ConstantAct:
    """A ``BatchActFn`` that plays the same action everywhere (a do-nothing policy)."""

    def __init__(self, action: Action):
        self.action = action

    def __call__(self, envs, observations) -> list[PolicyOutput]:
        """The constant action for every environment."""
        return [PolicyOutput(self.action, encode_action(self.action), -1.5) for _ in envs]


class FlakyPhone(SimPhone):
    """A SimPhone whose resets/steps raise InfrastructureError on chosen episodes.

    ``reset_fails``: 1-based reset calls that raise; ``step_fails``: 1-based episode numbers
    (successful resets) whose second step raises. Records restarts and every reset screen.
    """

    def __init__(self, *, seed: int, reset_fails=(), step_fails=()):
        super().__init__(seed=seed)
        self.reset_fails = set(reset_fails)
        self.step_fails = set(step_fails)
        self.reset_calls = 0
        self.restarts = 0
        self.reset_screens: list[np.ndarray] = []
        self._steps = 0

    def reset(self, task: Task, *, seed: int | None = None) -> np.ndarray:
        """Raise on the chosen reset calls, else a normal reset (its screen is logged)."""
        self.reset_calls += 1
        if self.reset_calls in self.reset_fails:
            raise InfrastructureError(f"reset {self.reset_calls} failed", device=self.name)
        self._steps = 0
        screen = super().reset(task, seed=seed)
        self.reset_screens.append(screen)
        return screen

    def step(self, action: Action) -> np.ndarray:
        """Raise on the second step of the chosen episodes."""
        self._steps += 1
        if len(self.reset_screens) in self.step_fails and self._steps == 2:
            raise InfrastructureError(f"hang in episode {len(self.reset_screens)}")
        return super().step(action)

    def restart(self) -> None:
        """Count restarts (the rollout must call this after every fault)."""
        self.restarts += 1
        super().restart()


class CountingPhone(SimPhone):
    """A SimPhone that counts restarts and notes which threads stepped it."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.restarts = 0
        self.step_threads: set[int] = set()

    def step(self, action: Action) -> np.ndarray:
        """Note the stepping thread, then step."""
        self.step_threads.add(threading.get_ident())
        return super().step(action)

    def restart(self) -> None:
        """Count, then recover."""
        self.restarts += 1
        super().restart()


def sim_envs(n: int, **phone_kwargs) -> list[TaskEnv]:
    """``n`` simphone environments, phone i seeded with i."""
    return [TaskEnv(SimPhone(seed=i, **phone_kwargs), SimEvaluator()) for i in range(n)]


def with_horizon(tasks: Sequence[Task], horizon: int) -> list[Task]:
    """The same tasks with another horizon."""
    return [dataclasses.replace(t, horizon=horizon) for t in tasks]


def history_at(actions: Sequence[Action], t: int) -> tuple[str, ...]:
    """The history TaskEnv shows at state t: the last k actions in compact form."""
    return tuple(to_compact(a) for a in actions[:t])[-HISTORY_K:]


def check_expert_trajectory(
    res: EpisodeResult, task: Task, act: ExpertAct, contexts: ContextEncoder
) -> None:
    """A successful expert episode's trajectory, checked against the act function's log."""
    traj, rec = res.trajectory, res.record
    assert traj is not None
    traj.validate()
    t = traj.length
    assert t == rec.length >= 1
    assert rec.success and traj.success and not rec.infra_failure
    assert traj.task == task.text == rec.task
    chex.assert_shape(traj.screens, (t + 1, *SPEC.image_size, 3))
    chex.assert_shape(traj.context, (t + 1, SPEC.context_len))
    chex.assert_shape(traj.actions, (t, SPEC.action_len))
    # Reward 1 exactly once, on the last step, which is a true termination.
    np.testing.assert_array_equal(traj.rewards, np.eye(t, dtype=np.float32)[-1])
    assert traj.dones[-1] == 1.0 and not traj.dones[:-1].any()
    np.testing.assert_array_equal(traj.behaviour_logp, np.zeros(t, np.float32))
    np.testing.assert_array_equal(traj.screens[0], act.first_screens[task.text])
    played = act.actions[task.text]
    assert len(played) == t
    np.testing.assert_array_equal(traj.actions, np.stack([encode_action(a) for a in played]))
    for i in range(t + 1):  # context of s_i: the task and the actions before it
        np.testing.assert_array_equal(
            traj.context[i], contexts.encode(task.text, history_at(played, i)), err_msg=f"t={i}"
        )


# ---------------------------------------------------------------- (1) scripted expert, recorded


def test_expert_rollout_records_valid_trajectories(val_tasks, contexts) -> None:
    act = ExpertAct()
    rollout = VectorRollout(
        sim_envs(4), act, contexts=contexts, record=True, actor_id=7, policy_version=lambda: 3
    )
    results = rollout.run(val_tasks)
    rollout.close()

    assert [r.record.task for r in results] == [t.text for t in val_tasks]
    assert [r.order for r in results] == list(range(12))
    assert {r.slot for r in results} == {0, 1, 2, 3}  # every environment played
    assert rollout.episodes_started == 12 and rollout.infra_restarts == 0
    assert sorted(r.trajectory.episode_id for r in results) == list(range(1, 13))
    for res, task in zip(results, val_tasks, strict=True):
        check_expert_trajectory(res, task, act, contexts)
        assert res.trajectory.actor_id == 7 and res.trajectory.policy_version == 3
        assert res.record.invalid_actions == 0
    # One call per step for all live environments: never more than 4 at once, and every step of
    # every episode went through exactly one call.
    assert max(act.calls) == 4
    assert sum(act.calls) == sum(r.record.length for r in results)


def test_recorded_screens_replay_on_a_fresh_phone(val_tasks, contexts) -> None:
    """s_0..s_T are the screens the device really showed: replaying the actions reproduces them."""
    act = ExpertAct()
    results = VectorRollout(sim_envs(3), act, contexts=contexts, record=True).run(val_tasks[:7])
    for res in results:
        # A slot's episodes start in task order, so this is episode k of phone `slot`.
        k = sorted(r.order for r in results if r.slot == res.slot).index(res.order) + 1
        env = TaskEnv(SimPhone(seed=res.slot), SimEvaluator())
        task = val_tasks[res.order]
        for _ in range(k):
            obs = env.reset(task)
        traj = res.trajectory
        np.testing.assert_array_equal(traj.screens[0], obs.screen)
        for i, action in enumerate(act.actions[task.text]):
            obs, info = env.step(action)
            np.testing.assert_array_equal(traj.screens[i + 1], obs.screen, err_msg=f"step {i}")
            assert traj.rewards[i] == info.reward and traj.penalties[i] == info.penalty


def test_without_record_there_is_no_trajectory(val_tasks) -> None:
    results = VectorRollout(sim_envs(2), ExpertAct()).run(val_tasks[:4])
    assert [r.record.task for r in results] == [t.text for t in val_tasks[:4]]
    assert all(r.record.success and r.trajectory is None for r in results)


# ---------------------------------------------------------------- (2) a real JaxPolicy


@pytest.fixture(scope="module")
def jax_policy() -> JaxPolicy:
    """The tiny model, seed 0, compiled for batches of 1 and 4."""
    return JaxPolicy(SPEC, seed=0, buckets=(1, 4))


def test_jax_policy_one_batched_call_per_step(val_tasks, contexts, jax_policy) -> None:
    tasks = with_horizon(val_tasks[:4], 3)
    inner = policy_act(jax_policy)
    calls: list[int] = []
    outputs: dict[str, list[PolicyOutput]] = {}

    def counted(envs, observations):
        """Log every call and what it gave each episode."""
        calls.append(len(envs))
        outs = inner(envs, observations)
        assert len({id(e) for e in envs}) == len(envs)  # one row per environment
        for env, out in zip(envs, outs, strict=True):
            if env.t == 0:
                outputs[env.task.text] = []
            outputs[env.task.text].append(out)
        return outs

    rollout = VectorRollout(
        sim_envs(4), counted, contexts=contexts, record=True, policy_version=lambda: 5
    )
    results = rollout.run(tasks)
    lengths = [r.record.length for r in results]
    assert all(1 <= n <= 3 for n in lengths)
    # All four episodes start together, so call i holds exactly those still running at step i.
    assert calls == [sum(n > i for n in lengths) for i in range(max(lengths))]
    for res, task in zip(results, tasks, strict=True):
        traj = res.trajectory
        traj.validate()
        assert traj.length == res.record.length and traj.task == task.text
        assert traj.policy_version == 5
        outs = outputs[task.text]
        np.testing.assert_array_equal(
            traj.behaviour_logp, np.asarray([o.logp for o in outs], np.float32)
        )
        assert np.all(traj.behaviour_logp <= 0.0) and np.all(np.isfinite(traj.behaviour_logp))
        np.testing.assert_array_equal(traj.actions, np.stack([o.tokens for o in outs]))
        # Terminated episodes end with done=1, horizon cuts with done=0.
        terminated = res.record.success or outs[-1].action.kind.name.startswith("STATUS")
        assert traj.dones[-1] == float(terminated)


# ---------------------------------------------------------------- (3) horizon truncation


def test_horizon_cut_is_not_a_termination(val_tasks, contexts) -> None:
    tasks = with_horizon(val_tasks[:2], 2)
    results = VectorRollout(
        sim_envs(2), ConstantAct(invalid("noop")), contexts=contexts, record=True
    ).run(tasks)
    for res in results:
        traj = res.trajectory
        traj.validate()
        assert traj.length == res.record.length == 2
        assert not res.record.success and not traj.success
        np.testing.assert_array_equal(traj.dones, [0.0, 0.0])  # the learner bootstraps
        np.testing.assert_array_equal(traj.rewards, [0.0, 0.0])
        # An invalid no-op, then the same invalid no-op on an unchanged screen.
        np.testing.assert_allclose(traj.penalties, [-0.1, -0.15], rtol=1e-6)
        np.testing.assert_array_equal(traj.behaviour_logp, [-1.5, -1.5])
        np.testing.assert_array_equal(traj.screens[0], traj.screens[2])
        assert res.record.invalid_actions == 2


# ---------------------------------------------------------------- (4) infrastructure faults


def test_fault_mid_episode_is_retried_from_scratch(val_tasks, contexts) -> None:
    phone = FlakyPhone(seed=0, step_fails={1})
    act = ExpertAct()
    rollout = VectorRollout(
        [TaskEnv(phone, SimEvaluator())], act, contexts=contexts, record=True, retries=2
    )
    results = rollout.run(val_tasks[:2])
    assert [r.record.task for r in results] == [t.text for t in val_tasks[:2]]
    assert phone.restarts == 1 and rollout.infra_restarts == 1
    assert phone.reset_calls == 3  # task 0, its retry, task 1
    for res, task in zip(results, val_tasks[:2], strict=True):
        check_expert_trajectory(res, task, act, contexts)
    # The retry's trajectory starts at the retry's reset, with nothing left from the failed try.
    np.testing.assert_array_equal(results[0].trajectory.screens[0], phone.reset_screens[1])
    np.testing.assert_array_equal(results[1].trajectory.screens[0], phone.reset_screens[2])


@pytest.mark.parametrize("retries", [0, 2])
def test_retries_exhausted_is_an_infra_failure(val_tasks, contexts, retries: int) -> None:
    # Slot 0's device fails every reset of its first task; the others are healthy.
    bad = FlakyPhone(seed=0, reset_fails=range(1, retries + 2))
    envs = [TaskEnv(bad, SimEvaluator()), *sim_envs(3)[1:]]
    act = ExpertAct()
    rollout = VectorRollout(envs, act, contexts=contexts, record=True, retries=retries)
    results = rollout.run(val_tasks[:8])
    assert [r.order for r in results] == list(range(8))
    failed = results[0]  # slot 0 takes task 0 first
    assert failed.slot == 0 and failed.trajectory is None
    assert failed.record.infra_failure and not failed.record.success
    assert failed.record.length == 0 and failed.record.task == val_tasks[0].text
    assert f"reset {retries + 1} failed" in failed.record.reason
    assert "InfrastructureError" in failed.record.reason
    assert bad.restarts == retries + 1 and rollout.infra_restarts == retries + 1
    for res, task in zip(results[1:], val_tasks[1:8], strict=True):
        check_expert_trajectory(res, task, act, contexts)


def test_tasks_after_an_infra_failure_are_still_played(val_tasks) -> None:
    phone = FlakyPhone(seed=0, reset_fails={1, 2})  # task 0 fails twice (retries=1), then fine
    rollout = VectorRollout([TaskEnv(phone, SimEvaluator())], ExpertAct(), retries=1)
    results = rollout.run(val_tasks[:3])
    assert [r.record.task for r in results] == [t.text for t in val_tasks[:3]]
    assert results[0].record.infra_failure
    assert results[1].record.success and results[2].record.success


def test_simphone_fault_injection_fails_every_attempt(val_tasks, contexts) -> None:
    # Every episode crashes at a step drawn within the horizon; the expert's web searches take
    # 3 device steps, so with horizon 3 the crash always lands. The healthy phone is unaffected.
    tasks = with_horizon([t for t in val_tasks if t.goal.intent.value == "web_search"][:4], 3)
    crashing = CountingPhone(seed=0, faults=FaultModel(hang_prob=0.0, crash_prob=1.0))
    healthy = CountingPhone(seed=1)
    envs = [TaskEnv(crashing, SimEvaluator()), TaskEnv(healthy, SimEvaluator())]
    act = ExpertAct()
    rollout = VectorRollout(envs, act, contexts=contexts, record=True, retries=1)
    results = rollout.run(tasks)
    by_slot = {s: [r for r in results if r.slot == s] for s in (0, 1)}
    assert by_slot[0] and by_slot[1]
    for res in by_slot[0]:
        assert res.record.infra_failure and res.trajectory is None
        assert "crashed" in res.record.reason
    assert crashing.restarts == 2 * len(by_slot[0]) and healthy.restarts == 0
    for res in by_slot[1]:
        check_expert_trajectory(res, tasks[res.order], act, contexts)


# ---------------------------------------------------------------- (5) threads


def test_threads_give_the_same_records(val_tasks, contexts) -> None:
    def play(threads: int) -> tuple[list[EpisodeResult], list[CountingPhone]]:
        # A small real sleep per step, so the stepping threads overlap.
        latency = LatencyModel(median_s=0.002, sigma=0.0)
        phones = [CountingPhone(seed=i, latency=latency) for i in range(4)]
        envs = [TaskEnv(p, SimEvaluator()) for p in phones]
        # Seeded start states: with threads, which device plays which task depends on timing.
        rollout = VectorRollout(
            envs,
            ExpertAct(),
            contexts=contexts,
            record=True,
            threads=threads,
            episode_seed=lambda i: 1000 + i,
        )
        try:
            return rollout.run(val_tasks[:8]), phones
        finally:
            rollout.close()

    serial, serial_phones = play(0)
    threaded, threaded_phones = play(4)
    main = threading.get_ident()
    assert set().union(*(p.step_threads for p in serial_phones)) == {main}
    stepped_by = set().union(*(p.step_threads for p in threaded_phones))
    assert main not in stepped_by and len(stepped_by) > 1
    for a, b in zip(serial, threaded, strict=True):
        assert a.record == b.record and a.order == b.order
        meta_a, meta_b = a.trajectory.meta(), b.trajectory.meta()
        for timing_dependent in ("episode_id",):
            meta_a.pop(timing_dependent, None)
            meta_b.pop(timing_dependent, None)
        assert meta_a == meta_b
        for name, arr in a.trajectory.arrays().items():
            np.testing.assert_array_equal(arr, b.trajectory.arrays()[name], err_msg=name)


class BlockingPhone(SimPhone):
    """A SimPhone whose steps wait until ``release`` is set (a hung emulator)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.release = threading.Event()
        self.waiting = threading.Event()

    def step(self, action: Action) -> np.ndarray:
        """Block until released, then step."""
        self.waiting.set()
        assert self.release.wait(timeout=60), "never released"
        return super().step(action)


@pytest.mark.timeout(120)
def test_with_threads_a_hung_device_does_not_hold_the_others(val_tasks, contexts) -> None:
    """While device 0 hangs mid-episode, devices 1 and 2 keep finishing episodes (lockstep
    stepping would wait for device 0 forever); once released, its episode completes too."""
    hung = BlockingPhone(seed=0)
    envs = [TaskEnv(hung, SimEvaluator()), *sim_envs(3)[1:]]
    rollout = VectorRollout(envs, ExpertAct(), contexts=contexts, record=True, threads=3)
    results: list[EpisodeResult] = []
    try:
        stream = rollout.stream(itertools.cycle(val_tasks[:6]))
        while len(results) < 8:
            results.append(next(stream))
        assert hung.waiting.is_set() and {r.slot for r in results} == {1, 2}
        hung.release.set()
        while not any(r.slot == 0 for r in results):
            results.append(next(stream))
        stream.close()
    finally:
        hung.release.set()
        rollout.close()
    for res in results:
        assert res.record.success and res.trajectory is not None
    assert rollout.device_steps >= sum(r.record.length for r in results)
    assert rollout.policy_calls > 0 and rollout.timers["inference_s"] > 0


# ---------------------------------------------------------------- (6) errors


def test_no_environments_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one environment"):
        VectorRollout([], ExpertAct())


def test_record_needs_a_context_encoder() -> None:
    with pytest.raises(ValueError, match="record=True needs a ContextEncoder"):
        VectorRollout(sim_envs(1), ExpertAct(), record=True)


def test_wrong_number_of_policy_outputs(val_tasks) -> None:
    expert = ExpertAct()

    def short(envs, observations):
        """Drops the last environment's action."""
        return expert(envs, observations)[:-1]

    rollout = VectorRollout(sim_envs(4), short)
    with pytest.raises(RuntimeError, match="returned 3 actions for 4"):
        rollout.run(val_tasks[:4])


def test_policy_errors_propagate(val_tasks) -> None:
    def broken(envs, observations):
        """A policy bug, not a device fault."""
        raise KeyError("policy bug")

    with pytest.raises(KeyError, match="policy bug"):
        VectorRollout(sim_envs(2), broken).run(val_tasks[:2])


# ---------------------------------------------------------------- (7) streaming


def test_stream_yields_episodes_as_they_finish(val_tasks, contexts) -> None:
    pulled: list[int] = []

    def source() -> Iterator[Task]:
        """The val tasks, forever, noting how many were taken."""
        for i, task in enumerate(itertools.cycle(val_tasks)):
            pulled.append(i)
            yield task

    act = ExpertAct()
    rollout = VectorRollout(sim_envs(2), act, contexts=contexts, record=True)
    stream = rollout.stream(source())
    first = next(stream)
    # The first episode came back after only the two starting tasks were taken.
    assert len(pulled) == 2 and first.order in (0, 1)
    check_expert_trajectory(first, val_tasks[first.order], act, contexts)
    rest = list(itertools.islice(stream, 9))  # an endless source: take what is needed
    got = [first, *rest]
    assert len({r.order for r in got}) == 10
    assert len(pulled) <= 12  # never more than 2 episodes in flight past the ones yielded
    for res in got:
        assert res.record.task == val_tasks[res.order % 12].text and res.record.success
    # Yielded in finishing order: a slot's episodes come back in the order it started them.
    for slot in (0, 1):
        orders = [r.order for r in got if r.slot == slot]
        assert orders == sorted(orders)


# ---------------------------------------------------------------- (4b) misconfiguration


class MisconfiguredPhone(CountingPhone):
    """A device that can never work (sim_control on a phone without it): every reset raises
    a non-retryable InfrastructureError."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.reset_calls = 0

    def reset(self, task: Task, *, seed: int | None = None) -> np.ndarray:
        """Raise; the device is not broken, it is the wrong kind."""
        self.reset_calls += 1
        raise InfrastructureError(
            "this device has no distrl-sim", device="adb:bad", retryable=False
        )


class RejectingJudge(SimEvaluator):
    """A judge whose endpoint rejects the API key (HTTP 401): never retryable."""

    def __init__(self) -> None:
        self.calls = 0

    def evaluate(self, task, device, screen, history):
        """Raise as VlmJudge does on a 401."""
        self.calls += 1
        raise InfrastructureError("HTTP 401 Unauthorized", device="vlm_judge", retryable=False)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("threads", [0, 2])
@pytest.mark.parametrize("where", ["device", "judge"])
def test_non_retryable_error_stops_the_rollout_with_its_message(val_tasks, threads, where):
    """A misconfiguration is not retried (retries=5 would otherwise try each of the 4 tasks 6
    times) and is not turned into infra-failure records: it stops the rollout, saying what."""
    if where == "device":
        phone, judge = MisconfiguredPhone(seed=0), SimEvaluator()
        expect = "no distrl-sim"
    else:
        phone, judge = CountingPhone(seed=0), RejectingJudge()
        expect = "HTTP 401"
    envs = [TaskEnv(phone, judge), TaskEnv(CountingPhone(seed=1), SimEvaluator())]
    rollout = VectorRollout(envs, ExpertAct(), retries=5, threads=threads)
    try:
        with pytest.raises(InfrastructureError, match=expect) as info:
            rollout.run(val_tasks[:4])
    finally:
        rollout.close()
    assert not info.value.retryable
    assert "not retryable" in str(info.value) and val_tasks[0].text in str(info.value)
    assert phone.restarts == 0 and rollout.infra_restarts == 0
    if where == "device":
        assert phone.reset_calls == 1
    else:
        assert judge.calls == 1


def test_a_restart_that_is_not_retryable_stops_the_rollout(val_tasks) -> None:
    """A flaky device whose restart reveals a misconfiguration stops the rollout too."""

    class Phone(FlakyPhone):
        def restart(self) -> None:
            self.restarts += 1
            raise InfrastructureError("wrong server on reconnect", retryable=False)

    phone = Phone(seed=0, reset_fails={1})
    rollout = VectorRollout([TaskEnv(phone, SimEvaluator())], ExpertAct(), retries=3)
    with pytest.raises(InfrastructureError, match="wrong server on reconnect") as info:
        rollout.run(val_tasks[:2])
    assert not info.value.retryable and phone.restarts == 1 and phone.reset_calls == 1
