"""Behaviour-cloning warm start, end to end, per suite: demos, training, held-out evaluation.

For each suite (General, Web Shopping) this runs ``distrl_jax.pretrain.run`` with the tiny model
into a temporary run folder and prints one JSON line with the demonstrator's success, the number
of demonstration states, the training wall time, and the greedy clone's success on the held-out
validation split (and on the first training tasks, to show the gap), with the random-policy floor
measured on the same tasks in the same run for comparison.

    python benchmarks/bc_warm_start.py [--quick] [--steps N] [--suites general,webshop]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import pathlib
import platform
import sys
import tempfile
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

from distrl_jax import pretrain
from distrl_jax.config import apply_overrides, load_preset
from distrl_jax.evaluate import BASELINES, eval_tasks, evaluate, evaluate_policy, make_env
from distrl_jax.models.jax_policy import JaxPolicy
from distrl_jax.tasks.suites import load_tasks


def one_suite(suite: str, steps: int, quick: bool, seed: int) -> dict:
    """Warm start on ``suite``; returns its figures."""
    overrides = [
        f"tasks.train={suite}",
        f"tasks.eval={suite}",
        f"pretrain.steps={steps}",
        f"seed={seed}",
    ]
    if quick:
        overrides += ["pretrain.max_tasks=40", "eval.max_tasks=20"]
    cfg = apply_overrides(load_preset("smoke"), overrides)
    with tempfile.TemporaryDirectory() as tmp:
        run = pathlib.Path(tmp)
        cfg = dataclasses.replace(cfg, run_dir=str(run))
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(sys.stderr):  # stdout carries only the JSON line
            figures = pretrain.run(cfg, run, progress=False)
        wall = time.perf_counter() - t0
        spec, params, _ = pretrain_state(run)
    policy = JaxPolicy(spec, params, greedy=True)
    train_tasks = load_tasks(suite, split="train")[: 20 if quick else 71]
    train = evaluate_policy(cfg, policy, train_tasks, seed=seed + 2)
    val_tasks = eval_tasks(cfg)
    random_records = evaluate(make_env(cfg, seed), val_tasks, BASELINES["random"](seed))
    return {
        "demo_success": round(figures["demo_success"], 4),
        "demo_states": int(figures["demo_states"]),
        "train_seconds": round(figures["train_seconds"], 1),
        "wall_seconds": round(wall, 1),
        "val_success": round(figures["eval_success"], 4),
        "val_episodes": int(figures["eval_episodes"]),
        "train_tasks_success": round(sum(r.success for r in train) / len(train), 4),
        "train_tasks_episodes": len(train),
        "random_val_success": round(
            sum(r.success for r in random_records) / len(random_records), 4
        ),
    }


def pretrain_state(run: pathlib.Path):
    """The warm start's (spec, params, meta)."""
    from distrl_jax.checkpoint.policy_loader import load_policy_state

    return load_policy_state(run / "checkpoints")


def main() -> None:
    """Parse flags, run each suite, print one JSON line."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="40 tasks, 200 steps, 20 eval tasks")
    ap.add_argument("--steps", type=int, default=0, help="BC steps (default 1500; quick 200)")
    ap.add_argument("--suites", default="general,webshop")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    steps = args.steps or (200 if args.quick else 1500)
    out = {
        "benchmark": "bc_warm_start",
        "preset": "tiny",
        "steps": steps,
        "quick": args.quick,
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }
    for suite in args.suites.split(","):
        out[suite] = one_suite(suite, steps, args.quick, args.seed)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
