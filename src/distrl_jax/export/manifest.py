"""``manifest.json``: everything an on-device consumer needs besides the model file.

Input/output names, shapes and dtypes; the screen preprocessing; the context-encoding and
action-decoding recipes with the vocabulary layout as numbers (so a consumer in any language
needs no Python from this project); where the weights came from; and the parity and
quantization errors measured at export time.
"""

from __future__ import annotations

import importlib.metadata
import json
import pathlib
import time
from typing import Any

from distrl_jax.devices.actions import TAP_DISTANCE
from distrl_jax.export.program import __doc__ as PROGRAM_DOC
from distrl_jax.models import action_codec as codec
from distrl_jax.models.spec import ModelSpec

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1

CONTEXT_RECIPE = (
    "context int32[Lc] = <bos> task <sep> history <pad>...: task = the task text's UTF-8 bytes "
    "through tokenizer.json (one token per byte, id = byte_offset + byte; special-token names in "
    "the text are NOT special: encode_special_tokens=True); history = the last history_k actions "
    "(oldest first), each in its action-token form without padding (as the decoder emits them, "
    "see action_decoding), newest kept first within history_budget tokens (when even the newest "
    "does not fit, its first history_budget-1 tokens + <eos>); the task is cut at its end to "
    "Lc - 2 - len(history) tokens."
)
ACTION_RECIPE = (
    "tokens[La] = verb args <eos> <pad>...: <tap> <y_i> <x_j> -> tap at ((i+0.5)/bins, "
    "(j+0.5)/bins) in normalised (y, x); <swipe> <y_i> <x_j> <y_k> <x_l> -> swipe from (i, j) to "
    "(k, l) cell centres; <type> bytes -> type the UTF-8 text of (id - byte_offset); <back>, "
    "<home>, <enter>, <complete>, <impossible> take no arguments. Encoding a point: bin = "
    "min(bins-1, floor(v*bins)); a swipe whose quantised ends are within tap_distance moves its "
    "lift cell one bin along the main axis (or its touch cell back, at the edge) until it is not."
)


def vocabulary() -> dict[str, Any]:
    """The token-id layout as plain numbers."""
    return {
        "size": codec.VOCAB_SIZE,
        "pad_id": codec.PAD_ID,
        "bos_id": codec.BOS_ID,
        "eos_id": codec.EOS_ID,
        "sep_id": codec.SEP_ID,
        "invalid_id": codec.INVALID_ID,
        "byte_offset": codec.BYTE_OFFSET,
        "verbs": {name: codec.VERB_OFFSET + i for i, name in enumerate(codec.VERBS)},
        "y_offset": codec.Y_OFFSET,
        "x_offset": codec.X_OFFSET,
    }


def _versions() -> dict[str, str]:
    out = {}
    for name in ("jax", "flax", "jax2onnx", "onnx", "onnxruntime", "tensorflow"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def parity_interpreter(fmt: str) -> str:
    """What runs the exported file in the parity check (and the package version): for TFLite
    the interpreter :class:`~distrl_jax.export.other_formats.TfliteRunner` picks, ai-edge-litert
    or, where it is absent, TensorFlow's fallback."""
    from distrl_jax.export import other_formats

    if fmt == "onnx":
        return f"onnxruntime {_version('onnxruntime')} InferenceSession (CPUExecutionProvider)"
    if fmt == "stablehlo":
        return other_formats.StableHloRunner.interpreter_name
    if fmt == "tflite":
        return other_formats.tflite_interpreter()[1]
    raise ValueError(f"no parity runner for format {fmt!r}")


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "(version unknown)"


def build_manifest(
    *,
    spec: ModelSpec,
    spec_data: dict[str, Any],
    fmt: str,
    quantize: str,
    batch: int,
    model_file: str,
    model_bytes: int,
    tokenizer_files: list[str],
    checkpoint: str,
    meta: dict[str, Any],
    parity: dict[str, Any],
) -> dict[str, Any]:
    """The manifest as a JSON-able dict; ``parity`` gains ``interpreter`` (what ran the export
    in the parity check, :func:`parity_interpreter`) unless it names one already."""
    h, w = spec.image_size
    parity = {**parity, "interpreter": parity.get("interpreter") or parity_interpreter(fmt)}
    la, vocab = spec.action_len, codec.VOCAB_SIZE
    return {
        "manifest_version": MANIFEST_VERSION,
        "format": fmt,
        "quantization": quantize,
        "model_file": model_file,
        "model_bytes": model_bytes,
        "program": "greedy_decoder",
        "program_doc": " ".join(PROGRAM_DOC.split()),
        "batch": batch,
        "inputs": [
            {"name": "screens", "shape": [batch, h, w, 3], "dtype": "uint8"},
            {"name": "context", "shape": [batch, spec.context_len], "dtype": "int32"},
        ],
        "outputs": [
            {"name": "tokens", "shape": [batch, la], "dtype": "int32"},
            {"name": "logp", "shape": [batch], "dtype": "float32"},
            {"name": "step_logits", "shape": [batch, la, vocab], "dtype": "float32"},
        ],
        "preprocessing": {
            "screen_size": [h, w],
            "channels": "RGB",
            "dtype": "uint8",
            "normalisation": "inside the model (pixel * 2/255 - 1): feed raw uint8 RGB pixels",
            "resize": f"render or resize the screen to exactly {h}x{w} (height x width)",
        },
        "context_encoding": {
            "recipe": CONTEXT_RECIPE,
            "context_len": spec.context_len,
            "history_k": spec.history_k,
            "history_budget": spec.history_budget,
        },
        "action_decoding": {
            "recipe": ACTION_RECIPE,
            "action_len": la,
            "location_bins": spec.location_bins,
            "tap_distance": TAP_DISTANCE,
        },
        "vocabulary": vocabulary(),
        "tokenizer_files": tokenizer_files,
        "source": {
            "checkpoint": checkpoint,
            "step": meta.get("step"),
            "policy_version": int(meta.get("policy_version", meta.get("step", 0)) or 0),
            "config": meta.get("config"),
            "kind": meta.get("kind"),
            "model_spec": spec_data,
        },
        "parity": parity,
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "versions": _versions(),
    }


def write_manifest(out: pathlib.Path, manifest: dict[str, Any]) -> pathlib.Path:
    """Write ``out/manifest.json``."""
    path = out / MANIFEST_NAME
    path.write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")
    return path
