"""The learner's mesh and layout rules, and the same train steps on 1, 4x2 and 8x1 devices."""

from __future__ import annotations

import json
import logging
import os
import pathlib
import re
import subprocess
import sys

import jax
import numpy as np
import pytest
from flax import nnx
from jax.sharding import AbstractMesh, PartitionSpec

from distrl_jax.learner import sharding
from distrl_jax.models import policy as P
from distrl_jax.models.spec import tiny

SCRIPT = pathlib.Path(__file__).with_name("sharded_step_script.py")
LR = 1e-3  # the script's learning rate: one Adam step moves a parameter by about this much


def abstract_mesh(data: int, model: int) -> AbstractMesh:
    """A (data, model) mesh of any size without devices: ``param_specs`` only reads its shape."""
    return AbstractMesh((data, model), (sharding.DATA, sharding.MODEL))


@pytest.fixture(scope="module")
def tiny_params() -> nnx.State:
    """The tiny model's parameters, built without a mesh as the trainer does."""
    with nnx.use_eager_sharding(False):
        return nnx.state(P.init_model(tiny(), 0))


def specs_by_path(params: nnx.State, mesh, rules) -> dict[str, tuple[PartitionSpec, tuple]]:
    """{"a/b/kernel/value": (spec, shape)} for every leaf."""
    specs = sharding.param_specs(params, mesh, rules)
    shapes = dict(
        (sharding._path_str(p), leaf.shape)
        for p, leaf in jax.tree_util.tree_leaves_with_path(params)
    )
    return {
        sharding._path_str(p): (s, shapes[sharding._path_str(p)])
        for p, s in jax.tree_util.tree_leaves_with_path(
            specs, is_leaf=lambda x: isinstance(x, PartitionSpec)
        )
    }


# ------------------------------------------------------------------------------ make_mesh


def test_make_mesh_defaults_to_all_devices_on_data():
    mesh = sharding.make_mesh()
    assert mesh.axis_names == (sharding.DATA, sharding.MODEL)
    assert dict(mesh.shape) == {sharding.DATA: jax.device_count(), sharding.MODEL: 1}
    # Explicit axes make nnx.Embed raise (NOTES-stack.md); the mesh must be Auto.
    assert all(t == jax.sharding.AxisType.Auto for t in mesh.axis_types)


def test_make_mesh_model_must_divide_devices():
    devices = jax.devices()[:1]
    with pytest.raises(ValueError, match=r"mesh\.model=2 must divide the number of devices \(1\)"):
        sharding.make_mesh(model=2, devices=devices)
    with pytest.raises(ValueError, match=r"mesh\.model=0 must divide"):
        sharding.make_mesh(model=0, devices=devices)


def test_make_mesh_data_times_model_must_match_devices():
    with pytest.raises(
        ValueError, match=r"mesh\.data=2 x mesh\.model=1 = 2 devices, but 1 are"
    ) as e:
        sharding.make_mesh(2, 1, devices=jax.devices()[:1])
    assert "mesh.data=-1" in str(e.value)  # the message says how to fix it


# ------------------------------------------------------------------------------ rules


def test_parse_rule_reads_regex_and_axes():
    regex, axes = sharding.parse_rule(r".*/(query|up)/kernel(/value)?:_, model")
    assert axes == (None, sharding.MODEL)
    assert regex.fullmatch("encoder/text_blocks/0/mlp/up/kernel/value")
    assert not regex.fullmatch("encoder/text_blocks/0/mlp/down/kernel/value")
    # The axes come after the LAST colon, so a regex may itself contain one.
    regex, axes = sharding.parse_rule(r"(?:a|b):data,_")
    assert regex.pattern == "(?:a|b)" and axes == (sharding.DATA, None)


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("kernel", r"must look like REGEX:AXES"),
        (":_,model", r"must look like REGEX:AXES"),
        (".*kernel:_,modle", r"axis 'modle' is not one of _, data, model"),
        (".*kernel:batch", r"axis 'batch' is not one of"),
    ],
)
def test_parse_rule_rejects_malformed_rules(rule, message):
    with pytest.raises(ValueError, match=message) as e:
        sharding.parse_rule(rule)
    assert repr(rule) in str(e.value)  # the offending rule is quoted


