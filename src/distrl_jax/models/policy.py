"""The policy and critics as Flax NNX modules (DESIGN §4).

::

    screen uint8 [H, W, 3] ── patchify conv ── image blocks ──┐
                                                              ├── fusion blocks ── memory [N + Lc, d]
    context int32 [Lc] ────── token embed ──── text blocks ───┘
    action tokens shifted right (<bos> first) ── token embed ── decoder blocks (causal
        self-attention, cross-attention to the memory) ── logits [La, V]
    critic memory (the policy's, or the critics' own encoder) ── mean pool ── MLP ── V(s) logit
                                                                          └─ MLP ── V_traj logit

The decoder shares the token embedding with the context encoder, because the context holds the
last actions in the same action tokens the decoder emits. Both critics are sigmoid heads (their
outputs are logits). With ``spec.share_critic_encoder`` False the critics read a second encoder
of their own, so critic gradients never move the policy's features. Pure functions over
``nnx.split`` state (scoring, sampling) are in :mod:`distrl_jax.models.scoring`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from distrl_jax.models.action_codec import VOCAB_SIZE
from distrl_jax.models.spec import ModelSpec

_INIT = nnx.initializers.normal(0.02)

# Tensor parallelism over the mesh's "model" axis as "REGEX:AXES" rules for
# ``distrl_jax.learner.sharding.param_specs`` (paths like ``encoder/text_blocks/0/attn/query/
# kernel/value``): in-projections split their output features, out-projections their input
# features (Megatron style: one all-reduce per attention/MLP); everything else replicates.
SHARDING_RULES: tuple[str, ...] = (
    r".*(attn|mlp)/(query|key_value|up)/kernel(/value)?:_,model",
    r".*(attn|mlp)/(query|key_value|up)/bias(/value)?:model",
    r".*(attn|mlp)/(out|down)/kernel(/value)?:model,_",
)


def _dtypes(spec: ModelSpec) -> dict[str, jnp.dtype]:
    return {"dtype": jnp.dtype(spec.dtype), "param_dtype": jnp.dtype(spec.param_dtype)}


class Attention(nnx.Module):
    """Multi-head attention of queries ``x`` over keys/values projected from ``source``."""

    def __init__(self, spec: ModelSpec, *, rngs: nnx.Rngs):
        d, kw = spec.width, _dtypes(spec)
        self.heads = spec.heads
        self.query = nnx.Linear(d, d, rngs=rngs, **kw)
        # No bias: softmax ignores a shift shared by all keys (a key bias gets zero gradient,
        # and Adam would make it drift on rounding noise), and since attention weights sum to
        # one a value bias is a constant the output projection's bias already provides.
        self.key_value = nnx.Linear(d, 2 * d, use_bias=False, rngs=rngs, **kw)
        self.out = nnx.Linear(d, d, rngs=rngs, **kw)

    def project_kv(self, source: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Keys and values [B, S, heads, d/heads] (precomputed once for a decoding loop)."""
        b, s, d = source.shape
        kv = self.key_value(source).reshape(b, s, 2, self.heads, d // self.heads)
        return kv[:, :, 0], kv[:, :, 1]

    def attend(self, x: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array) -> jax.Array:
        """Attend with projected keys/values; ``mask`` bool broadcastable to [B, h, L, S]."""
        b, length, d = x.shape
        q = self.query(x).reshape(b, length, self.heads, d // self.heads)
        y = jax.nn.dot_product_attention(q, k.astype(q.dtype), v.astype(q.dtype), mask=mask)
        return self.out(y.reshape(b, length, d))

    def __call__(self, x: jax.Array, source: jax.Array, mask: jax.Array) -> jax.Array:
        """Attention of ``x`` over ``source``."""
        k, v = self.project_kv(source)
        return self.attend(x, k, v, mask)


class MLP(nnx.Module):
    """Two-layer GELU MLP of hidden size ``mlp_ratio * width``."""

    def __init__(self, spec: ModelSpec, *, rngs: nnx.Rngs):
        d, kw = spec.width, _dtypes(spec)
        self.up = nnx.Linear(d, spec.mlp_ratio * d, rngs=rngs, **kw)
        self.down = nnx.Linear(spec.mlp_ratio * d, d, rngs=rngs, **kw)

    def __call__(self, x: jax.Array) -> jax.Array:
        """Apply the MLP."""
        return self.down(jax.nn.gelu(self.up(x)))


def _norm(spec: ModelSpec, rngs: nnx.Rngs) -> nnx.LayerNorm:
    return nnx.LayerNorm(spec.width, rngs=rngs, **_dtypes(spec))


class EncoderBlock(nnx.Module):
    """Pre-norm transformer block with bidirectional self-attention over a key mask."""

    def __init__(self, spec: ModelSpec, *, rngs: nnx.Rngs):
        self.norm1, self.attn = _norm(spec, rngs), Attention(spec, rngs=rngs)
        self.norm2, self.mlp = _norm(spec, rngs), MLP(spec, rngs=rngs)

    def __call__(self, x: jax.Array, key_mask: jax.Array) -> jax.Array:
        """``key_mask`` bool [B, S]: which tokens may be attended to."""
        h = self.norm1(x)
        x = x + self.attn(h, h, key_mask[:, None, None, :])
        return x + self.mlp(self.norm2(x))


class DecoderBlock(nnx.Module):
    """Pre-norm block: causal self-attention, cross-attention to the memory, MLP."""

    def __init__(self, spec: ModelSpec, *, rngs: nnx.Rngs):
        self.norm1, self.self_attn = _norm(spec, rngs), Attention(spec, rngs=rngs)
        self.norm2, self.cross_attn = _norm(spec, rngs), Attention(spec, rngs=rngs)
        self.norm3, self.mlp = _norm(spec, rngs), MLP(spec, rngs=rngs)

    def __call__(self, x: jax.Array, cross_kv: tuple, mem_mask: jax.Array) -> jax.Array:
        """Teacher-forced: ``x`` [B, La, d]; ``cross_kv`` from ``cross_attn.project_kv``."""
        length = x.shape[1]
        causal = jnp.tril(jnp.ones((length, length), bool))[None, None]
        h = self.norm1(x)
        x = x + self.self_attn(h, h, causal)
        x = x + self.cross_attn.attend(self.norm2(x), *cross_kv, mem_mask[:, None, None, :])
        return x + self.mlp(self.norm3(x))

    def step(
        self, x: jax.Array, pos: jax.Array, cache: tuple, cross_kv: tuple, mem_mask: jax.Array
    ) -> tuple[jax.Array, tuple]:
        """One position: ``x`` [B, 1, d] at ``pos``; writes its key/value into ``cache``."""
        h = self.norm1(x)
        k_new, v_new = self.self_attn.project_kv(h)
        k = jax.lax.dynamic_update_slice_in_dim(cache[0], k_new.astype(cache[0].dtype), pos, 1)
        v = jax.lax.dynamic_update_slice_in_dim(cache[1], v_new.astype(cache[1].dtype), pos, 1)
        seen = (jnp.arange(k.shape[1]) <= pos)[None, None, None, :]
        x = x + self.self_attn.attend(h, k, v, seen)
        x = x + self.cross_attn.attend(self.norm2(x), *cross_kv, mem_mask[:, None, None, :])
        return x + self.mlp(self.norm3(x)), (k, v)


class ObservationEncoder(nnx.Module):
    """Screen + context tokens -> fused memory [B, N + Lc, d] and its key mask [B, N + Lc]."""

    def __init__(self, spec: ModelSpec, *, rngs: nnx.Rngs):
        d, p, kw = spec.width, spec.patch_size, _dtypes(spec)
        self.spec = spec
        self.patch_embed = nnx.Conv(3, d, (p, p), strides=(p, p), padding="VALID", rngs=rngs, **kw)
        self.image_pos = nnx.Param(_INIT(rngs.params(), (spec.num_patches, d), kw["param_dtype"]))
        self.token_embed = nnx.Embed(VOCAB_SIZE, d, embedding_init=_INIT, rngs=rngs, **kw)
        self.text_pos = nnx.Param(_INIT(rngs.params(), (spec.context_len, d), kw["param_dtype"]))
        self.image_blocks = nnx.List(
            [EncoderBlock(spec, rngs=rngs) for _ in range(spec.image_depth)]
        )
        self.text_blocks = nnx.List([EncoderBlock(spec, rngs=rngs) for _ in range(spec.text_depth)])
        self.fusion_blocks = nnx.List(
            [EncoderBlock(spec, rngs=rngs) for _ in range(spec.fusion_depth)]
        )
        self.norm = _norm(spec, rngs)

    def __call__(self, screens: jax.Array, context: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``screens`` uint8 [B, H, W, 3], ``context`` int32 [B, Lc]."""
        want = (*self.spec.image_size, 3)
        if tuple(screens.shape[1:]) != want or tuple(context.shape[1:]) != (self.spec.context_len,):
            raise ValueError(
                f"screens {screens.shape} / context {context.shape} do not match the spec: "
                f"expected [B, {want[0]}, {want[1]}, 3] uint8 and [B, {self.spec.context_len}] int32"
            )
        dtype = jnp.dtype(self.spec.dtype)
        # Normalise inside the model so actors ship raw uint8 screens.
        pixels = screens.astype(dtype) * (2.0 / 255.0) - 1.0
        img = self.patch_embed(pixels)
        img = img.reshape(img.shape[0], -1, img.shape[-1]) + self.image_pos[...].astype(dtype)
        img_mask = jnp.ones(img.shape[:2], bool)
        for block in self.image_blocks:
            img = block(img, img_mask)
        txt_mask = context != 0  # pad id 0
        txt = self.token_embed(context) + self.text_pos[...].astype(dtype)
        for block in self.text_blocks:
            txt = block(txt, txt_mask)
        memory = jnp.concatenate([img, txt.astype(img.dtype)], axis=1)
        mask = jnp.concatenate([img_mask, txt_mask], axis=1)
        for block in self.fusion_blocks:
            memory = block(memory, mask)
        return self.norm(memory), mask


class CopyHead(nnx.Module):
    """A pointer-generator output (See et al. 2017, "Get To The Point"): the next token is drawn
    from the vocabulary or copied from a context position, mixed by a learned gate.

    TYPE actions mostly repeat a name from the task ("Play the new <artist> video"), and the
    validation split holds out those names: a vocabulary softmax alone memorises training names
    instead of copying. The pointer's keys see each context token's *predecessor* too, so "the
    position after the byte I just wrote" is a plain content match (an explicit induction head).
    """

    def __init__(self, spec: ModelSpec, *, rngs: nnx.Rngs):
        d, kw = spec.width, {"dtype": jnp.float32, "param_dtype": jnp.dtype(spec.param_dtype)}
        self.query = nnx.Linear(d, d, rngs=rngs, **kw)
        self.key = nnx.Linear(d, d, rngs=rngs, **kw)
        self.key_prev = nnx.Linear(d, d, use_bias=False, rngs=rngs, **kw)
        self.gate = nnx.Linear(d, 1, rngs=rngs, **kw)

    def source(
        self, text_memory: jax.Array, prev_embedded: jax.Array, context: jax.Array
    ) -> tuple[jax.Array, jax.Array]:
        """Pointer keys [B, Lc, d] and the one-hot tokens [B, Lc, V] of the context (pad: none)."""
        keys = self.key(text_memory.astype(jnp.float32)) + self.key_prev(
            prev_embedded.astype(jnp.float32)
        )
        onehot = jax.nn.one_hot(context, VOCAB_SIZE, dtype=jnp.float32)
        return keys, onehot * (context != 0)[..., None]

    def __call__(self, h: jax.Array, vocab_logits: jax.Array, source: tuple) -> jax.Array:
        """Log-probabilities float32 [B, L, V] of the mixture, from decoder states ``h``."""
        keys, onehot = source
        h = h.astype(jnp.float32)
        scores = jnp.einsum("bld,bsd->bls", self.query(h), keys) / jnp.sqrt(keys.shape[-1])
        has_token = jnp.any(onehot > 0, axis=-1)[:, None, :]
        pointer = jax.nn.softmax(jnp.where(has_token, scores, -1e9), axis=-1)
        copy = jnp.einsum("bls,bsv->blv", pointer, onehot)
        gate = jax.nn.sigmoid(self.gate(h))
        mix = (1.0 - gate) * jax.nn.softmax(vocab_logits, axis=-1) + gate * copy
        return jnp.log(mix + 1e-9)


class ActionDecoder(nnx.Module):
    """Autoregressive action decoder; embeddings come from the encoder's ``token_embed``."""

    def __init__(self, spec: ModelSpec, *, rngs: nnx.Rngs):
        d, kw = spec.width, _dtypes(spec)
        self.pos = nnx.Param(_INIT(rngs.params(), (spec.action_len, d), kw["param_dtype"]))
        self.blocks = nnx.List([DecoderBlock(spec, rngs=rngs) for _ in range(spec.decoder_depth)])
        self.norm = _norm(spec, rngs)
        # Logits in float32 whatever the compute dtype: log-probs feed importance ratios.
        self.head = nnx.Linear(
            d, VOCAB_SIZE, dtype=jnp.float32, param_dtype=kw["param_dtype"], rngs=rngs
        )
        self.copy = CopyHead(spec, rngs=rngs) if spec.copy_head else None

    def _out(self, h: jax.Array, copy_source: tuple | None) -> jax.Array:
        h = self.norm(h)
        logits = self.head(h)
        if self.copy is None or copy_source is None:
            return logits
        return self.copy(h, logits, copy_source)

    def cross_kv(self, memory: jax.Array) -> list[tuple[jax.Array, jax.Array]]:
        """Per-block cross-attention keys/values of the memory."""
        return [block.cross_attn.project_kv(memory) for block in self.blocks]

    def __call__(
        self, x: jax.Array, memory: jax.Array, mem_mask: jax.Array, copy_source: tuple | None = None
    ) -> jax.Array:
        """Teacher-forced logits float32 [B, La, V] from embedded inputs ``x`` [B, La, d]
        (log-probabilities when the copy head mixes in ``copy_source``)."""
        x = x + self.pos[...].astype(x.dtype)[None, : x.shape[1]]
        for block, kv in zip(self.blocks, self.cross_kv(memory), strict=True):
            x = block(x, kv, mem_mask)
        return self._out(x, copy_source)

    def init_cache(self, batch: int, dtype: jnp.dtype) -> list[tuple[jax.Array, jax.Array]]:
        """Zeroed self-attention key/value caches, one (k, v) [B, La, h, d/h] per block."""
        spec_len, d = self.pos.shape
        heads = self.blocks[0].self_attn.heads
        shape = (batch, spec_len, heads, d // heads)
        return [(jnp.zeros(shape, dtype), jnp.zeros(shape, dtype)) for _ in self.blocks]

    def step(
        self,
        x: jax.Array,
        pos: jax.Array,
        cache: list,
        cross_kv: list,
        mem_mask: jax.Array,
        copy_source: tuple | None = None,
    ):
        """Logits float32 [B, V] for position ``pos`` from its embedded input ``x`` [B, d]."""
        h = (x + self.pos[...].astype(x.dtype)[pos])[:, None, :]
        new_cache = []
        for block, c, kv in zip(self.blocks, cache, cross_kv, strict=True):
            h, c = block.step(h, pos, c, kv, mem_mask)
            new_cache.append(c)
        return self._out(h, copy_source)[:, 0], new_cache


class ValueHead(nnx.Module):
    """Masked mean-pool of the memory, then an MLP to one logit (sigmoid = success probability)."""

    def __init__(self, spec: ModelSpec, *, rngs: nnx.Rngs):
        kw = {"dtype": jnp.float32, "param_dtype": jnp.dtype(spec.param_dtype)}
        self.hidden = nnx.Linear(spec.width, spec.critic_hidden, rngs=rngs, **kw)
        self.out = nnx.Linear(spec.critic_hidden, 1, rngs=rngs, **kw)

    def __call__(self, memory: jax.Array, mask: jax.Array) -> jax.Array:
        """Logits float32 [B]."""
        w = mask.astype(jnp.float32)[..., None]
        pooled = (memory.astype(jnp.float32) * w).sum(1) / jnp.maximum(w.sum(1), 1.0)
        return self.out(jax.nn.gelu(self.hidden(pooled)))[:, 0]


class PolicyModel(nnx.Module):
    """The whole model: encoder(s), action decoder, step critic V(s), trajectory critic V_traj."""

    def __init__(self, spec: ModelSpec, *, rngs: nnx.Rngs):
        self.spec = spec.validate()
        self.encoder = ObservationEncoder(spec, rngs=rngs)
        self.critic_encoder = (
            None if spec.share_critic_encoder else ObservationEncoder(spec, rngs=rngs)
        )
        self.decoder = ActionDecoder(spec, rngs=rngs)
        self.value_head = ValueHead(spec, rngs=rngs)
        self.traj_value_head = ValueHead(spec, rngs=rngs)

    def encode(self, screens: jax.Array, context: jax.Array) -> tuple[jax.Array, jax.Array]:
        """The policy's memory and mask."""
        return self.encoder(screens, context)

    def critic_encode(
        self, screens: jax.Array, context: jax.Array, policy_memory: tuple | None = None
    ) -> tuple[jax.Array, jax.Array]:
        """The critics' memory: the policy's (reused if given) or their own encoder's."""
        if self.critic_encoder is not None:
            return self.critic_encoder(screens, context)
        return policy_memory if policy_memory is not None else self.encoder(screens, context)

    def embed_tokens(self, tokens: jax.Array) -> jax.Array:
        """Embeddings of action/context tokens (shared table)."""
        return self.encoder.token_embed(tokens)

    def copy_source(self, memory: jax.Array, context: jax.Array) -> tuple | None:
        """What the copy head points into: the context part of the memory (None without one)."""
        if self.decoder.copy is None:
            return None
        prev = jnp.concatenate([jnp.zeros_like(context[:, :1]), context[:, :-1]], axis=1)
        text = memory[:, self.spec.num_patches :]
        return self.decoder.copy.source(text, self.embed_tokens(prev), context)

    def action_logits(
        self, memory: jax.Array, mem_mask: jax.Array, actions: jax.Array, context: jax.Array
    ) -> jax.Array:
        """Teacher-forced logits float32 [B, La, V]: position i predicts ``actions[:, i]``."""
        bos = jnp.ones((actions.shape[0], 1), actions.dtype)  # BOS_ID == 1
        inputs = jnp.concatenate([bos, actions[:, :-1]], axis=1)
        source = self.copy_source(memory, context)
        return self.decoder(self.embed_tokens(inputs), memory, mem_mask, source)

    def value_logits(self, screens: jax.Array, context: jax.Array) -> jax.Array:
        """Step critic V(s) logits [B]."""
        return self.value_head(*self.critic_encode(screens, context))

    def traj_value_logits(self, first_screens: jax.Array, task_context: jax.Array) -> jax.Array:
        """Trajectory critic V_traj(task, s_0) logits [B] (context of s_0: task, no history)."""
        return self.traj_value_head(*self.critic_encode(first_screens, task_context))


def init_model(spec: ModelSpec, seed: int = 0) -> PolicyModel:
    """A freshly initialised model."""
    return PolicyModel(spec, rngs=nnx.Rngs(params=seed))


def abstract_model(spec: ModelSpec) -> PolicyModel:
    """The model's structure with ShapeDtypeStruct leaves (no allocation): restore targets."""
    return nnx.eval_shape(lambda: init_model(spec))


def param_count(model: PolicyModel) -> int:
    """Number of parameters."""
    return sum(int(x.size) for x in jax.tree.leaves(nnx.state(model, nnx.Param)))
