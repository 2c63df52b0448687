"""The learner's state machine: a sharded trainer, its replay, its checkpoints, resume and SIGTERM.

``Learner`` owns the pieces of DESIGN §5-6 that live in the learner process and none of the
sockets (the runtime wires those): ``insert`` trajectories, ``train_step`` samples a prioritized
batch, runs the compiled step, writes the fresh priorities back and advances the policy version
(= the optimizer step), ``maybe_checkpoint`` saves every ``checkpoint.every_steps`` steps.

Start-up order: resume from the run folder's newest good checkpoint if there is one (parameters,
optimizer, step, RNG: the policy version continues); else start from ``checkpoint.init_from``
(e.g. the behaviour-cloning warm start: parameters only); else from scratch. ``request_stop``
(wired to SIGTERM/SIGINT by :func:`install_signal_handlers`) makes the loop save and exit.
"""

from __future__ import annotations

import logging
import pathlib
import signal
import threading
import time
from typing import Any

import jax
import numpy as np

from distrl_jax.checkpoint.manager import Checkpointer
from distrl_jax.checkpoint.policy_loader import load_policy_state, spec_meta
from distrl_jax.config import Config, ConfigError
from distrl_jax.learner import sharding
from distrl_jax.learner.train_step import (
    ShardedTrainer,
    example_batch,
    make_optimizer,
    rl_loss,
)
from distrl_jax.replay.buffer import PrioritizedTrajectoryReplay
from distrl_jax.tasks.suites import load_tasks
from distrl_jax.types import Trajectory

log = logging.getLogger(__name__)


def initialize_distributed(cfg: Config) -> None:
    """``jax.distributed.initialize`` from ``mesh.coordinator`` etc. (a no-op on one host)."""
    if cfg.mesh.num_processes > 1:
        jax.distributed.initialize(
            coordinator_address=cfg.mesh.coordinator,
            num_processes=cfg.mesh.num_processes,
            process_id=cfg.mesh.process_id,
        )


def train_horizon(cfg: Config) -> int:
    """The longest episode the training tasks allow (replay's padded horizon H)."""
    if cfg.tasks.horizon:
        return cfg.tasks.horizon
    tasks = load_tasks(cfg.tasks.train, split=cfg.tasks.train_split)
    return max(t.horizon for t in tasks)


