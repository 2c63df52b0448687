"""An actor driving adb devices: the runtime over real adbutils against the test ADB server.

The learner service and the actor run in this process (threads); the actor's devices are the
ADB server's simphones, reached through adbutils on loopback, judged by the server's exact judge.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from learner_script import shrunk_config, wait_until

from distrl_jax.devices.adb_device import AdbDevice, AdbSimEvaluator
from distrl_jax.devices.adb_server import AdbServer
from distrl_jax.launch import main as launch_main
from distrl_jax.launch import parse_args
from distrl_jax.metrics.writers import MetricsWriter
from distrl_jax.runtime.actor_service import ActorService, make_devices
from distrl_jax.runtime.learner_service import LearnerService


def test_devices_flag_sets_kind_count_and_serials() -> None:
    """``--devices`` is shorthand for the device fields; a malformed value exits with usage."""
    _, cfg = parse_args(["--devices=adb:emulator-5554,emulator-5556"])
    assert cfg.device.kind == "adb"
    assert cfg.device.serials == ("emulator-5554", "emulator-5556")
    assert cfg.device.count == 2
    _, cfg = parse_args(["--devices=simphone:3"])
    assert (cfg.device.kind, cfg.device.count) == ("simphone", 3)
    for bad in ("adb:", "simphone:0", "phone:2", "simphone:x"):
        with pytest.raises(SystemExit):
            parse_args([f"--devices={bad}"])


def test_more_actors_than_adb_devices_is_refused_before_anything_starts(tmp_path, capsys) -> None:
    """Two actor processes must never drive one phone: ``--role=all`` with 3 actors on 2 serials
    exits 2 with the fix in the message, before a run folder or a learner exists."""
    run_dir = tmp_path / "run"
    code = launch_main(
        [
            "--devices=adb:emulator-5554,emulator-5556",
            "--runtime.num_actors=3",
            f"--run-dir={run_dir}",
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "runtime.num_actors=3" in err and "--runtime.num_actors=2" in err, err
    assert not run_dir.exists()


@pytest.mark.timeout(240)
def test_actor_on_adb_devices_sends_trajectories(tmp_path) -> None:
    """An ActorService with ``device.kind=adb`` plays on two served devices, and the learner
    inserts its trajectories (model-sized screens, behaviour log-probs, version 0)."""
    with AdbServer(2, size=(256, 128), layout_seed=0) as server:
        cfg = shrunk_config(
            tmp_path,
            "device.kind=adb",
            f"device.serials={','.join(server.serials)}",
            f"device.adb_port={server.port}",
            "device.adb_sim_control=true",
            "device.adb_timeout_s=20",
        )
        envs = make_devices(cfg, 0)
        assert [type(e.device) for e in envs] == [AdbDevice, AdbDevice]
        assert all(isinstance(e.evaluator, AdbSimEvaluator) for e in envs)
        for env in envs:
            env.device.close()

        service = LearnerService(cfg, tmp_path, writer=MetricsWriter([]))
        actor = None
        out: dict[str, object] = {}
        thread = None
        try:
            actor = ActorService(cfg, service.endpoint, actor_id=3)

            def act() -> None:
                try:
                    out["episodes"] = actor.run(max_episodes=2)
                except BaseException as e:  # surfaced by the assertions below
                    out["error"] = e

            thread = threading.Thread(target=act, name="actor")
            thread.start()
            thread.join(timeout=200)
            assert not thread.is_alive(), "the adb actor did not finish 2 episodes"
            assert "error" not in out, out
            assert out["episodes"] == 2
            wait_until(lambda: service.inserted == 2, 30, "the adb actor's 2 episodes")
            assert service.versions_by_actor() == {3: [0]}
            batch = service.learner.replay.sample(2, np.random.default_rng(0))
            h, w = cfg.model.image_size
            assert batch.screens.shape[-3:] == (h, w, 3)
            assert np.all(batch.behaviour_logp <= 0)
        finally:
            if actor is not None:
                actor.stop()
                if thread is not None:
                    thread.join(timeout=30)
                actor.close()
            service.close()
