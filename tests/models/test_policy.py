"""The NNX modules, the spec, and the actor-side JaxPolicy."""

from __future__ import annotations

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.sharding import NamedSharding

from distrl_jax import core
from distrl_jax.devices import actions as A
from distrl_jax.models import action_codec as C
from distrl_jax.models import policy as P
from distrl_jax.models import scoring as S
from distrl_jax.models import spec as specs
from distrl_jax.models.jax_policy import JaxPolicy
from distrl_jax.models.spec import ModelSpec

SPEC = ModelSpec(
    width=32, heads=2, decoder_depth=1, context_len=24, action_len=12, history_budget=8
)


def _inputs(spec: ModelSpec, batch: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    screens = rng.integers(0, 256, (batch, *spec.image_size, 3), dtype=np.uint8)
    context = rng.integers(C.BYTE_OFFSET, C.BYTE_OFFSET + 128, (batch, spec.context_len)).astype(
        np.int32
    )
    context[:, -5:] = C.PAD_ID
    return screens, context


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"patch_size": 7}, "patch_size"),
        ({"heads": 3}, "heads"),
        ({"action_len": 5}, "action_len"),
        ({"location_bins": 65}, "location_bins"),
        ({"history_budget": 200}, "history_budget"),
        ({"dtype": "float64"}, "dtype"),
        ({"image_size": (128,)}, "image_size"),
        ({"decoder_depth": 0}, "decoder_depth"),
    ],
)
def test_spec_validation_names_the_field(changes: dict, field: str) -> None:
    with pytest.raises(ValueError, match=rf"model\.{field}="):
        dataclasses.replace(ModelSpec(), **changes).validate()


def test_presets_validate_and_grow() -> None:
    counts = [P.param_count(P.abstract_model(specs.preset(n))) for n in ("tiny", "small", "base")]
    assert counts == sorted(counts) and counts[0] < 1_000_000
    with pytest.raises(ValueError, match="unknown"):
        specs.preset("huge")


@nnx.jit
def _outputs(model: P.PolicyModel, screens, context, actions):
    memory, mask = model.encode(screens, context)
    return (
        memory,
        mask,
        model.action_logits(memory, mask, actions, context),
        model.value_logits(screens, context),
    )


def test_module_outputs_shapes_and_split_merge_identity() -> None:
    model = P.init_model(SPEC, seed=1)
    screens, context = _inputs(SPEC, 3)
    actions = C.ActionCodec.from_spec(SPEC).encode_batch([A.BACK, A.tap(0.1, 0.1), A.HOME])
    memory, mask, logits, values = _outputs(model, screens, context, actions)
    chex.assert_shape(memory, (3, SPEC.memory_len, SPEC.width))
    chex.assert_shape(mask, (3, SPEC.memory_len))
    chex.assert_shape(logits, (3, SPEC.action_len, C.VOCAB_SIZE))
    chex.assert_shape(values, (3,))
    chex.assert_type([logits, values], jnp.float32)
    graphdef, state = nnx.split(model)
    clone = nnx.merge(graphdef, jax.tree.map(np.asarray, state))  # through host memory and back
    again = _outputs(clone, screens, context, actions)
    for got, want in zip(again, (memory, mask, logits, values), strict=True):
        np.testing.assert_array_equal(got, want)


def test_wrong_screen_size_is_a_clear_error() -> None:
    model = P.init_model(SPEC)
    screens, context = _inputs(SPEC, 1)
    with pytest.raises(ValueError, match="do not match the spec"):
        model.encode(screens[:, :64], context)


def test_shared_encoder_gets_critic_gradients() -> None:
    # The separate-encoder case is checked in test_scoring's gradient test.
    graphdef, state = nnx.split(P.init_model(SPEC))
    assert SPEC.share_critic_encoder and "critic_encoder" not in state
    screens, context = _inputs(SPEC, 2)

    def critic_loss(st):
        return jnp.sum(S.values(graphdef, st, screens, context) ** 2)

    grads = jax.jit(jax.grad(critic_loss))(state)
    assert all(
        np.any(np.asarray(g) != 0) for g in jax.tree.leaves(grads["encoder"]["fusion_blocks"])
    )


def test_bfloat16_compute_keeps_float32_logits_and_values() -> None:
    spec = dataclasses.replace(SPEC, dtype="bfloat16")
    graphdef, state = nnx.split(P.init_model(spec))
    screens, context = _inputs(spec, 2)
    actions = C.ActionCodec.from_spec(spec).encode_batch([A.tap(0.2, 0.2), A.HOME])
    logp, ent, _ = jax.jit(S.action_logprob, static_argnums=0)(
        graphdef, state, screens, context, actions
    )
    chex.assert_type([logp, ent], jnp.float32)
    chex.assert_tree_all_finite((logp, ent))


