"""The synchronous runtime mode end to end (in-process, real sockets), and the actor supervisor's
restart-with-backoff and shutdown on real child processes.

Sync mode: every actor plays ``runtime.sync_round`` episodes with one policy version and waits;
the learner trains ``runtime.sync_steps`` steps once the whole round has arrived, broadcasts,
and that broadcast releases the actors. The supervisor tests replace only the command an actor
process runs (a child that exits at once, sleeps, or ignores SIGTERM); the watching, backoff and
stopping are the real ``ActorSupervisor``'s.
"""

from __future__ import annotations

import itertools
import logging
import math
import pathlib
import re
import signal
import subprocess
import sys
import threading
import time

import pytest
from learner_script import live_threads, shrunk_config, wait_until

from distrl_jax.config import ConfigError
from distrl_jax.launch import parse_args
from distrl_jax.metrics.writers import MetricsWriter
from distrl_jax.runtime.actor_service import ActorService
from distrl_jax.runtime.learner_service import LearnerService
from distrl_jax.runtime.training import ActorSupervisor

# Threads our services (and this module) start; none may outlive the test.
OUR_THREADS = {
    "ingest",
    "control-server",
    "param-latest",
    "param-subscriber",
    "heartbeat",
    "actor",
    "learner-run",
    "actor-supervisor",
}


# ---------------------------------------------------------------------------- sync mode


@pytest.mark.timeout(240)
def test_sync_mode_rounds_barrier_and_versions(tmp_path):
    """Two sync rounds take the learner to version 4: each round is exactly ``sync_round``
    episodes played with the version current at that round (0, then 2), the learner trains only
    once the whole round is in (the actor waiting at the barrier meanwhile), and it broadcasts
    once per round; the actor's next round uses the last broadcast (4). Nothing is left running.
    """
    sync_round, sync_steps = 3, 2
    cfg = shrunk_config(
        tmp_path,
        "runtime.mode=sync",
        f"runtime.sync_round={sync_round}",
        f"runtime.sync_steps={sync_steps}",
        "learner.steps=4",
        "device.count=2",
        # Sync mode's barrier is the round, not min_size; a min_size above a round would be
        # the deadlock the learner's comment warns about, so keep it below.
        "replay.min_size=1",
    )
    service = LearnerService(cfg, tmp_path, writer=MetricsWriter([]))
    learner = service.learner

    # Spies that delegate to the real methods: they record the order of events across threads.
    inserted: list[tuple[int, int]] = []  # (trajectory's policy_version, learner version then)
    steps: list[tuple[int, int, int]] = []  # (version before the step, inserted, actor episodes)
    broadcasts: list[int] = []
    real_insert, real_step, real_broadcast = learner.insert, learner.train_step, service.broadcast
    actor: ActorService | None = None

    def insert(traj):
        ok = real_insert(traj)
        assert ok, "a sync-mode trajectory was dropped as stale"
        inserted.append((traj.policy_version, learner.version))
        return ok

    def train_step():
        steps.append((learner.version, len(inserted), actor.episodes if actor else -1))
        return real_step()

    def broadcast():
        broadcasts.append(learner.version)
        return real_broadcast()

    learner.insert, learner.train_step, service.broadcast = insert, train_step, broadcast

    out: dict[str, object] = {}
    threads: list[threading.Thread] = []
    try:
        actor = ActorService(cfg, service.endpoint, actor_id=0)
        assert service.control.alive() == ["actor-0"]  # the barrier counts this one actor

        def act() -> None:
            try:
                out["episodes"] = actor.run()
            except BaseException as e:  # surfaced by the assertions below
                out["actor_error"] = e

        def train() -> None:
            try:
                out["last"] = service.run()
            except BaseException as e:
                out["run_error"] = e

        threads.append(threading.Thread(target=act, name="actor"))
        threads.append(threading.Thread(target=train, name="learner-run"))
        for t in threads:
            t.start()
        threads[1].join(timeout=180)
        assert not threads[1].is_alive(), f"run() did not return; steps {steps}, {inserted}"
        assert "run_error" not in out and "actor_error" not in out, out

        assert learner.version == 4
        # One broadcast per round (after its sync_steps steps): two rounds.
        assert broadcasts == [2, 4]
        # Training waited for each whole round, and the actor was at its barrier meanwhile.
        assert steps == [(0, 3, 3), (1, 3, 3), (2, 6, 6), (3, 6, 6)], steps
        assert inserted[:6] == [(0, 0)] * 3 + [(2, 2)] * 3, inserted
        last = out["last"]
        assert isinstance(last, dict) and math.isfinite(last["loss"]), last
        assert last["trajectories"] == 6.0

        # The last broadcast released the actor into a third round, played with version 4.
        wait_until(lambda: len(inserted) == 9, 60, "the actor's third round")
        assert inserted[6:] == [(4, 4)] * 3, inserted
        assert actor.policy.version == 4
        assert actor.episodes == 9 and actor.infra_failures == 0
        time.sleep(0.5)  # the actor now waits for version 5 (which never comes): no fourth round
        assert len(inserted) == 9 and actor.episodes == 9
        assert learner.replay.stats()["inserts"] == 9
    finally:
        if actor is not None:
            actor.stop()
        for t in threads:
            t.join(timeout=30)
        if actor is not None:
            actor.close()
        service.stop()
        service.close()
    assert out.get("episodes") == 9, out
    assert live_threads(OUR_THREADS) == []


