"""Wall time until held-out success reaches a target: A-RIDE async against DigiRL sync.

Both arms run the real runtime in this process (:class:`LearnerService` + ``--actors``
:class:`ActorService` s over loopback ZeroMQ) on the same simulated emulators (DESIGN §7's latency
and hangs, time-scaled), from the same start (the behaviour-cloning warm start, trained once and
cached under ``runs/warm-starts/``; ``--quick`` starts from scratch), for the same wall-clock
budget; only ``learner.algo`` and ``runtime.mode`` differ:

* ``aride_async``: ``learner.algo=aride``, ``runtime.mode=async``;
* ``digirl_sync``: ``learner.algo=digirl``, ``runtime.mode=sync``.

Every broadcast commits a checkpoint (``runtime.broadcast=path``) with its wall time. After the
run, up to ``--evals`` of them (evenly spread, always the start and the last) are evaluated
greedily on the held-out split without device latency, so evaluation never costs training time.
``time_to_target_s`` is the wall time of the first checkpoint at or above ``--target`` (null when
none is). ``ratio = digirl_sync / aride_async`` time to target; goal >= 3 (the paper reports
3x). In ``--quick`` mode the budget is tiny: the keys are the same, times are usually
null and the success reached is reported.

    python benchmarks/training_efficiency.py [--quick] [--budget S] [--target X]
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import pathlib
import sys
import tempfile
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the shared harness beside us

import async_vs_sync as bench

from distrl_jax.checkpoint.policy_loader import load_policy_state
from distrl_jax.config import Config, apply_overrides
from distrl_jax.runtime.training import evaluate_params, resolve_init

ARMS = {"aride_async": ("aride", "async"), "digirl_sync": ("digirl", "sync")}
GOAL_RATIO = 3.0  # the DistRL paper reports 3x training efficiency


def spread(items: list, k: int) -> list:
    """At most ``k`` items, evenly spaced, keeping the first and the last."""
    if len(items) <= k:
        return items
    idx = sorted({round(i * (len(items) - 1) / (k - 1)) for i in range(k)})
    return [items[i] for i in idx]


def run_arm(cfg: Config, budget_s: float, evals: int, target: float) -> dict[str, object]:
    """Train one arm for ``budget_s`` seconds, then evaluate its checkpoints."""
    with tempfile.TemporaryDirectory(prefix=f"bench-train-{cfg.learner.algo}-") as tmp:
        run_dir = pathlib.Path(tmp)
        cfg = dataclasses.replace(cfg, run_dir=tmp)
        harness = bench.RuntimeHarness(cfg, run_dir)
        try:
            harness.start()
            t0 = time.monotonic()
            while time.monotonic() - t0 < budget_s:
                harness.check()
                time.sleep(0.1)
            counters = harness.counters()
        finally:
            harness.stop()
        points = [(0.0, 0)] + [
            (t - t0, step) for t, step, _ in harness.sink.having("time_broadcast_s") if t >= t0
        ]
        eval_cfg = apply_overrides(cfg, ["device.latency=none", "device.hang_prob=0"])
        curve = []
        for seconds, version in spread(points, evals):
            path = run_dir / "checkpoints" / str(version)
            if not path.is_dir():
                continue  # pruned by checkpoint.keep (it is set high enough not to be)
            _, params, _ = load_policy_state(path, cfg.model)
            total = evaluate_params(eval_cfg, params, version, run_dir, f"v{version}", quiet=True)
            curve.append([round(seconds, 1), version, round(total.success_rate, 4)])
    reached = next((c for c in curve if c[2] >= target), None)
    return {
        "algo": cfg.learner.algo,
        "mode": cfg.runtime.mode,
        "budget_s": budget_s,
        "learner_steps": int(counters["learner_steps"]),
        "trajectories": int(counters["trajectories"]),
        "curve": curve,  # [seconds, policy version, held-out success]
        "start_success": curve[0][2] if curve else None,
        "best_success": max((c[2] for c in curve), default=None),
        "time_to_target_s": reached[0] if reached else None,
    }


def main() -> None:
    """Run both arms and print one JSON line."""
    ap = bench.reference_parser(__doc__, "tiny budget from scratch (same keys)")
    ap.add_argument("--budget", type=float, default=0.0, help="training seconds per arm")
    ap.add_argument("--target", type=float, default=0.45, help="held-out success to reach")
    ap.add_argument("--evals", type=int, default=0, help="checkpoints evaluated per arm")
    ap.add_argument("--runs", default="runs", help="where runs/warm-starts/ lives")
    args = ap.parse_args()
    budget = args.budget or (15.0 if args.quick else 200.0)
    evals = args.evals or (2 if args.quick else 8)
    overrides = [
        "checkpoint.every_steps=100000",  # broadcasts commit the checkpoints we evaluate
        "checkpoint.keep=100000",
        "runtime.broadcast=path",
        "runtime.broadcast_every=10",
        "replay.min_size=8",
        "replay.samples_per_insert=1",
        f"eval.max_tasks={20 if args.quick else 0}",
    ]
    cfg = bench.reference_config(args, overrides)
    with bench.compile_cache(), contextlib.redirect_stdout(sys.stderr):
        if not args.quick:  # the BC warm start, trained once (~6 min) and reused after
            cfg = apply_overrides(cfg, ["checkpoint.init_from=bc"])
            cfg = resolve_init(cfg, pathlib.Path(args.runs) / "bench-training-efficiency")
        arms = {
            name: run_arm(
                apply_overrides(cfg, [f"learner.algo={algo}", f"runtime.mode={mode}"]),
                budget,
                evals,
                args.target,
            )
            for name, (algo, mode) in ARMS.items()
        }
    a, d = arms["aride_async"]["time_to_target_s"], arms["digirl_sync"]["time_to_target_s"]
    ratio = round(d / a, 3) if a and d else None
    print(
        json.dumps(
            {
                **bench.report_head("training_efficiency", args),
                "config": {
                    "init": "scratch" if args.quick else "bc warm start",
                    "model": cfg.model.name,
                    "tasks": f"{cfg.tasks.train}:{cfg.tasks.train_split}",
                    "eval": f"{cfg.tasks.eval}:{cfg.tasks.eval_split}",
                    "eval_max_tasks": cfg.eval.max_tasks,
                    "actors": args.actors,
                    "devices_per_actor": args.devices_per_actor,
                    "budget_s": budget,
                    "target": args.target,
                },
                **arms,
                "ratio": ratio,
                "goal": GOAL_RATIO,
                "passed": bool(ratio is not None and ratio >= GOAL_RATIO),
            }
        )
    )


if __name__ == "__main__":
    main()
