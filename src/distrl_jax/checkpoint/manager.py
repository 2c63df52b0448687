"""Orbax checkpoints of the learner: atomic, async, keep-N, with exact resume.

Each checkpoint step holds separate items so an actor can restore the policy alone:

* ``params``  — the model's ``nnx.State`` (policy + critics), as a pytree of arrays;
* ``opt``     — the optimizer state (learner only);
* ``meta``    — JSON: learner step, policy version, RNG key data, replay counters, config name.

Orbax writes into a temporary folder and renames it on commit, so a crash mid-save leaves no
half checkpoint under a step name. A checkpoint that is corrupt all the same (a truncated or
deleted file, a disk error) is detected at restore: it is reported, and the previous good step
is used instead (never silently starting from scratch).
"""

from __future__ import annotations

import logging
import pathlib
import time
from collections.abc import Mapping
from typing import Any

import jax
import orbax.checkpoint as ocp

log = logging.getLogger(__name__)


# What Orbax says when a readable checkpoint has other shapes or another tree than the target.
_MISMATCH_MESSAGES = ("not compatible with the stored shape", "tree structures do not match")


class CheckpointError(RuntimeError):
    """No usable checkpoint could be restored."""


class Checkpointer:
    """A thin, explicit wrapper over ``ocp.CheckpointManager`` for the learner's items."""

    def __init__(self, directory: str | pathlib.Path, *, keep: int = 3, use_async: bool = True):
        self.directory = pathlib.Path(directory).resolve()
        self.directory.mkdir(parents=True, exist_ok=True)
        self._mngr = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(
                max_to_keep=keep, enable_async_checkpointing=use_async, create=True
            ),
            item_names=("params", "opt", "meta"),
        )

    def save(
        self,
        step: int,
        params: Any,
        meta: Mapping[str, Any],
        opt: Any | None = None,
        *,
        force: bool = False,
    ) -> bool:
        """Start saving step ``step`` (async); returns False if the manager skipped it."""
        items: dict[str, Any] = {
            "params": ocp.args.StandardSave(params),
            "meta": ocp.args.JsonSave(dict(meta)),
        }
        if opt is not None:
            items["opt"] = ocp.args.StandardSave(opt)
        return bool(self._mngr.save(step, args=ocp.args.Composite(**items), force=force))

    def wait(self) -> None:
        """Block until pending async saves are committed."""
        self._mngr.wait_until_finished()

    def steps(self) -> list[int]:
        """Committed steps, oldest first."""
        return sorted(self._mngr.all_steps())

    def latest_step(self) -> int | None:
        """The newest committed step, or None."""
        steps = self.steps()
        return steps[-1] if steps else None

    def path(self, step: int) -> pathlib.Path:
        """The folder of a step (what a parameter broadcast announces)."""
        return self.directory / str(step)

    def read_meta(self, step: int) -> dict[str, Any]:
        """The JSON ``meta`` item of ``step`` alone (cheap: no arrays are read)."""
        try:
            out = self._mngr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
        except Exception as e:  # Orbax raises many types for damaged files
            raise CheckpointError(
                f"checkpoint step {step} in {self.directory} has no readable meta ({e})"
            ) from None
        return dict(out["meta"] or {})

    def restore(
        self,
        params_target: Any,
        opt_target: Any | None = None,
        *,
        step: int | None = None,
    ) -> tuple[int, Any, Any | None, dict[str, Any]]:
        """Restore (step, params, opt, meta) from ``step`` or the newest good step.

        ``params_target``/``opt_target`` are abstract pytrees (``jax.eval_shape`` output or
        ``jax.ShapeDtypeStruct`` leaves, with shardings where the learner is sharded). When the
        newest step is corrupt, older ones are tried in turn and the failure is logged.
        """
        candidates = [step] if step is not None else list(reversed(self.steps()))
        if not candidates:
            raise CheckpointError(f"no checkpoint in {self.directory}")
        errors = []
        for s in candidates:
            try:
                return (s, *self._restore_step(s, params_target, opt_target))
            except CheckpointError:
                raise  # the checkpoint is fine but is not this model's: older ones are not either
            except Exception as e:  # Orbax raises many types for damaged files; all mean "bad step"
                if any(m in str(e) for m in _MISMATCH_MESSAGES):
                    raise CheckpointError(
                        f"checkpoint step {s} in {self.directory} does not match the model "
                        f"(different preset or model spec?): {e}"
                    ) from None
                msg = f"checkpoint step {s} in {self.directory} is unreadable ({type(e).__name__}: {e})"
                log.error("%s; moved to %s, trying an older one", msg, self._quarantine(s))
                errors.append(msg)
        raise CheckpointError("no usable checkpoint: " + " | ".join(errors))

    def _quarantine(self, step: int) -> pathlib.Path:
        """Move an unreadable step out of the manager's sight (kept for inspection, never
        deleted), so that reaching that step again saves it afresh instead of announcing the
        broken folder."""
        if not self.path(step).exists():
            return self.path(step)
        dest = (
            self.directory.parent / f"{self.directory.name}-unreadable" / f"{step}-{time.time_ns()}"
        )
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.path(step).rename(dest)
        except OSError as e:  # a read-only store: leave it, the fallback still works
            log.warning("could not move unreadable step %d aside: %s", step, e)
            return self.path(step)
        self._mngr.reload()
        return dest

    def _restore_step(
        self, step: int, params_target: Any, opt_target: Any | None
    ) -> tuple[Any, Any | None, dict[str, Any]]:
        items: dict[str, Any] = {
            "params": ocp.args.StandardRestore(params_target),
            "meta": ocp.args.JsonRestore(),
        }
        if opt_target is not None:
            items["opt"] = ocp.args.StandardRestore(opt_target)
        out = self._mngr.restore(step, args=ocp.args.Composite(**items))
        params = out["params"]
        _check_tree(params_target, params, "params", step)
        opt = out["opt"] if opt_target is not None else None
        return params, opt, dict(out["meta"] or {})

    def save_train_state(self, state: Any, meta: Mapping[str, Any], *, force: bool = False) -> bool:
        """Save a learner ``TrainState`` (params | opt_state + step + RNG) at its own step."""
        step = int(jax.device_get(state.step))
        opt = {"opt_state": state.opt_state, "step": state.step, "rng": state.rng}
        meta = {**meta, "step": step}
        return self.save(step, state.params, meta, opt, force=force)

    def restore_train_state(
        self, abstract_state: Any, *, step: int | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Restore a ``TrainState`` shaped (and sharded) like ``abstract_state``; returns (state, meta)."""
        opt_target = {
            "opt_state": abstract_state.opt_state,
            "step": abstract_state.step,
            "rng": abstract_state.rng,
        }
        _, params, opt, meta = self.restore(abstract_state.params, opt_target, step=step)
        assert opt is not None
        state = type(abstract_state)(params, opt["opt_state"], opt["step"], opt["rng"])
        return state, meta

    def close(self) -> None:
        """Wait for pending saves and release the manager."""
        self._mngr.wait_until_finished()
        self._mngr.close()

    def __enter__(self) -> Checkpointer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_tree(target: Any, restored: Any, what: str, step: int) -> None:
    want = jax.tree.map(lambda x: (tuple(x.shape), str(x.dtype)), target)
    got = jax.tree.map(lambda x: (tuple(x.shape), str(x.dtype)), restored)
    if jax.tree.structure(want) != jax.tree.structure(got) or jax.tree.leaves(
        want
    ) != jax.tree.leaves(got):
        raise CheckpointError(f"{what} of step {step} do not match the model (different preset?)")
