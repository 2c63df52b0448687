"""On-device export: ONNX/StableHLO parity with the JAX policy, quantization, manifest, CLI and
the JAX-free example (distrl_jax.export, examples/ondevice_infer.py)."""

from __future__ import annotations

import importlib.util
import json
import pathlib
import subprocess
import sys

import chex
import numpy as np
import pytest
from flax import nnx

pytest.importorskip("onnxruntime")
pytest.importorskip("jax2onnx")

from distrl_jax.checkpoint.manager import Checkpointer
from distrl_jax.checkpoint.policy_loader import spec_meta
from distrl_jax.devices import actions as A
from distrl_jax.devices.actions import TAP_DISTANCE
from distrl_jax.export import cli, other_formats
from distrl_jax.export import manifest as M
from distrl_jax.export.onnx_format import OnnxRunner
from distrl_jax.export.other_formats import StableHloRunner
from distrl_jax.export.parity import compare, run_batched
from distrl_jax.export.program import greedy_program, jax_greedy_policy, sample_inputs
from distrl_jax.models.action_codec import VOCAB_SIZE, ActionCodec
from distrl_jax.models.jax_policy import JaxPolicy
from distrl_jax.models.policy import init_model
from distrl_jax.models.spec import tiny
from distrl_jax.models.tokenizer import ContextEncoder
from distrl_jax.tasks.suites import load_tasks

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "ondevice_infer.py"
LOGIT_TOL = 1e-4  # float32 conversion error measured about 3e-6 on the tiny model
# The checkpoint's policy version differs from its step (7) on purpose: the manifest must read
# the version from the meta, not fall back to the step.
POLICY_VERSION = 5


@pytest.fixture(scope="module")
def policy(tmp_path_factory):
    """A tiny random-init policy saved the way the project saves checkpoints (step 7)."""
    spec = tiny()
    state = nnx.state(init_model(spec, seed=3))
    run = tmp_path_factory.mktemp("run")
    meta = {
        "kind": "rl",
        "model": spec_meta(spec),
        "config": "t",
        "policy_version": POLICY_VERSION,
    }
    with Checkpointer(run / "checkpoints", use_async=False) as ck:
        ck.save(7, state, meta, force=True)
        path = ck.path(7)
    return spec, state, path


def _export(policy, tmp_path_factory, fmt, quantize="none", samples=10):
    out = tmp_path_factory.mktemp(f"{fmt}_{quantize}")
    manifest = cli.export(policy[2], fmt, out, quantize=quantize, parity_samples=samples)
    return out, manifest


@pytest.fixture(scope="module")
def onnx_dir(policy, tmp_path_factory):
    """One float32 ONNX export shared by the tests."""
    return _export(policy, tmp_path_factory, "onnx")


def _reference(spec, state, screens, contexts):
    import jax

    return tuple(np.asarray(x) for x in jax.jit(greedy_program(spec, state))(screens, contexts))


FRESH_SCREENS, FRESH_SEED = 100, 1234  # not the export-time parity inputs (seed 0)


def assert_parity_on_fresh_screens(runner, spec, state) -> None:
    """The exported file, called one screen at a time on 100 fresh random screens: the same
    logits as the JAX program within LOGIT_TOL, and the same greedy actions (and log-probs) as
    the training stack's policy."""
    screens, contexts = sample_inputs(spec, FRESH_SCREENS, seed=FRESH_SEED)
    got = run_batched(runner, screens, contexts, 1)
    n, la = FRESH_SCREENS, spec.action_len
    chex.assert_shape(got, [(n, la), (n,), (n, la, VOCAB_SIZE)])
    policy_tokens, policy_logp = jax_greedy_policy(spec, state)(screens, contexts)
    np.testing.assert_array_equal(got[0], policy_tokens)  # the training stack's greedy actions
    np.testing.assert_allclose(got[1], policy_logp, atol=1e-4)
    errors = compare(_reference(spec, state, screens, contexts), got)
    assert errors["samples"] == n, errors
    assert errors["max_abs_logit_error"] < LOGIT_TOL, errors
    assert errors["greedy_action_agreement"] == 1.0
    assert len({tuple(r) for r in got[0]}) > 1, "random screens should not all give one action"


@pytest.mark.timeout(240)
def test_onnx_matches_jax_greedy_policy_on_100_screens(policy, onnx_dir):
    spec, state, _ = policy
    assert_parity_on_fresh_screens(OnnxRunner(onnx_dir[0] / "policy.onnx"), spec, state)


