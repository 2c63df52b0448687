"""On-device export of the policy: ONNX, StableHLO and TFLite programs with parity checks.

``python -m distrl_jax.export --checkpoint RUN/checkpoints/N --format onnx --out DIR`` writes the
model file, the tokenizer files and ``manifest.json`` (see :mod:`distrl_jax.export.cli`). This
package ``__init__`` imports nothing, so NumPy-only consumers can read the docs without JAX.
"""
