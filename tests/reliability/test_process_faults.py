"""Fault injection on the running system: does the runtime keep its reliability promises?

Real processes, real sockets on loopback, real Orbax folders: actor processes killed with
SIGKILL under the real supervisor; a learner process killed and restarted on the same run folder
and ports; simphones that hang or go offline; damaged checkpoints; a learner that is not there;
64 connections flooding the trajectory port. Counts (restarts, drops, duplicates, gaps) are
read from the components' own counters, never from the test's bookkeeping alone.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import pathlib
import re
import signal
import threading
import time

import numpy as np
import pytest
import zmq
from fault_scripts import (
    SHRUNK,
    LearnerProcess,
    committed_steps,
    compile_cache,
    corrupt_step,
    free_port_block,
    rss_bytes,
    shrunk_config,
    synthetic_trajectory,
    wait_until,
)

from distrl_jax.checkpoint.manager import Checkpointer
from distrl_jax.learner.learner import Learner
from distrl_jax.metrics.writers import MetricsWriter
from distrl_jax.runtime.actor_service import ActorService
from distrl_jax.runtime.learner_service import LearnerService
from distrl_jax.runtime.training import ActorSupervisor
from distrl_jax.transport.trajectory_channel import TrajectorySender
from distrl_jax.transport.wire import encode_trajectory


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory):
    """One persistent XLA cache for this module and every process it starts."""
    path = tmp_path_factory.mktemp("xla-cache")
    with compile_cache(path):
        yield path


def child_env(cache: pathlib.Path) -> dict[str, str]:
    """Environment of a learner or actor subprocess: CPU, and this module's compile cache."""
    return dict(os.environ, JAX_PLATFORMS="cpu", JAX_COMPILATION_CACHE_DIR=str(cache))


def content_key(traj) -> str:
    """A digest of what a trajectory teaches (screens, actions, rewards)."""
    h = hashlib.sha256()
    for a in (traj.screens, traj.actions, traj.rewards):
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def start_thread(target, name: str, out: dict) -> threading.Thread:
    """Run ``target`` in a thread; its result or exception lands in ``out[name]``."""

    def body() -> None:
        try:
            out[name] = target()
        except BaseException as e:  # surfaced by the test's assertions
            out[name] = e

    t = threading.Thread(target=body, name=name, daemon=True)
    t.start()
    return t


# ------------------------------------------------------------------ actors killed


@pytest.mark.slow
@pytest.mark.extended
@pytest.mark.timeout(300)
def test_killed_actors_are_restarted_and_nothing_is_counted_twice(
    tmp_path, cache_dir, monkeypatch, caplog
):
    """kill -9 of the actor process, twice: the real supervisor restarts it (1 s, then 2 s
    backoff), each new process registers and sends again, the learner keeps stepping, and the
    receiver sees no duplicate and no gap within any actor session."""
    caplog.set_level(logging.WARNING, logger="distrl_jax.runtime.training")
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(cache_dir))
    # Broadcast rarely: every actor life then acts with version 0 (and the test stays cheap).
    extra = ("learner.steps=0", "runtime.num_actors=1", "runtime.broadcast_every=1000")
    cfg = shrunk_config(tmp_path, *extra, "checkpoint.every_steps=1000")
    service = LearnerService(cfg, tmp_path, writer=MetricsWriter([]))
    keys: list[str] = []
    real_insert = service.learner.insert

    def insert(traj):
        keys.append(content_key(traj))
        return real_insert(traj)

    service.learner.insert = insert
    argv = ["--config=smoke", *(f"--{o}" for o in (*SHRUNK, *extra)), "--accel=cpu"]
    out: dict[str, object] = {}
    sup = ActorSupervisor(cfg, service.endpoint, argv)
    runner = start_thread(service.run, "learner-run", out)
    pids: list[int] = []
    version_at_first_kill = -1
    try:
        for kill in range(3):
            pid = sup.procs[0].pid
            pids.append(pid)
            base = service.inserted
            wait_until(
                lambda pid=pid, base=base: (
                    any(r.pid == pid for r in service.control.actors())
                    and service.inserted >= base + 3
                ),
                150,
                f"actor life {kill} (pid {pid}) to register and send 3 trajectories",
            )
            if kill == 2:
                break
            if version_at_first_kill < 0:
                version_at_first_kill = service.learner.version
            os.kill(pid, signal.SIGKILL)
            wait_until(lambda k=kill: sup.restarts == k + 1, 30, f"restart {kill + 1}")
        wait_until(lambda: service.learner.version > version_at_first_kill, 60, "learner steps")
    finally:
        sup.stop(timeout_s=10.0)
        service.stop()
        runner.join(timeout=60)
        service.close()
    assert not runner.is_alive()
    assert not isinstance(out.get("learner-run"), BaseException), out
    assert len(set(pids)) == 3 and sup.restarts == 2, (pids, sup.restarts)
    delays = [
        float(m.group(1))
        for r in caplog.records
        if (m := re.search(r"actor 0 exited with -9; restarting in (\d+) s", r.getMessage()))
    ]
    assert delays == [1.0, 2.0], caplog.text
    stats = service.receiver.stats()
    assert stats["duplicates"] == 0 and stats["gaps"] == 0, stats
    assert stats["rejects"] == {}, stats
    assert service.inserted == stats["received"] == len(keys)
    assert service.learner.version > version_at_first_kill
    print(
        f"\nactor kills: restarts={sup.restarts} inserted={service.inserted} "
        f"version={service.learner.version} duplicates={stats['duplicates']} gaps={stats['gaps']} "
        f"content-identical={len(keys) - len(set(keys))}"
    )


