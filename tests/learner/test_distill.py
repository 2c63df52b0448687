"""Policy distillation: the KL is exact (0 on itself), masked, jit-stable, and a student learns."""

from __future__ import annotations

import chex
import jax
import numpy as np
import pytest
from flax import nnx

from distrl_jax import core
from distrl_jax.learner import distill as D
from distrl_jax.learner import sharding
from distrl_jax.learner.train_step import make_optimizer
from distrl_jax.models import action_codec as codec
from distrl_jax.models import policy as P
from distrl_jax.models import scoring
from distrl_jax.models import spec as specs
from distrl_jax.models.jax_policy import JaxPolicy
from distrl_jax.models.tokenizer import ContextEncoder, load_tokenizer

N = 8  # states per batch
# One jitted sampler for every model and mode (greedy is traced): compiled once per model.
SAMPLE = jax.jit(scoring.sample_actions, static_argnums=0)
TASKS = ("Open the settings", "Search for 'usb c cable' on ebay", "What's the time in Tokyo?")
HISTORIES = ((), ("HOME",), ("TAP 0.52 0.31", 'TYPE "tokyo time"'))


def sharpened_teacher(seed: int = 1, scale: float = 10.0) -> nnx.State:
    """A random ``tiny`` model whose output head is scaled up: its next-token distributions are
    peaked and depend on the input (a fresh init's are nearly uniform), like a trained policy."""
    params = nnx.state(P.init_model(specs.tiny(), seed))

    def sharpen(path, x):
        name = sharding._path_str(path)
        return x * scale if name.startswith("decoder/head/kernel") else x

    return jax.tree_util.tree_map_with_path(sharpen, params)


@pytest.fixture(scope="module")
def teacher() -> tuple[nnx.GraphDef, nnx.State]:
    """The teacher's graph and parameters."""
    graphdef = nnx.graphdef(P.abstract_model(specs.tiny()))
    return graphdef, sharpened_teacher()


def make_states(teacher) -> dict[str, np.ndarray]:
    """N random screens with real contexts, and actions sampled from the teacher."""
    spec = specs.tiny()
    rng = np.random.default_rng(0)
    screens = rng.integers(0, 256, (N, *spec.image_size, 3), dtype=np.uint8)
    encoder = ContextEncoder(spec, load_tokenizer())
    context = encoder.encode_batch(
        [TASKS[i % 3] for i in range(N)], [HISTORIES[i % 3] for i in range(N)]
    )
    actions, _ = SAMPLE(*teacher, screens, context, jax.random.key(0), 1.0, False)
    return {
        "screens": screens,
        "context": context,
        "actions": np.asarray(actions),
        "weights": np.ones(N, np.float32),
    }


@pytest.fixture(scope="module")
def states(teacher) -> dict[str, np.ndarray]:
    """The state batch every test shares."""
    return make_states(teacher)


_OBJECTIVES: dict = {}


def objective_metrics(student_graphdef, student_params, teacher, states, **kwargs) -> dict:
    """The distillation metrics of a student on ``states`` (jitted once per setting, no update)."""
    key = (student_graphdef, teacher[0], tuple(sorted(kwargs.items())))
    if key not in _OBJECTIVES:
        loss = D.distill_objective(
            teacher[0], student_graphdef, location_bins=specs.tiny().location_bins, **kwargs
        )
        _OBJECTIVES[key] = jax.jit(lambda sp, tp, b: loss(sp, tp, b, jax.random.key(3)))
    value, metrics = _OBJECTIVES[key](student_params, teacher[1], states)
    assert float(value) == pytest.approx(float(metrics["distill_loss"]))
    return {k: float(v) for k, v in metrics.items()}


def test_kl_is_zero_for_the_teacher_itself_and_positive_otherwise(teacher, states):
    """Same spec and parameters: KL 0 and full agreement; another model: KL clearly > 0."""
    graphdef, params = nnx.split(P.init_model(specs.student(), 0))
    itself = (graphdef, params)
    same = objective_metrics(graphdef, params, itself, states, action_source="both")
    assert abs(same["kl"]) < 1e-5 and abs(same["kl_per_token"]) < 1e-6
    assert same["token_agreement"] == 1.0 and same["action_agreement"] == 1.0
    assert same["teacher_entropy"] == pytest.approx(same["student_entropy"], rel=1e-5)
    other = objective_metrics(graphdef, params, teacher, states)
    assert other["kl"] > 0.5
    assert other["teacher_entropy"] < other["student_entropy"]  # the sharpened teacher is peaked


