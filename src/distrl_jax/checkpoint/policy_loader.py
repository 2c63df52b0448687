"""Finding a checkpoint from a user's path and loading the policy alone (evaluation, actors, export).

Every checkpoint's ``meta`` item records the model spec it was saved from (``meta["model"]``),
so ``python -m distrl_jax.evaluate --checkpoint PATH`` needs no config. ``PATH`` may be a step
folder (``runs/x/checkpoints/200``), a checkpoints folder (its newest good step is used) or a run
folder (``runs/x``, whose ``checkpoints/`` is used).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import pathlib
from typing import Any

import jax
from flax import nnx

from distrl_jax.checkpoint.manager import Checkpointer, CheckpointError
from distrl_jax.config import ConfigError, to_dict
from distrl_jax.models import policy as P
from distrl_jax.models.spec import ModelSpec

log = logging.getLogger(__name__)


def spec_meta(spec: ModelSpec) -> dict[str, Any]:
    """The spec as JSON-able data for a checkpoint's meta."""
    return to_dict(spec)


def spec_from_meta(meta: dict[str, Any]) -> ModelSpec:
    """Rebuild the ModelSpec recorded in a checkpoint's meta."""
    data = meta.get("model")
    if not isinstance(data, dict):
        raise CheckpointError(
            "this checkpoint's meta has no model spec (saved by an older version?); "
            "pass the model preset explicitly"
        )
    fields = {f.name: f for f in dataclasses.fields(ModelSpec)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise CheckpointError(f"checkpoint model spec has unknown fields {unknown}")
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    try:
        return ModelSpec(**kwargs).validate()
    except (TypeError, ValueError, ConfigError) as e:
        raise CheckpointError(f"checkpoint model spec is invalid: {e}") from None


def resolve(path: str | pathlib.Path) -> tuple[pathlib.Path, int | None]:
    """``(checkpoints directory, step or None for the newest)`` for a user-given path."""
    p = pathlib.Path(path).expanduser()
    if not p.exists():
        raise CheckpointError(f"checkpoint path {str(p)!r} does not exist")
    if p.is_dir() and p.name.isdigit() and p.parent.is_dir():
        return p.parent.resolve(), int(p.name)
    if (p / "checkpoints").is_dir():
        p = p / "checkpoints"
    if not p.is_dir() or not any(c.name.isdigit() for c in p.iterdir()):
        raise CheckpointError(
            f"{str(p)!r} holds no checkpoint steps; give a run folder, its checkpoints/ folder "
            "or one step folder (e.g. runs/<run>/checkpoints/200)"
        )
    return p.resolve(), None


@functools.lru_cache(maxsize=8)
def _abstract_params(spec: ModelSpec) -> nnx.State:
    with nnx.use_eager_sharding(False):
        return nnx.state(P.abstract_model(spec))


def restore_target(spec: ModelSpec) -> nnx.State:
    """The parameters' structure with ShapeDtypeStruct leaves, to restore into.

    Tracing the model's initialisation costs about 0.6 s of the 1 s an actor spent loading each
    broadcast version (measured with cProfile); the structure depends only on the spec, so it is
    traced once per spec and copied (a new tree of the same immutable leaves) for each caller.
    """
    return jax.tree.map(lambda leaf: leaf, _abstract_params(spec))


def load_policy_state(
    path: str | pathlib.Path, spec: ModelSpec | None = None
) -> tuple[ModelSpec, nnx.State, dict[str, Any]]:
    """``(spec, parameters as nnx.State, meta)`` from a checkpoint; the optimizer is not read."""
    directory, step = resolve(path)
    with Checkpointer(directory, keep=1_000_000, use_async=False) as ckpt:
        candidates = [step] if step is not None else list(reversed(ckpt.steps()))
        if not candidates:
            raise CheckpointError(f"no committed checkpoint in {directory}")
        errors: list[str] = []
        for s in candidates:  # the newest good step when the user named no step
            try:
                meta = ckpt.read_meta(s)
                use = spec or spec_from_meta(meta)
                target = restore_target(use)
                _, params, _, meta = ckpt.restore(target, step=s)
            except CheckpointError as e:
                log.error("%s", e)
                errors.append(str(e))
                continue
            meta.setdefault("step", s)
            return use, params, meta
    raise CheckpointError("no usable checkpoint: " + " | ".join(errors))
