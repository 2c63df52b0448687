"""Trajectories per minute in async and sync mode on the same 32 simulated emulators, side by side.

Both runs use the project's real runtime in this process (threads stand in for processes): one
:class:`LearnerService` and ``runtime.num_actors`` :class:`ActorService` s talking over loopback
ZeroMQ, with simphone's emulator-like latency model (DESIGN §7: log-normal steps, median 2.0 s,
σ 0.6, 2% of episodes hang for 60 s), shrunk by ``device.time_scale`` so the run ends in minutes.
The config is the same apart from ``runtime.mode``:

* ``async``: actors never wait; the learner trains whenever replay allows;
* ``sync``: every actor collects ``runtime.sync_round`` episodes with the current version, a
  barrier, the learner takes ``runtime.sync_steps`` steps, broadcasts, repeat. ``sync_steps`` is
  set so that sync mode's samples per inserted trajectory equal ``replay.samples_per_insert``,
  the async learner's target: both learners are asked for the same training per trajectory.

The rate is the number of trajectories the learner received during a timed window that starts
after every actor holds its first version and a warm-up has passed. Goal: async/sync >= 3
(the DistRL paper reports 2.4x).

This module also holds the small harness the other runtime benchmarks import
(:class:`RuntimeHarness`, :func:`machine_info`, :func:`reference_overrides`,
:func:`reference_parser`, :func:`reference_config`, :func:`report_head`).

    python benchmarks/async_vs_sync.py [--quick] [--window S] [--time-scale X]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import pathlib
import platform
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence

os.environ.setdefault("JAX_PLATFORMS", "cpu")

from distrl_jax.config import Config, apply_overrides, load_preset
from distrl_jax.core import MetricsSink
from distrl_jax.devices.simphone.latency import FaultModel, LatencyModel
from distrl_jax.metrics.writers import MetricsWriter
from distrl_jax.runtime.actor_service import ActorService
from distrl_jax.runtime.learner_service import LearnerService

GOAL_RATIO = 3.0


def machine_info() -> dict[str, object]:
    """CPU count, Python and the JAX backend this process runs on."""
    import jax

    return {
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "jax_backend": jax.default_backend(),
        "jax": jax.__version__,
    }


def reference_overrides(time_scale: float, devices_per_actor: int, actors: int) -> list[str]:
    """Config overrides for DESIGN §7's reference devices, time-scaled, from scratch."""
    return [
        "device.latency=emulator",
        f"device.time_scale={time_scale}",
        f"device.hang_prob={FaultModel().hang_prob}",
        f"device.count={devices_per_actor}",
        f"runtime.num_actors={actors}",
        "checkpoint.init_from=",
        "learner.steps=0",
        "runtime.seconds=0",
    ]


def reference_setting(time_scale: float) -> dict[str, object]:
    """The latency and fault model a run used, in reference units plus the scale (for the JSON)."""
    return {
        "latency": LatencyModel().describe() | {"time_scale": time_scale},
        "faults": FaultModel().describe() | {"time_scale": time_scale},
        "median_step_s_scaled": LatencyModel().median_s * time_scale,
    }


