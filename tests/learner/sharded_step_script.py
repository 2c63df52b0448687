"""Seeded learner batches, and (run as a script) the same train steps on three device meshes.

``make_batch`` is imported by the learner tests. Run as a script (by ``test_sharding.py``, in a
subprocess with ``XLA_FLAGS=--xla_force_host_platform_device_count=8 JAX_PLATFORMS=cpu``), it
builds the same seeded trainer on a 1-device mesh, a 4x2 (data x model) mesh and an 8x1 mesh,
runs two steps on one batch on each, writes every mesh's final parameters to
``OUT_DIR/<mesh>.npz`` and prints one JSON line: losses, priorities and how the parameters and
the batch were actually laid out.

Usage: ``python sharded_step_script.py OUT_DIR``
"""

from __future__ import annotations

import concurrent.futures
import json
import pathlib
import sys

import numpy as np

from distrl_jax.devices import actions as A
from distrl_jax.models import action_codec as codec
from distrl_jax.models.spec import ModelSpec, tiny


def _random_action(rng: np.random.Generator) -> A.Action:
    """One action of a random kind, so that every verb and the location tokens get trained."""
    kind = int(rng.integers(0, 6))
    y, x, y1, x1 = (float(v) for v in rng.uniform(0.05, 0.95, 4))
    return [
        A.tap(y, x),
        A.swipe(y, x, y1, x1),
        A.type_text("ab"),
        A.BACK,
        A.HOME,
        A.ENTER,
    ][kind]


def make_batch(
    seed: int, batch_size: int = 8, horizon: int = 10, spec: ModelSpec | None = None
) -> dict:
    """A seeded host batch (the ``BATCH_FIELDS``) of trajectories with different lengths.

    Trajectory b has T_b real steps (``mask``); about half succeed, with reward 1 and done at
    their last real step (whose action is COMPLETE); failures are done when they end before the
    horizon and cut (not done) when they reach it. Padding steps hold pad actions and zeros.
    """
    spec = spec or tiny()
    rng = np.random.default_rng(seed)
    b, h = batch_size, horizon
    hs, ws = spec.image_size
    lengths = rng.integers(1, h + 1, b)
    lengths[0] = h  # at least one trajectory runs to the horizon, one ends after a step
    lengths[-1] = 1
    success = (rng.random(b) < 0.5).astype(np.float32)
    mask = (np.arange(h)[None, :] < lengths[:, None]).astype(np.float32)
    rewards = np.zeros((b, h), np.float32)
    dones = np.zeros((b, h), np.float32)
    actions = np.zeros((b, h, spec.action_len), np.int32)
    for i, n in enumerate(lengths):
        for t in range(n):
            actions[i, t] = codec.encode_action(_random_action(rng), spec)
        if success[i]:
            rewards[i, n - 1] = 1.0
            dones[i, n - 1] = 1.0
            actions[i, n - 1] = codec.encode_action(A.COMPLETE, spec)
        elif n < h:
            dones[i, n - 1] = 1.0
    context = rng.integers(codec.BYTE_OFFSET, codec.VOCAB_SIZE, (b, h + 1, spec.context_len))
    context_len = rng.integers(8, spec.context_len, (b, h + 1, 1))
    context = np.where(np.arange(spec.context_len) < context_len, context, codec.PAD_ID)
    return {
        "screens": rng.integers(0, 256, (b, h + 1, hs, ws, 3), dtype=np.uint8),
        "context": context.astype(np.int32),
        "actions": actions,
        "rewards": rewards,
        "penalties": np.where(rng.random((b, h)) < 0.2, -0.05, 0.0).astype(np.float32) * mask,
        "dones": dones,
        "behaviour_logp": (rng.uniform(-8.0, -2.0, (b, h)) * mask).astype(np.float32),
        "mask": mask,
        "success": success,
        "is_weights": rng.uniform(0.5, 1.0, b).astype(np.float32),
    }


def _run_on(mesh, batch: dict) -> tuple[dict, dict[str, np.ndarray]]:
    """Two steps of a seed-0 trainer on ``mesh``: (JSON-able report, final params by path)."""
    import jax

    from distrl_jax.config import LearnerConfig
    from distrl_jax.learner import sharding
    from distrl_jax.learner import train_step as TS

    cfg = LearnerConfig(critic_warmup_steps=0)  # the policy moves from the first step
    tx = TS.make_optimizer(1e-3, 1.0)
    trainer = TS.ShardedTrainer.create(tiny(), lambda g: TS.rl_loss(g, cfg), tx, mesh, seed=0)
    losses, priorities = [], []
    for _ in range(2):
        metrics, prio = trainer.step(batch)
        losses.append(metrics["loss"])
        priorities.append(prio.tolist())
    params, model_sharded = {}, {}
    for path, leaf in jax.tree_util.tree_leaves_with_path(trainer.state.params):
        name = sharding._path_str(path)
        params[name] = np.asarray(jax.device_get(leaf))
        if sharding.MODEL in leaf.sharding.spec:
            model_sharded[name] = {
                "spec": str(leaf.sharding.spec),
                "shape": list(leaf.shape),
                "shard_shape": list(leaf.addressable_shards[0].data.shape),
            }
    screens = trainer.put_batch(batch)["screens"]
    report = {
        "mesh": dict(mesh.shape),
        "devices": len(mesh.devices.flat),
        "losses": losses,
        "priorities": priorities,
        "step_count": trainer.step_count,
        "model_sharded": model_sharded,
        "batch_spec": str(screens.sharding.spec),
        "batch_shard_shape": list(screens.addressable_shards[0].data.shape),
    }
    return report, params


def main(out_dir: str) -> None:
    """Run the three meshes, save their params under ``out_dir`` and print the JSON report."""
    import jax

    from distrl_jax.learner import sharding

    batch = make_batch(seed=7, batch_size=8)
    meshes = {
        "1x1": sharding.make_mesh(devices=jax.devices()[:1]),
        "4x2": sharding.make_mesh(4, 2),
        "8x1": sharding.make_mesh(8, 1),
    }
    # One thread per mesh: XLA compiles without the GIL, so the three compiles overlap.
    with concurrent.futures.ThreadPoolExecutor(len(meshes)) as pool:
        futures = {name: pool.submit(_run_on, mesh, batch) for name, mesh in meshes.items()}
        reports = {}
        for name, future in futures.items():
            reports[name], params = future.result()
            np.savez(pathlib.Path(out_dir) / f"{name}.npz", **params)
    print(json.dumps({"device_count": jax.device_count(), "runs": reports}))


if __name__ == "__main__":
    main(sys.argv[1])
