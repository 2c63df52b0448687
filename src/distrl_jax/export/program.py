"""The exported program: observation encoder + the whole greedy decoder at a fixed length.

Why the whole decoder and not one decoding step: a step-wise export would make every consumer
re-implement the key/value cache plumbing *and* the action grammar automaton
(:func:`~distrl_jax.models.action_codec.grammar_allowed`) in its own language, and any
divergence from the JAX masks silently changes the policy. Exporting the full greedy loop keeps
the grammar inside the graph, so the on-device output is exactly the JAX greedy policy's
(``scoring.sample_actions(greedy=True)``): inputs ``screens`` uint8 [B, H, W, 3] and ``context``
int32 [B, Lc]; outputs ``tokens`` int32 [B, La], ``logp`` float32 [B] (log π of the greedy
action) and ``step_logits`` float32 [B, La, V] — the grammar-masked next-token logits the argmax
ran over at each position (forbidden tokens hold -1e9). The loop always runs La positions
(after ``<eos>`` the grammar only allows padding, so the tokens match the early-stopping JAX
loop). The batch size is fixed at export time: jax2onnx 0.17 cannot lower the grammar's integer
remainder under a symbolic batch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from distrl_jax.models import action_codec as codec
from distrl_jax.models import scoring
from distrl_jax.models.policy import abstract_model
from distrl_jax.models.spec import ModelSpec
from distrl_jax.models.tokenizer import ContextEncoder

QUANTIZATIONS = ("none", "fp16", "int8")
Program = Callable[[jax.Array, jax.Array], tuple[jax.Array, jax.Array, jax.Array]]


@contextlib.contextmanager
def keyword_select_default() -> Iterator[None]:
    """Route ``jnp.select(c, ch, default)`` through ``default=`` while a converter traces.

    jax2onnx 0.17 replaces ``jnp.select`` during conversion with a function whose ``default`` is
    keyword-only, and the grammar automaton passes it positionally. The shim is installed only
    inside the traced program and always removed.
    """
    installed = jnp.select

    def select(condlist, choicelist, default=0):
        return installed(condlist, choicelist, default=default)

    jnp.select = select
    try:
        yield
    finally:
        jnp.select = installed


def weight_leaves(
    state: nnx.State, quantize: str
) -> tuple[list[np.ndarray], jax.tree_util.PyTreeDef]:
    """The parameters as a flat list of host arrays (float16 for ``fp16``) and their treedef."""
    if quantize not in QUANTIZATIONS:
        raise ValueError(f"quantize={quantize!r} is unknown; use one of {', '.join(QUANTIZATIONS)}")
    leaves, treedef = jax.tree.flatten(state)
    host = [np.asarray(x) for x in leaves]
    if quantize == "fp16":
        host = [x.astype(np.float16) if x.dtype == np.float32 else x for x in host]
    return host, treedef


def greedy_program(spec: ModelSpec, state: nnx.State, quantize: str = "none") -> Program:
    """``f(screens, context) -> (tokens, logp, step_logits)`` with the weights as constants.

    With ``fp16`` the constants are stored in float16 and cast back to the model's parameter
    dtype inside the program, so the file halves while compute stays float32.
    """
    spec = spec.validate()
    graphdef, expected = nnx.split(abstract_model(spec))
    leaves, treedef = weight_leaves(state, quantize)
    dtypes = [np.dtype(x.dtype) for x in jax.tree.leaves(expected)]
    length, bins, heads = spec.action_len, spec.location_bins, spec.heads

    def decode(screens: jax.Array, context: jax.Array):
        params = [jnp.asarray(x).astype(d) for x, d in zip(leaves, dtypes, strict=True)]
        model = nnx.merge(graphdef, jax.tree.unflatten(treedef, params))
        memory, mem_mask = model.encode(screens, context)
        cross_kv = model.decoder.cross_kv(memory)
        source = model.copy_source(memory, context)
        # Batch-shaped zeros derived from the inputs (not jnp.full/zeros((B,))) so converters
        # never need the batch size as a Python int.
        zero_i = jnp.zeros_like(context[:, 0])
        zero_f = jnp.zeros_like(memory[:, 0, 0], dtype=jnp.float32)
        grammar = codec.GrammarState(
            zero_i + codec.START, zero_i, zero_i, zero_i + 0x80, zero_i + 0xBF
        )
        cache_zero = zero_f[:, None, None, None].astype(spec.dtype) + jnp.zeros(
            (length, heads, spec.width // heads), spec.dtype
        )
        cache = [(cache_zero, cache_zero) for _ in range(spec.decoder_depth)]

        def body(carry, pos):
            prev, logp, grammar, cache = carry
            logits, cache = model.decoder.step(
                model.embed_tokens(prev), pos, cache, cross_kv, mem_mask, source
            )
            allowed = codec.grammar_allowed(grammar, pos, length, bins)
            masked = jnp.where(allowed, logits, scoring.NEG)
            logp_pi = jax.nn.log_softmax(masked, axis=-1)
            token = jnp.argmax(logp_pi, axis=-1).astype(jnp.int32)  # as sample_actions(greedy)
            logp = logp + jnp.take_along_axis(logp_pi, token[:, None], axis=-1)[:, 0]
            return (token, logp, codec.grammar_step(grammar, token), cache), (token, masked)

        carry = (zero_i + codec.BOS_ID, zero_f, grammar, cache)
        positions = jnp.arange(length, dtype=jnp.int32)
        (_, logp, _, _), (tokens, masked) = jax.lax.scan(body, carry, positions)
        return tokens.T, logp, masked.transpose(1, 0, 2)

    def program(screens: jax.Array, context: jax.Array):
        with keyword_select_default():
            return decode(screens, context)

    return program


def jax_greedy_policy(spec: ModelSpec, state: nnx.State) -> Callable:
    """The training stack's greedy decoder, ``f(screens, context) -> (tokens, logp)`` (numpy)."""
    graphdef, _ = nnx.split(abstract_model(spec))
    key = jax.random.key(0)

    @jax.jit
    def run(screens, context):
        return scoring.sample_actions(graphdef, state, screens, context, key, 1.0, True)

    return lambda s, c: tuple(np.asarray(x) for x in run(s, c))


def sample_inputs(
    spec: ModelSpec, n: int, seed: int, tasks: list[str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` seeded random screens uint8 [n, H, W, 3] and contexts int32 [n, Lc].

    Contexts are real encodings (task text, and for every other row a short random action
    history) so the decoder's copy head and the history path are exercised.
    """
    rng = np.random.default_rng(seed)
    h, w = spec.image_size
    screens = rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8)
    texts = tasks or ["Open the settings app", "Search for running shoes on amazon", "Go home"]
    history_pool = ("TAP 0.50 0.25", "SWIPE 0.80 0.50 0.20 0.50", 'TYPE "hello"', "BACK", "HOME")
    encoder = ContextEncoder(spec)
    contexts = np.zeros((n, spec.context_len), np.int32)
    for i in range(n):
        history = list(rng.choice(history_pool, size=i % 3)) if i % 2 else []
        contexts[i] = encoder.encode(texts[i % len(texts)], history)
    return screens, contexts
