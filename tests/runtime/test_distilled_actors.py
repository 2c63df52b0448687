"""Actors running the distilled student (actor.policy=distilled) through the real services.

A :class:`LearnerService` (real ZeroMQ on loopback, real Orbax checkpoints) trains the learner
and its student; an in-process :class:`ActorService` acts with what is broadcast. Both broadcast
modes are covered: ``path`` announces the student's checkpoint folder, ``inline`` sends the
student's parameters themselves. Set up like
``test_services.py::test_actor_service_follows_a_running_learner``.
"""

from __future__ import annotations

import pathlib
import threading

import jax
import numpy as np
import pytest
from learner_script import live_threads, shrunk_config, wait_until
from service_harness import SERVICE_THREADS, close_services, prefill, start_actor

from distrl_jax.checkpoint.policy_loader import load_policy_state
from distrl_jax.learner.student import STUDENT_DIR
from distrl_jax.metrics.writers import MetricsWriter
from distrl_jax.models.spec import preset
from distrl_jax.runtime.actor_service import ActorService
from distrl_jax.runtime.learner_service import LearnerService

ACTOR = 3  # the prefill's synthetic trajectories say actor 0: the actor's own are told apart


def _leaves(params) -> list[np.ndarray]:
    return [np.array(x) for x in jax.tree.leaves(params)]


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("broadcast", ["path", "inline"])
def test_actor_acts_with_the_broadcast_student(tmp_path, broadcast):
    """The actor builds the student preset, adopts the student of version 0 and then of the
    learner's version 2 (the trained student, exactly: from ``checkpoints-student/2`` or
    inline), and its trajectories reach the learner marked with version 2."""
    cfg = shrunk_config(
        tmp_path,
        "actor.policy=distilled",
        "distill.batch_states=8",
        "learner.steps=2",  # broadcasts versions 0 (start-up) and 2 (runtime.broadcast_every=2)
        f"runtime.broadcast={broadcast}",
        "device.latency=emulator",
        "device.time_scale=0.25",  # ~0.5 s per step: the actor stays light while both compile
    )
    student = preset(cfg.distill.student)
    assert student != cfg.model
    service = LearnerService(cfg, tmp_path, writer=MetricsWriter([]))
    actor = None
    out: dict[str, object] = {}
    threads: list[threading.Thread] = []
    try:
        untrained = _leaves(service.learner.student.params)  # the student of version 0
        prefill(service)  # replay is ready before the actor starts: the learner trains at once

        actor = ActorService(cfg, service.endpoint, actor_id=ACTOR)
        assert actor.policy_spec == student and actor.policy.spec == student

        start_actor(actor, out, threads)
        if broadcast == "path":
            first = actor.subscriber.latest()
            assert pathlib.Path(first.path) == tmp_path / STUDENT_DIR / "0", first.path

        threads.append(threading.Thread(target=service.run, name="run"))
        threads[-1].start()

        def played_with_version_2() -> bool:
            assert "error" not in out, out
            return max(service.versions_by_actor().get(ACTOR, [0])) >= 2

        wait_until(played_with_version_2, 180, "a trajectory played with version 2")
        threads[1].join(timeout=60)
        assert not threads[1].is_alive(), "run() did not return"
        assert service.learner.version == 2
        actor.stop()
        threads[0].join(timeout=30)
        assert not threads[0].is_alive() and "error" not in out, out

        assert actor.versions_adopted == [0, 2], actor.versions_adopted
        assert actor.policy.version == 2 and actor.policy.invalid_count == 0
        assert set(service.versions_by_actor()[ACTOR]) <= {0, 2}  # only broadcast versions
        trained = _leaves(service.learner.student.params)
        assert any(not np.array_equal(a, b) for a, b in zip(untrained, trained, strict=True))
        for a, b in zip(trained, _leaves(actor.policy.state), strict=True):
            np.testing.assert_array_equal(a, b)  # the actor acts with the trained student
        announced = actor.subscriber.latest()
        assert announced.version == 2
        if broadcast == "path":
            assert pathlib.Path(announced.path) == tmp_path / STUDENT_DIR / "2", announced.path
            spec, _, meta = load_policy_state(announced.path)
            assert spec == student and meta["kind"] == "student" and meta["policy_version"] == 2
        else:
            assert not announced.path and announced.params is not None
    finally:
        close_services(service, actor, threads)
    assert live_threads(SERVICE_THREADS) == []