@pytest.mark.timeout(240)
def test_stablehlo_matches_jax_greedy_policy_on_100_screens(policy, tmp_path_factory):
    spec, state, _ = policy
    # The export deserialises the file and calls it on 20 seeded screens next to JAX...
    out, manifest = _export(policy, tmp_path_factory, "stablehlo", samples=20)
    p = manifest["parity"]
    assert p["passed"] and p["samples"] == 20, p
    assert p["max_abs_logit_error"] < LOGIT_TOL and p["greedy_action_agreement"] == 1.0
    assert p["interpreter"] == StableHloRunner.interpreter_name, p
    # ...and, loaded again from disk, it agrees on 100 screens it was never checked on.
    assert_parity_on_fresh_screens(StableHloRunner(out / "policy.stablehlo"), spec, state)


@pytest.mark.slow
@pytest.mark.extended
@pytest.mark.timeout(300)
@pytest.mark.parametrize("quantize", ["fp16", "int8"])
def test_quantized_onnx_reports_its_accuracy_change(policy, onnx_dir, tmp_path_factory, quantize):
    _, manifest = _export(policy, tmp_path_factory, "onnx", quantize, samples=20)
    p = manifest["parity"]
    assert manifest["quantization"] == quantize and p["logit_tolerance"] is None
    # Measured against float32 JAX, never hidden; loose sanity bounds for a random-init model.
    assert 0.0 < p["max_abs_logit_error"] < 0.5, p
    assert p["first_token_agreement"] >= 0.8, p
    assert 0.0 <= p["greedy_action_agreement"] <= 1.0
    fp32_bytes = onnx_dir[1]["model_bytes"]
    assert manifest["model_bytes"] < 0.75 * fp32_bytes  # the point of quantizing
    if quantize == "fp16":  # the converter itself stays exact; only the weights changed
        assert p["conversion_vs_jax_fp16_weights"]["max_abs_logit_error"] < LOGIT_TOL


def test_manifest_describes_the_export(policy, onnx_dir):
    spec, _, ckpt = policy
    out, manifest = onnx_dir
    assert json.loads((out / "manifest.json").read_text()) == manifest
    h, w = spec.image_size
    assert manifest["inputs"] == [
        {"name": "screens", "shape": [1, h, w, 3], "dtype": "uint8"},
        {"name": "context", "shape": [1, spec.context_len], "dtype": "int32"},
    ]
    assert [o["name"] for o in manifest["outputs"]] == ["tokens", "logp", "step_logits"]
    assert manifest["preprocessing"]["screen_size"] == [h, w]
    assert manifest["program"] == "greedy_decoder" and "grammar" in manifest["program_doc"]
    assert manifest["source"] == {
        "checkpoint": str(ckpt),
        "step": 7,
        "policy_version": POLICY_VERSION,
        "config": "t",
        "kind": "rl",
        "model_spec": spec_meta(spec),
    }
    assert manifest["action_decoding"] == {
        "recipe": M.ACTION_RECIPE,
        "action_len": spec.action_len,
        "location_bins": spec.location_bins,
        "tap_distance": TAP_DISTANCE,
    }
    assert manifest["vocabulary"]["size"] == VOCAB_SIZE
    assert manifest["model_bytes"] == (out / "policy.onnx").stat().st_size
    for name in manifest["tokenizer_files"]:
        assert (out / name).is_file()
    assert "tokenizer.json" in manifest["tokenizer_files"]
    p = manifest["parity"]
    assert p["passed"] and p["samples"] == 10 and p["max_abs_logit_error"] < LOGIT_TOL
    assert p["jax_program_vs_policy_action_agreement"] == 1.0
    assert p["interpreter"].startswith("onnxruntime "), p


def test_tflite_parity_names_the_interpreter_that_ran(monkeypatch):
    """ai-edge-litert is preferred; without it TensorFlow's interpreter runs, and the name
    recorded in the manifest's parity says so (fake modules stand in for both packages)."""
    import types

    litert = types.ModuleType("ai_edge_litert.interpreter")
    litert.Interpreter = type("LiteRtInterpreter", (), {})
    tf = types.SimpleNamespace(
        __version__="9.9", lite=types.SimpleNamespace(Interpreter=type("TfInterpreter", (), {}))
    )
    monkeypatch.setitem(sys.modules, "ai_edge_litert", types.ModuleType("ai_edge_litert"))
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", litert)
    monkeypatch.setitem(sys.modules, "tensorflow", tf)
    cls, name = other_formats.tflite_interpreter()
    assert cls is litert.Interpreter and name.startswith("ai-edge-litert "), name
    assert M.parity_interpreter("tflite") == name

    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)  # import fails
    cls, name = other_formats.tflite_interpreter()
    assert cls is tf.lite.Interpreter and name == "tensorflow 9.9 tf.lite.Interpreter", name
    assert M.parity_interpreter("tflite") == name


