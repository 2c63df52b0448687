"""Helpers of the tests that run a :class:`LearnerService` with an in-process
:class:`ActorService` (``test_services.py``, ``test_distilled_actors.py``): the prefill, the
actor's thread and the teardown they share.

A plain module beside them (the runtime tests import it by name, as they do ``learner_script``).
"""

from __future__ import annotations

import threading

from learner_script import synthetic_trajectory, wait_until

from distrl_jax.runtime.actor_service import ActorService
from distrl_jax.runtime.learner_service import LearnerService
from distrl_jax.transport.trajectory_channel import TrajectorySender

# Threads the services start; none may outlive close().
SERVICE_THREADS = {"ingest", "control-server", "param-latest", "param-subscriber", "heartbeat"}


def prefill(service: LearnerService, count: int = 4) -> None:
    """Send ``count`` synthetic trajectories (seeds 0.., actor 0) and wait until the learner has
    inserted them all, so replay is ready and the learner trains as soon as it runs."""
    with TrajectorySender(service.receiver.endpoint, "prefill") as sender:
        for i in range(count):
            sender.send(synthetic_trajectory(i))
        sender.flush(timeout_s=5.0)
        # Before close(): it drops what the socket has not transmitted yet.
        wait_until(lambda: service.inserted == count, 30, "the prefill")


def start_actor(
    actor: ActorService, out: dict[str, object], threads: list[threading.Thread], **run_kwargs
) -> None:
    """Run ``actor.run(**run_kwargs)`` in a thread named ``actor`` (appended to ``threads``):
    its result lands in ``out["episodes"]``, what it raises in ``out["error"]``. Returns once
    the actor has adopted its first version, version 0."""

    def act() -> None:
        try:
            out["episodes"] = actor.run(**run_kwargs)
        except BaseException as e:  # surfaced by the assertions of the caller
            out["error"] = e

    threads.append(threading.Thread(target=act, name="actor"))
    threads[-1].start()
    wait_until(lambda: actor.version_swaps >= 1 or "error" in out, 120, "the first version")
    assert "error" not in out, out
    assert actor.policy.version == 0


def close_services(
    service: LearnerService, actor: ActorService | None, threads: list[threading.Thread]
) -> None:
    """The teardown: stop the actor (if it was built), join ``threads``, close the actor, then
    stop and close the learner service."""
    if actor is not None:
        actor.stop()
        for t in threads:
            t.join(timeout=30)
        actor.close()
    service.stop()
    service.close()
