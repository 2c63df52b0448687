"""StableHLO (``jax.export``) and TFLite/LiteRT (jax2tf + ``TFLiteConverter``) exports.

StableHLO: the program is exported for fixed input shapes with the weights as constants (an
``nnx.State`` cannot be serialised, so the program closes over a flat list of arrays) and
written with ``Exported.serialize()``; loading needs ``jax.export.deserialize`` (any JAX that
reads this serialisation version), so it is the format for servers and XLA runtimes, not phones.

TFLite: conversion needs TensorFlow, which is far too big for this project's environment; the
path is implemented and runs when ``tensorflow`` (``tensorflow-cpu``) is importable, best in a
separate venv. The resulting ``.tflite`` runs with ``ai-edge-litert`` alone.
"""

from __future__ import annotations

import importlib.metadata
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from distrl_jax.export.program import Program

TFLITE_MISSING = (
    "TFLite export needs TensorFlow, which is not installed here. Install tensorflow-cpu in a "
    "separate venv (it is about 1.3 GB and pins its own numpy/protobuf): "
    "`python -m venv .venv-tflite && .venv-tflite/bin/pip install -e . tensorflow-cpu` and run "
    "`.venv-tflite/bin/python -m distrl_jax.export --format tflite ...` there; the .tflite file "
    "then runs anywhere with `pip install ai-edge-litert`"
)


class ExportToolMissing(RuntimeError):
    """A converter this format needs is not installed (the message says how to get it)."""


def _specs(screens_shape, context_shape) -> list[jax.ShapeDtypeStruct]:
    return [
        jax.ShapeDtypeStruct(tuple(screens_shape), jnp.uint8),
        jax.ShapeDtypeStruct(tuple(context_shape), jnp.int32),
    ]


def export_stablehlo(program: Program, screens_shape, context_shape, path: pathlib.Path) -> None:
    """Serialise the program with ``jax.export`` into ``path``."""
    exported = jax.export.export(jax.jit(program))(*_specs(screens_shape, context_shape))
    path.write_bytes(exported.serialize())


class StableHloRunner:
    """Deserialises a ``jax.export`` file and calls it."""

    interpreter_name = f"jax {jax.__version__} jax.export.deserialize"

    def __init__(self, path: pathlib.Path):
        self.exported = jax.export.deserialize(bytearray(path.read_bytes()))
        self._call = jax.jit(self.exported.call)

    def __call__(self, screens: np.ndarray, context: np.ndarray) -> tuple[np.ndarray, ...]:
        """``(tokens, logp, step_logits)`` as numpy arrays."""
        return tuple(np.asarray(x) for x in self._call(screens, context))


def _tensorflow():
    try:
        import tensorflow as tf
    except ImportError:
        raise ExportToolMissing(TFLITE_MISSING) from None
    return tf


def export_tflite(
    program: Program, screens_shape, context_shape, path: pathlib.Path, quantize: str
) -> None:
    """jax2tf -> ``tf.function`` -> TFLite built-in ops. ``int8``: dynamic-range quantization
    (``Optimize.DEFAULT``); ``fp16`` is already applied to the program's weights."""
    tf = _tensorflow()
    from jax.experimental import jax2tf

    converted = jax2tf.convert(program, with_gradient=False, enable_xla=False)
    signature = [
        tf.TensorSpec(tuple(screens_shape), tf.uint8, name="screens"),
        tf.TensorSpec(tuple(context_shape), tf.int32, name="context"),
    ]
    function = tf.function(converted, input_signature=signature, autograph=False)
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [function.get_concrete_function()], function
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    path.write_bytes(converter.convert())


def tflite_interpreter() -> tuple[type, str]:
    """``(Interpreter class, what it is)``: ai-edge-litert's where it installs, else
    TensorFlow's ``tf.lite.Interpreter``; the name (with the package version) goes into the
    manifest's ``parity["interpreter"]`` so it says which one checked the export."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        tf = _tensorflow()
        return tf.lite.Interpreter, f"tensorflow {tf.__version__} tf.lite.Interpreter"
    return Interpreter, f"ai-edge-litert {_version('ai-edge-litert')} interpreter"


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "(version unknown)"


class TfliteRunner:
    """Runs a ``.tflite`` file with ai-edge-litert (or TensorFlow's interpreter, where
    ai-edge-litert is absent); ``interpreter_name`` says which (:func:`tflite_interpreter`)."""

    def __init__(self, path: pathlib.Path):
        Interpreter, self.interpreter_name = tflite_interpreter()
        self.interpreter = Interpreter(model_path=str(path))
        self.interpreter.allocate_tensors()
        inputs = self.interpreter.get_input_details()
        self._inputs = {d["name"].split(":")[0].split("_")[-1]: d["index"] for d in inputs}
        # Output order follows the program's (tokens, logp, step_logits): match by rank.
        outs = sorted(self.interpreter.get_output_details(), key=lambda d: len(d["shape"]))
        self._outputs = [outs[1]["index"], outs[0]["index"], outs[2]["index"]]

    def __call__(self, screens: np.ndarray, context: np.ndarray) -> tuple[np.ndarray, ...]:
        """``(tokens, logp, step_logits)`` as numpy arrays."""
        self.interpreter.set_tensor(self._inputs["screens"], screens)
        self.interpreter.set_tensor(self._inputs["context"], context)
        self.interpreter.invoke()
        return tuple(self.interpreter.get_tensor(i).copy() for i in self._outputs)
