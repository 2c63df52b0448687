"""The learner and actor services over real ZeroMQ sockets on loopback, and one launched run.

The services are built in-process (threads stand in for processes) with the shrunk smoke config;
the last test runs ``python -m distrl_jax.launch`` end to end in a subprocess.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pathlib
import re
import subprocess
import sys
import threading
import types

import jax
import numpy as np
import pytest
import zmq
from flax import nnx
from learner_script import live_threads, shrunk_config, synthetic_trajectory, wait_until
from service_harness import SERVICE_THREADS, close_services, prefill, start_actor

from distrl_jax.checkpoint.manager import Checkpointer
from distrl_jax.checkpoint.policy_loader import load_policy_state
from distrl_jax.config import Config
from distrl_jax.metrics.writers import MetricsWriter
from distrl_jax.models import policy as P
from distrl_jax.models.jax_policy import JaxPolicy
from distrl_jax.models.spec import tiny
from distrl_jax.runtime.actor_service import ActorService
from distrl_jax.runtime.learner_service import LearnerService, flat_params, nested_params
from distrl_jax.transport import wire
from distrl_jax.transport.control_client import ControlClient
from distrl_jax.transport.param_broadcast import ParamSubscriber
from distrl_jax.transport.trajectory_channel import TrajectorySender
from distrl_jax.transport.wire import Message


def assert_params_equal(a, b) -> None:
    """Every leaf of two parameter pytrees is exactly equal (same structure)."""
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    assert len(la) == len(lb) > 0
    for x, y in zip(la, lb, strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.timeout(120)
def test_ingest_counts_rejects_and_keeps_going(tmp_path):
    """Trajectories sent to the bound endpoint land in replay; a malformed message, a poisoned
    trajectory (NaN rewards) and a trajectory of the wrong screen shape are rejected and counted
    without stopping ingest."""
    service = LearnerService(shrunk_config(tmp_path), tmp_path, writer=MetricsWriter([]))
    raw = zmq.Context.instance().socket(zmq.PUSH)
    raw.setsockopt(zmq.LINGER, 0)
    try:
        for ep in (service.endpoint, service.receiver.endpoint):
            assert re.fullmatch(r"tcp://127\.0\.0\.1:\d+", ep), ep
        with TrajectorySender(service.receiver.endpoint, "probe") as sender:
            for i in range(5):
                sender.send(synthetic_trajectory(i))
            sender.flush(timeout_s=5.0)
            wait_until(lambda: service.inserted == 5, 30, "5 inserted trajectories")
            assert service.learner.replay.stats()["size"] == 5

            raw.connect(service.receiver.endpoint)
            raw.send_multipart([b"not a message", b"\x00" * 7])
            wait_until(lambda: service.receiver.rejects.total == 1, 30, "the malformed reject")

            # Well-formed but poisoned (a NaN reward would become a NaN priority): encoded
            # without the sender's validation, as a hostile actor would; counted, not inserted.
            poisoned = synthetic_trajectory(40)
            poisoned.rewards = np.full_like(poisoned.rewards, np.nan)
            meta = poisoned.meta()
            frames = wire.encode(Message("trajectory", "hostile", 0, 0, poisoned.arrays(), meta))
            raw.send_multipart(frames)
            wait_until(lambda: service.receiver.rejects.total == 2, 30, "the poisoned reject")
            assert service.receiver.rejects["bad_payload"] == 1
            # Token ids past the vocabulary would be read as NaN embeddings by the model.
            beyond = synthetic_trajectory(41)
            beyond.actions = np.full_like(beyond.actions, 10_000)
            frames = wire.encode(Message("trajectory", "hostile", 0, 1, beyond.arrays(), meta))
            raw.send_multipart(frames)
            wait_until(lambda: service.receiver.rejects.total == 3, 30, "the token-id reject")
            assert service.receiver.rejects["bad_payload"] == 2

            # Valid on the wire, wrong for this model: replay refuses it, ingest carries on.
            sender.send(synthetic_trajectory(50, screen_shape=(64, 32)))
            sender.flush(timeout_s=5.0)
            wait_until(
                lambda: service.learner.replay.stats()["rejected"] == 1, 30, "the shape reject"
            )
            assert service.inserted == 5

            for i in range(5, 8):
                sender.send(synthetic_trajectory(i))
            sender.flush(timeout_s=5.0)
            wait_until(lambda: service.inserted == 8, 30, "ingest after the rejects")
        assert service.receiver.rejects.total == 3  # the malformed and the two poisoned messages
        assert service.learner.replay.stats()["size"] == 8
        assert service.learner.ready()
    finally:
        raw.close()
        service.close()
    assert live_threads(SERVICE_THREADS) == []


@pytest.mark.timeout(180)
def test_run_trains_and_broadcasts_loadable_versions(tmp_path):
    """run() trains to learner.steps and broadcasts checkpoints that a subscriber can load;
    close() leaves no thread behind."""
    cfg = shrunk_config(tmp_path, "learner.steps=4")
    service = LearnerService(cfg, tmp_path, writer=MetricsWriter([]))
    control = subscriber = None
    result: dict[str, dict] = {}
    try:
        control = ControlClient(service.endpoint, "probe")
        ack = control.register(timeout_s=10.0)
        subscriber = ParamSubscriber(ack["params"], ack["params_latest"], subscriber_id="probe")
        v0 = subscriber.wait_for(0, timeout_s=30.0)
        assert v0 is not None and v0.version == 0  # the start-up broadcast

        with TrajectorySender(service.receiver.endpoint, "probe") as sender:
            for i in range(6):
                sender.send(synthetic_trajectory(i))
            sender.flush(timeout_s=5.0)
            # Wait before closing: close() drops what the socket has not transmitted yet.
            wait_until(lambda: service.inserted == 6, 30, "6 inserted trajectories")

        runner = threading.Thread(target=lambda: result.update(last=service.run()), name="run")
        runner.start()
        runner.join(timeout=150)
        assert not runner.is_alive(), "run() did not return"
        assert service.learner.version == 4
        last = result["last"]
        assert math.isfinite(last["loss"]) and last["trajectories"] == 6.0
        # It waited for the 6 trajectories to arrive, and that wait is part of its wall time.
        assert 0.0 < last["learner_wait_frac"] < 1.0 and service.wait_s > 0.0

        pv = subscriber.wait_for(2, timeout_s=30.0)
        assert pv is not None and pv.version >= 2 and pv.version % 2 == 0
        assert pv.path and pathlib.Path(pv.path).name == str(pv.version)
        spec, params, meta = load_policy_state(pv.path)
        assert spec == cfg.model
        assert meta["policy_version"] == pv.version and meta["kind"] == "rl"
        if pv.version == 4:  # the newest version is the learner's current parameters
            assert_params_equal(params, service.learner.params)
        assert Checkpointer(tmp_path / "checkpoints").latest_step() == 4
    finally:
        for part in (subscriber, control):
            if part is not None:
                part.close()
        service.close()
    assert live_threads(SERVICE_THREADS) == []


def test_flat_params_round_trip_into_a_policy():
    """flat_params -> nested_params rebuilds parameters that JaxPolicy.set_params accepts."""
    spec = tiny()
    state = nnx.state(P.init_model(spec, 5))
    flat = flat_params(state)
    assert all(isinstance(k, str) and isinstance(v, np.ndarray) for k, v in flat.items())
    assert len(flat) == len(jax.tree.leaves(state))
    assert any(re.search(r"/\d+/", k) for k in flat), "expected list-indexed layers in the paths"

    policy = JaxPolicy(spec, seed=1)  # its own, different initialisation
    policy.set_params(nested_params(flat), 9)
    assert policy.version == 9
    assert_params_equal(policy.state, state)


@pytest.mark.timeout(300)
def test_actor_service_follows_a_running_learner(tmp_path):
    """An in-process actor registers, acts from the first version, sends its episodes (all
    inserted), and swaps in the newer version the running learner broadcasts."""
    cfg = shrunk_config(
        tmp_path,
        "learner.steps=2",
        "device.latency=emulator",
        # ~0.5 s per step: the actor is still playing when the learner's version 2 arrives.
        "device.time_scale=0.25",
    )
    service = LearnerService(cfg, tmp_path, writer=MetricsWriter([]))
    actor = None
    out: dict[str, object] = {}
    threads: list[threading.Thread] = []
    try:
        prefill(service)  # replay is ready ahead of the actor: the learner trains once started

        # Like a launched actor, it has no run folder: it loads only from the checkpoint roots
        # the learner names in its registration ack.
        actor = ActorService(dataclasses.replace(cfg, run_dir=""), service.endpoint, actor_id=0)
        assert actor.control.registered
        assert [r.actor_id for r in service.control.actors()] == ["actor-0"]

        start_actor(actor, out, threads, max_episodes=6)
        threads.append(threading.Thread(target=service.run, name="run"))
        threads[-1].start()
        threads[0].join(timeout=180)
        assert not threads[0].is_alive(), "the actor did not finish 6 episodes"
        assert "error" not in out, out
        assert out["episodes"] == 6
        wait_until(lambda: service.inserted == 10, 30, "the actor's 6 episodes")
        assert actor.sender.sent == 6 and actor.sender.dropped == 0
        assert actor.version_swaps >= 2, "the actor never adopted the broadcast version"
        assert actor.policy.version == 2
        threads[1].join(timeout=60)
        assert not threads[1].is_alive()
        assert service.learner.version == 2
    finally:
        close_services(service, actor, threads)
    assert live_threads(SERVICE_THREADS) == []


class _StubControl:
    """What ``ActorService._adopt`` reads of its ControlClient: the roots from the ack."""

    def __init__(self, roots: list[str]) -> None:
        self.roots = roots

    def checkpoint_roots(self) -> list[str]:
        return list(self.roots)


def test_adopt_loads_only_from_the_checkpoint_roots_named_at_registration(
    tmp_path, monkeypatch
) -> None:
    """A path-mode announcement outside the roots the learner named (``..``, an absolute path
    elsewhere, a symlink out) is a counted bad payload: nothing is loaded and the actor keeps
    its version; one inside them is loaded."""
    import distrl_jax.runtime.actor_service as actor_service
    from distrl_jax.transport.param_broadcast import ParamsVersion
    from distrl_jax.transport.wire import RejectCounter

    roots = tmp_path / "run" / "checkpoints"
    (roots / "1").mkdir(parents=True)
    (tmp_path / "secret").mkdir()
    (roots / "9").symlink_to(tmp_path / "secret", target_is_directory=True)
    loaded: list[str] = []

    def fake_load(path, spec):
        loaded.append(str(path))
        return spec, {"w": np.zeros(1)}, {}

    monkeypatch.setattr(actor_service, "load_policy_state", fake_load)
    set_params: list[int] = []
    actor = ActorService.__new__(ActorService)  # no sockets or devices: only _adopt's parts
    actor.cfg = Config()  # run_dir ''
    actor.control = _StubControl([str(roots)])
    actor.subscriber = types.SimpleNamespace(rejects=RejectCounter())
    actor.policy = types.SimpleNamespace(set_params=lambda params, v: set_params.append(v))
    actor.policy_spec = tiny()
    actor.version_swaps, actor.versions_adopted, actor._load_s = 0, [], 0.0

    bad = [
        str(roots / ".." / ".." / "secret"),
        str(tmp_path / "secret"),
        str(roots / "9"),  # inside by name, outside once the symlink is followed
        "/etc",
    ]
    for version, path in enumerate(bad, start=2):
        for _ in range(2):  # retried after every episode: counted once per version
            with pytest.raises(ValueError, match="outside"):
                actor._adopt(ParamsVersion(version, version, path=path))
    assert actor.subscriber.rejects.as_dict() == {"bad_payload": len(bad)}
    assert loaded == [] and set_params == [] and actor.version_swaps == 0

    actor._adopt(ParamsVersion(1, 1, path=str(roots / "1")))
    assert loaded == [str((roots / "1").resolve())] and set_params == [1]
    assert actor.versions_adopted == [1]

    actor.control = _StubControl([])  # no roots from the learner: the configured run folder
    actor.cfg = dataclasses.replace(actor.cfg, run_dir=str(tmp_path / "run"))
    actor._adopt(ParamsVersion(3, 3, path=str(roots / "1")))
    assert set_params == [1, 3]
    with pytest.raises(ValueError, match="outside"):
        actor._adopt(ParamsVersion(4, 4, path=str(tmp_path / "secret")))


def _processes_with(needle: str) -> list[int]:
    """Pids of live processes whose command line contains ``needle``."""
    pids = []
    for proc in pathlib.Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if needle in cmdline:
            pids.append(int(proc.name))
    return pids


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_launch_end_to_end(tmp_path, cache_dir):
    """``python -m distrl_jax.launch`` trains with two real actor processes on loopback, prints
    both evaluation tables and the success line, writes metrics and checkpoints, at least two
    broadcasts reach every actor (each acts with them), and no actor outlives the run."""
    run_dir = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "distrl_jax.launch",
        "--config=smoke",
        "--learner.steps=6",
        "--eval.max_tasks=2",
        "--replay.min_size=4",
        "--learner.batch_size=4",
        "--runtime.broadcast_every=2",
        "--runtime.num_actors=2",
        "--device.count=2",
        # 8 fresh trajectories per step: the learner is paced by both actors, so each of them
        # plays episodes between the broadcasts of versions 2, 4 and 6.
        "--replay.samples_per_insert=0.5",
        # The smoke preset's BC warm start, shrunk: trained here once, then used as the start.
        "--pretrain.steps=3",
        "--pretrain.max_tasks=4",
        "--pretrain.batch_size=8",
        "--pretrain.augment_per_task=1",
        f"--run-dir={run_dir}",
    ]
    env = dict(os.environ, JAX_PLATFORMS="cpu", JAX_COMPILATION_CACHE_DIR=str(cache_dir))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=380, env=env)
    out = proc.stdout
    assert proc.returncode == 0, out[-4000:] + proc.stderr[-4000:]
    assert re.search(r"^start: success ", out, re.M), out[-4000:]
    assert re.search(r"^final: success ", out, re.M), out[-4000:]
    assert re.search(r"success on general:val: start .* -> final ", out), out[-4000:]
    assert re.search(r"^trained 6 steps on \d+ trajectories", out, re.M), out[-4000:]
    assert "started 2 actor processes" in out, out[-4000:]
    for actor in (0, 1):
        # The actor's own account: the versions it swapped in (0 = the start-up broadcast).
        acted = re.search(rf"^actor {actor}: \d+ episodes .* policy versions ([\d,]+)$", out, re.M)
        assert acted, out[-4000:]
        adopted = [int(v) for v in acted.group(1).split(",")]
        assert adopted[0] == 0 and len(set(adopted) - {0}) >= 2, adopted
        # The learner's account: trajectories that were played with a broadcast version.
        seen = re.search(
            rf"^trajectories from actor {actor} were played .* \[([\d, ]+)\]$", out, re.M
        )
        assert seen, out[-4000:]
        assert max(int(v) for v in seen.group(1).split(",")) >= 2, seen.group(0)
    assert "no behaviour-cloning warm start yet" in out, out[-4000:]
    warm = list((tmp_path / "warm-starts").glob("bc-tiny-*/checkpoints/0"))
    assert len(warm) == 1, warm
    assert re.search(r"learner: initialised from .*warm-starts.* \(bc\)", out), out[-4000:]

    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) >= 1
    assert all(math.isfinite(r["loss"]) for r in rows if "loss" in r)
    with Checkpointer(run_dir / "checkpoints") as ckpts:
        assert ckpts.latest_step() == 6
        assert ckpts.read_meta(6)["policy_version"] == 6
    for name in ("start", "final"):
        assert (run_dir / "eval" / f"{name}.md").is_file()

    endpoint = re.search(r"control endpoint (tcp://\S+)", out)
    assert endpoint, out[-4000:]
    assert _processes_with(f"--learner={endpoint.group(1)}") == [], "an actor outlived the run"