@pytest.mark.timeout(240)
def test_a_restarted_actor_does_not_replay_its_predecessors_episodes(tmp_path, cache_dir):
    """Two lives of actor 0 against one learner holding version 0: the second life's episodes
    are new data, not copies of the first life's (same tasks, devices and sampling seeds)."""
    cfg = shrunk_config(tmp_path, "runtime.broadcast_every=1000")
    service = LearnerService(cfg, tmp_path, writer=MetricsWriter([]))
    lives: list[list[str]] = [[], []]
    life = [0]
    real_insert = service.learner.insert

    def insert(traj):
        lives[life[0]].append(content_key(traj))
        return real_insert(traj)

    service.learner.insert = insert
    try:
        for i in range(2):
            life[0] = i
            actor = ActorService(cfg, service.endpoint, actor_id=0)
            try:
                actor.run(max_episodes=4)
            finally:
                actor.close()
            wait_until(lambda i=i: len(lives[i]) == 4, 30, f"life {i}'s 4 episodes")
    finally:
        service.close()
    assert not set(lives[0]) & set(lives[1]), "the second life replayed the first's episodes"


# ------------------------------------------------------------------ learner killed


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_killed_learner_resumes_and_actors_reconnect(tmp_path, cache_dir):
    """An actor started before any learner exists registers once it appears; the learner is
    killed with SIGKILL mid-run; the actor keeps acting into its bounded outbox (oldest dropped,
    counted); a new learner on the same run folder and ports resumes from the newest committed
    checkpoint, and the actor re-registers, sends again and adopts the newer versions."""
    port = free_port_block()
    run_dir = tmp_path / "run"
    overrides = (
        "--learner.steps=0",
        "--checkpoint.every_steps=2",
        "--runtime.broadcast_every=2",
        "--runtime.outbox=4",
    )
    cfg = shrunk_config(run_dir, f"runtime.port={port}", *(o[2:] for o in overrides))
    env = child_env(cache_dir)
    out: dict[str, object] = {}
    holder: dict[str, ActorService] = {}
    stop = threading.Event()
    versions: list[int] = []

    def act() -> int:
        actor = holder["actor"] = ActorService(cfg, f"tcp://127.0.0.1:{port}", actor_id=0)
        try:
            return actor.run()
        finally:
            actor.close()

    def watch_versions() -> None:
        while not stop.wait(0.05):
            if "actor" in holder:
                versions.append(holder["actor"].policy.version)

    actor_thread = start_thread(act, "actor", out)  # before the learner: nobody to talk to
    watcher = threading.Thread(target=watch_versions, name="versions", daemon=True)
    watcher.start()
    time.sleep(1.0)
    first = LearnerProcess(run_dir, port, *overrides, env=env)
    second = None
    try:
        first.wait_for(lambda s: s["event"] == "ready", 150, "the first learner")
        assert first.ready["start_kind"] == "initialised from scratch", first.ready
        first.wait_for(lambda s: s["version"] >= 5 and s["inserted"] > 0, 150, "version 5")
        first.kill()
        steps_at_kill = committed_steps(run_dir / "checkpoints")
        assert steps_at_kill and steps_at_kill[-1] >= 4, steps_at_kill
        actor = holder["actor"]
        assert actor.control.registered  # it found the learner that came up after it
        dropped_before = actor.sender.dropped
        wait_until(lambda: actor.sender.dropped >= dropped_before + 4, 60, "outbox drops")
        assert actor.sender.pending <= cfg.runtime.outbox
        assert out.get("actor") is None, out  # still acting, no exception

        second = LearnerProcess(run_dir, port, *overrides, env=env)
        second.wait_for(lambda s: s["event"] == "ready", 150, "the restarted learner")
        resumed = steps_at_kill[-1]
        assert second.ready["start_kind"] == f"resumed at step {resumed}", second.ready
        assert second.ready["version"] == resumed
        status = second.wait_for(
            lambda s: s["inserted"] >= 3 and s["alive"] == ["actor-0"], 90, "the actor's return"
        )
        wait_until(lambda: actor.policy.version > resumed, 90, "a version newer than the resume")
        status = second.poll_status()
    finally:
        stop.set()
        if "actor" in holder:
            holder["actor"].stop()
        actor_thread.join(timeout=60)
        watcher.join(timeout=5)
        for proc in (first, second):
            if proc is not None:
                proc.close()
    assert not isinstance(out.get("actor"), BaseException), out
    assert all(b >= a for a, b in itertools.pairwise(versions)), "version went back"
    assert status["version"] >= resumed and status["duplicates"] == 0, status
    print(
        f"\nlearner kill: committed {steps_at_kill}, resumed at {resumed}, actor dropped "
        f"{actor.sender.dropped}, sent {actor.sender.stats()}, after restart {status}"
    )


