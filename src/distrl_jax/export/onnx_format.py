"""ONNX export through jax2onnx, run and verified with onnxruntime; int8 dynamic quantization.

Two fixes are applied to what jax2onnx 0.17 emits, both semantics-preserving: ``Where`` nodes
over booleans (the grammar masks) are rewritten as ``Or(And(c, x), And(Not(c), y))`` because
onnxruntime's CPU ``Where`` has no boolean kernel, and the result is shape-inferred and checked.
"""

from __future__ import annotations

import logging
import pathlib

import numpy as np

from distrl_jax.export.program import Program

OPSET = 17
INPUT_NAMES = ("screens", "context")
OUTPUT_NAMES = ("tokens", "logp", "step_logits")


def _quiet_jax2onnx():
    # jax2onnx imports its optional example plugins and logs a traceback for each one whose
    # dependency (equinox, dm-pix) is absent; none of them is used here.
    logging.getLogger("jax2onnx.plugins.plugin_system").setLevel(logging.ERROR)
    logging.getLogger("onnx_ir.serde").setLevel(logging.ERROR)
    import jax2onnx

    return jax2onnx


def _rewrite_bool_where(graph, outer_types: dict[str, int]) -> int:
    """Replace boolean ``Where`` nodes in ``graph`` and its subgraphs; returns how many."""
    import onnx
    from onnx import TensorProto, helper

    types = dict(outer_types)
    for vi in [*graph.value_info, *graph.input, *graph.output]:
        if vi.type.tensor_type.elem_type:
            types[vi.name] = vi.type.tensor_type.elem_type
    for init in graph.initializer:
        types[init.name] = init.data_type
    rewritten, nodes = 0, []
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                rewritten += _rewrite_bool_where(attr.g, types)
        is_where = node.op_type == "Where"
        kind = types.get(node.input[1]) or types.get(node.output[0]) if is_where else None
        if kind == TensorProto.BOOL:
            c, x, y = node.input
            p = node.name or f"where_{rewritten}"
            nodes += [
                helper.make_node("And", [c, x], [f"{p}_cx"], name=f"{p}_and_cx"),
                helper.make_node("Not", [c], [f"{p}_nc"], name=f"{p}_not_c"),
                helper.make_node("And", [f"{p}_nc", y], [f"{p}_ncy"], name=f"{p}_and_ncy"),
                helper.make_node("Or", [f"{p}_cx", f"{p}_ncy"], [node.output[0]], name=f"{p}_or"),
            ]
            rewritten += 1
        else:
            nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    return rewritten


def export_onnx(program: Program, screens_shape, context_shape, path: pathlib.Path) -> int:
    """Convert ``program`` for fixed input shapes and write ``path``; returns rewritten nodes."""
    import jax
    import jax.numpy as jnp
    import onnx

    jax2onnx = _quiet_jax2onnx()
    proto = jax2onnx.to_onnx(
        program,
        [
            jax.ShapeDtypeStruct(tuple(screens_shape), jnp.uint8),
            jax.ShapeDtypeStruct(tuple(context_shape), jnp.int32),
        ],
        model_name="distrl_jax_greedy_policy",
        opset=OPSET,
        input_names=list(INPUT_NAMES),
        output_names=list(OUTPUT_NAMES),
    )
    proto = onnx.shape_inference.infer_shapes(proto)
    rewritten = _rewrite_bool_where(proto.graph, {})
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    return rewritten


def quantize_int8(src: pathlib.Path, dst: pathlib.Path) -> None:
    """onnxruntime dynamic quantization: int8 weights for MatMul/Gemm, activations stay float."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)


class OnnxRunner:
    """Calls an exported ONNX policy with onnxruntime on the CPU."""

    def __init__(self, path: pathlib.Path, threads: int = 1):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3  # unused-initializer notices are not problems
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def __call__(self, screens: np.ndarray, context: np.ndarray) -> tuple[np.ndarray, ...]:
        """``(tokens, logp, step_logits)`` as numpy arrays."""
        feeds = {"screens": screens, "context": context}
        return tuple(self.session.run(list(OUTPUT_NAMES), feeds))