def test_parse_rule_rejects_bad_regex():
    with pytest.raises(re.error):
        sharding.parse_rule("(unclosed:_,model")


def test_policy_rules_shard_the_big_matrices(tiny_params):
    """query/key_value/up split their outputs, out/down their inputs; the rest is replicated."""
    specs = specs_by_path(tiny_params, abstract_mesh(4, 2), P.SHARDING_RULES)
    # nnx.State paths end in the Variable's value; the rules must match that suffix.
    assert all(name.endswith("/value") for name in specs)
    seen = {"out_sharded": 0, "in_sharded": 0, "bias": 0}
    for name, (spec, shape) in specs.items():
        # The copy head's query/key are not attention blocks: replicated.
        if re.search(r"(attn|mlp)/(query|key_value|up)/kernel/value$", name):
            assert spec == PartitionSpec(None, sharding.MODEL), name
            seen["out_sharded"] += 1
        elif re.search(r"(attn|mlp)/(query|key_value|up)/bias/value$", name):
            assert spec == PartitionSpec(sharding.MODEL), name
            seen["bias"] += 1
        elif re.search(r"(attn|mlp)/(out|down)/kernel/value$", name):
            assert spec == PartitionSpec(sharding.MODEL, None), name
            seen["in_sharded"] += 1
        else:
            # norms, embeddings, heads, out/down biases: replicated.
            assert spec == PartitionSpec(), name
        assert len(spec) <= len(shape)
    # Encoder blocks have one attention (query, key_value, out) and an MLP (up, down); decoder
    # blocks have two attentions (self, cross) and an MLP.
    spec = tiny()
    enc, dec = spec.image_depth + spec.text_depth + spec.fusion_depth, spec.decoder_depth
    assert seen == {
        "out_sharded": enc * 3 + dec * 5,
        "in_sharded": enc * 2 + dec * 3,
        # key_value has no bias (attention ignores it): query and up keep theirs.
        "bias": enc * 2 + dec * 3,
    }


def test_non_divisible_dimension_is_replicated(tiny_params, caplog):
    # width 64 and 2*64, 128 hidden: nothing divides by 3, so every leaf stays replicated.
    with caplog.at_level(logging.INFO, logger=sharding.__name__):
        specs = specs_by_path(tiny_params, abstract_mesh(1, 3), P.SHARDING_RULES)
    assert all(spec == PartitionSpec() for spec, _ in specs.values())
    assert "replicating decoder/blocks/0/mlp/up/kernel/value (64, 128)" in caplog.text
    assert "not divisible by model=3" in caplog.text


def test_rule_axes_align_with_trailing_dims_and_divisibility_is_per_leaf():
    params = {
        "a": {"kernel": jax.ShapeDtypeStruct((4, 6), np.float32)},
        "b": {"kernel": jax.ShapeDtypeStruct((4, 5), np.float32)},  # 5 % 3 != 0
        "c": {"kernel": jax.ShapeDtypeStruct((2, 4, 6), np.float32)},  # rank 3: leading dim free
        "d": {"bias": jax.ShapeDtypeStruct((6,), np.float32)},  # no rule matches
        "e": {"kernel": jax.ShapeDtypeStruct((9,), np.float32)},  # rule longer than the rank
    }
    specs = sharding.param_specs(params, abstract_mesh(2, 3), [r".*kernel:_,model"])
    assert specs["a"]["kernel"] == PartitionSpec(None, sharding.MODEL)
    assert specs["b"]["kernel"] == PartitionSpec()
    assert specs["c"]["kernel"] == PartitionSpec(None, None, sharding.MODEL)
    assert specs["d"]["bias"] == PartitionSpec()
    assert specs["e"]["kernel"] == PartitionSpec(sharding.MODEL)


def test_first_matching_rule_wins():
    params = {"mlp": {"up": {"kernel": jax.ShapeDtypeStruct((4, 6), np.float32)}}}
    rules = [r".*up/kernel:model,_", r".*kernel:_,model"]
    specs = sharding.param_specs(params, abstract_mesh(1, 2), rules)
    assert specs["mlp"]["up"]["kernel"] == PartitionSpec(sharding.MODEL, None)