# ------------------------------------------------------------------ devices fail


@pytest.mark.timeout(240)
def test_hung_and_offline_devices_never_become_zero_reward_trajectories(tmp_path, caplog):
    """With 30% hangs and 30% offline devices per episode, each fault restarts the device and
    replays the episode; episodes that fail three times are counted as infrastructure failures;
    every trajectory the learner receives is a complete episode (terminated or at the horizon)."""
    caplog.set_level(logging.WARNING, logger="distrl_jax.actor.rollout")
    cfg = shrunk_config(
        tmp_path,
        "device.hang_prob=0.3",
        "device.offline_prob=0.3",
        "device.latency=emulator",
        "device.time_scale=0.005",  # a 60 s hang lasts 0.3 s, a 2 s step 10 ms
    )
    service = LearnerService(cfg, tmp_path, writer=MetricsWriter([]))
    got = []
    real_insert = service.learner.insert

    def insert(traj):
        got.append(traj)
        return real_insert(traj)

    service.learner.insert = insert
    actor = None
    try:
        actor = ActorService(cfg, service.endpoint, actor_id=0)
        sent = actor.run(max_episodes=24)
        wait_until(lambda: service.inserted == sent, 30, "every sent trajectory")
    finally:
        if actor is not None:
            actor.close()
        service.close()
    faults = [r.getMessage() for r in caplog.records if re.match(r"device \d+: ", r.getMessage())]
    hangs = sum("hung for" in m for m in faults)
    offline = sum("offline" in m for m in faults)
    assert hangs > 0 and offline > 0, faults
    assert actor.infra_failures > 0, "expected some episodes to fail three times"
    # Every failure for good took three faults; the other faults were retried successfully.
    assert len(faults) > 3 * actor.infra_failures, (len(faults), actor.infra_failures)
    assert sent == actor.episodes == len(got) >= 24
    horizon = cfg.tasks.horizon
    for t in got:
        assert t.dones[-1] == 1.0 or t.length == horizon, (t.length, t.dones, t.rewards)
    print(
        f"\ndevice faults: {len(faults)} faults ({hangs} hangs, {offline} offline), "
        f"{actor.infra_failures} infrastructure failures, {sent} trajectories sent and received"
    )


