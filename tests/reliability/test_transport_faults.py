"""The trajectory channel when the learner is unreachable or restarts (no JAX, real sockets).

An actor's sender keeps a bounded outbox while nobody listens, drops the oldest with a count,
and delivers the rest when a learner binds the port; the learner sees the drops as a gap.
"""

from __future__ import annotations

import time

import pytest
from fault_scripts import free_port_block, synthetic_trajectory

from distrl_jax.transport.trajectory_channel import TrajectoryReceiver, TrajectorySender


@pytest.mark.timeout(60)
def test_sender_bounds_its_outbox_while_no_learner_is_there():
    """Nobody at the port: the socket queue takes ``sndhwm``, the outbox keeps the newest
    ``outbox_size`` and every other trajectory is dropped and counted; when the learner
    appears, what was kept arrives in order and the learner sees the drops as a gap."""
    endpoint = f"tcp://127.0.0.1:{free_port_block(1)}"
    sender = TrajectorySender(endpoint, "actor-x", outbox_size=5, sndhwm=4)
    try:
        for i in range(20):
            sender.send(synthetic_trajectory(i, length=1))
        assert sender.sent == 4 and sender.pending == 5 and sender.dropped == 11
        with TrajectoryReceiver(endpoint) as learner:
            assert sender.flush(timeout_s=10.0) == 0
            got = [learner.recv(timeout_s=10.0) for _ in range(9)]
            assert [t.episode_id for t in got] == [0, 1, 2, 3, *range(15, 20)]
            assert learner.recv(timeout_s=0.2) is None
            stats = learner.stats()
    finally:
        sender.close()
    assert stats["gaps"] == sender.dropped == 11 and stats["duplicates"] == 0, stats


@pytest.mark.timeout(60)
def test_every_trajectory_sent_across_a_learner_restart_arrives_or_is_counted():
    """The learner stops mid-stream and a new one binds the same port while the actor keeps
    sending: each trajectory reaches one of the two learners or is counted as dropped, except
    at most the few the socket had already accepted (in flight) when the first one went away."""
    endpoint = f"tcp://127.0.0.1:{free_port_block(1)}"
    total = 60
    sender = TrajectorySender(endpoint, "actor-x", outbox_size=5, sndhwm=4)
    try:
        with TrajectoryReceiver(endpoint) as first:
            for i in range(10):
                sender.send(synthetic_trajectory(i, length=1))
                assert sender.flush(timeout_s=10.0) == 0
            got = [first.recv(timeout_s=10.0) for _ in range(10)]
            assert [t.episode_id for t in got] == list(range(10)) and sender.dropped == 0
        for i in range(10, total):  # the learner is gone; the actor keeps playing
            sender.send(synthetic_trajectory(i, length=1))
            time.sleep(0.005)
        with TrajectoryReceiver(endpoint) as second:
            sender.flush(timeout_s=10.0)
            later = []
            while (t := second.recv(timeout_s=1.0)) is not None:
                later.append(t)
    finally:
        sender.close()
    ids = [t.episode_id for t in later]
    assert ids == sorted(ids) and ids[-1] == total - 1, ids
    lost = total - (10 + len(later) + sender.dropped + sender.pending)
    print(
        f"\nlearner restart: dropped {sender.dropped} (counted), second {len(later)}, lost {lost}"
    )
    # Only what sat in the socket queue (sndhwm) when the learner went away may vanish
    # uncounted (seen once in 4 runs under load: 1); anything more is a leak in the accounting.
    assert 0 <= lost <= 4, f"{lost} trajectories vanished without a count"
