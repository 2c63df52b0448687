"""Device steps per second while training, against the pure device rate on the same devices.

* ``training``: the real runtime in this process (a :class:`LearnerService` training A-RIDE and
  ``--actors`` :class:`ActorService` s of ``--devices-per-actor`` simphones each, loopback
  ZeroMQ, async mode): the actors' tiny JAX policy chooses every action in one batched call per
  step while the learner trains beside them. Steps are those of the trajectories the learner
  received during the window.
* ``pure``: the same devices (same config, same grouping into actors, one stepping thread per
  device, trajectories recorded) played by a random policy, with no model and no learner.

Both use DESIGN §7's emulator-like latency, time-scaled. ``ratio = training / pure``; goal >= 0.9.

    python benchmarks/actor_efficiency.py [--quick] [--window S]
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading

os.environ.setdefault("JAX_PLATFORMS", "cpu")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the shared harnesses beside us

from async_vs_sync import compile_cache, reference_config, reference_parser, report_head, run_mode
from scaling import play_for, random_act

from distrl_jax.config import Config
from distrl_jax.models.tokenizer import ContextEncoder

GOAL_RATIO = 0.9


def pure_rate(cfg: Config, warmup_s: float, window_s: float) -> dict[str, float]:
    """Random-policy device steps/s on ``num_actors`` groups of ``device.count`` devices at once."""
    per_actor: list[dict[str, float]] = [{} for _ in range(cfg.runtime.num_actors)]
    # transformers' lazy imports are not thread-safe: load the tokenizer once before the threads.
    ContextEncoder(cfg.model)

    def one(i: int) -> None:
        act = random_act(cfg, seed=i)
        per_actor[i] = play_for(cfg, cfg.device.count, act, warmup_s, window_s, seed=i + 1)

    threads = [
        threading.Thread(target=one, args=(i,), name=f"bench-pure-{i}")
        for i in range(cfg.runtime.num_actors)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if any(not p for p in per_actor):
        raise RuntimeError("a pure-rate thread failed (see its traceback above)")
    return {
        "device_steps_per_s": round(sum(p["device_steps_per_s"] for p in per_actor), 2),
        "trajectories_per_min": round(sum(p["trajectories_per_min"] for p in per_actor), 2),
        "window_s": window_s,
    }


def main() -> None:
    """Measure both arms and print one JSON line."""
    ap = reference_parser(__doc__, "short windows (same keys, ~1 minute)")
    ap.add_argument("--window", type=float, default=0.0, help="timed seconds per arm")
    args = ap.parse_args()
    window = args.window or (10.0 if args.quick else 120.0)
    warmup = 2.0 if args.quick else 15.0
    cfg = reference_config(
        args, ["checkpoint.every_steps=100000", "replay.min_size=8", "replay.samples_per_insert=1"]
    )
    with compile_cache(), contextlib.redirect_stdout(sys.stderr):
        pure = pure_rate(cfg, warmup, window)
        training = run_mode(cfg, warmup, window)
    ratio = training["device_steps_per_s"] / pure["device_steps_per_s"]
    print(
        json.dumps(
            {
                **report_head("actor_efficiency", args),
                "config": {
                    "actors": args.actors,
                    "devices_per_actor": args.devices_per_actor,
                    "model": cfg.model.name,
                    "batch_size": cfg.learner.batch_size,
                    "window_s": window,
                },
                "pure": pure,
                "training": training,
                "ratio": round(ratio, 3),
                "goal": GOAL_RATIO,
                "passed": bool(ratio >= GOAL_RATIO),
            }
        )
    )


if __name__ == "__main__":
    main()