# ------------------------------------------------------------------ damaged checkpoints


def _learner_with_steps(cfg, run_dir: pathlib.Path, steps: int) -> Learner:
    """A Learner trained ``steps`` steps on synthetic data (checkpointing on its cadence)."""
    learner = Learner(cfg, run_dir)
    for i in range(8):
        learner.insert(synthetic_trajectory(i, policy_version=learner.version))
    while learner.version < steps:
        # A fresh trajectory per step keeps replay from going stale however long this runs.
        learner.insert(synthetic_trajectory(100 + learner.version, policy_version=learner.version))
        learner.train_step()
        learner.maybe_checkpoint()
    learner.checkpoints.wait()
    return learner


@pytest.mark.timeout(240)
@pytest.mark.parametrize("how", ["truncate", "garble"])
def test_corrupt_newest_checkpoint_resumes_from_the_previous_one(tmp_path, cache_dir, how, caplog):
    """The newest step's array files truncated (or its meta garbled): a restarted learner
    reports it and resumes from the step before, with that step's version."""
    cfg = shrunk_config(tmp_path, "checkpoint.keep=3")
    first = _learner_with_steps(cfg, tmp_path, 4)
    first.close()
    assert committed_steps(tmp_path / "checkpoints") == [2, 4]
    corrupt_step(tmp_path / "checkpoints" / "4", how)
    caplog.set_level(logging.ERROR, logger="distrl_jax.checkpoint.manager")
    second = Learner(cfg, tmp_path)
    try:
        assert second.start_kind == "resumed at step 2"
        assert second.version == 2
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert any("checkpoint step 4" in m and "unreadable" in m for m in errors), errors
    finally:
        second.close()


@pytest.mark.timeout(240)
def test_after_a_corrupt_fallback_the_step_is_saved_again(tmp_path, cache_dir):
    """After resuming from step 2 past a corrupt step 4, training back to step 4 writes a good
    step 4: a third learner resumes at 4 with the second one's parameters."""
    cfg = shrunk_config(tmp_path, "checkpoint.keep=3")
    _learner_with_steps(cfg, tmp_path, 4).close()
    corrupt_step(tmp_path / "checkpoints" / "4", "truncate")
    second = _learner_with_steps(cfg, tmp_path, 4)
    assert second.start_kind == "resumed at step 2"
    second.maybe_checkpoint(force=True)
    second.close()
    with Checkpointer(tmp_path / "checkpoints") as ckpts:
        assert ckpts.read_meta(4)["policy_version"] == 4
    third = Learner(cfg, tmp_path)
    try:
        assert third.start_kind == "resumed at step 4"
    finally:
        third.close()


@pytest.mark.timeout(240)
def test_a_resumed_learner_trains_as_soon_as_replay_is_ready(tmp_path, cache_dir):
    """Resumed at step 40 with 8 fresh trajectories (twice min_size, enough for 8 steps at 4
    samples per insert), the learner takes its 2 remaining steps well within 20 s."""
    base = ("checkpoint.every_steps=40", "replay.samples_per_insert=4")
    _learner_with_steps(shrunk_config(tmp_path, *base), tmp_path, 40).close()
    cfg = shrunk_config(tmp_path, *base, "learner.steps=42", "runtime.seconds=20")
    service = LearnerService(cfg, tmp_path, writer=MetricsWriter([]))
    try:
        assert service.learner.start_kind == "resumed at step 40"
        with TrajectorySender(service.receiver.endpoint, "probe") as sender:
            for i in range(8):
                sender.send(synthetic_trajectory(i, policy_version=40))
            sender.flush(timeout_s=5.0)
            wait_until(lambda: service.inserted == 8, 30, "8 inserted trajectories")
        service.run()
        assert service.learner.version == 42, "the resumed learner never stepped"
    finally:
        service.close()