class Learner:
    """Trainer + replay + checkpoints for one run folder (see the module docstring)."""

    def __init__(self, cfg: Config, run_dir: str | pathlib.Path, *, horizon: int | None = None):
        self.cfg = cfg
        self.run_dir = pathlib.Path(run_dir)
        lc = cfg.learner
        try:
            mesh = sharding.make_mesh(cfg.mesh.data, cfg.mesh.model)
            sharding.check_batch_size(lc.batch_size, mesh)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        self.trainer = ShardedTrainer.create(
            cfg.model,
            lambda g: rl_loss(g, lc),
            make_optimizer(lc.lr, lc.grad_clip),
            mesh,
            rules=cfg.mesh.rules,
            seed=cfg.seed,
        )
        self.horizon = horizon or train_horizon(cfg)
        rc = cfg.replay
        h, w = cfg.model.image_size
        self.replay = PrioritizedTrajectoryReplay(
            capacity=rc.capacity,
            horizon=self.horizon,
            alpha=rc.alpha,
            beta0=rc.beta0,
            beta_steps=rc.beta_steps,
            max_staleness=rc.max_staleness,
            sampling=rc.sampling,
            compress_screens=rc.compress_screens,
            memory_budget_bytes=int(rc.memory_budget_gb * 2**30),
            seed=cfg.seed,
            step_shapes={
                "screens": (h, w, 3),
                "context": (cfg.model.context_len,),
                "actions": (cfg.model.action_len,),
            },
        )
        self.compile_seconds = self.trainer.compile(
            example_batch(cfg.model, lc.batch_size // jax.process_count(), self.horizon)
        )
        self.checkpoints = Checkpointer(self.run_dir / "checkpoints", keep=cfg.checkpoint.keep)
        self._stop = threading.Event()
        self.start_kind = self._restore_or_init()
        self.replay.set_policy_version(self.version)
        self.student = None  # the distilled actor policy (actor.policy=distilled)
        if cfg.actor.policy == "distilled":
            from distrl_jax.learner.student import Student

            self.student = Student(cfg, self.run_dir, self.trainer)

    # ------------------------------------------------------------------ start-up

    def _restore_or_init(self) -> str:
        if self.checkpoints.latest_step() is not None:
            state, meta = self.checkpoints.restore_train_state(self.trainer.abstract_state())
            self.trainer.state = state
            log.warning("resumed from %s step %d", self.checkpoints.directory, self.version)
            return f"resumed at step {self.version}"
        if self.cfg.checkpoint.init_from == "bc":
            raise ConfigError(
                "checkpoint.init_from=bc is resolved by launch (runtime.training.resolve_init); "
                "give Learner a checkpoint path"
            )
        if self.cfg.checkpoint.init_from:
            _, params, meta = load_policy_state(self.cfg.checkpoint.init_from, self.cfg.model)
            placed = jax.device_put(params, self.trainer.state_shardings.params)
            self.trainer.state = self.trainer.state._replace(params=placed)
            return f"initialised from {self.cfg.checkpoint.init_from} ({meta.get('kind', '?')})"
        return "initialised from scratch"

    @property
    def version(self) -> int:
        """The policy version of the current parameters (= optimizer steps taken)."""
        return self.trainer.step_count

    @property
    def params(self) -> Any:
        """The current parameters (an ``nnx.State`` on the mesh)."""
        return self.trainer.state.params

    # ------------------------------------------------------------------ the loop's parts

    def insert(self, traj: Trajectory) -> bool:
        """Add one trajectory to replay; False when it was too stale (dropped and counted)."""
        return self.replay.insert(traj) is not None

    def ready(self) -> bool:
        """Whether replay holds enough trajectories to start training."""
        return self.replay.stats()["size"] >= self.cfg.replay.min_size

    def train_step(self) -> dict[str, float]:
        """Sample, update, write priorities back, advance the policy version; returns metrics
        (the loss's, plus policy lag in versions and the time of each stage)."""
        t0 = time.perf_counter()
        batch = self.replay.sample(self.cfg.learner.batch_size)
        t1 = time.perf_counter()
        teacher = self.trainer.state.params  # the step below donates the state it replaces
        if self.student is not None:  # dispatched before the learner's step donates `teacher`
            metrics_student = self.student.step(batch, teacher)
        metrics, priorities = self.trainer.step(batch)
        if self.student is not None:
            metrics.update({k: float(v) for k, v in metrics_student.items()})  # synced by now
        t2 = time.perf_counter()
        self.replay.update_priorities(batch.indices, priorities)
        dropped = self.replay.set_policy_version(self.version)
        lag = (self.version - 1) - batch.policy_version
        metrics.update(
            policy_lag_mean=float(np.mean(lag)),
            policy_lag_min=float(np.min(lag)),
            policy_lag_max=float(np.max(lag)),
            replay_dropped_stale=float(dropped),
            time_sample_s=t1 - t0,
            time_train_s=t2 - t1,
            time_priority_s=time.perf_counter() - t2,
        )
        return metrics

    def checkpoint_meta(self) -> dict[str, Any]:
        """What a checkpoint records besides arrays (the model spec lets anyone load it)."""
        return {
            "kind": "rl",
            "algo": self.cfg.learner.algo,
            "model": spec_meta(self.cfg.model),
            "config": self.cfg.name,
            "policy_version": self.version,
            "replay": {k: float(v) for k, v in self.replay.stats().items() if _is_number(v)},
        }

    def maybe_checkpoint(self, *, force: bool = False) -> pathlib.Path | None:
        """Save when ``every_steps`` divides the step (or ``force``); returns the step folder."""
        step = self.version
        if not force and (step == 0 or step % self.cfg.checkpoint.every_steps):
            return None
        if self.student is not None:
            self.student.save(step)
        if step in self.checkpoints.steps():
            return self.checkpoints.path(step)
        self.checkpoints.save_train_state(self.trainer.state, self.checkpoint_meta(), force=True)
        return self.checkpoints.path(step)

    def actor_params(self) -> tuple[Any, pathlib.Path | None]:
        """What actors act with (the learner's parameters or the student's) and, after
        :meth:`maybe_checkpoint`, the checkpoint folder of the current version to announce."""
        if self.student is None:
            return self.params, self.checkpoints.path(self.version)
        return self.student.params, self.student.checkpoints.path(self.version)

    def request_stop(self) -> None:
        """Ask the loop to checkpoint and stop (thread- and signal-safe)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        """Whether a stop was requested."""
        return self._stop.is_set()

    def close(self) -> None:
        """Wait for pending checkpoint writes."""
        self.checkpoints.close()
        if self.student is not None:
            self.student.close()


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float | np.integer | np.floating)


def install_signal_handlers(learner: Learner) -> None:
    """SIGTERM and SIGINT request a clean stop (checkpoint, then exit) instead of killing."""

    def handler(signum, frame):
        log.warning("signal %d: checkpointing and stopping", signum)
        learner.request_stop()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handler)
