"""The size and shape of the policy + critics, as one frozen dataclass (DESIGN §4).

Every field carries its help text in ``metadata["help"]`` (the same convention as
``distrl_jax.config``, so ``--model.FIELD=VALUE`` overrides and ``--help`` work on it). Four
presets: ``tiny`` trains on two CPU cores in minutes and is what tests and the smoke config use;
``small`` and ``base`` are for accelerators; ``student`` is the distilled actor policy.
:meth:`ModelSpec.validate` names the field, the bad value and what is allowed.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from distrl_jax.config_sections import SAFE_NAME_HELP, is_safe_name

# The tokenizer ships location tokens for this many bins per axis; a spec may use fewer.
MAX_LOCATION_BINS = 64

_DTYPES = ("float32", "bfloat16", "float16")


def _field(default: Any, help: str) -> Any:
    return dataclasses.field(default=default, metadata={"help": help})


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """Sizes of the policy (image + text encoders, fusion, action decoder) and the critics."""

    name: str = _field("tiny", "preset this spec started from (for logs and run folders)")
    # Screens arrive as uint8 [H, W, 3] at exactly this size; devices render/resize to it.
    image_size: tuple[int, int] = _field((128, 64), "screen (height, width) in pixels")
    # A patchifying conv (kernel = stride = patch) is the image stem: cheap on CPU, ViT-like.
    patch_size: int = _field(16, "image patch side in pixels (must divide both image sides)")
    width: int = _field(64, "model width (embedding size of every token)")
    heads: int = _field(4, "attention heads (must divide width)")
    mlp_ratio: int = _field(2, "MLP hidden size = mlp_ratio * width")
    image_depth: int = _field(1, "transformer blocks over the image patches")
    text_depth: int = _field(1, "transformer blocks over the context tokens")
    fusion_depth: int = _field(1, "joint blocks over image patches + context tokens")
    decoder_depth: int = _field(2, "action-decoder blocks (causal self-attn + cross-attn)")
    context_len: int = _field(96, "Lc: context tokens (task text, separator, last k actions)")
    # A verb, 4 location tokens and eos need 6; TYPE text longer than La-2 bytes is truncated.
    # 56, not 32: 12 of the 71 held-out General tasks search for 31-35 characters ("flights
    # from Sydney to Buenos aires") and 50 of the 474 training tasks for up to 51, which a
    # 30-byte TYPE can never type (measured: 0% on them). 56 types every query of both suites.
    action_len: int = _field(56, "La: action tokens (verb, locations or text bytes, eos)")
    location_bins: int = _field(64, "quantisation bins per screen axis for touch/lift points")
    history_k: int = _field(3, "the last k actions written into the context")
    # At most this many context tokens go to the history; the task text gets the rest.
    history_budget: int = _field(32, "context tokens reserved at most for the action history")
    copy_head: bool = _field(
        True, "pointer-generator output that can copy task tokens (names) into TYPE actions"
    )
    share_critic_encoder: bool = _field(
        True, "critics read the policy's encoder (else they get their own)"
    )
    critic_hidden: int = _field(64, "hidden size of the value heads' MLPs")
    dtype: str = _field("float32", "compute dtype: float32 | bfloat16 | float16")
    param_dtype: str = _field("float32", "parameter dtype: float32 | bfloat16 | float16")

    @property
    def num_patches(self) -> int:
        """Image tokens per screen."""
        return (self.image_size[0] // self.patch_size) * (self.image_size[1] // self.patch_size)

    @property
    def memory_len(self) -> int:
        """Tokens the action decoder cross-attends to (image patches + context)."""
        return self.num_patches + self.context_len

    def validate(self) -> ModelSpec:
        """Raise ValueError naming the field when a value is out of range; returns self."""

        def need(ok: bool, name: str, allowed: str) -> None:
            if not ok:
                value = getattr(self, name)
                raise ValueError(f"model.{name}={value!r} is not allowed: {allowed}")

        need(is_safe_name(self.name), "name", SAFE_NAME_HELP)  # names the warm-start folder
        need(
            isinstance(self.image_size, tuple)
            and len(self.image_size) == 2
            and all(isinstance(v, int) and v >= 1 for v in self.image_size),
            "image_size",
            "two positive integers (height, width)",
        )
        need(self.patch_size >= 1, "patch_size", "an integer >= 1")
        need(
            self.image_size[0] % self.patch_size == 0 and self.image_size[1] % self.patch_size == 0,
            "patch_size",
            f"a divisor of both image sides {self.image_size}",
        )
        need(self.width >= 8, "width", "an integer >= 8")
        need(self.heads >= 1 and self.width % self.heads == 0, "heads", "a divisor of width")
        need(self.mlp_ratio >= 1, "mlp_ratio", "an integer >= 1")
        for depth in ("image_depth", "text_depth", "fusion_depth"):
            need(getattr(self, depth) >= 0, depth, "an integer >= 0")
        need(self.decoder_depth >= 1, "decoder_depth", "an integer >= 1")
        need(self.action_len >= 6, "action_len", "an integer >= 6 (a swipe needs 6 tokens)")
        need(
            2 <= self.location_bins <= MAX_LOCATION_BINS,
            "location_bins",
            f"an integer in [2, {MAX_LOCATION_BINS}] (the tokenizer's location tokens)",
        )
        need(self.history_k >= 0, "history_k", "an integer >= 0")
        need(
            0 <= self.history_budget <= self.context_len - 3,
            "history_budget",
            f"an integer in [0, context_len - 3 = {self.context_len - 3}]",
        )
        # bos, >= 1 task byte, sep, and the history budget must fit.
        need(self.context_len >= 4, "context_len", "an integer >= 4")
        need(self.critic_hidden >= 1, "critic_hidden", "an integer >= 1")
        need(self.dtype in _DTYPES, "dtype", " | ".join(_DTYPES))
        need(self.param_dtype in _DTYPES, "param_dtype", " | ".join(_DTYPES))
        return self


def tiny() -> ModelSpec:
    """About 0.32M parameters; trains on two CPU cores in minutes (tests, smoke runs)."""
    return ModelSpec()


def small() -> ModelSpec:
    """About 9.4M parameters; a single accelerator."""
    return ModelSpec(
        name="small",
        patch_size=8,
        width=256,
        heads=8,
        mlp_ratio=4,
        image_depth=2,
        text_depth=2,
        fusion_depth=2,
        decoder_depth=4,
        critic_hidden=256,
        dtype="bfloat16",
    )


def base() -> ModelSpec:
    """About 65M parameters at a 256x128 screen; for a mesh of accelerators."""
    return ModelSpec(
        name="base",
        image_size=(256, 128),
        patch_size=16,
        width=512,
        heads=8,
        mlp_ratio=4,
        image_depth=4,
        text_depth=4,
        fusion_depth=4,
        decoder_depth=6,
        context_len=128,
        history_budget=48,
        critic_hidden=512,
        dtype="bfloat16",
    )


def student() -> ModelSpec:
    """About 82k parameters: the distilled actor policy (DESIGN §4), about 2x ``tiny``'s
    actions/s on one CPU core (``benchmarks/distill_speed.py``).

    Same image size, patches, context, action length, location bins and tokenizer as ``tiny``,
    so it reads the replayed observations and scores the action tokens of a ``tiny`` teacher,
    and taps are localised on the same 16-pixel grid. The encoder is one joint block over the
    patches and the context, the decoder one block, at half the width: at batch 1 the sampler's
    cost is mostly per-op overhead in the decoding loop, so depth matters more than width. The
    copy head stays (TYPE actions copy names from the task).
    """
    return ModelSpec(
        name="student",
        width=32,
        heads=2,
        image_depth=0,
        text_depth=0,
        fusion_depth=1,
        decoder_depth=1,
        critic_hidden=32,
    )


PRESETS = {"tiny": tiny, "small": small, "base": base, "student": student}


def preset(name: str) -> ModelSpec:
    """The named preset (tiny | small | base | student), validated."""
    if name not in PRESETS:
        raise ValueError(f"model preset {name!r} is unknown; known: {', '.join(PRESETS)}")
    return PRESETS[name]().validate()
