"""The learner process: sockets around a :class:`Learner` (DESIGN §6).

Three channels, all bound by the learner (default loopback, OS-chosen ports):

* control (ROUTER): actors register here and learn the other two endpoints from the ack;
* trajectories (PULL): an ingest thread decodes them and inserts them into replay, bounded by
  the socket's receive queue (back-pressure to the actors when the learner falls behind);
* parameters (PUB): every ``runtime.broadcast_every`` steps a new version is announced, as the
  path of an Orbax checkpoint (``runtime.broadcast=path``: shared storage) or inline in chunks.

``runtime.mode=async`` trains whenever replay is ready, at the configured samples-per-insert
ratio; ``sync`` reproduces the synchronous baseline: every live actor collects
``runtime.sync_round`` episodes with the current version and waits; the learner, once all of them
have arrived, takes ``runtime.sync_steps`` steps and broadcasts, which releases the actors.
"""

from __future__ import annotations

import collections
import logging
import pathlib
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from flax import nnx

from distrl_jax.config import Config
from distrl_jax.learner.learner import Learner
from distrl_jax.metrics.writers import MetricsWriter
from distrl_jax.models.action_codec import VOCAB_SIZE
from distrl_jax.transport.control import ControlServer
from distrl_jax.transport.param_broadcast import ParamPublisher
from distrl_jax.transport.security import SocketSecurity
from distrl_jax.transport.trajectory_channel import TrajectoryReceiver

log = logging.getLogger(__name__)


def flat_params(state: nnx.State) -> dict[str, np.ndarray]:
    """``{"encoder/patch_embed/kernel": array, ...}``: parameters as named host arrays (wire)."""
    pure = nnx.to_pure_dict(state)
    return {
        "/".join(str(k) for k in path): np.asarray(v)
        for path, v in nnx.traversals.flatten_mapping(pure).items()
    }


def nested_params(flat: dict[str, np.ndarray]) -> dict[str, Any]:
    """Inverse of :func:`flat_params` (integer path parts become list indices' int keys)."""
    nested = nnx.traversals.unflatten_mapping(
        {tuple(int(p) if p.isdigit() else p for p in k.split("/")): v for k, v in flat.items()}
    )
    return nested