def reference_parser(doc: str, quick_help: str) -> argparse.ArgumentParser:
    """A runtime benchmark's parser (described by ``doc``'s first line) with ``--quick`` and the
    reference devices' flags: ``--actors``, ``--devices-per-actor`` (DESIGN §7's 4 x 8) and
    ``--time-scale``."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help=quick_help)
    ap.add_argument("--actors", type=int, default=4)
    ap.add_argument("--devices-per-actor", type=int, default=8)
    ap.add_argument("--time-scale", type=float, default=0.05)
    return ap


def reference_config(args: argparse.Namespace, extra: Sequence[str]) -> Config:
    """The smoke preset on the reference devices that ``args`` name (:func:`reference_parser`),
    then the ``extra`` overrides."""
    devices = reference_overrides(args.time_scale, args.devices_per_actor, args.actors)
    return apply_overrides(load_preset("smoke"), [*devices, *extra])


def report_head(benchmark: str, args: argparse.Namespace) -> dict[str, object]:
    """The keys a runtime benchmark's JSON line starts with: its name, ``--quick``, the host and
    the reference setting at ``--time-scale``."""
    return {
        "benchmark": benchmark,
        "quick": args.quick,
        "host": machine_info(),
        "setting": reference_setting(args.time_scale),
    }


@contextlib.contextmanager
def compile_cache() -> Iterator[None]:
    """A persistent XLA cache for this process: later policies and learners load, not compile."""
    import jax

    with tempfile.TemporaryDirectory(prefix="bench-xla-") as d:
        jax.config.update("jax_compilation_cache_dir", d)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        yield


class TimedSink(MetricsSink):
    """Keeps every metrics record with the monotonic time it was written (thread-safe)."""

    def __init__(self) -> None:
        self.records: list[tuple[float, int, dict[str, float]]] = []
        self._lock = threading.Lock()

    def write(self, step: int, metrics: Mapping[str, float]) -> None:
        """Record ``(now, step, metrics)``."""
        with self._lock:
            self.records.append((time.monotonic(), int(step), dict(metrics)))

    def close(self) -> None:
        """Nothing to release."""

    def having(self, key: str) -> list[tuple[float, int, dict[str, float]]]:
        """The records that carry ``key``, in time order."""
        with self._lock:
            return [r for r in self.records if key in r[2]]


class RuntimeHarness:
    """A learner service and its actor services in this process, over loopback ZeroMQ.

    ``start`` begins acting and training; ``stop`` ends both and closes every socket."""

    def __init__(self, cfg: Config, run_dir: pathlib.Path):
        self.cfg = cfg
        self.sink = TimedSink()
        self.service = LearnerService(cfg, run_dir, MetricsWriter([self.sink]))
        self.actors = [
            ActorService(cfg, self.service.endpoint, actor_id=i)
            for i in range(cfg.runtime.num_actors)
        ]
        self.errors: list[BaseException] = []
        self._threads: list[threading.Thread] = []

    def _guard(self, fn) -> None:
        try:
            fn()
        except BaseException as e:  # surfaced by check()
            self.errors.append(e)

    def start(self, ready_timeout_s: float = 300.0) -> None:
        """Start the learner loop and every actor; return once each actor has sent an episode
        (its policy is compiled and its devices are stepping)."""
        for i, actor in enumerate(self.actors):
            t = threading.Thread(target=self._guard, args=(actor.run,), name=f"bench-actor-{i}")
            t.start()
            self._threads.append(t)
        t = threading.Thread(target=self._guard, args=(self.service.run,), name="bench-learner")
        t.start()
        self._threads.append(t)
        deadline = time.monotonic() + ready_timeout_s
        while any(a.episodes < 1 for a in self.actors):
            self.check()
            if time.monotonic() > deadline:
                raise TimeoutError(f"actors sent no episode in {ready_timeout_s} s")
            time.sleep(0.05)

    def check(self) -> None:
        """Raise the first error a service thread hit."""
        if self.errors:
            raise RuntimeError(f"a runtime thread failed: {self.errors[0]!r}") from self.errors[0]

    def counters(self) -> dict[str, float]:
        """Trajectories and device steps received, learner version, broadcasts so far."""
        s = self.service
        return {
            "trajectories": float(s.inserted),
            "device_steps": float(s.device_steps),
            "learner_steps": float(s.learner.version),
            "learner_wait_s": float(s.wait_s),
            "broadcasts": float(len(self.sink.having("time_broadcast_s"))),
        }

    def stop(self) -> None:
        """Stop actors and learner, join their threads, close sockets and devices."""
        for actor in self.actors:
            actor.stop()
        self.service.stop()
        for t in self._threads:
            t.join(timeout=60)
        for actor in self.actors:
            actor.close()
        self.service.close()


def _next_broadcast(harness: RuntimeHarness, after: float, timeout_s: float) -> None:
    """Block until the learner broadcasts after ``after`` (a sync round's end)."""
    deadline = time.monotonic() + timeout_s
    while not any(t > after for t, _, _ in harness.sink.having("time_broadcast_s")):
        harness.check()
        if time.monotonic() > deadline:
            raise TimeoutError(f"no sync round ended within {timeout_s} s")
        time.sleep(0.01)


def measure_window(harness: RuntimeHarness, warmup_s: float, window_s: float) -> dict[str, float]:
    """Counter deltas over at least ``window_s`` after ``warmup_s``, as rates.

    In sync mode the window runs from one round's broadcast to a later one, so it holds whole
    rounds (collection, barrier, training and broadcast), as the synchronous baseline's rate did.
    """
    sync = harness.cfg.runtime.mode == "sync"
    time.sleep(warmup_s)
    if sync:
        _next_broadcast(harness, time.monotonic(), 600.0)
    harness.check()
    before, t0 = harness.counters(), time.monotonic()
    time.sleep(window_s)
    if sync:
        _next_broadcast(harness, time.monotonic(), 600.0)
    harness.check()
    after, elapsed = harness.counters(), time.monotonic() - t0
    d = {k: after[k] - before[k] for k in after}
    batch = harness.cfg.learner.batch_size
    return {
        "window_s": round(elapsed, 2),
        "trajectories": int(d["trajectories"]),
        "trajectories_per_min": round(60.0 * d["trajectories"] / elapsed, 2),
        "device_steps_per_s": round(d["device_steps"] / elapsed, 2),
        "learner_steps": int(d["learner_steps"]),
        "learner_steps_per_s": round(d["learner_steps"] / elapsed, 3),
        # The learner's time waiting for data (issue #7: under 5% when actors are plentiful).
        "learner_wait_frac": round(d["learner_wait_s"] / elapsed, 4),
        "samples_per_insert": round(d["learner_steps"] * batch / max(d["trajectories"], 1), 3),
        "broadcasts": int(d["broadcasts"]),
    }


def run_mode(cfg: Config, warmup_s: float, window_s: float) -> dict[str, float]:
    """One mode's figures (a fresh run folder, learner and actors)."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{cfg.runtime.mode}-") as tmp:
        cfg = dataclasses.replace(cfg, run_dir=tmp)
        t0 = time.monotonic()
        harness = RuntimeHarness(cfg, pathlib.Path(tmp))
        try:
            harness.start()
            print(
                f"{cfg.runtime.mode}: acting after {time.monotonic() - t0:.1f} s", file=sys.stderr
            )
            return measure_window(harness, warmup_s, window_s)
        finally:
            harness.stop()


def build_config(args: argparse.Namespace, extra: Sequence[str] = ()) -> Config:
    """The shared config of both modes (smoke preset, reference devices, tiny model)."""
    base = [
        *reference_overrides(args.time_scale, args.devices // args.actors, args.actors),
        f"learner.batch_size={args.batch_size}",
        f"replay.samples_per_insert={args.samples_per_insert}",
        f"replay.min_size={args.batch_size}",
        "checkpoint.every_steps=100000",  # broadcasts write their own checkpoints
        f"runtime.sync_round={args.sync_round}",
        *extra,
    ]
    cfg = apply_overrides(load_preset("smoke"), base)
    # Same training per trajectory in both modes: steps·batch = spi · (round · actors).
    sync_steps = math.ceil(
        args.samples_per_insert * args.sync_round * args.actors / args.batch_size
    )
    return apply_overrides(cfg, [f"runtime.sync_steps={sync_steps}"])


def main() -> None:
    """Run async then sync with the same config and print one JSON line."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="short windows (same keys, ~1 minute)")
    ap.add_argument("--devices", type=int, default=32, help="simulated emulators in all")
    ap.add_argument("--actors", type=int, default=4, help="actor services sharing them")
    ap.add_argument("--time-scale", type=float, default=0.05, help="0.05: 0.1 s median step")
    ap.add_argument("--window", type=float, default=0.0, help="timed seconds per mode")
    ap.add_argument("--warmup", type=float, default=0.0, help="seconds before the window")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--samples-per-insert", type=float, default=1.0)
    ap.add_argument("--sync-round", type=int, default=16, help="episodes per actor per round")
    args = ap.parse_args()
    if args.devices % args.actors:
        ap.error(f"--devices={args.devices} must be a multiple of --actors={args.actors}")
    window = args.window or (10.0 if args.quick else 180.0)
    warmup = args.warmup or (3.0 if args.quick else 20.0)
    cfg = build_config(args)
    out: dict[str, object] = {
        **report_head("async_vs_sync", args),
        "config": {
            "devices": args.devices,
            "actors": args.actors,
            "model": cfg.model.name,
            "batch_size": cfg.learner.batch_size,
            "samples_per_insert": cfg.replay.samples_per_insert,
            "sync_round": cfg.runtime.sync_round,
            "sync_steps": cfg.runtime.sync_steps,
            "broadcast": cfg.runtime.broadcast,
            "broadcast_every": cfg.runtime.broadcast_every,
            "horizon": cfg.tasks.horizon or "suite default",
            "warmup_s": warmup,
        },
    }
    with compile_cache(), contextlib.redirect_stdout(sys.stderr):
        for mode in ("async", "sync"):
            out[mode] = run_mode(apply_overrides(cfg, [f"runtime.mode={mode}"]), warmup, window)
    a, s = out["async"]["trajectories_per_min"], out["sync"]["trajectories_per_min"]
    ratio = a / s if s else float("inf")
    out.update(ratio=round(ratio, 3), goal=GOAL_RATIO, passed=bool(ratio >= GOAL_RATIO))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
