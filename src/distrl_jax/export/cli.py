"""``python -m distrl_jax.export --checkpoint PATH --format onnx|stablehlo|tflite --out DIR``.

Loads the policy from a checkpoint (its meta holds the model spec), exports the greedy decoder
(:mod:`distrl_jax.export.program`), runs the exported file on ``--parity-samples`` seeded random
screens next to the float32 JAX program, and writes the model file, the tokenizer files and
``manifest.json`` with the measured errors. ``--quantize fp16`` stores float16 weights (all
formats); ``int8`` is onnxruntime dynamic quantization (ONNX) or dynamic-range quantization
(TFLite). The accuracy change of a quantized export is measured and written to the manifest,
never hidden. Exit status: 0 exported; 1 an unquantized export failed its parity tolerance;
2 bad input or a missing converter (the message says what to do).
"""

from __future__ import annotations

import argparse
import pathlib
import shutil
import sys
import tempfile
from collections.abc import Sequence
from typing import Any

import numpy as np

FORMATS = {"onnx": "policy.onnx", "stablehlo": "policy.stablehlo", "tflite": "policy.tflite"}
# An unquantized float32 export must reproduce the JAX logits to this and every greedy action.
LOGIT_TOLERANCE = 1e-3


class ExportError(ValueError):
    """Bad export arguments (reported with exit status 2)."""


def _check_args(fmt: str, quantize: str, batch: int, samples: int) -> None:
    from distrl_jax.export.program import QUANTIZATIONS

    if fmt not in FORMATS:
        raise ExportError(f"--format {fmt!r} is unknown; use one of {', '.join(FORMATS)}")
    if quantize not in QUANTIZATIONS:
        raise ExportError(f"--quantize {quantize!r} is unknown; use {', '.join(QUANTIZATIONS)}")
    if quantize == "int8" and fmt == "stablehlo":
        raise ExportError("--quantize int8 is for onnx and tflite; StableHLO supports none | fp16")
    if batch < 1 or samples < batch or samples % batch:
        raise ExportError(
            f"--batch {batch} must be >= 1 and --parity-samples {samples} a positive multiple of it"
        )


def _convert(fmt: str, program, shapes, path: pathlib.Path, quantize: str) -> dict[str, Any]:
    from distrl_jax.export import onnx_format, other_formats

    if fmt == "onnx":
        if quantize != "int8":
            return {"bool_where_rewritten": onnx_format.export_onnx(program, *shapes, path)}
        with tempfile.TemporaryDirectory() as tmp:
            fp32 = pathlib.Path(tmp) / "fp32.onnx"
            rewritten = onnx_format.export_onnx(program, *shapes, fp32)
            onnx_format.quantize_int8(fp32, path)
        return {"bool_where_rewritten": rewritten, "int8": "onnxruntime quantize_dynamic QInt8"}
    if fmt == "stablehlo":
        other_formats.export_stablehlo(program, *shapes, path)
        return {}
    other_formats.export_tflite(program, *shapes, path, quantize)
    return {"int8": "TFLite dynamic-range"} if quantize == "int8" else {}


def _runner(fmt: str, path: pathlib.Path):
    from distrl_jax.export import onnx_format, other_formats

    if fmt == "onnx":
        return onnx_format.OnnxRunner(path)
    if fmt == "stablehlo":
        return other_formats.StableHloRunner(path)
    return other_formats.TfliteRunner(path)


