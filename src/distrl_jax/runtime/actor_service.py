"""An actor process: devices + a policy, sending trajectories and following new versions.

The actor needs one address, the learner's control endpoint: it registers there and the ack
names the trajectory and parameter endpoints. It waits for the first policy version, then plays
training tasks on ``device.count`` devices at once (``VectorRollout``: one batched policy call
per step), pushes every finished trajectory (bounded outbox: the oldest is dropped and counted
when the learner cannot keep up), and between episodes swaps in the newest parameters the
subscriber has seen, so acting never waits for the learner (DESIGN §6).
"""

from __future__ import annotations

import itertools
import logging
import random
import secrets
import threading
import time
from collections.abc import Iterator

from distrl_jax.actor.rollout import VectorRollout, policy_act
from distrl_jax.checkpoint.policy_loader import load_policy_state
from distrl_jax.config import Config
from distrl_jax.devices.task_env import TaskEnv
from distrl_jax.models.jax_policy import JaxPolicy
from distrl_jax.models.spec import ModelSpec, preset
from distrl_jax.models.tokenizer import ContextEncoder
from distrl_jax.tasks.augment import augment
from distrl_jax.tasks.goals import Task
from distrl_jax.tasks.suites import load_tasks
from distrl_jax.transport.control_client import ControlClient
from distrl_jax.transport.param_broadcast import ParamSubscriber, ParamsVersion
from distrl_jax.transport.security import SocketSecurity
from distrl_jax.transport.trajectory_channel import TrajectorySender

log = logging.getLogger(__name__)


def make_devices(cfg: Config, actor_id: int, nonce: int = 0) -> list[TaskEnv]:
    """The actor's environments: ``device.count`` simphones, or one adb device per serial in
    ``device.serials`` (judged by a VLM, or by the test ADB server's exact judge)."""
    from distrl_jax.evaluate import make_envs

    if cfg.device.kind == "simphone":
        return make_envs(cfg, cfg.device.count, cfg.seed * 7919 + actor_id + 1 + nonce)
    return [make_adb_env_from_config(cfg, serial) for serial in cfg.device.serials]


def make_adb_env_from_config(cfg: Config, serial: str) -> TaskEnv:
    """One adb device's TaskEnv with the judge the config asks for (``device.judge``)."""
    from distrl_jax.devices.adb_device import make_adb_env

    dc = cfg.device
    evaluator = None
    if dc.judge == "vlm" or not dc.adb_sim_control:
        from distrl_jax.devices.vlm_judge import VlmJudge

        evaluator = VlmJudge(timeout_s=dc.judge_timeout_s, retries=dc.judge_retries)
    return make_adb_env(
        cfg, serial, sim_control=dc.adb_sim_control, evaluator=evaluator, timeout_s=dc.adb_timeout_s
    )


def actor_spec(cfg: Config) -> ModelSpec:
    """The model actors run: the learner's, or the distilled student's preset."""
    return preset(cfg.distill.student) if cfg.actor.policy == "distilled" else cfg.model


def slow_devices(cfg: Config) -> bool:
    """Whether device steps wait on something (adb devices, a simphone latency model)."""
    return cfg.device.kind == "adb" or cfg.device.latency != "none"


def training_tasks(cfg: Config) -> list[Task]:
    """The actors' tasks: the training split, plus ``tasks.train_augment`` made-up variants of
    each (the same variants in every actor, so the task distribution is the run's, not the
    actor's)."""
    tasks = load_tasks(
        cfg.tasks.train, split=cfg.tasks.train_split, horizon=cfg.tasks.horizon or None
    )
    if cfg.tasks.train_augment:
        tasks = augment(tasks, cfg.tasks.train_augment, seed=cfg.seed)
    return tasks


def task_stream(tasks: list[Task], seed: int) -> Iterator[Task]:
    """Training tasks forever, reshuffled each pass."""
    rng = random.Random(seed)
    for _ in itertools.count():
        order = list(tasks)
        rng.shuffle(order)
        yield from order


