"""Learner speed on CPU: ``ShardedTrainer`` steps/s and trajectories/s, and model FLOP utilisation.

Prints one JSON line. For the chosen preset (default tiny), A-RIDE at batch sizes 8 and 16 and
DigiRL at batch 16, a ``ShardedTrainer`` over a ``(data=-1, model=1)`` mesh runs its full
``step``: host batch placed on the mesh, the jitted, donated update, metrics and priorities
fetched back to the host, which is what the learner loop pays per update. The first step is
reported apart (trace + lower, XLA compile, first run). The timed steps run in rounds, round
robin over the configurations and the peak matmul, so that a machine whose speed drifts (other
processes on a shared host) weighs on every figure alike and the ratios stay fair; the best
round's time per step is reported too.

Batches are synthetic and seeded, shaped like the replay's (H = 10 by default, lengths T uniform
in [3, H], everything past T zero-padded and masked, a mix of tap, swipe, text and key actions,
about half the trajectories successful). A few distinct batches are built once and cycled so that
building them is not timed.

Model FLOP utilisation: FLOPs per step are XLA's cost analysis of the compiled step; achieved
FLOP/s = FLOPs x steps/s; the peak is a jitted float32 ``n x n @ n x n`` matmul (2 n^3 FLOPs a
call) timed in the same rounds, with the same threads; MFU = achieved / matmul peak.

    python benchmarks/learner_speed.py [--quick] [--preset tiny] [--horizon 10]
"""

from __future__ import annotations

import os

# Before jax is imported: the platform is read once, at start-up.
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import argparse
import json
import platform
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from distrl_jax.config import LearnerConfig
from distrl_jax.devices import actions as A
from distrl_jax.learner import sharding
from distrl_jax.learner.train_step import ShardedTrainer, make_optimizer, rl_loss
from distrl_jax.models import action_codec as codec
from distrl_jax.models import policy as P
from distrl_jax.models import spec as specs

# Actions rows are drawn from (their token counts differ, as real actions do).
ACTIONS = (
    A.tap(0.5, 0.5),
    A.tap(0.12, 0.83),
    A.swipe(0.8, 0.5, 0.2, 0.5),
    A.type_text("bose soundsport free"),
    A.Action(A.ActionType.PRESS_HOME),
    A.Action(A.ActionType.PRESS_ENTER),
)


def synthetic_batch(spec: specs.ModelSpec, batch: int, horizon: int, seed: int) -> dict:
    """A seeded, padded batch of ``batch`` trajectories with lengths uniform in [3, horizon]."""
    rng = np.random.default_rng(seed)
    hs, ws = spec.image_size
    h = horizon
    lengths = rng.integers(min(3, h), h + 1, batch)
    mask = (np.arange(h)[None, :] < lengths[:, None]).astype(np.float32)
    obs_mask = np.arange(h + 1)[None, :] <= lengths[:, None]  # T+1 real observations
    screens = rng.integers(0, 256, (batch, h + 1, hs, ws, 3), dtype=np.uint8)
    screens[~obs_mask] = 0
    context = rng.integers(1, 300, (batch, h + 1, spec.context_len)).astype(np.int32)
    context[~obs_mask] = 0
    table = np.stack([codec.encode_action(a, spec) for a in ACTIONS])
    actions = table[rng.integers(0, len(table), (batch, h))] * mask[..., None].astype(np.int32)
    success = (rng.random(batch) < 0.5).astype(np.float32)
    last = np.eye(h, dtype=np.float32)[lengths - 1]  # one-hot at t = T-1
    return dict(
        screens=screens,
        context=context,
        actions=actions.astype(np.int32),
        rewards=last * success[:, None],
        penalties=np.where(rng.random((batch, h)) < 0.1, -0.1, 0.0).astype(np.float32) * mask,
        dones=last,
        behaviour_logp=(-3.0 + 0.5 * rng.standard_normal((batch, h))).astype(np.float32) * mask,
        mask=mask,
        success=success,
        is_weights=rng.uniform(0.5, 1.0, batch).astype(np.float32),
    )