class LearnerService:
    """Binds the channels, ingests trajectories, trains, checkpoints and broadcasts."""

    def __init__(self, cfg: Config, run_dir: str | pathlib.Path, writer: MetricsWriter):
        self.cfg = cfg
        self.writer = writer
        self.run_dir = pathlib.Path(run_dir)
        self.learner = Learner(cfg, run_dir)
        host = cfg.runtime.bind_host
        port = cfg.runtime.port

        def ep(offset: int) -> str:
            return f"tcp://{host}:{port + offset if port else 0}"

        rt = cfg.runtime
        sec = SocketSecurity.from_keys_dir(rt.keys_dir, "learner") if rt.keys_dir else None
        guard = {"security": sec, "insecure": rt.insecure}
        self.control = ControlServer(ep(0), heartbeat_timeout_s=30.0, **guard)
        self.receiver = TrajectoryReceiver(
            ep(1), rcvhwm=max(4, rt.ingest_queue // 16), vocab_size=VOCAB_SIZE, **guard
        )
        self.publisher = ParamPublisher(ep(2), ep(3), **guard)
        self.control.set_info(
            trajectories=self.receiver.endpoint,
            params=self.publisher.endpoint,
            params_latest=self.publisher.latest_endpoint,
        )
        # The sample/insert ratio counts this process's steps and inserts: a resumed learner
        # must not wait for the data of the steps it took before the restart.
        self._start_version = self.learner.version
        self.inserted = 0
        self.ingest_s = 0.0  # cumulative seconds spent inserting received trajectories
        self.device_steps = 0
        self.penalised_steps = 0
        self.last_broadcast = time.monotonic()
        self.extra_metrics: Callable[[], dict[str, float]] = dict  # e.g. the supervisor's counts
        self.received_success: collections.deque[float] = collections.deque(maxlen=200)
        self._fresh = 0  # trajectories inserted since the last sync round
        self.wait_s = 0.0  # learner time spent waiting for data (replay, ratio or sync barrier)
        # actor id -> the policy versions its trajectories were played with (the newest 64):
        # proof that broadcasts reach every actor, and a per-actor view of policy lag.
        self.actor_versions: dict[int, set[int]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ingest = threading.Thread(target=self._ingest_loop, name="ingest", daemon=True)
        self._ingest.start()
        self.broadcast()

    @property
    def endpoint(self) -> str:
        """The control endpoint: the one address actors need."""
        return self.control.endpoint

    def _ingest_loop(self) -> None:
        while not self._stop.is_set():
            traj = self.receiver.recv(timeout_s=0.1)
            if traj is None:
                continue
            t0 = time.perf_counter()
            try:
                ok = self.learner.insert(traj)
            except ValueError as e:  # wrong shapes for this run: counted, never fatal
                log.warning("rejected a trajectory from actor %d: %s", traj.actor_id, e)
                continue
            with self._lock:
                self.ingest_s += time.perf_counter() - t0
                self.inserted += 1
                self.device_steps += traj.length
                self.penalised_steps += int(np.sum(traj.penalties < 0))
                self._fresh += int(ok)
                self.received_success.append(float(traj.success))
                seen = self.actor_versions.setdefault(traj.actor_id, set())
                seen.add(traj.policy_version)
                if len(seen) > 64:
                    seen.discard(min(seen))

    def broadcast(self) -> float:
        """Announce the current parameters as a new version (path or inline); returns seconds."""
        t0 = time.perf_counter()
        self.last_broadcast = time.monotonic()
        version = self.learner.version
        if self.cfg.runtime.broadcast == "inline":
            params, _ = self.learner.actor_params()
            self.publisher.publish_inline(version, version, flat_params(params))
            self.control.set_latest(version, version)
            return time.perf_counter() - t0
        self.learner.maybe_checkpoint(force=True)
        self.learner.checkpoints.wait()  # actors must never read a half-written step
        if self.learner.student is not None:
            self.learner.student.checkpoints.wait()
        _, path = self.learner.actor_params()
        self.publisher.publish_path(version, version, str(path))
        self.control.set_latest(version, version, str(path))
        return time.perf_counter() - t0

    def _wait_for_data(self, deadline: float) -> bool:
        """Block until replay may be sampled (ready, and the sample/insert ratio allows)."""
        rc = self.cfg.replay
        lc = self.cfg.learner
        while not (self._stop.is_set() or self.learner.stopping or time.monotonic() > deadline):
            with self._lock:
                inserted, fresh = self.inserted, self._fresh
            if self.cfg.runtime.mode == "sync":
                # The round's size is the barrier (min_size would deadlock a small fleet).
                if fresh >= self.cfg.runtime.sync_round * max(1, len(self.control.alive())):
                    return True
            elif self.learner.ready() and (
                self.learner.version - self._start_version + 1
            ) * lc.batch_size <= rc.samples_per_insert * max(inserted, 1):
                return True
            time.sleep(0.01)
        return False

    def run(self) -> dict[str, float]:
        """Train until ``learner.steps`` or ``runtime.seconds``; returns the last metrics."""
        lc, rt = self.cfg.learner, self.cfg.runtime
        deadline = time.monotonic() + (rt.seconds or 1e12)
        t0 = time.monotonic()
        last: dict[str, float] = {}
        while not self.learner.stopping and (lc.steps == 0 or self.learner.version < lc.steps):
            waited = time.monotonic()
            if not self._wait_for_data(deadline):
                break
            self.wait_s += time.monotonic() - waited
            if rt.mode == "sync":  # one round: train on it, then broadcast (releases actors)
                with self._lock:
                    self._fresh = 0
                for _ in range(rt.sync_steps):
                    last = self._one_step(t0)
                    self._periodic()
                self.writer.write(self.learner.version, {"time_broadcast_s": self.broadcast()})
                continue
            last = self._one_step(t0)
            if self.learner.version % rt.broadcast_every == 0:
                self.writer.write(self.learner.version, {"time_broadcast_s": self.broadcast()})
            self._periodic()
        self.learner.maybe_checkpoint(force=True)
        self.learner.checkpoints.wait()
        return last

    def _one_step(self, t0: float) -> dict[str, float]:
        metrics = self.learner.train_step()
        elapsed = max(time.monotonic() - t0, 1e-9)
        with self._lock:
            success = list(self.received_success)
            inserted, steps, penalised = self.inserted, self.device_steps, self.penalised_steps
            ingest_s = self.ingest_s
        replay = self.learner.replay.stats()
        metrics.update(
            {
                "train_success_recent": float(np.mean(success)) if success else float("nan"),
                "trajectories": float(inserted),
                "trajectories_per_min": 60.0 * inserted / elapsed,
                "device_steps_per_s": steps / elapsed,
                "penalised_step_rate": penalised / steps if steps else 0.0,
                "replay_size": float(replay["size"]),
                "replay_bytes": float(replay["bytes_in_use"]),
                "actors_alive": float(len(self.control.alive())),
                "wall_s": elapsed,
                "learner_steps_per_s": self.learner.version / elapsed,
                "learner_wait_frac": self.wait_s / elapsed,
                "since_broadcast_s": time.monotonic() - self.last_broadcast,
                "time_ingest_per_traj_s": ingest_s / inserted if inserted else 0.0,
                "transport_rejects": float(self.receiver.rejects.total),
                "replay_rejected": float(replay["rejected"]),
            }
        )
        metrics.update(self.actor_metrics())
        metrics.update(self.extra_metrics())
        self.writer.write(self.learner.version, metrics)
        return metrics

    def actor_metrics(self) -> dict[str, float]:
        """The live actors' heartbeat figures, summed: per-stage seconds (device step, inference,
        reset, send, parameter load) and their share of actor time, queue depths, drops, and
        the channel's duplicate/gap counts."""
        totals: dict[str, float] = collections.defaultdict(float)
        for record in self.control.actors():
            if record.alive:
                for k, v in record.stats.items():
                    totals[k] += v
        receiver = self.receiver.stats()
        out = {
            "transport_duplicates": float(receiver["duplicates"]),
            "transport_gaps": float(receiver["gaps"]),
        }
        for key in ("outbox_depth", "dropped", "infra_failures"):
            out[f"actor_{key}"] = totals.get(key, 0.0)
        uptime = totals.get("uptime_s", 0.0)
        for stage in ("device_step", "inference", "reset", "send", "param_load"):
            seconds = totals.get(f"time_{stage}_s", 0.0)
            out[f"actor_time_{stage}_s"] = seconds
            out[f"actor_{stage}_frac"] = seconds / uptime if uptime else 0.0
        return out

    def _periodic(self) -> None:
        """Evaluation and checkpoints on their step cadences (both modes)."""
        every = self.cfg.eval.every_steps
        if every and self.learner.version % every == 0:
            self.periodic_eval()
        t_ck = time.perf_counter()
        if self.learner.maybe_checkpoint() is not None:
            self.writer.write(
                self.learner.version, {"time_checkpoint_s": time.perf_counter() - t_ck}
            )

    def periodic_eval(self) -> float:
        """Greedy evaluation of the current parameters (``eval/step-N.md``); returns success.

        It runs in the learner's loop, so training pauses meanwhile (the actors go on)."""
        from distrl_jax.runtime.training import evaluate_params

        t0 = time.perf_counter()
        version = self.learner.version
        total = evaluate_params(
            self.cfg, self.learner.params, version, self.run_dir, f"step-{version}", quiet=True
        )
        self.writer.write(
            version,
            {"eval_success": total.success_rate, "time_eval_s": time.perf_counter() - t0},
        )
        return total.success_rate

    def versions_by_actor(self) -> dict[int, list[int]]:
        """``{actor id: sorted policy versions seen in its trajectories}`` (the newest 64)."""
        with self._lock:
            return {a: sorted(v) for a, v in sorted(self.actor_versions.items())}

    def stop(self) -> None:
        """Ask the loop to stop (SIGTERM does the same through the learner)."""
        self._stop.set()
        self.learner.request_stop()

    def close(self) -> None:
        """Stop the ingest thread, close sockets, finish checkpoint writes."""
        self._stop.set()
        self._ingest.join(timeout=5)
        for part in (self.receiver, self.publisher, self.control):
            part.close()
        self.learner.close()