def random_inputs(seed: int, b: int = 4, la: int = 7, v: int = 11):
    """Random outputs, a grammar-like mask (every row allows something) and padded actions."""
    rng = np.random.default_rng(seed)
    teacher = rng.normal(size=(b, la, v)).astype(np.float32) * 2
    student = rng.normal(size=(b, la, v)).astype(np.float32) * 2
    allowed = rng.random((b, la, v)) < 0.6
    allowed[..., 0] = True
    lengths = rng.integers(1, la + 1, b)
    real = np.arange(la)[None] < lengths[:, None]
    return teacher, student, allowed, real


def test_padded_tokens_and_forbidden_tokens_do_not_count():
    """Changing outputs at pad positions or grammar-forbidden tokens leaves the loss as it was;
    changing a real, allowed output does not."""
    teacher, student, allowed, real = random_inputs(0)
    loss, metrics = D.distillation_loss(teacher, student, allowed, real)
    noise = np.random.default_rng(1).normal(size=teacher.shape).astype(np.float32) * 50
    ignored = ~real[..., None] | ~allowed
    loss2, metrics2 = D.distillation_loss(
        np.where(ignored, teacher + noise, teacher),
        np.where(ignored, student - noise, student),
        allowed,
        real,
    )
    chex.assert_trees_all_close(metrics, metrics2, rtol=1e-6)
    assert float(loss2) == pytest.approx(float(loss), rel=1e-6)
    changed = student.copy()
    changed[0, 0, 0] += 5.0  # real (every action has >= 1 token) and allowed (column 0)
    loss3, _ = D.distillation_loss(teacher, changed, allowed, real)
    assert abs(float(loss3) - float(loss)) > 1e-3


def test_weights_drop_rows_and_temperature_scales():
    """A row of weight 0 is as if absent; temperature 1 gives the plain KL."""
    teacher, student, allowed, real = random_inputs(2)
    w = np.array([1, 1, 1, 0], np.float32)
    masked, m = D.distillation_loss(teacher, student, allowed, real, w)
    dropped, _ = D.distillation_loss(teacher[:3], student[:3], allowed[:3], real[:3])
    assert float(masked) == pytest.approx(float(dropped), rel=1e-6)
    assert float(masked) == pytest.approx(float(m["kl"]), rel=1e-6)
    hot, m_hot = D.distillation_loss(teacher, student, allowed, real, w, temperature=2.0)
    assert float(m_hot["kl"]) == pytest.approx(float(m["kl"]), rel=1e-6)  # metrics stay at T=1
    assert abs(float(hot) - float(masked)) > 1e-3


class TestJitAgreement(chex.TestCase):
    """The loss gives the same numbers jitted and eager, with the documented shapes."""

    @chex.variants(with_jit=True, without_jit=True)
    def test_variants_agree(self):
        teacher, student, allowed, real = random_inputs(3)
        loss_fn = self.variant(D.distillation_loss)
        loss, metrics = loss_fn(teacher, student, allowed, real)
        ref_loss, ref_metrics = D.distillation_loss(teacher, student, allowed, real)
        chex.assert_shape(loss, ())
        chex.assert_tree_shape_prefix(metrics, ())
        chex.assert_trees_all_close((loss, metrics), (ref_loss, ref_metrics), rtol=1e-5)
        # The KL between two distributions is never negative.
        assert float(metrics["kl_per_token"]) > 0


def test_bad_shapes_and_specs_are_rejected():
    """Mismatched shapes, unknown sources and incompatible specs raise clear errors."""
    teacher, student, allowed, real = random_inputs(4)
    with pytest.raises(AssertionError):
        D.distillation_loss(teacher, student[:, :-1], allowed, real)
    with pytest.raises(ValueError, match="action_source"):
        D.distill_objective(None, None, location_bins=64, action_source="demos")
    bad = specs.ModelSpec(name="wide", image_size=(64, 64))
    with pytest.raises(ValueError, match="image_size"):
        D.check_compatible(specs.tiny(), bad.validate())
    D.check_compatible(specs.tiny(), specs.student())


