"""The control channel over real loopback ZeroMQ: registration, heartbeats, liveness, latest."""

from __future__ import annotations

import os
import time

import pytest
import zmq

from distrl_jax.transport.control import (
    MAX_STATS,
    ControlServer,
    clean_stats,
    reachable_endpoint,
)
from distrl_jax.transport.control_client import ControlClient
from distrl_jax.transport.trajectory_channel import TrajectoryReceiver, TrajectorySender

pytestmark = pytest.mark.timeout(30)


class FakeClock:
    """A clock the test moves by hand, so liveness is decided exactly."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def wait_until(predicate, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_registration_heartbeat_and_timeout_marks_an_actor_dead() -> None:
    clock = FakeClock()
    with (
        ControlServer(heartbeat_timeout_s=5.0, clock=clock) as server,
        ControlClient(server.endpoint, "actor-a", devices="simphone x4") as a,
        ControlClient(server.endpoint, "actor-b") as b,
    ):
        ack = a.register(timeout_s=10)
        assert ack == {"registered": True, "latest_version": -1}
        b.register(timeout_s=10)
        (record,) = [r for r in server.actors() if r.actor_id == "actor-a"]
        assert (record.pid, record.devices, record.alive) == (os.getpid(), "simphone x4", True)
        assert sorted(server.alive()) == ["actor-a", "actor-b"]

        clock.now += 4.0
        b.latest(timeout_s=10)  # any request round trip: b's heartbeat below is then processed
        b.heartbeat()
        assert wait_until(lambda: server.actors()[1].last_seen == clock.now)
        clock.now += 2.0  # a silent for 6 s > 5 s; b heard from 2 s ago
        assert server.dead() == ["actor-a"] and server.alive() == ["actor-b"]

        a.heartbeat()  # it comes back
        assert wait_until(lambda: server.alive() == ["actor-a", "actor-b"])


def test_latest_version_query_and_version_in_acks() -> None:
    with ControlServer() as server, ControlClient(server.endpoint, "actor-c") as client:
        assert client.latest(timeout_s=10) == {"version": -1, "step": 0, "path": ""}
        server.set_latest(3, step=300, path="/ckpt/300")
        assert client.latest(timeout_s=10) == {"version": 3, "step": 300, "path": "/ckpt/300"}
        assert client.register(timeout_s=10)["latest_version"] == 3
        assert client.latest_known_version == 3


def test_client_re_registers_after_the_learner_forgets_it() -> None:
    with ControlServer() as first:
        endpoint = first.endpoint
        client = ControlClient(endpoint, "actor-d", heartbeat_interval_s=0.05)
        client.register(timeout_s=10)
    try:
        # A new learner on the same endpoint (libzmq releases the old port asynchronously).
        restarted = None
        deadline = time.monotonic() + 10
        while restarted is None:
            try:
                restarted = ControlServer(endpoint)
            except ValueError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        with restarted:
            client.start_heartbeats()
            assert wait_until(lambda: restarted.alive() == ["actor-d"])
            assert wait_until(lambda: client.registered)
    finally:
        client.close()


def test_malformed_requests_are_counted_and_the_server_goes_on() -> None:
    with ControlServer() as server, ControlClient(server.endpoint, "actor-e") as client:
        raw = zmq.Context.instance().socket(zmq.DEALER)
        raw.setsockopt(zmq.LINGER, 0)
        raw.connect(server.endpoint)
        raw.send_multipart([b"\x80\x03pickle"])
        raw.send_multipart([b'{"magic":"distrl","schema":99}'])
        assert wait_until(lambda: server.rejects.total == 2)
        assert server.rejects.as_dict() == {"bad_header": 1, "wrong_version": 1}
        assert client.register(timeout_s=10)["registered"] is True
        raw.close()


def test_a_full_server_refuses_registration_clearly() -> None:
    with (
        ControlServer(max_actors=1) as server,
        ControlClient(server.endpoint, "actor-f") as f,
        ControlClient(server.endpoint, "actor-g") as g,
    ):
        f.register(timeout_s=10)
        with pytest.raises(RuntimeError, match=r"refused registration.*too many actors"):
            g.register(timeout_s=10)


def test_no_reply_is_a_timeout() -> None:
    sock = zmq.Context.instance().socket(zmq.ROUTER)  # bound, but never answers
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    try:
        with (
            ControlClient(f"tcp://127.0.0.1:{port}", "actor-h") as client,
            pytest.raises(TimeoutError, match="no reply to 'hello'"),
        ):
            client.register(timeout_s=0.2)
    finally:
        sock.close(linger=0)


@pytest.mark.timeout(30)
def test_heartbeats_carry_cleaned_actor_stats() -> None:
    """An actor's stats travel with its heartbeats; the server keeps only finite numbers under
    short string keys (junk from a confused actor never reaches the learner's metrics)."""
    figures = {"time_inference_s": 1.5, "episodes": 3}
    with (
        ControlServer() as server,
        ControlClient(server.endpoint, "actor-7", stats=lambda: figures) as client,
    ):
        client.register(timeout_s=5.0)
        client.heartbeat()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not server.actors()[0].stats:
            time.sleep(0.02)
        assert server.actors()[0].stats == {"time_inference_s": 1.5, "episodes": 3.0}
        figures.update({"bad": float("nan"), "x" * 100: 1.0, "text": "no", "episodes": 4})
        client.heartbeat()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and server.actors()[0].stats.get("episodes") != 4:
            time.sleep(0.02)
        assert server.actors()[0].stats == {"time_inference_s": 1.5, "episodes": 4.0}


def test_clean_stats_caps_and_filters() -> None:
    """At most MAX_STATS entries; booleans, strings, NaN and non-dicts are dropped."""
    assert clean_stats("not a dict") == {}
    assert clean_stats({"a": True, "b": "1", "c": float("inf"), "d": 2}) == {"d": 2.0}
    many = {f"k{i}": i for i in range(MAX_STATS + 10)}
    assert len(clean_stats(many)) == MAX_STATS


# --- endpoints a remote actor can dial, checkpoint roots, a server that survives its bugs ------


@pytest.mark.parametrize(
    ("endpoint", "via", "want"),
    [
        ("tcp://0.0.0.0:5001", "tcp://learner.example:5000", "tcp://learner.example:5001"),
        ("tcp://*:5001", "tcp://10.1.2.3:5000", "tcp://10.1.2.3:5001"),
        ("tcp://[::]:5001", "tcp://[fd00::7]:5000", "tcp://[fd00::7]:5001"),
        ("tcp://::", "tcp://h:1", "tcp://::"),  # no port: not an endpoint to rewrite
        ("tcp://10.0.0.9:5001", "tcp://learner:5000", "tcp://10.0.0.9:5001"),  # a real host
        ("tcp://0.0.0.0:5001", "tcp://0.0.0.0:5000", "tcp://0.0.0.0:5001"),  # nothing better
        ("ipc:///tmp/x", "tcp://learner:5000", "ipc:///tmp/x"),
        ("tcp://0.0.0.0:5001", "ipc:///tmp/c", "tcp://0.0.0.0:5001"),
        ("/some/checkpoints", "tcp://learner:5000", "/some/checkpoints"),
    ],
)
def test_reachable_endpoint(endpoint: str, via: str, want: str) -> None:
    assert reachable_endpoint(endpoint, via) == want


def test_endpoints_of_a_learner_bound_to_all_interfaces_are_dialable(make_trajectory) -> None:
    """A learner bound to 0.0.0.0 announces tcp://0.0.0.0:P; the actor dials the host it
    reached the control endpoint at instead, and a trajectory gets through."""
    with (
        ControlServer("tcp://0.0.0.0:0", insecure=True) as server,
        TrajectoryReceiver("tcp://0.0.0.0:0", insecure=True) as receiver,
    ):
        assert receiver.endpoint.startswith("tcp://0.0.0.0:")
        server.set_info(trajectories=receiver.endpoint)
        port = server.endpoint.rpartition(":")[2]
        with ControlClient(f"tcp://127.0.0.1:{port}", "remote") as client:
            ack = client.register(timeout_s=10)
        want = "tcp://127.0.0.1:" + receiver.endpoint.rpartition(":")[2]
        assert ack["trajectories"] == want and client.info["trajectories"] == want
        with TrajectorySender(ack["trajectories"], "remote") as sender:
            sender.send(make_trajectory(2, episode_id=5))
            got = receiver.recv(timeout_s=10)
        assert got is not None and got.episode_id == 5


def test_the_ack_names_the_checkpoint_roots(tmp_path) -> None:
    """Every folder the learner announced a checkpoint in (and any it names) is in the ack, so
    the actor can refuse paths anywhere else."""
    with ControlServer() as server, ControlClient(server.endpoint, "actor-r") as client:
        assert "checkpoint_roots" not in client.register(timeout_s=10)  # inline: none
        assert client.checkpoint_roots() == []
        server.set_latest(1, 1, str(tmp_path / "run" / "checkpoints" / "1"))
        server.set_latest(2, 2, str(tmp_path / "run" / "checkpoints" / "2"))
        server.set_checkpoint_roots(tmp_path / "run" / "checkpoints-student")
        client.register(timeout_s=10)
        assert client.checkpoint_roots() == [
            str((tmp_path / "run" / "checkpoints").resolve()),
            str((tmp_path / "run" / "checkpoints-student").resolve()),
        ]


class FlakyServer(ControlServer):
    """A server whose reply to one actor raises, as a bug in ``_reply`` would."""

    def _reply(self, message):
        if message.sender == "trigger":
            raise RuntimeError("injected fault")
        return super()._reply(message)


def test_an_exception_while_replying_is_counted_and_the_server_goes_on(caplog) -> None:
    with (
        FlakyServer() as server,
        ControlClient(server.endpoint, "trigger") as bad,
        ControlClient(server.endpoint, "actor-ok") as good,
    ):
        for _ in range(3):
            with pytest.raises(TimeoutError):
                bad.register(timeout_s=0.3)
        assert wait_until(lambda: server.errors == 3)
        assert good.register(timeout_s=10)["registered"] is True  # the thread is alive
        assert good.latest(timeout_s=10)["version"] == -1
        assert server.errors == 3 and server.rejects.total == 0
    assert "injected fault" in caplog.text