class ActorService:
    """One actor process's loop; ``run`` returns when ``stop`` is called or episodes run out."""

    def __init__(self, cfg: Config, learner: str, actor_id: int = 0):
        self.cfg = cfg
        self.actor_id = actor_id
        name = f"actor-{actor_id}"
        self._stop = threading.Event()
        self.episodes = 0
        self.infra_failures = 0
        self.version_swaps = 0
        self.versions_adopted: list[int] = []  # every version this actor has acted with, in order
        self.rollout: VectorRollout | None = None
        self._send_s = 0.0
        self._load_s = 0.0
        self._t0 = time.monotonic()
        # A restarted actor (same id) must not replay its predecessor's episodes: every seed
        # mixes in a per-process nonce (the run stays seeded by cfg.seed apart from it).
        self.nonce = secrets.randbits(31)
        keys = cfg.runtime.keys_dir
        sec = SocketSecurity.from_keys_dir(keys, name) if keys else None
        self.control = ControlClient(
            learner,
            name,
            devices=f"{cfg.device.kind}x{cfg.device.count}",
            stats=self.stats,
            security=sec,
        )
        ack = self.control.register(timeout_s=60.0)
        for key in ("trajectories", "params", "params_latest"):
            if key not in ack:
                raise RuntimeError(f"the learner at {learner} did not send its {key!r} endpoint")
        self.sender = TrajectorySender(
            ack["trajectories"], name, outbox_size=cfg.runtime.outbox, security=sec
        )
        self.subscriber = ParamSubscriber(
            ack["params"], ack["params_latest"], subscriber_id=name, security=sec
        )
        self.policy_spec = actor_spec(cfg)
        self.policy = JaxPolicy(
            self.policy_spec, seed=cfg.seed * 1000 + actor_id + self.nonce, buckets=(1, 8, 32)
        )
        self.envs = make_devices(cfg, actor_id, self.nonce)
        self.tasks = training_tasks(cfg)
        self.control.start_heartbeats()  # after everything stats() reads exists

    def _adopt(self, pv: ParamsVersion) -> None:
        t0 = time.perf_counter()
        if pv.path:
            from distrl_jax.run_folder import under_any
            from distrl_jax.transport.wire import Reason

            # An announced path is data from a socket: load only from the folders the learner
            # named at registration (or from below the configured run folder).
            roots = self.control.checkpoint_roots() + (
                [self.cfg.run_dir] if self.cfg.run_dir else []
            )
            path = under_any(pv.path, roots)
            if path is None:
                if getattr(self, "_refused_version", None) != pv.version:  # count each once
                    self._refused_version = pv.version
                    self.subscriber.rejects.add(Reason.BAD_PAYLOAD)
                    log.error(
                        "refused policy version %d: checkpoint path %r is outside %s",
                        pv.version,
                        pv.path,
                        roots,
                    )
                raise ValueError(f"checkpoint path {pv.path!r} is outside {roots}")
            _, params, _ = load_policy_state(path, self.policy_spec)
            self.policy.set_params(params, pv.version)
        elif pv.params is not None:
            from distrl_jax.runtime.learner_service import nested_params

            self.policy.set_params(nested_params(dict(pv.params)), pv.version)
        self.version_swaps += 1
        self.versions_adopted.append(pv.version)
        self._load_s += time.perf_counter() - t0

    def stats(self) -> dict[str, float]:
        """Cumulative counters and per-stage seconds (device step, inference, send, parameter
        load): sent with every heartbeat, so the learner's metrics show where actors spend time."""
        out = {
            "episodes": float(self.episodes),
            "infra_failures": float(self.infra_failures),
            "policy_version": float(self.policy.version),
            "version_swaps": float(self.version_swaps),
            "dropped": float(self.sender.dropped),
            "outbox_depth": float(self.sender.pending),
            "uptime_s": time.monotonic() - self._t0,
            "time_send_s": self._send_s,
            "time_param_load_s": self._load_s,
        }
        r = self.rollout
        if r is not None:
            out.update({f"time_{k}": v for k, v in r.timers.items()})
            out.update(device_steps=float(r.device_steps), policy_calls=float(r.policy_calls))
        return out

    def _maybe_update(self) -> None:
        pv = self.subscriber.latest()
        if pv is not None and pv.version > self.policy.version:
            try:
                self._adopt(pv)
            except Exception as e:  # a bad version must not kill acting: keep the old one
                log.error("could not load policy version %d: %s", pv.version, e)

    def run(self, max_episodes: int = 0) -> int:
        """Act until stopped (or ``max_episodes``); returns the number of episodes sent."""
        first = self.subscriber.wait_for(0, timeout_s=120.0)
        if first is None:
            raise TimeoutError("no policy version from the learner within 120 s")
        self._adopt(first)
        self.policy.warm_up()
        rollout = self.rollout = VectorRollout(
            self.envs,
            policy_act(self.policy),
            contexts=ContextEncoder(self.cfg.model),
            record=True,
            # Slow devices (emulators, a latency model) step and reset in threads, each on its
            # own; the policy acts on whichever are ready.
            threads=len(self.envs) if slow_devices(self.cfg) else 0,
            actor_id=self.actor_id,
            policy_version=lambda: self.policy.version,
        )
        tasks = task_stream(self.tasks, self.cfg.seed + self.actor_id + self.nonce)
        try:
            if self.cfg.runtime.mode == "sync":
                self._run_sync(rollout, tasks, max_episodes)
            else:
                for result in rollout.stream(tasks):
                    self._send(result)
                    self._maybe_update()
                    if self._done(max_episodes):
                        break
        finally:
            rollout.close()
            self.sender.flush(timeout_s=2.0)
        return self.episodes

    def _run_sync(self, rollout: VectorRollout, tasks: Iterator[Task], max_episodes: int) -> None:
        """Synchronous baseline: a quota of episodes with one version, then wait for the next."""
        quota = self.cfg.runtime.sync_round
        while not self._done(max_episodes):
            version = self.policy.version
            sent = 0
            while sent < quota and not self._stop.is_set():  # infra failures send nothing
                for result in rollout.run([next(tasks) for _ in range(quota - sent)]):
                    self._send(result)
                    sent += result.trajectory is not None
            self.sender.flush(timeout_s=10.0)
            while not self._stop.is_set():  # the barrier: the learner trains, then broadcasts
                if self.subscriber.wait_for(version + 1, timeout_s=0.5) is not None:
                    self._maybe_update()
                    break

    def _send(self, result) -> None:
        if result.trajectory is not None:
            t0 = time.perf_counter()
            self.sender.send(result.trajectory)
            self._send_s += time.perf_counter() - t0
            self.episodes += 1
        else:
            self.infra_failures += 1

    def _done(self, max_episodes: int) -> bool:
        return self._stop.is_set() or bool(max_episodes and self.episodes >= max_episodes)

    def stop(self) -> None:
        """Finish the current step and return from ``run``."""
        self._stop.set()

    def close(self) -> None:
        """Close sockets and devices."""
        self.sender.close(linger_s=2.0)  # let the last episodes reach a live learner
        for part in (self.subscriber, self.control):
            part.close()
        for env in self.envs:
            env.device.close()


def main(cfg: Config, learner: str, actor_id: int) -> int:
    """Entry point of ``launch --role=actor``: run until SIGTERM/SIGINT."""
    import signal

    service = ActorService(cfg, learner, actor_id)
    signal.signal(signal.SIGTERM, lambda *_: service.stop())
    signal.signal(signal.SIGINT, lambda *_: service.stop())
    t0 = time.monotonic()
    try:
        n = service.run()
    finally:
        service.close()
    adopted = [str(v) for v in service.versions_adopted]
    # A long run adopts hundreds of versions: the first and last few say what matters.
    if len(adopted) > 12:
        adopted = [*adopted[:6], "...", *adopted[-6:], f" ({len(service.versions_adopted)} in all)"]
    versions = ",".join(adopted).replace(", (", " (")
    print(
        f"actor {actor_id}: {n} episodes in {time.monotonic() - t0:.0f} s, "
        f"acted with policy versions {versions}",
        flush=True,
    )
    return 0
