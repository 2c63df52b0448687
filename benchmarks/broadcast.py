"""Time from a checkpoint's commit until every one of N actors acts with it, per broadcast mode.

The real runtime runs in this process (:class:`LearnerService` and N :class:`ActorService` s over
loopback ZeroMQ, async mode, emulator-like time-scaled latency). The learner announces a new
version every ``runtime.broadcast_every`` steps: with ``runtime.broadcast=path`` it commits an
Orbax checkpoint and publishes its path (each actor restores it), with ``inline`` it publishes the
parameters in chunks. The commit time is when the learner's broadcast returns (checkpoint written
and announced: its metrics record); an actor "acts with" a version from the moment its policy
holds it (``policy.version``, polled every millisecond; the next batched policy call uses it).

For each version: ``lag = max over actors (adopted) - commit``. The figure is the median lag as a
fraction of the update interval (median time between broadcasts). Goal: < 0.10 in both modes.

    python benchmarks/broadcast.py [--quick] [--actors N] [--window S]
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import os
import pathlib
import statistics
import sys
import tempfile
import threading
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the shared harness beside us

import async_vs_sync as bench

from distrl_jax.config import Config, apply_overrides

GOAL_FRACTION = 0.10


def watch_versions(harness: bench.RuntimeHarness, stop: threading.Event) -> list[dict[int, float]]:
    """Poll each actor's policy version; per actor, ``{version: first time seen}``."""
    seen: list[dict[int, float]] = [{} for _ in harness.actors]
    while not stop.is_set():
        now = time.monotonic()
        for i, actor in enumerate(harness.actors):
            v = actor.policy.version
            if v not in seen[i]:
                seen[i][v] = now
        time.sleep(0.001)
    return seen


def adopted_at(seen: dict[int, float], version: int) -> float | None:
    """When an actor first held ``version`` or a newer one (a skipped version counts as held)."""
    times = [t for v, t in seen.items() if v >= version]
    return min(times) if times else None


def run_mode(cfg: Config, warmup_s: float, window_s: float) -> dict[str, object]:
    """Broadcast lags in one mode: a fresh run folder, learner and actors."""
    with tempfile.TemporaryDirectory(prefix=f"bench-bcast-{cfg.runtime.broadcast}-") as tmp:
        cfg = dataclasses.replace(cfg, run_dir=tmp)
        harness = bench.RuntimeHarness(cfg, pathlib.Path(tmp))
        stop = threading.Event()
        result: dict[str, list[dict[int, float]]] = {}
        watcher = threading.Thread(
            target=lambda: result.update(seen=watch_versions(harness, stop)), name="bench-watch"
        )
        try:
            harness.start()
            watcher.start()
            time.sleep(warmup_s)
            t_start = time.monotonic()
            time.sleep(window_s)
            t_end = time.monotonic()
            time.sleep(min(5.0, window_s / 4))  # let the last versions in the window land
            harness.check()
        finally:
            stop.set()
            if watcher.is_alive():
                watcher.join()
            harness.stop()
    commits = [
        (t, step, m["time_broadcast_s"])
        for t, step, m in harness.sink.having("time_broadcast_s")
        if t_start <= t <= t_end and step > 0
    ]
    lags, publish_s = [], []
    for t, version, took in commits:
        adopted = [adopted_at(s, version) for s in result["seen"]]
        if all(a is not None for a in adopted):
            lags.append(max(adopted) - t)
            publish_s.append(took)
    times = [t for t, _, _ in commits]
    intervals = [b - a for a, b in itertools.pairwise(times)]
    interval = statistics.median(intervals) if intervals else float("nan")
    lag = statistics.median(lags) if lags else float("nan")
    fraction = lag / interval if intervals and lags else float("nan")
    return {
        "broadcasts": len(commits),
        "measured": len(lags),
        "update_interval_s": round(interval, 3),
        "lag_median_s": round(lag, 4),
        "lag_max_s": round(max(lags), 4) if lags else None,
        "broadcast_call_s": round(statistics.median(publish_s), 4) if publish_s else None,
        "fraction": round(fraction, 4) if fraction == fraction else None,
        "passed": bool(fraction == fraction and fraction < GOAL_FRACTION),
    }


def main() -> None:
    """Measure path and inline broadcasts and print one JSON line."""
    ap = bench.reference_parser(__doc__, "short window (same keys, ~1 minute)")
    ap.add_argument("--broadcast-every", type=int, default=10, help="learner steps per version")
    ap.add_argument("--window", type=float, default=0.0, help="timed seconds per mode")
    args = ap.parse_args()
    window = args.window or (15.0 if args.quick else 150.0)
    warmup = 2.0 if args.quick else 15.0
    cfg = bench.reference_config(
        args,
        [
            f"runtime.broadcast_every={args.broadcast_every}",
            "checkpoint.every_steps=100000",
            "checkpoint.keep=3",
            "replay.min_size=8",
        ],
    )
    out: dict[str, object] = {
        **bench.report_head("broadcast", args),
        "config": {
            "actors": args.actors,
            "devices_per_actor": args.devices_per_actor,
            "broadcast_every": args.broadcast_every,
            "batch_size": cfg.learner.batch_size,
            "model": cfg.model.name,
            "window_s": window,
        },
    }
    with bench.compile_cache(), contextlib.redirect_stdout(sys.stderr):
        for mode in ("path", "inline"):
            out[mode] = run_mode(
                apply_overrides(cfg, [f"runtime.broadcast={mode}"]), warmup, window
            )
    fractions = [out[m]["fraction"] for m in ("path", "inline")]
    worst = max((f for f in fractions if f is not None), default=None)
    out.update(
        fraction=worst,
        goal=GOAL_FRACTION,
        passed=bool(out["path"]["passed"] and out["inline"]["passed"]),
    )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