def test_cli_reports_bad_input_with_exit_2(tmp_path, capsys):
    missing = tmp_path / "nope" / "checkpoints" / "3"
    assert cli.main(["--checkpoint", str(missing), "--format", "onnx", "--out", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert cli.main(["--checkpoint", str(tmp_path), "--format", "coreml", "--out", "x"]) == 2
    assert "--format 'coreml' is unknown" in capsys.readouterr().err
    args = ["--checkpoint", str(tmp_path), "--format", "stablehlo", "--quantize", "int8"]
    assert cli.main([*args, "--out", "x"]) == 2
    assert "int8 is for onnx and tflite" in capsys.readouterr().err


def test_tflite_without_tensorflow_exits_2_with_instructions(policy, tmp_path, capsys):
    if importlib.util.find_spec("tensorflow") is not None:
        pytest.skip("tensorflow is installed: the missing-converter path cannot be exercised")
    argv = ["--checkpoint", str(policy[2]), "--format", "tflite", "--out", str(tmp_path)]
    assert cli.main(argv) == 2
    assert "install tensorflow-cpu in a separate venv" in capsys.readouterr().err.lower()


@pytest.mark.skipif(
    importlib.util.find_spec("tensorflow") is None,
    reason="TFLite conversion needs tensorflow-cpu (install it in a separate venv)",
)
@pytest.mark.timeout(600)
def test_tflite_matches_jax_greedy_policy_on_100_screens(policy, tmp_path_factory):
    spec, state, _ = policy
    out, manifest = _export(policy, tmp_path_factory, "tflite", samples=FRESH_SCREENS)
    p = manifest["parity"]
    assert p["passed"] and p["samples"] == FRESH_SCREENS, p
    runner = other_formats.TfliteRunner(out / "policy.tflite")
    assert p["interpreter"] == runner.interpreter_name, p  # which interpreter checked it
    assert_parity_on_fresh_screens(runner, spec, state)


def _load_example():
    spec = importlib.util.spec_from_file_location("ondevice_infer", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_example_codec_matches_the_project_codec(onnx_dir):
    example = _load_example()
    manifest = onnx_dir[1]
    from tokenizers import Tokenizer

    codec = example.ManifestCodec(
        manifest, Tokenizer.from_file(str(onnx_dir[0] / "tokenizer.json"))
    )
    spec = tiny()
    encoder, project = ContextEncoder(spec), ActionCodec.from_spec(spec)
    histories = [
        [],
        ["TAP 0.50 0.25"],
        ["SWIPE 0.50 0.50 0.51 0.50", 'TYPE "caf\u00e9 <tap> \u4e2d"', "BACK", "HOME"],
        ['TYPE "' + "x" * 60 + '"'],
        ["ENTER", "SWIPE 0.99 0.99 0.99 0.98", "INVALID"],
    ]
    tasks = ["Open settings", "Search for <tap> on google", "\u00fcber " * 40]
    for task in tasks:
        for history in histories:
            np.testing.assert_array_equal(
                codec.context(task, history), encoder.encode(task, history)
            )
    for item in [h for hs in histories for h in hs]:
        action = A.parse_action(item)
        tokens = project.encode(action)
        assert codec.action_tokens(action) == [int(t) for t in tokens if t != 0], item
        ours, theirs = codec.decode(tokens), project.decode(tokens)
        assert A.to_compact(ours) == A.to_compact(theirs), item
        assert ours.is_valid == theirs.is_valid and (not ours.is_valid or ours == theirs), item


@pytest.mark.timeout(240)
def test_example_plays_without_jax_and_matches_jax_policy(policy, onnx_dir, tmp_path):
    spec, state, _ = policy
    report = tmp_path / "episodes.json"
    probe = (
        "import runpy, sys, json\n"
        f"sys.argv = ['ondevice_infer', '--model', {str(onnx_dir[0])!r}, '--max-tasks', '2', "
        f"'--json', {str(report)!r}]\n"
        "try:\n"
        f"    runpy.run_path({str(EXAMPLE)!r}, run_name='__main__')\n"
        "except SystemExit as e:\n"
        "    assert not e.code, e.code\n"
        "print('JAX_LOADED', sorted(m for m in sys.modules if m == 'jax' or m.startswith(('jax.', 'flax', 'jaxlib'))))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=200, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "JAX_LOADED []" in proc.stdout, proc.stdout
    assert "latency per action: p50" in proc.stdout and "model: policy.onnx" in proc.stdout
    onnx_run = json.loads(report.read_text())

    example = _load_example()
    jax_policy = JaxPolicy(spec, state, greedy=True, buckets=(1,))
    tasks = load_tasks("general", split="val")[:2]
    jax_records = example.play(
        tasks,
        lambda obs: jax_policy.act([obs])[0].action,
        size=spec.image_size,
        history_k=spec.history_k,
    )
    assert [r["task"] for r in onnx_run["records"]] == [t.text for t in tasks]
    assert onnx_run["records"] == jax_records  # same actions, same outcomes, step by step
    assert sum(len(r["actions"]) for r in jax_records) >= 2
    assert onnx_run["success_rate"] == np.mean([r["success"] for r in jax_records])