def test_states_from_batch_keeps_real_steps_only():
    """Real steps become rows with weight 1, the rest zero rows of weight 0; fixed row count."""
    rng = np.random.default_rng(5)
    b, t = 3, 4
    spec = specs.tiny()
    mask = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [1, 1, 1, 1]], np.float32)
    batch = {
        "screens": rng.integers(0, 256, (b, t + 1, *spec.image_size, 3), dtype=np.uint8),
        "context": rng.integers(1, 300, (b, t + 1, spec.context_len)).astype(np.int32),
        "actions": rng.integers(1, 300, (b, t, spec.action_len)).astype(np.int32),
        "mask": mask,
    }
    out = D.states_from_batch(batch, 8)
    chex.assert_shape(out["screens"], (8, *spec.image_size, 3))
    chex.assert_shape([out["context"]], (8, spec.context_len))
    np.testing.assert_array_equal(out["weights"], [1] * 7 + [0])
    np.testing.assert_array_equal(out["actions"][2], batch["actions"][1, 0])
    np.testing.assert_array_equal(out["screens"][6], batch["screens"][2, 3])
    assert not out["actions"][7].any()
    few = D.states_from_batch(batch, 4)
    assert few["weights"].sum() == 4 and few["screens"].shape[0] == 4


@pytest.mark.timeout(240)
def test_distillation_drives_kl_down_and_agreement_up(teacher, states):
    """200 steps on a fixed batch of replayed actions: the KL falls below 5% of where it
    started, token agreement rises above 90% and most greedy actions match the teacher's."""
    mesh = sharding.make_mesh(devices=jax.devices()[:1])
    trainer = D.DistillTrainer.create(
        specs.student(), specs.tiny(), make_optimizer(1e-2, 10.0), mesh, seed=0
    )

    def greedy(graphdef, params):
        return SAMPLE(
            graphdef, params, states["screens"], states["context"], jax.random.key(0), 1.0, True
        )[0]

    teacher_greedy = np.asarray(greedy(*teacher))

    def greedy_agreement() -> float:
        student = np.asarray(greedy(trainer.graphdef, trainer.student_state()))
        return float(np.mean(np.all(student == teacher_greedy, axis=-1)))

    before = greedy_agreement()
    first = trainer.step(teacher[1], states)
    # Device scalars, not host floats: step() never waits on the step it dispatched.
    assert all(isinstance(v, jax.Array) and v.shape == () for v in first.values()), first
    for _ in range(199):
        last = trainer.step(teacher[1], states)
    assert trainer.step_count == 200
    assert trainer._step._cache_size() == 1  # compiled once
    after = greedy_agreement()
    assert last["kl"] < 0.05 * first["kl"], (first, last)
    assert first["token_agreement"] < 0.7 and last["token_agreement"] > 0.9, (first, last)
    assert after >= 0.75 and after > before, (before, after)
    # The student's parameters drive the actor policy as they are.
    policy = JaxPolicy(specs.student(), trainer.student_state(), buckets=(N,))
    out = policy.act([core.Observation(states["screens"][0], TASKS[0])])
    assert out[0].tokens[0] >= codec.VERB_OFFSET and policy.invalid_count == 0


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_teacher_sampled_actions_train_the_student(teacher, states):
    """With actions sampled from the teacher (and padding rows inactive) the step learns too:
    the KL on the replayed actions, which it never trained on, falls."""
    mesh = sharding.make_mesh(devices=jax.devices()[:1])
    trainer = D.DistillTrainer.create(
        specs.student(),
        specs.tiny(),
        make_optimizer(1e-2, 10.0),
        mesh,
        action_source="teacher",
        seed=0,
    )
    padded = dict(states, weights=np.array([1] * (N - 2) + [0, 0], np.float32))
    before = objective_metrics(trainer.graphdef, trainer.student_state(), teacher, states)
    for _ in range(60):
        metrics = trainer.step(teacher[1], padded)
    assert all(np.isfinite(v) for v in metrics.values()), metrics
    after = objective_metrics(trainer.graphdef, trainer.student_state(), teacher, states)
    assert after["kl"] < 0.5 * before["kl"], (before, after)