def flops_of(compiled: Any) -> float:
    """FLOPs of a compiled program by XLA's cost analysis (0.0 if it gives none)."""
    cost: Any = compiled.cost_analysis()
    # Older jax returns a list with one dict per computation; newer returns the dict.
    if isinstance(cost, (list, tuple)):
        cost = cost[0] if cost else {}
    return float((cost or {}).get("flops", 0.0))


class Config:
    """One (algo, batch size): its trainer, its batches, and the time its timed steps took."""

    def __init__(self, spec: specs.ModelSpec, algo: str, batch_size: int, args: argparse.Namespace):
        """Build the trainer and the batches, run the first step (timed apart) and warm up."""
        mesh = sharding.make_mesh(-1, 1)
        cfg = LearnerConfig(algo=algo, batch_size=batch_size, critic_warmup_steps=0)
        self.batch_size = batch_size
        self.trainer = ShardedTrainer.create(
            spec, lambda g: rl_loss(g, cfg), make_optimizer(1e-4, 1.0), mesh, seed=0
        )
        self.batches = [
            synthetic_batch(spec, batch_size, args.horizon, seed=1000 * batch_size + i)
            for i in range(args.distinct_batches)
        ]
        # The first step split in its parts: trace + lower, XLA compile (both ahead of time; the
        # jitted call then finds the executable in jax's cache), and the first run.
        start = time.perf_counter()
        lowered = self.trainer._step.lower(
            self.trainer.state, self.trainer.put_batch(self.batches[0])
        )
        lowered_at = time.perf_counter()
        self.flops = flops_of(lowered.compile())
        compiled_at = time.perf_counter()
        self.metrics, _ = self.trainer.step(self.batches[0])
        self.first_step_s = time.perf_counter() - start
        self.lower_s, self.compile_s = lowered_at - start, compiled_at - lowered_at
        self.first_run_s = time.perf_counter() - compiled_at
        self.calls = 1
        for _ in range(args.warmup):
            self.run(1)
        self.steps, self.elapsed, self.round_ms = 0, 0.0, []

    def run(self, n: int) -> float:
        """Run ``n`` steps (cycling the batches); returns the seconds they took."""
        start = time.perf_counter()
        for _ in range(n):
            batch = self.batches[self.calls % len(self.batches)]
            self.metrics, _ = self.trainer.step(batch)
            self.calls += 1
        return time.perf_counter() - start

    def timed(self, n: int) -> None:
        """Run ``n`` timed steps and add them to the totals."""
        seconds = self.run(n)
        self.steps += n
        self.elapsed += seconds
        self.round_ms.append(1000.0 * seconds / n)

    def report(self, peak_gflops: float) -> dict[str, Any]:
        """The figures of this configuration (MFU against ``peak_gflops``)."""
        steps_per_s = self.steps / self.elapsed
        achieved = self.flops * steps_per_s / 1e9
        return {
            "first_step_s": round(self.first_step_s, 3),
            "trace_lower_s": round(self.lower_s, 3),
            "compile_s": round(self.compile_s, 3),
            "first_run_s": round(self.first_run_s, 3),
            "steps_per_s": round(steps_per_s, 3),
            "trajectories_per_s": round(steps_per_s * self.batch_size, 2),
            "ms_per_step": round(1000.0 * self.elapsed / self.steps, 2),
            "ms_per_step_best_round": round(min(self.round_ms), 2),
            "gflops_per_step": round(self.flops / 1e9, 4),
            "achieved_gflops": round(achieved, 3),
            "mfu": round(achieved / peak_gflops, 5),
            "timed_steps": self.steps,
            "loss_finite": bool(np.isfinite(self.metrics["loss"])),
        }


