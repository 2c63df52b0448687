"""The actor-side policy: a :class:`core.Policy` over the NNX model with a jitted sampler.

``act`` stacks the observations' screens, encodes their contexts, pads the batch up to a fixed
bucket size (1, 8, 32 by default; larger batches go in chunks of the largest bucket) so the
sampler compiles once per bucket and never again, samples, and decodes the tokens into actions.
Temperature, greedy decoding and new parameters (``set_params``) never recompile either.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np
from flax import nnx

from distrl_jax import core
from distrl_jax.models import action_codec as codec
from distrl_jax.models import policy as P
from distrl_jax.models import scoring
from distrl_jax.models.spec import ModelSpec
from distrl_jax.models.tokenizer import ContextEncoder, load_tokenizer


class JaxPolicy(core.Policy):
    """Samples actions from a :class:`PolicyModel` for batches of observations."""

    def __init__(
        self,
        spec: ModelSpec,
        state: nnx.State | None = None,
        *,
        version: int = 0,
        seed: int = 0,
        temperature: float = 1.0,
        greedy: bool = False,
        buckets: Sequence[int] = (1, 8, 32),
    ):
        self.spec = spec.validate()
        if not buckets or any(int(b) < 1 for b in buckets):
            raise ValueError(
                f"buckets={tuple(buckets)!r} must be positive batch sizes, e.g. (1, 8, 32)"
            )
        self.buckets = tuple(sorted({int(b) for b in buckets}))
        self.set_sampling(temperature=temperature, greedy=greedy)
        self.tokenizer = load_tokenizer()
        self.contexts = ContextEncoder(spec, self.tokenizer)
        self.codec = codec.ActionCodec.from_spec(spec)
        # The abstract model gives the graph and the expected parameter shapes without allocating.
        self.graphdef, self._expected = nnx.split(P.abstract_model(spec))
        if state is None:
            state = nnx.state(P.init_model(spec, seed))
        # Parameters are kept as a flat list of arrays: flattening an nnx.State on every call
        # costs more host time than the whole batch-1 sampler on a small model.
        self._leaves: list[jax.Array] = []
        self._treedef = jax.tree.structure(self._expected)
        self._version = 0
        self.set_params(state, version)
        self._seed = np.int32(seed)
        self._calls = 0
        self.trace_count = 0  # how often the sampler was traced (= compiled); tests read it
        self.action_count = 0
        self.invalid_count = 0

        def sample(leaves, screens, context, seed, call, temperature, greedy, active):
            self.trace_count += 1  # runs only while tracing
            state = jax.tree.unflatten(self._treedef, leaves)
            rng = jax.random.fold_in(jax.random.key(seed), call)
            return scoring.sample_actions(
                self.graphdef, state, screens, context, rng, temperature, greedy, active
            )

        self._sample = jax.jit(sample)

    @property
    def version(self) -> int:
        """The policy version of the parameters in use."""
        return self._version

    @property
    def state(self) -> nnx.State:
        """The parameters in use (an ``nnx.State``)."""
        return jax.tree.unflatten(self._treedef, self._leaves)

    def set_sampling(self, *, temperature: float | None = None, greedy: bool | None = None) -> None:
        """Change temperature and/or greedy decoding (no recompilation)."""
        if temperature is not None:
            if not (math.isfinite(temperature) and temperature > 0):
                raise ValueError(f"temperature={temperature!r} must be a finite number > 0")
            self.temperature = float(temperature)
        if greedy is not None:
            self.greedy = bool(greedy)

    def set_params(self, state: nnx.State | Mapping[str, Any], version: int) -> None:
        """Use new parameters: an ``nnx.State`` or its ``nnx.to_pure_dict`` form (e.g. restored
        from a checkpoint or received on the wire), with the spec's shapes and dtypes."""
        if not isinstance(state, nnx.State):
            if not isinstance(state, Mapping):
                raise ValueError(
                    f"parameters must be an nnx.State or a nested dict, got {type(state).__name__}"
                )
            target = copy.deepcopy(self._expected)
            try:
                nnx.replace_by_pure_dict(target, state)
            except (KeyError, TypeError, ValueError) as e:
                raise ValueError(
                    f"parameters do not fit the {self.spec.name!r} spec's model: {e!r}"
                ) from None
            state = target
        got, _ = jax.tree_util.tree_flatten_with_path(state)
        want, _ = jax.tree_util.tree_flatten_with_path(self._expected)
        if len(got) != len(want):
            raise ValueError(
                f"parameters have {len(got)} arrays, the {self.spec.name} spec's model has "
                f"{len(want)}: were they saved from a model with another spec?"
            )
        for (gp, g), (wp, w) in zip(got, want, strict=True):
            if isinstance(g, jax.ShapeDtypeStruct):
                raise ValueError(f"parameter {jax.tree_util.keystr(gp)} is missing")
            if gp != wp or tuple(g.shape) != tuple(w.shape) or g.dtype != w.dtype:
                raise ValueError(
                    f"parameter {jax.tree_util.keystr(gp)} is {g.dtype}{tuple(g.shape)}, expected "
                    f"{jax.tree_util.keystr(wp)} {w.dtype}{tuple(w.shape)} for spec {self.spec.name!r}"
                )
        self._leaves = jax.device_put(jax.tree.leaves(state))
        self._version = int(version)

    def warm_up(self) -> None:
        """Compile the sampler for every bucket now (actor start-up), not on the first steps."""
        h, w = self.spec.image_size
        for b in self.buckets:
            self._run(
                np.zeros((b, h, w, 3), np.uint8), np.zeros((b, self.spec.context_len), np.int32), b
            )

    def _run(
        self, screens: np.ndarray, context: np.ndarray, n: int
    ) -> tuple[np.ndarray, np.ndarray]:
        bucket = next((b for b in self.buckets if b >= n), self.buckets[-1])
        pad = bucket - n
        if pad:
            screens = np.concatenate([screens, np.zeros((pad, *screens.shape[1:]), np.uint8)])
            context = np.concatenate([context, np.zeros((pad, context.shape[1]), np.int32)])
        self._calls += 1
        tokens, logp = self._sample(
            self._leaves,
            screens,
            context,
            self._seed,
            np.int32(self._calls),
            np.float32(self.temperature),
            np.bool_(self.greedy),
            np.arange(bucket) < n,
        )
        return np.asarray(tokens)[:n], np.asarray(logp)[:n]

    def _screens(self, observations: Sequence[core.Observation]) -> np.ndarray:
        h, w = self.spec.image_size
        for i, obs in enumerate(observations):
            s = obs.screen
            if not isinstance(s, np.ndarray) or s.shape != (h, w, 3) or s.dtype != np.uint8:
                got = f"{s.dtype}{s.shape}" if isinstance(s, np.ndarray) else type(s).__name__
                raise ValueError(
                    f"observation {i}: screen is {got}, the model takes uint8({h}, {w}, 3); "
                    "render or resize screens to model.image_size"
                )
        return np.stack([obs.screen for obs in observations])

    def act(self, observations: Sequence[core.Observation]) -> list[core.PolicyOutput]:
        """One sampled (or greedy) action per observation, with its tokens and log μ."""
        outputs: list[core.PolicyOutput] = []
        step = self.buckets[-1]
        for start in range(0, len(observations), step):
            chunk = observations[start : start + step]
            screens = self._screens(chunk)
            context = self.contexts.encode_batch(
                [o.task for o in chunk], [o.history for o in chunk]
            )
            tokens, logp = self._run(screens, context, len(chunk))
            for row, lp in zip(tokens, logp, strict=True):
                action = self.codec.decode(row)
                self.invalid_count += not action.is_valid
                real = row[row != codec.PAD_ID]
                text = self.tokenizer.decode(real.tolist(), skip_special_tokens=False)
                outputs.append(core.PolicyOutput(action, row.astype(np.int32), float(lp), text))
        self.action_count += len(outputs)
        return outputs
