"""The distilled actor policy on the learner (actor.policy=distilled): trained with every
learner step, checkpointed as the learner's version, loadable by actors, resumed."""

from __future__ import annotations

import logging
import math
import pathlib
import sys
import types

import jax
import numpy as np
import pytest

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1] / "runtime"))
from learner_script import compile_cache, shrunk_config, synthetic_trajectory

from distrl_jax.checkpoint.policy_loader import load_policy_state
from distrl_jax.learner import sharding
from distrl_jax.learner.learner import Learner
from distrl_jax.learner.student import STUDENT_DIR, Student
from distrl_jax.models.jax_policy import JaxPolicy
from distrl_jax.models.spec import preset


@pytest.fixture(scope="module", autouse=True)
def cache_dir(tmp_path_factory: pytest.TempPathFactory):
    """A persistent compilation cache for this module."""
    path = tmp_path_factory.mktemp("xla-cache")
    with compile_cache(path):
        yield path


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_student_trains_checkpoints_and_resumes_with_the_learner(tmp_path):
    """Each learner step also takes a distillation step (its KL reported under distill/); a
    checkpoint of version N writes the student's step N beside the learner's, announced by
    actor_params, loadable with the student spec; a second learner resumes both."""
    cfg = shrunk_config(tmp_path, "actor.policy=distilled", "distill.batch_states=8")
    learner = Learner(cfg, tmp_path)
    try:
        assert learner.student is not None and learner.student.spec == preset("student")
        for i in range(8):
            learner.insert(synthetic_trajectory(i))
        first = learner.train_step()
        second = learner.train_step()
        for m in (first, second):
            assert math.isfinite(m["distill/kl"]) and m["distill/kl"] >= 0, m
            assert 0 <= m["distill/token_agreement"] <= 1
        assert first["distill/kl"] != second["distill/kl"]  # the student moved
        assert learner.student.trainer.step_count == 2
        learner.maybe_checkpoint(force=True)
        learner.checkpoints.wait()
        learner.student.checkpoints.wait()
        params, path = learner.actor_params()
        assert path == tmp_path / STUDENT_DIR / "2"
        student_leaves = [np.array(x) for x in jax.tree.leaves(params)]
    finally:
        learner.close()

    spec, loaded, meta = load_policy_state(path)
    assert spec == preset("student") and meta["kind"] == "student"
    assert meta["policy_version"] == 2
    for a, b in zip(student_leaves, jax.tree.leaves(loaded), strict=True):
        np.testing.assert_array_equal(a, np.asarray(b))
    policy = JaxPolicy(spec, loaded, version=2)  # what an actor does with it
    assert policy.version == 2

    again = Learner(cfg, tmp_path)
    try:
        assert again.start_kind == "resumed at step 2"
        assert again.student.start_kind == "resumed at step 2"
        assert again.student.trainer.step_count == 2
        for a, b in zip(student_leaves, jax.tree.leaves(again.student.params), strict=True):
            np.testing.assert_array_equal(a, np.asarray(b))
    finally:
        again.close()