def export(
    checkpoint: str | pathlib.Path,
    fmt: str,
    out: str | pathlib.Path,
    *,
    quantize: str = "none",
    batch: int = 1,
    parity_samples: int = 100,
    seed: int = 0,
) -> dict[str, Any]:
    """Export, measure parity, write the folder; returns the manifest."""
    _check_args(fmt, quantize, batch, parity_samples)
    if fmt == "tflite":
        from distrl_jax.export.other_formats import _tensorflow

        _tensorflow()  # fail before any work when TensorFlow is absent
    import jax

    from distrl_jax.checkpoint.policy_loader import load_policy_state, spec_meta
    from distrl_jax.export import manifest as M
    from distrl_jax.export import parity
    from distrl_jax.export.program import greedy_program, jax_greedy_policy, sample_inputs
    from distrl_jax.models.tokenizer import TOKENIZER_DIR

    spec, state, meta = load_policy_state(checkpoint)
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    h, w = spec.image_size
    shapes = ((batch, h, w, 3), (batch, spec.context_len))
    weights = "fp16" if quantize == "fp16" else "none"
    program = greedy_program(spec, state, weights)
    model_path = out / FORMATS[fmt]
    notes = _convert(fmt, program, shapes, model_path, quantize)

    screens, contexts = sample_inputs(spec, parity_samples, seed)
    reference = tuple(
        np.asarray(x) for x in jax.jit(greedy_program(spec, state))(screens, contexts)
    )
    policy_tokens, policy_logp = jax_greedy_policy(spec, state)(screens, contexts)
    run = _runner(fmt, model_path)
    got = parity.run_batched(run, screens, contexts, batch)
    report: dict[str, Any] = {
        "reference": "float32 JAX greedy program on the same inputs",
        "inputs": f"{parity_samples} random uint8 screens (numpy seed {seed}) + encoded contexts",
        "logit_tolerance": LOGIT_TOLERANCE if quantize == "none" else None,
        **parity.compare(reference, got),
        # The JAX program itself against the training stack's sampler: the export is the policy.
        "jax_program_vs_policy_action_agreement": float(
            np.mean(np.all(reference[0] == policy_tokens, axis=1))
        ),
        "jax_program_vs_policy_max_logp_error": float(np.abs(reference[1] - policy_logp).max()),
        "latency_ms_per_call": parity.latency_ms(run, screens[:batch], contexts[:batch], 20),
        **notes,
    }
    if weights == "fp16":  # conversion error alone, against JAX with the same float16 weights
        same = tuple(np.asarray(x) for x in jax.jit(program)(screens, contexts))
        report["conversion_vs_jax_fp16_weights"] = parity.compare(same, got)
    report["passed"] = quantize != "none" or (
        report["max_abs_logit_error"] <= LOGIT_TOLERANCE
        and report["greedy_action_agreement"] == 1.0
    )
    copied = []
    for f in sorted(TOKENIZER_DIR.iterdir()):
        if f.is_file():
            shutil.copy2(f, out / f.name)
            copied.append(f.name)
    manifest = M.build_manifest(
        spec=spec,
        spec_data=spec_meta(spec),
        fmt=fmt,
        quantize=quantize,
        batch=batch,
        model_file=model_path.name,
        model_bytes=model_path.stat().st_size,
        tokenizer_files=copied,
        checkpoint=str(checkpoint),
        meta=meta,
        parity=report,
    )
    M.write_manifest(out, manifest)
    return manifest


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m distrl_jax.export",
        description="Export a checkpointed policy for on-device inference, with parity checks.",
    )
    p.add_argument("--checkpoint", required=True, help="run folder, checkpoints/ folder or step")
    p.add_argument("--format", required=True, help="onnx | stablehlo | tflite")
    p.add_argument("--quantize", default="none", help="none | fp16 | int8 (onnx, tflite)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--batch", type=int, default=1, help="fixed batch size of the program")
    p.add_argument("--parity-samples", type=int, default=100, help="random screens compared")
    p.add_argument("--seed", type=int, default=0, help="seed of the parity screens")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit status."""
    from distrl_jax.checkpoint.manager import CheckpointError
    from distrl_jax.export.other_formats import ExportToolMissing

    args = _parser().parse_args(argv)
    try:
        _check_args(args.format, args.quantize, args.batch, args.parity_samples)
        manifest = export(
            args.checkpoint,
            args.format,
            args.out,
            quantize=args.quantize,
            batch=args.batch,
            parity_samples=args.parity_samples,
            seed=args.seed,
        )
    except (ExportError, ExportToolMissing, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    p = manifest["parity"]
    print(
        f"exported {manifest['format']} ({manifest['quantization']}) to "
        f"{pathlib.Path(args.out) / manifest['model_file']}: {manifest['model_bytes'] / 1e6:.2f} MB; "
        f"vs JAX on {p['samples']} screens: max |logit error| {p['max_abs_logit_error']:.2e}, "
        f"greedy actions identical {p['greedy_action_agreement']:.1%}, "
        f"{p['latency_ms_per_call']['p50']:.2f} ms per call (p50)"
    )
    if not p["passed"]:
        print(
            f"error: the export does not reproduce the JAX policy (tolerance {LOGIT_TOLERANCE}); "
            "see parity in manifest.json",
            file=sys.stderr,
        )
        return 1
    return 0