@pytest.mark.slow
@pytest.mark.extended
@pytest.mark.timeout(300)
def test_flood_of_64_connections_keeps_learner_memory_bounded(tmp_path, cache_dir):
    """64 connections push valid trajectories, garbage (small and 1 MiB), wrong-shape
    trajectories and replayed sequence numbers at the learner process: its RSS stays within a
    fixed budget far below what was offered, every bad message is counted, training goes on."""
    port = free_port_block()
    learner = LearnerProcess(tmp_path, port, "--learner.steps=0", env=child_env(cache_dir))
    ctx = zmq.Context()
    socks = []
    try:
        ready = learner.wait_for(lambda s: s["event"] == "ready", 150, "the learner")
        with TrajectorySender(ready["trajectories"], "warm-up") as warm:
            for i in range(8):
                warm.send(synthetic_trajectory(i))
            warm.flush(timeout_s=10.0)
            before = learner.wait_for(lambda s: s["version"] >= 2, 120, "training to start")
        rss0 = rss_bytes(learner.proc.pid)
        n_conn, valid_per, big_per = 64, 12, 6
        bad_frames = {"garbage": [b"not a message", b"\x00" * 7], "big": [b"{bad", b"\xab" * 2**20]}
        counts = {"valid": 0, "garbage": 0, "big": 0, "shape": 0, "dup": 0, "again": 0}
        offered = 0
        plans = []
        for c in range(n_conn):
            s = ctx.socket(zmq.PUSH)
            s.setsockopt(zmq.SNDHWM, 4)
            s.setsockopt(zmq.LINGER, 0)
            s.connect(ready["trajectories"])
            socks.append(s)
            msgs = []
            for k in range(valid_per):
                t = synthetic_trajectory(1000 + c * 100 + k, length=1)
                msgs.append(("valid", encode_trajectory(t, sender=f"f{c}", seq=k, session="s")))
            msgs.append(("dup", msgs[-1][1]))  # the same seq again: a replay
            bad = synthetic_trajectory(5000 + c, length=1, screen_shape=(64, 32))
            msgs.append(("shape", encode_trajectory(bad, sender=f"f{c}", seq=99, session="s")))
            # Bad messages land anywhere between the valid ones, which keep their seq order;
            # the replay and the wrong-shape one (seq 99) come after the seqs they follow.
            labels = ["valid"] * valid_per + ["garbage"] * 3 + ["big"] * big_per
            np.random.default_rng(c).shuffle(labels)
            valid = iter(msgs[:valid_per])
            plan = [next(valid) if k == "valid" else (k, bad_frames[k]) for k in labels]
            plans.append([*plan, *msgs[valid_per:]])
        peak = rss0
        t0 = time.monotonic()
        while any(plans) and time.monotonic() - t0 < 120:
            for s, plan in zip(socks, plans, strict=True):
                if not plan:
                    continue
                kind, frames = plan[0]
                try:
                    s.send_multipart(frames, flags=zmq.NOBLOCK, copy=False)
                except zmq.Again:
                    counts["again"] += 1
                    continue
                plan.pop(0)
                counts[kind] += 1
                offered += sum(len(memoryview(f).cast("B")) for f in frames)
            peak = max(peak, rss_bytes(learner.proc.pid))
        assert not any(plans), "the flood did not get through in 120 s"
        bad_total = counts["garbage"] + counts["big"]
        done = learner.wait_for(
            lambda s: (
                s["rejects"] == bad_total
                and s["duplicates"] == counts["dup"]
                and s["received"] == before["received"] + counts["valid"] + counts["shape"]
            ),
            120,
            "every flood message to be read and counted",
        )
        after = learner.wait_for(lambda s: s["version"] > done["version"], 60, "more training")
        peak = max(peak, rss_bytes(learner.proc.pid))
    finally:
        for s in socks:
            s.close()
        ctx.term()
        learner.close()
    growth = peak - rss0
    print(
        f"\nflood: offered {offered / 2**20:.0f} MiB over {n_conn} connections, counts {counts}; "
        f"learner RSS {rss0 / 2**20:.0f} -> peak {peak / 2**20:.0f} MiB; "
        f"version {before['version']} -> {after['version']}; final {after}"
    )
    assert offered > 384 * 2**20
    assert growth < 256 * 2**20, f"learner RSS grew by {growth / 2**20:.0f} MiB"
    assert after["inserted"] == before["inserted"] + counts["valid"]