def test_check_batch_size_suggests_the_next_multiple():
    mesh = abstract_mesh(4, 2)
    sharding.check_batch_size(8, mesh)  # divisible: accepted
    with pytest.raises(
        ValueError, match=r"batch_size=10 must be a multiple of .* data axis \(4\); try 12"
    ):
        sharding.check_batch_size(10, mesh)


# ------------------------------------------------------------------------------ 8 devices


@pytest.fixture(scope="module")
def mesh_runs(tmp_path_factory) -> tuple[dict, dict[str, dict[str, np.ndarray]]]:
    """Run the script on 8 fake CPU devices: (its JSON report, final params per mesh)."""
    out = tmp_path_factory.mktemp("meshes")
    env = dict(
        os.environ,
        XLA_FLAGS="--xla_force_host_platform_device_count=8",
        JAX_PLATFORMS="cpu",
    )
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    params = {}
    for name in report["runs"]:
        with np.load(out / f"{name}.npz") as f:
            params[name] = {k: f[k] for k in f.files}
    return report, params


@pytest.mark.timeout(300)
def test_meshes_agree_on_losses_priorities_and_params(mesh_runs):
    report, params = mesh_runs
    assert report["device_count"] == 8
    runs = report["runs"]
    assert [runs[n]["devices"] for n in ("1x1", "4x2", "8x1")] == [1, 8, 8]
    ref = runs["1x1"]
    assert ref["step_count"] == 2
    assert ref["losses"][1] < ref["losses"][0]  # the steps did something
    for name in ("4x2", "8x1"):
        run = runs[name]
        assert run["step_count"] == 2
        np.testing.assert_allclose(run["losses"], ref["losses"], rtol=1e-5, err_msg=name)
        # Priorities weight |δ| by 50 and sum -log π over up to 32 tokens: float32 reductions in
        # another order differ by ~1e-5 relative (measured 1.2e-5 on the 4x2 mesh).
        np.testing.assert_allclose(run["priorities"], ref["priorities"], rtol=5e-5, err_msg=name)
        assert params[name].keys() == params["1x1"].keys()
        total = sum(float(np.abs(v).astype(np.float64).sum()) for v in params[name].values())
        ref_total = sum(float(np.abs(v).astype(np.float64).sum()) for v in params["1x1"].values())
        np.testing.assert_allclose(total, ref_total, rtol=1e-5, err_msg=name)
        for key, value in params[name].items():
            # Elementwise to a tenth of one Adam step: Adam divides by |g|, so an entry whose
            # gradient is ~0 (e.g. the attention key bias, to which softmax is invariant) moves
            # by ±lr·(rounding noise), which differs with the reduction order on each mesh. A
            # missing or doubled all-reduce would move most entries by about lr instead.
            np.testing.assert_allclose(
                value, params["1x1"][key], rtol=1e-5, atol=0.1 * LR, err_msg=f"{name} {key}"
            )


@pytest.mark.timeout(300)
def test_4x2_mesh_really_splits_params_over_model_and_batch_over_data(mesh_runs):
    runs = mesh_runs[0]["runs"]
    split = runs["4x2"]["model_sharded"]
    assert split, "no parameter is sharded over 'model' on the 4x2 mesh"
    up = split["decoder/blocks/0/mlp/up/kernel/value"]
    assert up["spec"] == "P(None, 'model')"
    assert up["shape"] == [64, 128] and up["shard_shape"] == [64, 64]
    down = split["encoder/image_blocks/0/mlp/down/kernel/value"]
    assert down["spec"] == "P('model', None)" and down["shard_shape"] == [64, 64]
    for name, leaf in split.items():  # every model-sharded leaf holds half of it per device
        assert np.prod(leaf["shard_shape"]) * 2 == np.prod(leaf["shape"]), name
    assert runs["4x2"]["batch_spec"] == "P('data',)"
    assert runs["4x2"]["batch_shard_shape"][0] == 2  # B=8 over data=4
    assert runs["8x1"]["batch_shard_shape"][0] == 1
    # On one device nothing is split, even though the specs name 'model'.
    assert runs["1x1"]["batch_shard_shape"][0] == 8
    assert all(v["shard_shape"] == v["shape"] for v in runs["1x1"]["model_sharded"].values())