# ---------------------------------------------------------------------------- supervision


class ScriptedSupervisor(ActorSupervisor):
    """The real supervisor whose actor processes run ``code`` (a Python one-liner) instead of
    ``distrl_jax.launch``; every start is recorded with its time and process."""

    code = "import sys; sys.exit(3)"

    def _start(self, i: int) -> None:
        # Set here, not in __init__: the base __init__ starts the first processes.
        if not hasattr(self, "starts"):
            self.starts: list[tuple[float, subprocess.Popen]] = []
        proc = subprocess.Popen(
            [sys.executable, "-c", self.code],
            env=self.env,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.starts.append((time.monotonic(), proc))
        self.procs[i] = proc

    def close_pipes(self) -> None:
        """Close the children's stdout pipes (after stop)."""
        for _, p in self.starts:
            p.stdout.close()


def supervisor_config(tmp_path: pathlib.Path):
    """A one-actor config (the supervisor reads ``runtime.num_actors`` only)."""
    return shrunk_config(tmp_path, "runtime.num_actors=1")


@pytest.mark.timeout(60)
def test_supervisor_restarts_a_dying_actor_with_growing_backoff(tmp_path, caplog):
    """An actor that exits at once is restarted after 1 s, then after 2 s (the delay doubles,
    as logged), and stop() leaves no process behind and starts no more."""
    caplog.set_level(logging.WARNING, logger="distrl_jax.runtime.training")
    sup = ScriptedSupervisor(supervisor_config(tmp_path), "tcp://127.0.0.1:9", ())
    try:
        assert len(sup.starts) == 1 and sup.restarts == 0
        # Waiting on the starts, not the counter: restarts is counted just before the start.
        wait_until(lambda: len(sup.starts) >= 3, 10, "two restarts")  # due at ~1.5 s and ~4 s
        assert sup.restarts == 2
        # The child really is the scripted one, and it died with its own status.
        assert sup.starts[0][1].wait(timeout=5) == 3
    finally:
        sup.stop(timeout_s=5.0)
        sup.close_pipes()
    starts_at_stop = len(sup.starts)
    times = [t for t, _ in sup.starts]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # A restart never comes before its delay; the watcher polls every 0.5 s, so detection and
    # the restart poll add up to ~1 s on top (more allowed for a loaded machine).
    assert 1.0 <= gaps[0] < 3.5, gaps
    assert 2.0 <= gaps[1] < 4.5, gaps
    delays = [
        float(m.group(1))
        for r in caplog.records
        if (m := re.search(r"actor 0 exited with 3; restarting in (\d+) s", r.getMessage()))
    ]
    assert delays[:2] == [1.0, 2.0], caplog.text
    assert all(b == 2 * a for a, b in itertools.pairwise(delays)), delays

    assert all(p.poll() is not None for _, p in sup.starts)
    assert sup.alive() == 0
    assert not sup._thread.is_alive()
    time.sleep(1.6)  # past the next restart a live watcher would make
    assert len(sup.starts) == starts_at_stop
    assert "actor-supervisor" not in live_threads(OUR_THREADS)


@pytest.mark.timeout(60)
def test_supervisor_stop_terminates_a_live_actor(tmp_path):
    """A running actor is never restarted, and stop() ends it with SIGTERM promptly."""
    sup = type("Sleeper", (ScriptedSupervisor,), {"code": "import time; time.sleep(60)"})(
        supervisor_config(tmp_path), "tcp://127.0.0.1:9", ()
    )
    try:
        assert sup.alive() == 1
        time.sleep(1.2)  # a couple of watcher polls: a live actor is left alone
        assert sup.alive() == 1 and sup.restarts == 0 and len(sup.starts) == 1
        t0 = time.monotonic()
        sup.stop(timeout_s=10.0)
        took = time.monotonic() - t0
    finally:
        sup.stop(timeout_s=1.0)  # idempotent; a no-op when the first stop worked
        sup.close_pipes()
    (_, proc), *more = sup.starts
    assert more == []
    assert proc.returncode == -signal.SIGTERM
    assert took < 5.0, took
    assert sup.alive() == 0 and sup.restarts == 0
    assert "actor-supervisor" not in live_threads(OUR_THREADS)


@pytest.mark.timeout(60)
def test_supervisor_stop_kills_an_actor_that_ignores_sigterm(tmp_path):
    """An actor that ignores SIGTERM is killed (SIGKILL) once stop()'s timeout has passed."""
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(60)"
    )
    sup = type("Stubborn", (ScriptedSupervisor,), {"code": code})(
        supervisor_config(tmp_path), "tcp://127.0.0.1:9", ()
    )
    try:
        proc = sup.starts[0][1]
        # SIGTERM must arrive after the child ignores it, or it would simply die of it.
        assert proc.stdout.readline().strip() == "ready"
        t0 = time.monotonic()
        sup.stop(timeout_s=1.0)
        took = time.monotonic() - t0
    finally:
        sup.stop(timeout_s=1.0)
        sup.close_pipes()
    assert proc.returncode == -signal.SIGKILL
    assert 1.0 <= took < 5.0, took
    assert len(sup.starts) == 1 and sup.alive() == 0


