"""The Learner state machine: replay-fed steps, checkpoint cadence, exact resume, warm start,
SIGTERM, and refusing a batch that does not split over the mesh.

Every test builds real parts (replay, the compiled sharded step, Orbax on ``tmp_path``); a
persistent compilation cache shared by the module keeps the second and later Learners cheap.
"""

from __future__ import annotations

import importlib.util
import math
import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import chex
import jax
import numpy as np
import pytest
from flax import nnx
from sharded_step_script import make_batch

from distrl_jax.checkpoint.manager import Checkpointer
from distrl_jax.checkpoint.policy_loader import spec_meta
from distrl_jax.config import ConfigError
from distrl_jax.learner.learner import Learner
from distrl_jax.models import policy as P

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "runtime" / "learner_script.py"


def _load_script():
    """Import ``tests/runtime/learner_script.py`` (another test folder) under its own name."""
    if "learner_script" in sys.modules:
        return sys.modules["learner_script"]
    spec = importlib.util.spec_from_file_location("learner_script", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["learner_script"] = module
    spec.loader.exec_module(module)
    return module


LS = _load_script()
shrunk_config = LS.shrunk_config
synthetic_trajectory = LS.synthetic_trajectory

H = 3  # tasks.horizon of the shrunk config
B = 4  # learner.batch_size of the shrunk config


@pytest.fixture(scope="module", autouse=True)
def cache_dir(tmp_path_factory: pytest.TempPathFactory):
    """A persistent compilation cache for this module (and the subprocesses it starts)."""
    path = tmp_path_factory.mktemp("xla-cache")
    with LS.compile_cache(path):
        yield path


def host_params(learner: Learner) -> list[np.ndarray]:
    """Owned host copies of the learner's parameter leaves (donation reuses device buffers)."""
    return [np.array(x, copy=True) for x in jax.tree.leaves(learner.params)]


def fixed_batches(n: int) -> list[dict]:
    """``n`` seeded learner batches of the shrunk config's shapes (B trajectories, horizon H)."""
    return [make_batch(1000 + i, batch_size=B, horizon=H) for i in range(n)]


def test_learner_from_scratch_trains_on_replay_and_writes_priorities(tmp_path):
    """Inserted trajectories make replay ready at min_size; steps are finite, advance the version
    and write fresh priorities back; staleness (policy lag) is measured against the sampled
    trajectories' versions."""
    learner = Learner(shrunk_config(tmp_path), tmp_path)
    try:
        assert learner.start_kind == "initialised from scratch"
        assert learner.version == 0
        assert learner.horizon == H
        for i in range(3):
            assert learner.insert(synthetic_trajectory(i))
            assert not learner.ready()
        for i in range(3, 8):
            assert learner.insert(synthetic_trajectory(i))
        assert learner.ready()
        assert learner.replay.stats()["priority_updates"] == 0

        first = learner.train_step()
        for key in ("loss", "policy_lag_mean", "policy_lag_max", "replay_dropped_stale"):
            assert key in first, f"{key} missing from {sorted(first)}"
        assert all(math.isfinite(v) for v in first.values()), first
        assert learner.version == 1
        # Every trajectory was collected by version 0, which is what the first step trained.
        assert first["policy_lag_mean"] == first["policy_lag_max"] == 0.0
        assert learner.replay.stats()["priority_updates"] == B
        assert learner.replay.policy_version == 1

        second = learner.train_step()
        assert learner.version == 2
        # Same data one update later: the staleness (policy lag) of every sample is 1.
        assert second["policy_lag_mean"] == second["policy_lag_min"] == 1.0
        assert learner.replay.stats()["priority_updates"] == 2 * B
        assert second["loss"] != first["loss"]
    finally:
        learner.close()


def test_checkpoint_cadence_and_meta(tmp_path):
    """maybe_checkpoint saves only at multiples of every_steps (or when forced), and each
    checkpoint's meta names the kind, the model spec and the policy version."""
    cfg = shrunk_config(tmp_path, "checkpoint.keep=5")
    learner = Learner(cfg, tmp_path)
    try:
        assert learner.maybe_checkpoint() is None  # step 0: nothing learned yet
        saved = {}
        for batch in fixed_batches(4):
            learner.trainer.step(batch)
            saved[learner.version] = learner.maybe_checkpoint()
        learner.checkpoints.wait()
        assert saved[1] is None and saved[3] is None
        assert saved[2] == learner.checkpoints.path(2)
        assert saved[4] == learner.checkpoints.path(4)
        assert learner.checkpoints.steps() == [2, 4]
        # Asking again at a saved step returns the same folder instead of saving twice.
        assert learner.maybe_checkpoint(force=True) == learner.checkpoints.path(4)
        assert learner.checkpoints.steps() == [2, 4]

        learner.trainer.step(fixed_batches(5)[-1])
        assert learner.maybe_checkpoint() is None  # step 5 is not a multiple of 2 ...
        assert learner.maybe_checkpoint(force=True) == learner.checkpoints.path(
            5
        )  # ... unless forced
        learner.checkpoints.wait()
        assert learner.checkpoints.steps() == [2, 4, 5]

        for step in (2, 4, 5):
            meta = learner.checkpoints.read_meta(step)
            assert meta["kind"] == "rl"
            assert meta["model"] == spec_meta(cfg.model)
            assert meta["policy_version"] == step
            assert meta["step"] == step
    finally:
        learner.close()


def test_exact_resume_from_checkpoint(tmp_path):
    """A learner restarted on the run folder continues from its checkpoint bit for bit: the same
    losses and parameters as the learner that never stopped."""
    cfg = shrunk_config(tmp_path)
    batches = fixed_batches(4)

    a = Learner(cfg, tmp_path)
    try:
        for batch in batches[:2]:
            a.trainer.step(batch)
        assert a.maybe_checkpoint() == a.checkpoints.path(2)
        # No wait here: the async save must not be disturbed by the next (donating) steps.
        losses_a = [a.trainer.step(batch)[0]["loss"] for batch in batches[2:]]
        params_a = host_params(a)
        rng_a = np.asarray(a.trainer.state.rng)
        assert a.version == 4
    finally:
        a.close()
    with Checkpointer(tmp_path / "checkpoints") as ckpts:
        assert ckpts.steps() == [2]  # B can only have step 2 to resume from

    b = Learner(cfg, tmp_path)
    try:
        assert b.start_kind == "resumed at step 2"
        assert b.version == 2
        assert b.replay.policy_version == 2
        losses_b = [b.trainer.step(batch)[0]["loss"] for batch in batches[2:]]
        assert b.version == 4
        assert losses_b == losses_a
        params_b = host_params(b)
        assert len(params_b) == len(params_a)
        for x, y in zip(params_a, params_b, strict=True):
            np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(np.asarray(b.trainer.state.rng), rng_a)
    finally:
        b.close()


def test_init_from_a_behaviour_cloning_checkpoint(tmp_path):
    """checkpoint.init_from loads the parameters of a BC step folder and starts at version 0."""
    cfg0 = shrunk_config(tmp_path / "unused")
    warm = nnx.state(P.init_model(cfg0.model, 123))  # not the learner's own seed
    with Checkpointer(tmp_path / "bc" / "checkpoints", use_async=False) as ckpt:
        ckpt.save(7, warm, {"kind": "bc", "model": spec_meta(cfg0.model)})
    step_dir = tmp_path / "bc" / "checkpoints" / "7"
    assert step_dir.is_dir()

    cfg = shrunk_config(tmp_path / "rl", f"checkpoint.init_from={step_dir}")
    learner = Learner(cfg, tmp_path / "rl")
    try:
        assert learner.start_kind == f"initialised from {step_dir} (bc)"
        assert learner.version == 0
        got = host_params(learner)
        want = [np.asarray(x) for x in jax.tree.leaves(warm)]
        assert len(got) == len(want)
        for x, y in zip(want, got, strict=True):
            chex.assert_equal_shape([x, y])
            np.testing.assert_array_equal(x, y)
        # The warm start really replaced the learner's own (seed 0) initialisation.
        own = [np.asarray(x) for x in jax.tree.leaves(nnx.state(P.init_model(cfg.model, 0)))]
        assert any(not np.array_equal(x, y) for x, y in zip(own, got, strict=True))
        # It trains from there, and nothing was written into the warm start's folder.
        learner.trainer.step(fixed_batches(1)[0])
        assert learner.version == 1
    finally:
        learner.close()
    assert sorted(p.name for p in step_dir.parent.iterdir() if p.name.isdigit()) == ["7"]


def _child_env(cache: pathlib.Path, **extra: str) -> dict[str, str]:
    """The test's environment for a CPU-only child sharing the compilation cache."""
    return dict(os.environ, JAX_PLATFORMS="cpu", JAX_COMPILATION_CACHE_DIR=str(cache), **extra)


@pytest.mark.timeout(240)
def test_sigterm_checkpoints_and_exits_cleanly(tmp_path, cache_dir):
    """SIGTERM mid-training makes the learner save its current version and exit 0; a new
    Learner on the folder resumes at exactly that version."""
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), "sigterm", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_child_env(cache_dir),
    )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 180
        line = ""
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line or line.strip() == "ready":
                break
        assert line.strip() == "ready", f"child never got ready: {proc.stderr.read()}"
        time.sleep(0.5)  # let it be mid-loop (usually inside a step) when the signal lands
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    found = re.search(r"^version (\d+)$", out, re.M)
    assert found, out
    version = int(found.group(1))
    assert version >= 1
    ckpts = Checkpointer(tmp_path / "checkpoints")
    assert ckpts.latest_step() == version
    assert ckpts.read_meta(version)["policy_version"] == version
    ckpts.close()

    resumed = Learner(shrunk_config(tmp_path), tmp_path)
    try:
        assert resumed.start_kind == f"resumed at step {version}"
        assert resumed.version == version
    finally:
        resumed.close()


def test_batch_not_divisible_by_data_axis_is_a_config_error(tmp_path, cache_dir):
    """With a 2-way data axis (two forced CPU devices) a batch of 3 is refused with a
    ConfigError naming the field, before anything is compiled."""
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "badbatch", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env=_child_env(cache_dir, XLA_FLAGS="--xla_force_host_platform_device_count=2"),
    )
    assert "devices 2" in proc.stdout, proc.stdout + proc.stderr
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "ConfigError: learner.batch_size=3" in proc.stdout
    assert "data axis (2)" in proc.stdout


def test_mesh_larger_than_the_host_is_a_config_error(tmp_path):
    """mesh.data asking for more devices than exist is a config mistake, reported as one."""
    with pytest.raises(ConfigError, match=r"mesh\.data"):
        Learner(shrunk_config(tmp_path, f"mesh.data={jax.device_count() + 1}"), tmp_path)