def test_sharding_rules_split_projections_and_place_on_a_mesh() -> None:
    from distrl_jax.learner import sharding

    state = nnx.state(P.init_model(SPEC))
    mesh = sharding.make_mesh(1, 1, jax.devices()[:1])
    specs_ = sharding.param_specs(state, mesh, P.SHARDING_RULES)
    flat = {sharding._path_str(p): s for p, s in jax.tree_util.tree_flatten_with_path(specs_)[0]}
    pspec = jax.sharding.PartitionSpec
    assert flat["decoder/blocks/0/self_attn/query/kernel/value"] == pspec(None, "model")
    assert flat["encoder/text_blocks/0/mlp/up/bias/value"] == pspec("model")
    assert flat["encoder/fusion_blocks/0/attn/out/kernel/value"] == pspec("model", None)
    assert flat["decoder/blocks/0/mlp/down/kernel/value"] == pspec("model", None)
    assert flat["decoder/head/kernel/value"] == pspec()
    assert flat["value_head/out/kernel/value"] == pspec()
    placed = jax.device_put(state, jax.tree.map(lambda s: NamedSharding(mesh, s), specs_))
    assert jax.tree.structure(placed) == jax.tree.structure(state)


# ---------------------------------------------------------------- JaxPolicy


@pytest.fixture(scope="module")
def policy() -> JaxPolicy:
    return JaxPolicy(specs.tiny(), seed=0, buckets=(1, 4))


def _obs(spec: ModelSpec, n: int, seed: int = 0) -> list[core.Observation]:
    screens, _ = _inputs(spec, n, seed)
    return [core.Observation(screens[i], f"open app {i}", ("HOME",) * (i % 2)) for i in range(n)]


def test_act_returns_valid_actions_with_mu_equal_to_pi(policy: JaxPolicy) -> None:
    obs = _obs(policy.spec, 3)
    outs = policy.act(obs)
    assert len(outs) == 3
    for out in outs:
        assert isinstance(out, core.PolicyOutput) and out.action.is_valid
        assert out.tokens.dtype == np.int32 and out.tokens.shape == (policy.spec.action_len,)
        assert out.text.endswith("<eos>")
    assert policy.invalid_count == 0 and policy.action_count >= 3
    screens = np.stack([o.screen for o in obs])
    context = policy.contexts.encode_batch([o.task for o in obs], [o.history for o in obs])
    tokens = np.stack([o.tokens for o in outs])
    logp, _, _ = jax.jit(S.action_logprob, static_argnums=0)(
        policy.graphdef, policy.state, screens, context, tokens
    )
    np.testing.assert_allclose([o.logp for o in outs], logp, rtol=1e-5, atol=1e-4)


def test_act_never_recompiles_after_warm_up(policy: JaxPolicy) -> None:
    policy.warm_up()
    compiled = policy.trace_count
    assert compiled >= 2  # one per bucket
    policy.act(_obs(policy.spec, 3, seed=1))
    policy.act(_obs(policy.spec, 1, seed=2))
    policy.act(_obs(policy.spec, 6, seed=3))  # chunks of the largest bucket
    policy.set_sampling(temperature=0.5, greedy=True)
    policy.act(_obs(policy.spec, 2, seed=4))
    policy.set_params(jax.tree.map(lambda x: x * 1.01, policy.state), version=7)
    policy.act(_obs(policy.spec, 4, seed=5))
    policy.set_sampling(temperature=1.0, greedy=False)
    assert policy.trace_count == compiled and policy.version == 7
    assert policy.act([]) == []


def test_greedy_act_is_deterministic(policy: JaxPolicy) -> None:
    obs = _obs(policy.spec, 4, seed=9)
    policy.set_sampling(greedy=True)
    try:
        a, b = policy.act(obs), policy.act(obs)
    finally:
        policy.set_sampling(greedy=False)
    assert [o.tokens.tolist() for o in a] == [o.tokens.tolist() for o in b]


def test_set_params_accepts_the_pure_dict_form(policy: JaxPolicy) -> None:
    before = policy.state
    pure = jax.tree.map(lambda x: np.asarray(x) * 0.5, nnx.to_pure_dict(before))
    policy.set_params(pure, version=11)
    assert policy.version == 11
    np.testing.assert_allclose(
        policy.state["decoder"]["head"]["kernel"][...], pure["decoder"]["head"]["kernel"]
    )
    del pure["decoder"]["head"]["bias"]
    with pytest.raises(ValueError, match=r"head.*bias.*missing"):
        policy.set_params(pure, version=12)
    with pytest.raises(ValueError, match="nested dict"):
        policy.set_params([1, 2], version=12)  # type: ignore[arg-type]
    policy.set_params(before, version=0)


def test_bad_parameters_and_observations_are_rejected(policy: JaxPolicy) -> None:
    other = nnx.state(P.init_model(SPEC))
    with pytest.raises(ValueError, match=r"parameter|arrays"):
        policy.set_params(other, version=1)
    with pytest.raises(ValueError, match="observation 0: screen"):
        policy.act([core.Observation(np.zeros((10, 10, 3), np.uint8), "t")])
    with pytest.raises(ValueError, match="temperature"):
        policy.set_sampling(temperature=0.0)
    with pytest.raises(ValueError, match="buckets"):
        JaxPolicy(specs.tiny(), buckets=(0,))