# ---------------------------------------------------------------------------- adb devices

SERIALS = [f"emulator-{5554 + 2 * i}" for i in range(5)]


def _child_config(cmd: list[str]):
    """What ``python -m distrl_jax.launch`` makes of an actor's command line."""
    assert cmd[1:3] == ["-m", "distrl_jax.launch"]
    return parse_args(cmd[3:])


@pytest.mark.parametrize(
    "user_argv",
    [
        ["--devices", f"adb:{','.join(SERIALS)}"],
        [f"--devices=adb:{','.join(SERIALS)}"],
        ["--device.kind=adb", f"--device.serials={','.join(SERIALS)}"],
        ["--set", "device.kind=adb", "--device.serials", ",".join(SERIALS)],
    ],
    ids=["devices-two-words", "devices", "serials", "set-and-two-words"],
)
def test_each_adb_actor_gets_its_own_serials(user_argv):
    """`--role=all` with adb devices: actor i drives serials[i::n], however the user named
    them; together the actors drive every serial exactly once."""
    argv = ["--config=smoke", "--role=all", "--runtime.num_actors=2", *user_argv]
    _, cfg = parse_args(argv)
    # What launch passes on (its --role/--accel/... are replaced for the children).
    child_argv = [a for a in argv if not a.startswith("--role")] + ["--accel=cpu"]
    commands = ActorSupervisor.actor_commands(cfg, "tcp://127.0.0.1:9", child_argv)
    assert len(commands) == 2
    seen = []
    for i, cmd in enumerate(commands):
        ns, child = _child_config(cmd)
        assert (ns.role, ns.learner, ns.actor_id, child.device.kind) == (
            "actor",
            "tcp://127.0.0.1:9",
            i,
            "adb",
        )
        assert list(child.device.serials) == SERIALS[i::2]
        assert child.device.count == len(SERIALS[i::2])
        seen += child.device.serials
    assert sorted(seen) == sorted(SERIALS)


def test_simphone_actors_keep_the_shared_device_settings(tmp_path):
    cfg = shrunk_config(tmp_path, "runtime.num_actors=3", "device.count=4")
    commands = ActorSupervisor.actor_commands(cfg, "tcp://127.0.0.1:9", ["--device.count=4"])
    assert [c[-1] for c in commands] == ["--actor-id=0", "--actor-id=1", "--actor-id=2"]
    assert not any(a.startswith("--devices") for c in commands for a in c)
    for cmd in commands:
        _, child = _child_config(cmd)
        assert (child.device.kind, child.device.count) == ("simphone", 4)


def test_more_adb_actors_than_serials_is_refused_before_any_starts(tmp_path):
    _, cfg = parse_args(["--config=smoke", "--runtime.num_actors=3", "--devices=adb:a,b"])
    with pytest.raises(ConfigError, match=r"runtime\.num_actors=3.*only 2.*num_actors=2"):
        ActorSupervisor.actor_commands(cfg, "tcp://127.0.0.1:9", ())
    started = []

    class Recording(ScriptedSupervisor):
        def _start(self, i: int) -> None:
            started.append(i)

    with pytest.raises(ConfigError):
        Recording(cfg, "tcp://127.0.0.1:9", ())
    assert started == []
