"""Replay throughput: inserts/s, batch-64 samples/s (alone and with a concurrent ingest thread),
and bytes per stored step, with raw and zlib-compressed screens. Prints one JSON line.

Trajectories are synthetic but shaped like the lead's defaults (H = 10, screens 96x48x3 uint8,
context 64 int32, actions 24 int32, T uniform in [3, H]); screens look like simphone's flat UI
renders (a status bar, coloured widgets with text-like marks) and consecutive screens mostly
repeat the previous one with a small change, which is what compression exploits.

    python benchmarks/replay_speed.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import threading
import time

import numpy as np

from distrl_jax.replay.buffer import PrioritizedTrajectoryReplay
from distrl_jax.types import Trajectory


def ui_screen(
    rng: np.random.Generator, hs: int, ws: int, previous: np.ndarray | None
) -> np.ndarray:
    """A flat-UI-like screen; with ``previous``, that screen with one widget changed."""
    if previous is not None:
        screen = previous.copy()
        y, x = int(rng.integers(6, hs - 8)), int(rng.integers(0, ws - 8))
        screen[y : y + 6, x : x + 8] = rng.integers(0, 256, 3, dtype=np.uint8)
        return screen
    screen = np.full((hs, ws, 3), 245, np.uint8)
    screen[: max(1, hs // 16)] = (30, 30, 30)
    for _ in range(10):
        y, x = int(rng.integers(6, hs - 8)), int(rng.integers(0, ws - 8))
        h, w = int(rng.integers(3, 12)), int(rng.integers(6, ws - x + 1))
        screen[y : y + h, x : x + w] = rng.integers(0, 256, 3, dtype=np.uint8)
        marks = rng.random((2, w)) < 0.4  # text-like strokes
        screen[y + 1 : y + 3, x : x + w][marks[: screen[y + 1 : y + 3].shape[0]]] = 20
    return screen


def make_pool(n: int, horizon: int, hs: int, ws: int, lc: int, la: int, seed: int) -> list:
    """``n`` distinct trajectories (generated once: their cost is not replay's)."""
    rng = np.random.default_rng(seed)
    pool = []
    for i in range(n):
        t = int(rng.integers(3, horizon + 1))
        screens = [ui_screen(rng, hs, ws, None)]
        for _ in range(t):
            fresh = rng.random() < 0.3  # an action that opens a new screen
            screens.append(ui_screen(rng, hs, ws, None if fresh else screens[-1]))
        pool.append(
            Trajectory(
                screens=np.stack(screens),
                context=rng.integers(0, 32000, (t + 1, lc), dtype=np.int32),
                actions=rng.integers(0, 300, (t, la), dtype=np.int32),
                rewards=np.zeros(t, np.float32),
                penalties=np.zeros(t, np.float32),
                dones=np.zeros(t, np.float32),
                behaviour_logp=rng.normal(size=t).astype(np.float32),
                policy_version=0,
                episode_id=i,
            )
        )
    return pool


def measure(
    pool: list, args: argparse.Namespace, compress: bool, gather_threads: int
) -> dict[str, float]:
    """Insert and sample rates of one configuration, alone and concurrently."""
    replay = PrioritizedTrajectoryReplay(
        capacity=args.capacity,
        horizon=args.horizon,
        compress_screens=compress,
        gather_threads=gather_threads,
        seed=0,
    )
    for traj in pool[: args.capacity] * (args.capacity // len(pool) + 1):  # fill (page faults)
        replay.insert(traj)
    n_insert = args.inserts // (8 if compress else 1)
    start = time.perf_counter()
    for i in range(n_insert):
        replay.insert(pool[i % len(pool)])
    inserts_per_s = n_insert / (time.perf_counter() - start)

    rng = np.random.default_rng(1)
    n_sample = args.samples // (8 if compress else 1)
    priorities = rng.random(args.batch) * 10
    start = time.perf_counter()
    for _ in range(n_sample):
        batch = replay.sample(args.batch, rng)
        replay.update_priorities(batch.indices, priorities)  # a train step's full round trip
    samples_per_s = n_sample / (time.perf_counter() - start)

    # Concurrent: an ingest thread inserts at --ingest-rate while this thread samples. (Flat out,
    # a pure-Python ingest loop holds the GIL and starves the sampler: real ingest is paced by
    # actors, a few trajectories/s per device.)
    stop, inserted = threading.Event(), [0]

    def ingest() -> None:
        begin = time.perf_counter()
        while not stop.is_set():
            if inserted[0] < args.ingest_rate * (time.perf_counter() - begin):
                replay.insert(pool[inserted[0] % len(pool)])
                inserted[0] += 1
            else:
                time.sleep(0.001)

    thread = threading.Thread(target=ingest)
    sampled, start = 0, time.perf_counter()
    thread.start()
    while time.perf_counter() - start < args.concurrent_s:
        batch = replay.sample(args.batch, rng)
        replay.update_priorities(batch.indices, priorities)
        sampled += 1
    stop.set()
    thread.join()
    elapsed = time.perf_counter() - start
    s = replay.stats()
    replay.close()
    return {
        "inserts_per_s": round(inserts_per_s, 1),
        "samples_per_s": round(samples_per_s, 1),
        "trajectories_sampled_per_s": round(samples_per_s * args.batch, 1),
        "concurrent_inserts_per_s": round(inserted[0] / elapsed, 1),
        "concurrent_samples_per_s": round(sampled / elapsed, 1),
        "bytes_per_step": round(s["bytes_per_step"], 1),
        "bytes_in_use": int(s["bytes_in_use"]),
        "torn_redraws": int(s["torn_redraws"]),
    }


def main() -> None:
    """Run both configurations and print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts, same keys, < 1 min")
    parser.add_argument("--horizon", type=int, default=10)
    parser.add_argument("--screen", type=int, nargs=2, default=(96, 48), metavar=("HS", "WS"))
    parser.add_argument("--context", type=int, default=64)
    parser.add_argument("--action-tokens", type=int, default=24)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--gather-threads", type=int, default=2)
    parser.add_argument("--ingest-rate", type=float, default=1000.0, help="trajectories/s")
    args = parser.parse_args()
    args.capacity = 256 if args.quick else 2048
    args.inserts = 2_000 if args.quick else 20_000
    args.samples = 200 if args.quick else 2_000
    args.concurrent_s = 1.0 if args.quick else 5.0
    pool = make_pool(64, args.horizon, *args.screen, args.context, args.action_tokens, seed=0)
    raw = measure(pool, args, compress=False, gather_threads=args.gather_threads)
    raw1 = measure(pool, args, compress=False, gather_threads=1)
    packed = measure(pool, args, compress=True, gather_threads=args.gather_threads)
    print(
        json.dumps(
            {
                "benchmark": "replay_speed",
                "quick": args.quick,
                "params": {
                    "capacity": args.capacity,
                    "horizon": args.horizon,
                    "screen": [*args.screen, 3],
                    "context": args.context,
                    "action_tokens": args.action_tokens,
                    "batch": args.batch,
                    "trajectory_length": f"uniform[3, {args.horizon}]",
                    "sampling": "prioritized",
                    "timed_inserts": args.inserts,
                    "timed_sample_calls": args.samples,
                    "compressed_counts_divided_by": 8,
                    "concurrent_s": args.concurrent_s,
                    "concurrent_ingest_rate": args.ingest_rate,
                    "gather_threads": args.gather_threads,
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "numpy": np.__version__,
                },
                **{f"raw_{k}": v for k, v in raw.items()},
                "raw_1thread_samples_per_s": raw1["samples_per_s"],
                "raw_1thread_inserts_per_s": raw1["inserts_per_s"],
                **{f"zlib_{k}": v for k, v in packed.items()},
                "compression_ratio": round(raw["bytes_per_step"] / packed["bytes_per_step"], 2),
            }
        )
    )


if __name__ == "__main__":
    main()
