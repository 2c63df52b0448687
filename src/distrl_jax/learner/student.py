"""The distilled actor policy on the learner: trained, checkpointed and broadcast with it.

With ``actor.policy=distilled`` (DESIGN §6) every learner step is followed by one distillation
step of a smaller student (``distill.student`` preset) towards the learner's current policy, on
the real steps of the same replayed batch (:mod:`distrl_jax.learner.distill`: per-token KL,
teacher-forced). The student is checkpointed under ``<run>/checkpoints-student/<version>`` with
the learner's policy version as its step, so a broadcast of version N announces the student of
version N and policy lag keeps its meaning; actors act with it and Retrace corrects for the
difference between student (μ) and learner (π).
"""

from __future__ import annotations

import logging
import pathlib
from typing import Any

import jax
import numpy as np

from distrl_jax.checkpoint.manager import Checkpointer
from distrl_jax.checkpoint.policy_loader import spec_meta
from distrl_jax.config import Config
from distrl_jax.learner.distill import DistillTrainer, states_from_batch
from distrl_jax.learner.train_step import make_optimizer
from distrl_jax.models.spec import preset
from distrl_jax.types import Batch

log = logging.getLogger(__name__)

STUDENT_DIR = "checkpoints-student"


class Student:
    """A :class:`DistillTrainer` with its own checkpoints beside the learner's."""

    def __init__(self, cfg: Config, run_dir: pathlib.Path, teacher_trainer: Any):
        dc = cfg.distill
        self.cfg = cfg
        self.spec = preset(dc.student)
        self.trainer = DistillTrainer.create(
            self.spec,
            cfg.model,
            make_optimizer(dc.lr, dc.grad_clip),
            teacher_trainer.mesh,
            action_source=dc.action_source,
            temperature=dc.temperature,
            teacher_shardings=teacher_trainer.state_shardings.params,
            rules=cfg.mesh.rules,
            seed=cfg.seed + 1,
        )
        self.checkpoints = Checkpointer(run_dir / STUDENT_DIR, keep=cfg.checkpoint.keep)
        self._rng = np.random.default_rng(cfg.seed + 17)
        self.start_kind = "initialised from scratch"
        if self.checkpoints.latest_step() is not None:
            state, _ = self.checkpoints.restore_train_state(self.trainer.abstract_state())
            self.trainer.state = state
            self.start_kind = f"resumed at step {self.checkpoints.latest_step()}"

    @property
    def params(self) -> Any:
        """The student's current parameters (what actors load)."""
        return self.trainer.student_state()

    def step(self, batch: Batch, teacher_params: Any) -> dict[str, float]:
        """One distillation step on the real steps of ``batch``; metrics under ``distill/``."""
        rows = self.cfg.distill.batch_states // jax.process_count()
        states = states_from_batch(batch, rows, self._rng)
        return {f"distill/{k}": v for k, v in self.trainer.step(teacher_params, states).items()}

    def save(self, version: int) -> pathlib.Path:
        """Checkpoint the student as step ``version`` (the learner's policy version)."""
        if version not in self.checkpoints.steps():
            state = self.trainer.state
            opt = {"opt_state": state.opt_state, "step": state.step, "rng": state.rng}
            meta = {
                "kind": "student",
                "model": spec_meta(self.spec),
                "teacher_model": spec_meta(self.cfg.model),
                "config": self.cfg.name,
                "policy_version": version,
                "step": version,
            }
            self.checkpoints.save(version, state.params, meta, opt, force=True)
        return self.checkpoints.path(version)

    def close(self) -> None:
        """Wait for pending writes."""
        self.checkpoints.close()
