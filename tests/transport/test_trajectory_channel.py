"""The trajectory channel over real loopback ZeroMQ: order, sequence checks, bounded outbox."""

from __future__ import annotations

import json
import socket

import numpy as np
import pytest
import zmq

from distrl_jax.transport import wire
from distrl_jax.transport.trajectory_channel import TrajectoryReceiver, TrajectorySender

pytestmark = pytest.mark.timeout(30)


def closed_endpoint() -> str:
    """A loopback endpoint nobody listens on: a port the OS chose, released synchronously.

    (A ZeroMQ socket would release its port asynchronously, and a sender could still reach it.)
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"tcp://127.0.0.1:{port}"


def raw_push(endpoint: str) -> zmq.Socket:
    sock = zmq.Context.instance().socket(zmq.PUSH)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    return sock


def test_delivers_in_order_with_sequence_numbers(make_trajectory) -> None:
    with TrajectoryReceiver() as rx, TrajectorySender(rx.endpoint, "actor-0") as tx:
        sent = [make_trajectory(1 + i % 3, seed=i, episode_id=i) for i in range(6)]
        assert [tx.send(traj) for traj in sent] == list(range(6))
        assert tx.flush(timeout_s=10) == 0
        got = [rx.recv(timeout_s=10) for _ in sent]
        assert [t.episode_id for t in got] == list(range(6))
        for a, b in zip(sent, got, strict=True):
            np.testing.assert_array_equal(a.screens, b.screens)
            assert a.meta() == b.meta()
        assert rx.recv(timeout_s=0.05) is None
        stats = rx.stats()
        assert (stats["received"], stats["duplicates"], stats["gaps"]) == (6, 0, 0)
        assert tx.stats() == {"sent": 6, "dropped": 0, "pending": 0}


def test_detects_duplicates_and_gaps_per_session(make_trajectory) -> None:
    with TrajectoryReceiver() as rx:
        push = raw_push(rx.endpoint)
        traj = make_trajectory(2)
        # seq 1 repeated (a duplicate, dropped), seq 2 missing (a gap), then a restarted
        # sender (new session) whose seq 0 is new, not a duplicate, and a stream first seen at
        # seq 5 (a learner that joined late cannot know what came before: not a gap).
        sends = [(0, "s1"), (1, "s1"), (1, "s1"), (3, "s1"), (0, "s2"), (5, "s3"), (6, "s3")]
        for seq, session in sends:
            push.send_multipart(wire.encode_trajectory(traj, sender="a", seq=seq, session=session))
        got = [rx.recv(timeout_s=10) for _ in range(6)]
        assert all(t is not None for t in got)
        assert rx.recv(timeout_s=0.1) is None  # the duplicate never reaches the learner
        stats = rx.stats()
        assert (stats["received"], stats["duplicates"], stats["gaps"]) == (6, 1, 1)
        push.close()


def test_malformed_messages_are_counted_and_the_receiver_goes_on(make_trajectory) -> None:
    with TrajectoryReceiver() as rx:
        push = raw_push(rx.endpoint)
        good = [
            bytes(np.asarray(f).data) if not isinstance(f, bytes) else f
            for f in wire.encode_trajectory(make_trajectory(2), sender="a", seq=0)
        ]
        header = json.loads(good[0])
        bad = [
            [b"not json", *good[1:]],  # bad_header
            [json.dumps({**header, "schema": 7}).encode(), *good[1:]],  # wrong_version
            good[:-1],  # frame_count
            [*good[:-1], good[-1][:-2]],  # frame_length
            [json.dumps({**header, "kind": "hello"}).encode(), *good[1:]],  # unexpected_kind
        ]
        for frames in bad:
            push.send_multipart(frames)
        push.send_multipart(good)
        traj = rx.recv(timeout_s=10)
        assert traj is not None and traj.length == 2
        assert rx.rejects.as_dict() == {
            "bad_header": 1,
            "wrong_version": 1,
            "frame_count": 1,
            "frame_length": 1,
            "unexpected_kind": 1,
        }
        push.close()


def test_full_outbox_drops_oldest_and_the_receiver_sees_the_gap(make_trajectory) -> None:
    endpoint = closed_endpoint()
    with TrajectorySender(endpoint, "actor-1", outbox_size=2, sndhwm=1) as tx:
        for i in range(8):
            tx.send(make_trajectory(1, episode_id=i))
        assert tx.pending == 2 and tx.dropped > 0
        assert tx.dropped + tx.pending + tx.sent == 8
        with TrajectoryReceiver(endpoint) as rx:  # the learner comes up late
            assert tx.flush(timeout_s=10) == 0
            got = [rx.recv(timeout_s=10) for _ in range(tx.sent)]
            episodes = [t.episode_id for t in got]
            assert episodes == sorted(episodes) and episodes[-2:] == [6, 7]  # newest kept
            assert rx.stats()["gaps"] == tx.dropped


def test_block_mode_waits_then_times_out_without_losing_anything(make_trajectory) -> None:
    endpoint = closed_endpoint()
    sender = TrajectorySender(
        endpoint, "actor-2", outbox_size=1, sndhwm=1, overflow="block", block_timeout_s=0.2
    )
    with sender as tx:
        sent = 0
        with pytest.raises(TimeoutError, match="outbox full"):
            for i in range(10):
                tx.send(make_trajectory(1, episode_id=i))
                sent += 1
        assert tx.dropped == 0 and tx.pending == 1
        with TrajectoryReceiver(endpoint) as rx:
            assert tx.flush(timeout_s=10) == 0
            episodes = [rx.recv(timeout_s=10).episode_id for _ in range(sent)]
            assert episodes == list(range(sent))
            assert rx.stats()["gaps"] == 0


def test_drain_returns_what_has_arrived(make_trajectory) -> None:
    with TrajectoryReceiver() as rx, TrajectorySender(rx.endpoint, "actor-3") as tx:
        for i in range(3):
            tx.send(make_trajectory(1, episode_id=i))
        first = rx.recv(timeout_s=10)
        rest: list = []
        while len(rest) < 2:
            rest += rx.drain(max_items=5)
        assert [first.episode_id] + [t.episode_id for t in rest] == [0, 1, 2]


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="overflow='lifo'"):
        TrajectorySender("tcp://127.0.0.1:1", "a", overflow="lifo")
    with pytest.raises(ValueError, match="rcvhwm=0"):
        TrajectoryReceiver(rcvhwm=0)
    with pytest.raises(ValueError, match="refusing to bind"):
        TrajectoryReceiver("tcp://no-such-host.invalid:0")  # no keys: the bind policy refuses
    with pytest.raises(ValueError, match="cannot bind"):
        TrajectoryReceiver("tcp://no-such-host.invalid:0", insecure=True)