class MatmulPeak:
    """A jitted float32 ``[n, n] @ [n, n]`` (2 n^3 FLOPs a call), timed in rounds."""

    def __init__(self, n: int):
        """Build the operands and compile (with one warm run)."""
        key_a, key_b = jax.random.split(jax.random.key(0))
        self.a = jax.random.normal(key_a, (n, n), jnp.float32)
        self.b = jax.random.normal(key_b, (n, n), jnp.float32)
        self.matmul = jax.jit(jnp.matmul)
        self.flops = 2.0 * n**3
        for _ in range(2):
            jax.block_until_ready(self.matmul(self.a, self.b))
        self.calls, self.elapsed, self.round_gflops = 0, 0.0, []

    def timed(self, calls: int) -> None:
        """Run ``calls`` timed matmuls and add them to the totals."""
        start = time.perf_counter()
        for _ in range(calls):
            jax.block_until_ready(self.matmul(self.a, self.b))
        seconds = time.perf_counter() - start
        self.calls += calls
        self.elapsed += seconds
        self.round_gflops.append(self.flops * calls / seconds / 1e9)

    @property
    def gflops(self) -> float:
        """Mean GFLOP/s over every timed call."""
        return self.flops * self.calls / self.elapsed / 1e9


def main() -> None:
    """Run every configuration, interleaved, and print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps (same keys), ~1 min")
    parser.add_argument("--preset", default="tiny", choices=sorted(specs.PRESETS))
    parser.add_argument("--horizon", type=int, default=10, help="H: padded trajectory length")
    parser.add_argument("--matmul-n", type=int, default=1024, help="side of the peak matmul")
    args = parser.parse_args()
    args.rounds, steps_per_round, matmuls_per_round = (3, 1, 4) if args.quick else (10, 4, 10)
    args.warmup = 0 if args.quick else 2  # the first step already ran the compiled program once
    args.distinct_batches = 2 if args.quick else 4
    spec = specs.preset(args.preset)
    load_before = os.getloadavg()[0]

    configs = {
        "aride_8": Config(spec, "aride", 8, args),
        "aride_16": Config(spec, "aride", 16, args),
        "digirl_16": Config(spec, "digirl", 16, args),
    }
    peak = MatmulPeak(args.matmul_n)
    # Round robin: each round times the matmul and a few steps of every configuration, so a
    # change in the machine's speed (other processes, clocks) weighs on all figures alike and
    # the ratios between them stay fair.
    for _ in range(args.rounds):
        peak.timed(matmuls_per_round)
        for config in configs.values():
            config.timed(steps_per_round)
    figures = {name: config.report(peak.gflops) for name, config in configs.items()}
    print(
        json.dumps(
            {
                "benchmark": "learner_speed",
                "preset": spec.name,
                "params": P.param_count(P.abstract_model(spec)),
                "device": jax.devices()[0].device_kind,
                "platform": jax.default_backend(),
                "devices": jax.device_count(),
                "mesh": {"data": jax.device_count(), "model": 1},
                "algo": "aride",
                "horizon": args.horizon,
                "trajectory_length": f"uniform[3, {args.horizon}]",
                "batch": {"8": figures["aride_8"], "16": figures["aride_16"]},
                "digirl_batch16": figures["digirl_16"],
                "digirl_over_aride_steps_per_s_batch16": round(
                    figures["digirl_16"]["steps_per_s"] / figures["aride_16"]["steps_per_s"], 3
                ),
                "matmul_n": args.matmul_n,
                "matmul_peak_gflops": round(peak.gflops, 2),
                "matmul_peak_gflops_best_round": round(max(peak.round_gflops), 2),
                "mfu": figures["aride_16"]["mfu"],
                "rounds": args.rounds,
                "steps_per_round": steps_per_round,
                "quick": args.quick,
                "cpus": os.cpu_count(),
                "load_average_1min_before_after": [
                    round(load_before, 2),
                    round(os.getloadavg()[0], 2),
                ],
                "jax": jax.__version__,
                "machine": platform.machine(),
            }
        )
    )


if __name__ == "__main__":
    main()
