"""Shrunk configs and synthetic trajectories for the learner and runtime tests; also a script.

Imported by ``tests/learner/test_learner.py`` and ``tests/runtime/test_services.py`` for
:func:`shrunk_config` and :func:`synthetic_trajectory`. Run as a script it is the learner side of
a subprocess test:

* ``python learner_script.py sigterm RUN_DIR`` — a :class:`Learner` with
  ``install_signal_handlers`` trains on synthetic data, prints ``ready`` after its first step,
  keeps training until SIGTERM asks it to stop, then checkpoints (forced), closes, prints
  ``version N`` and exits 0.
* ``python learner_script.py badbatch RUN_DIR`` — run with two (forced) CPU devices: builds a
  Learner whose ``learner.batch_size=3`` cannot split over the data axis; prints
  ``ConfigError: ...`` and exits 2 when the Learner refuses it (exit 1 when it does not).
"""

from __future__ import annotations

import contextlib
import pathlib
import sys
import threading
import time
from collections.abc import Callable, Collection, Iterator

import numpy as np

from distrl_jax.config import Config, apply_overrides, load_preset
from distrl_jax.devices import actions as A
from distrl_jax.models.action_codec import encode_action
from distrl_jax.models.spec import ModelSpec, tiny
from distrl_jax.types import Trajectory

# The smoke preset shrunk so that a learner step and a checkpoint take well under a second.
SHRUNK = (
    "learner.batch_size=4",
    "replay.min_size=4",
    "replay.capacity=64",
    "tasks.horizon=3",
    "checkpoint.every_steps=2",
    "runtime.broadcast_every=2",
    "learner.steps=6",
    "device.count=2",
    "checkpoint.init_from=",  # from scratch: the smoke preset's BC warm start is launch's job
)


def shrunk_config(run_dir: str | pathlib.Path, *overrides: str) -> Config:
    """``load_preset("smoke")`` with :data:`SHRUNK`, ``run_dir`` and ``overrides`` applied."""
    return apply_overrides(load_preset("smoke"), [*SHRUNK, f"run_dir={run_dir}", *overrides])


@contextlib.contextmanager
def compile_cache(directory: str | pathlib.Path) -> Iterator[None]:
    """Use a persistent XLA compilation cache in ``directory`` for the ``with`` block.

    Every Learner jits a fresh closure, so without a cache each one compiles its step again
    (~10 s on two cores); with it the second and later Learners (and subprocesses given
    ``JAX_COMPILATION_CACHE_DIR``) load the executable. The previous setting is restored after.
    """
    import jax
    from jax.experimental.compilation_cache import compilation_cache as cc

    before = jax.config.jax_compilation_cache_dir
    cc.set_cache_dir(str(directory))
    cc.reset_cache()  # the cache is set up once per process; make it read the new directory
    try:
        yield
    finally:
        cc.set_cache_dir(before)
        cc.reset_cache()


def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll ``predicate`` until true; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.02)


def live_threads(names: Collection[str]) -> list[str]:
    """Names of the threads called one of ``names`` that are still alive."""
    return [t.name for t in threading.enumerate() if t.name in names and t.is_alive()]


def synthetic_trajectory(
    seed: int,
    *,
    spec: ModelSpec | None = None,
    length: int | None = None,
    policy_version: int = 0,
    screen_shape: tuple[int, int] | None = None,
) -> Trajectory:
    """A valid, seeded trajectory of the tiny model's shapes (T in 1..3 unless ``length``).

    Actions are real encoded taps (so the policy's log-probabilities are of well-formed token
    sequences); a successful trajectory has reward 1 and done on its last step.
    ``screen_shape`` overrides the screen's (H, W) to build a trajectory of the wrong shape.
    """
    spec = spec or tiny()
    rng = np.random.default_rng(seed)
    t = int(length if length is not None else rng.integers(1, 4))
    h, w = screen_shape or spec.image_size
    success = bool(rng.random() < 0.5)
    rewards = np.zeros(t, np.float32)
    dones = np.zeros(t, np.float32)
    if success:
        rewards[-1] = 1.0
        dones[-1] = 1.0
    taps = [A.tap(float(y), float(x)) for y, x in rng.uniform(0.05, 0.95, (t, 2))]
    return Trajectory(
        screens=rng.integers(0, 256, (t + 1, h, w, 3), dtype=np.uint8),
        context=rng.integers(1, 200, (t + 1, spec.context_len), dtype=np.int32),
        actions=np.stack([encode_action(a, spec) for a in taps]).astype(np.int32),
        rewards=rewards,
        penalties=-0.05 * (rng.random(t) < 0.3).astype(np.float32),
        dones=dones,
        behaviour_logp=rng.uniform(-8.0, -1.0, t).astype(np.float32),
        task="Open the clock app",
        success=success,
        policy_version=policy_version,
        actor_id=0,
        episode_id=seed,
    )


def _sigterm(run_dir: pathlib.Path) -> int:
    """Train until SIGTERM, then checkpoint and report the version (see the module docstring)."""
    from distrl_jax.learner.learner import Learner, install_signal_handlers

    learner = Learner(shrunk_config(run_dir), run_dir)
    install_signal_handlers(learner)
    for i in range(8):
        learner.insert(synthetic_trajectory(i))
    seed = 100
    while not learner.stopping:
        learner.train_step()
        # A fresh trajectory per step keeps replay from going stale however long the loop runs.
        learner.insert(synthetic_trajectory(seed, policy_version=learner.version))
        seed += 1
        if learner.version == 1:
            print("ready", flush=True)
    learner.maybe_checkpoint(force=True)
    learner.close()
    print(f"version {learner.version}", flush=True)
    return 0


def _badbatch(run_dir: pathlib.Path) -> int:
    """Try a batch of 3 on a 2-way data axis; exit 2 with the ConfigError (see the docstring)."""
    import jax

    from distrl_jax.config import ConfigError
    from distrl_jax.learner.learner import Learner

    print(f"devices {jax.device_count()}", flush=True)
    try:
        Learner(shrunk_config(run_dir, "learner.batch_size=3", "replay.min_size=3"), run_dir)
    except ConfigError as e:
        print(f"ConfigError: {e}", flush=True)
        return 2
    return 1


if __name__ == "__main__":
    mode, where = sys.argv[1], pathlib.Path(sys.argv[2])
    sys.exit({"sigterm": _sigterm, "badbatch": _badbatch}[mode](where))
