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

from distrl_jax.checkpoint.manager import Checkpointer, CheckpointError
from distrl_jax.checkpoint.policy_loader import load_policy_state, spec_meta
from distrl_jax.config import Config, ConfigError
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
        self.start_kind = self._restore(int(teacher_trainer.step_count))

    def _restore(self, version: int) -> str:
        """Resume the student saved with the learner's policy ``version``.

        Without that step (a crash between the two saves, a learner resumed from elsewhere) the
        newest student step not after ``version`` is used (else the oldest), and a warning says
        that student and learner differ and which step was taken. Student steps newer than the
        learner are stale (a later save of that version keeps them): a warning names them.
        """
        steps = self.checkpoints.steps()
        newer = [s for s in steps if s > version]
        if newer:
            log.warning(
                "student steps %s in %s are newer than the learner's policy version %d: they "
                "come from training the learner has lost, and are announced as they are when "
                "the learner reaches those versions; move them aside to have them retrained",
                newer,
                self.checkpoints.directory,
                version,
            )
        if version in steps:
            try:
                return self._restore_step(version)
            except CheckpointError:
                if version in self.checkpoints.steps():  # readable but not this model's
                    raise
                steps = self.checkpoints.steps()  # unreadable: moved aside, fall back below
        if not steps:
            init_from = self.cfg.distill.init_from
            if init_from and init_from != "bc":  # launch resolves bc into a path
                return self._init_from(init_from)
            if version:
                log.warning(
                    "student and learner differ: the learner is at policy version %d but %s "
                    "holds no student; the student starts from scratch",
                    version,
                    self.checkpoints.directory,
                )
            return "initialised from scratch"
        older = [s for s in steps if s <= version]
        use = older[-1] if older else steps[0]
        log.warning(
            "student and learner differ: the learner is at policy version %d and %s has no "
            "student step %d (it has %s); resuming the student from step %d",
            version,
            self.checkpoints.directory,
            version,
            steps,
            use,
        )
        return f"{self._restore_step(use)} (the learner is at {version})"

    def _init_from(self, path: str) -> str:
        """Start from a student checkpoint (e.g. its behaviour-cloning warm start)."""
        try:
            _, params, meta = load_policy_state(path, self.spec)
        except CheckpointError as e:
            raise ConfigError(
                f"distill.init_from={path!r}: {e}; give a checkpoint of the "
                f"{self.cfg.distill.student!r} student, bc, or empty (from scratch)"
            ) from None
        placed = jax.device_put(params, self.trainer.state_shardings.params)
        self.trainer.state = self.trainer.state._replace(params=placed)
        return f"initialised from {path} ({meta.get('kind', '?')})"

    def _restore_step(self, step: int) -> str:
        state, _ = self.checkpoints.restore_train_state(self.trainer.abstract_state(), step=step)
        self.trainer.state = state
        return f"resumed at step {step}"

    @property
    def params(self) -> Any:
        """The student's current parameters (what actors load)."""
        return self.trainer.student_state()

    def step(self, batch: Batch, teacher_params: Any) -> dict[str, jax.Array]:
        """One distillation step on the real steps of ``batch``; metrics under ``distill/``, as
        device scalars not yet synced (the learner's step is dispatched before they are read)."""
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
