"""The learner's device mesh and how arrays are laid out on it (what pjit became).

A ``jax.sharding.Mesh`` with two axes, ``data`` and ``model``. Batches are split along ``data``;
parameters follow *rules as data*: an ordered list of ``"REGEX:AXES"`` strings matched against a
parameter's path (``decoder/blocks/0/mlp/up/kernel``), where AXES names the mesh axis of each
array dimension (``_`` for none), e.g. ``".*kernel:_,model"`` shards every kernel's output
dimension over ``model``. The first matching rule wins; a leaf whose dimension does not divide by
its axis size is replicated instead (and reported), so a rule set never makes a model unbuildable.
Axis types are ``Auto``: ``jax.make_mesh`` defaults to Explicit in this jax, which ``nnx.Embed``
rejects (NOTES-stack.md).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

log = logging.getLogger(__name__)

DATA, MODEL = "data", "model"

# Default rules: big matrices split their output features over `model`; everything else replicated.
DEFAULT_RULES: tuple[str, ...] = (r".*(kernel|embedding)$:_,model",)


def make_mesh(data: int = -1, model: int = 1, devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A (data, model) mesh over ``devices`` (default: all); ``data=-1`` takes what is left."""
    devs = list(devices if devices is not None else jax.devices())
    n = len(devs)
    if model < 1 or n % model:
        raise ValueError(f"mesh.model={model} must divide the number of devices ({n})")
    if data == -1:
        data = n // model
    if data * model != n:
        raise ValueError(
            f"mesh.data={data} x mesh.model={model} = {data * model} devices, but {n} are available; "
            f"use mesh.data=-1 to take all of them"
        )
    arr = np.asarray(devs, dtype=object).reshape(data, model)
    return Mesh(arr, (DATA, MODEL), axis_types=(jax.sharding.AxisType.Auto,) * 2)


def parse_rule(rule: str) -> tuple[re.Pattern[str], tuple[str | None, ...]]:
    """``"REGEX:AXES"`` -> (compiled regex, axes per dimension)."""
    pattern, sep, axes = rule.rpartition(":")
    if not sep or not pattern:
        raise ValueError(
            f"sharding rule {rule!r} must look like REGEX:AXES, e.g. '.*kernel:_,model'"
        )
    names = tuple(None if a.strip() in ("_", "") else a.strip() for a in axes.split(","))
    for a in names:
        if a not in (None, DATA, MODEL):
            raise ValueError(f"sharding rule {rule!r}: axis {a!r} is not one of _, data, model")
    return re.compile(pattern), names


def _path_str(path: tuple[Any, ...]) -> str:
    parts = []
    for k in path:
        key = getattr(k, "key", getattr(k, "name", getattr(k, "idx", k)))
        parts.append(str(key))
    return "/".join(parts)


def param_specs(params: Any, mesh: Mesh, rules: Sequence[str] = DEFAULT_RULES) -> Any:
    """A pytree of PartitionSpecs for ``params`` (arrays or ShapeDtypeStructs) under ``rules``."""
    parsed = [parse_rule(r) for r in rules]

    def spec_for(path: tuple[Any, ...], leaf: Any) -> PartitionSpec:
        name = _path_str(path)
        shape = getattr(leaf, "shape", ())
        for regex, axes in parsed:
            if not regex.fullmatch(name):
                continue
            # Align the rule's axes with the array's trailing dimensions.
            axes = (
                axes[-len(shape) :]
                if len(axes) > len(shape)
                else (None,) * (len(shape) - len(axes)) + axes
            )
            for dim, ax in zip(shape, axes, strict=True):
                if ax is not None and dim % mesh.shape[ax]:
                    log.info(
                        "replicating %s %s: dim %d not divisible by %s=%d",
                        name,
                        shape,
                        dim,
                        ax,
                        mesh.shape[ax],
                    )
                    return PartitionSpec()
            return PartitionSpec(*axes)
        return PartitionSpec()

    return jax.tree_util.tree_map_with_path(spec_for, params)


def param_shardings(params: Any, mesh: Mesh, rules: Sequence[str] = DEFAULT_RULES) -> Any:
    """NamedShardings for ``params`` under ``rules``."""
    return jax.tree.map(lambda s: NamedSharding(mesh, s), param_specs(params, mesh, rules))


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (batch) dimension over ``data``, the rest replicated."""
    return NamedSharding(mesh, PartitionSpec(DATA))


def replicated(mesh: Mesh) -> NamedSharding:
    """Fully replicated (scalars, RNG keys, step counters)."""
    return NamedSharding(mesh, PartitionSpec())


def check_batch_size(batch_size: int, mesh: Mesh) -> None:
    """Refuse a batch that does not split evenly over the data axis."""
    d = mesh.shape[DATA]
    if batch_size % d:
        raise ValueError(
            f"learner.batch_size={batch_size} must be a multiple of the mesh's data axis ({d}); "
            f"try {((batch_size + d - 1) // d) * d}"
        )