def _leaves(params) -> list[np.ndarray]:
    return [np.array(x) for x in jax.tree.leaves(params)]


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_student_resumes_at_the_learners_version_or_says_which_step(tmp_path, caplog):
    """With student steps 2 and 4 on disk, a learner at version 2 or 4 gets exactly that
    student; at 3 (or 1) the student and learner differ: the newest step not after the
    learner's version (else the oldest) is restored, and a warning names the step used and,
    for a learner behind the student, the stale newer steps. (No learner: a stub stands in.)"""
    cfg = shrunk_config(tmp_path, "actor.policy=distilled", "distill.batch_states=8")
    mesh = sharding.make_mesh(devices=jax.devices()[:1])

    def learner_at(version: int):
        return types.SimpleNamespace(
            mesh=mesh, state_shardings=types.SimpleNamespace(params=None), step_count=version
        )

    first = Student(cfg, tmp_path, learner_at(0))
    saved: dict[int, list[np.ndarray]] = {}
    try:
        assert first.start_kind == "initialised from scratch"
        for version in (2, 4):  # distinct parameters at each step
            state = first.trainer.state
            first.trainer.state = state._replace(
                params=jax.tree.map(lambda x, v=version: x + v, state.params)
            )
            first.save(version)
            saved[version] = _leaves(first.params)
    finally:
        first.close()
    assert not np.array_equal(saved[2][0], saved[4][0])

    for version, used in ((4, 4), (2, 2), (3, 2), (1, 2)):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="distrl_jax.learner.student"):
            student = Student(cfg, tmp_path, learner_at(version))
        try:
            got = _leaves(student.params)
        finally:
            student.close()
        for a, b in zip(saved[used], got, strict=True):
            np.testing.assert_array_equal(a, b)
        messages = [r.getMessage() for r in caplog.records]
        differ = [m for m in messages if "student and learner differ" in m]
        stale = [m for m in messages if "newer than the learner" in m]
        if version == used:
            assert student.start_kind == f"resumed at step {used}"
            assert not differ, messages
        else:
            assert student.start_kind == f"resumed at step {used} (the learner is at {version})"
            assert len(differ) == 1 and f"resuming the student from step {used}" in differ[0]
            assert f"policy version {version}" in differ[0], differ
        assert len(stale) == (version < 4), messages
        if version < 4:
            assert str([s for s in (2, 4) if s > version]) in stale[0], stale


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_student_starts_from_its_own_warm_start_trained_on_the_learners_demos(tmp_path, capsys):
    """``distill.init_from=bc`` with a learner starting from a behaviour-cloning warm start
    (a checkpoint whose run folder holds ``demos.npz``): launch trains the student preset's own
    warm start on those demonstrations once, beside the learner's (reused after), and the
    student starts from it.
    Without such demonstrations, or without distilled actors, the student starts from scratch."""
    from flax import nnx

    from distrl_jax.checkpoint.manager import Checkpointer
    from distrl_jax.checkpoint.policy_loader import spec_meta
    from distrl_jax.models import policy as P
    from distrl_jax.pretrain import DemoStates
    from distrl_jax.runtime.training import resolve_student_init

    bc = tmp_path / "bc"  # a stand-in for the learner's warm start: step 0 and its demos
    cfg = shrunk_config(tmp_path / "run")
    with Checkpointer(bc / "checkpoints", keep=1, use_async=False) as ck:
        params = nnx.state(P.init_model(cfg.model, 0))
        ck.save(0, params, {"kind": "bc", "model": spec_meta(cfg.model)}, force=True)
    trajs = [synthetic_trajectory(i) for i in range(4)]
    DemoStates.from_trajectories(trajs, gamma=0.9).save(bc / "demos.npz")

    overrides = (
        "actor.policy=distilled",
        f"checkpoint.init_from={bc / 'checkpoints' / '0'}",
        "pretrain.steps=3",
        "pretrain.batch_size=8",
        "eval.max_tasks=1",
    )
    cfg = shrunk_config(tmp_path / "run", *overrides)
    assert cfg.distill.init_from == "bc"
    resolved = resolve_student_init(cfg, tmp_path / "run")
    student_ckpt = pathlib.Path(resolved.distill.init_from)
    assert student_ckpt.parent.parent == tmp_path.resolve()  # beside the learner's warm start
    assert student_ckpt.parent.name.startswith("bc-student-")
    assert (student_ckpt / "0").is_dir()
    assert "training one into" in capsys.readouterr().out
    again = resolve_student_init(cfg, tmp_path / "run")
    assert again.distill.init_from == resolved.distill.init_from
    assert "(behaviour cloning, reused)" in capsys.readouterr().out

    spec, saved, meta = load_policy_state(student_ckpt)
    assert spec == preset("student") and meta["kind"] == "bc"
    mesh = sharding.make_mesh(devices=jax.devices()[:1])
    learner = types.SimpleNamespace(
        mesh=mesh, state_shardings=types.SimpleNamespace(params=None), step_count=0
    )
    student = Student(resolved, tmp_path / "run", learner)
    try:
        assert student.start_kind == f"initialised from {student_ckpt} (bc)"
        for a, b in zip(_leaves(saved), _leaves(student.params), strict=True):
            np.testing.assert_array_equal(a, b)
    finally:
        student.close()

    (bc / "demos.npz").unlink()  # a learner checkpoint that is not a warm start with demos
    assert resolve_student_init(cfg, tmp_path / "run").distill.init_from == ""
    assert "the student starts from scratch" in capsys.readouterr().out
    learner_actors = shrunk_config(tmp_path / "run", *overrides, "actor.policy=learner")
    assert resolve_student_init(learner_actors, tmp_path / "run").distill.init_from == ""


@pytest.mark.timeout(120)
def test_a_missing_student_checkpoint_is_a_config_error_naming_the_field(tmp_path):
    """``distill.init_from`` pointing nowhere fails before anything trains, naming the field."""
    from distrl_jax.config import ConfigError

    missing = tmp_path / "nowhere" / "checkpoints"
    cfg = shrunk_config(tmp_path, "actor.policy=distilled", f"distill.init_from={missing}")
    mesh = sharding.make_mesh(devices=jax.devices()[:1])
    learner = types.SimpleNamespace(
        mesh=mesh, state_shardings=types.SimpleNamespace(params=None), step_count=0
    )
    with pytest.raises(ConfigError, match=r"distill\.init_from=.*nowhere.* does not exist"):
        Student(cfg, tmp_path, learner)
