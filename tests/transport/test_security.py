"""CURVE keys, the authorised-key authenticator, and the bind policy, on real loopback sockets."""

from __future__ import annotations

import logging
import pathlib
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator

import pytest
import zmq
import zmq.auth
from zmq.auth.thread import AuthenticationThread

from distrl_jax.transport import keys
from distrl_jax.transport.control import ControlServer
from distrl_jax.transport.control_client import ControlClient
from distrl_jax.transport.param_broadcast import ParamPublisher, ParamSubscriber
from distrl_jax.transport.security import (
    InsecureBindError,
    SocketSecurity,
    check_bind_policy,
    is_loopback,
)
from distrl_jax.transport.trajectory_channel import TrajectoryReceiver, TrajectorySender
from distrl_jax.types import Trajectory

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def keys_dir(tmp_path: pathlib.Path) -> pathlib.Path:
    """A keys folder with the learner's pair and two authorised actors."""
    for name in ("learner", "actor-0", "actor-1"):
        keys.generate_keypair(tmp_path, name)
    return tmp_path


@pytest.fixture
def context() -> Iterator[zmq.Context]:
    """A private context, terminated at the end: a socket or authenticator left open hangs it."""
    ctx = zmq.Context()
    yield ctx
    ctx.term()


def _stranger(keys_dir: pathlib.Path, tmp_path: pathlib.Path) -> SocketSecurity:
    """An actor that knows the learner's public key but holds a key nobody authorised."""
    _, secret_file = keys.generate_keypair(tmp_path / "elsewhere", "actor-7")
    public, secret = zmq.auth.load_certificate(secret_file)
    learner_public = SocketSecurity.from_keys_dir(keys_dir, "actor-0").server_public
    return SocketSecurity(learner_public, client_public=public, client_secret=secret)


def _auth_threads() -> int:
    return sum(isinstance(t, AuthenticationThread) for t in threading.enumerate())


def test_authorised_actor_is_accepted_and_others_are_refused(
    keys_dir: pathlib.Path,
    tmp_path: pathlib.Path,
    context: zmq.Context,
    make_trajectory: Callable[..., Trajectory],
) -> None:
    server = SocketSecurity.from_keys_dir(keys_dir, "learner")
    actor = SocketSecurity.from_keys_dir(keys_dir, "actor-0")
    stranger = _stranger(keys_dir, tmp_path)
    with TrajectoryReceiver(context=context, security=server) as receiver:
        assert _auth_threads() == 1
        senders = {
            "plaintext": TrajectorySender(receiver.endpoint, "p", context=context),
            "stranger": TrajectorySender(
                receiver.endpoint, "s", context=context, security=stranger
            ),
        }
        for sender in senders.values():
            sender.send(make_trajectory(seed=3))
        # Neither completes the handshake, so nothing they sent ever reaches the receiver.
        assert receiver.recv(timeout_s=0.5) is None
        with TrajectorySender(
            receiver.endpoint, "actor-0", context=context, security=actor
        ) as sender:
            sender.send(make_trajectory(seed=1))
            traj = receiver.recv(timeout_s=5.0)
            assert traj is not None and traj.actor_id == 2  # make_trajectory(seed=1)
        assert receiver.recv(timeout_s=0.3) is None
        assert receiver.stats()["received"] == 1
        for sender in senders.values():
            sender.close()
    assert _auth_threads() == 0  # the last server's close stops the authenticator


def test_control_and_params_channels_under_curve(
    keys_dir: pathlib.Path, tmp_path: pathlib.Path, context: zmq.Context
) -> None:
    server = SocketSecurity.from_keys_dir(keys_dir, "learner")
    actor = SocketSecurity.from_keys_dir(keys_dir, "actor-1")
    with (
        ControlServer(context=context, security=server) as control,
        ParamPublisher(context=context, security=server) as publisher,
    ):
        control.set_latest(4)
        with ControlClient(control.endpoint, "actor-1", context=context, security=actor) as client:
            assert client.register(timeout_s=5.0)["latest_version"] == 4
        with (
            ControlClient(
                control.endpoint, "actor-7", context=context, security=_stranger(keys_dir, tmp_path)
            ) as refused,
            pytest.raises(TimeoutError),
        ):
            refused.register(timeout_s=0.5)
        assert control.alive() == ["actor-1"]
        publisher.publish_path(1, step=10, path="/ckpt/10")
        with ParamSubscriber(
            publisher.endpoint, publisher.latest_endpoint, context=context, security=actor
        ) as subscriber:
            got = subscriber.wait_for(1, timeout_s=5.0)
            assert got is not None and (got.version, got.path) == (1, "/ckpt/10")
        with ParamSubscriber(
            publisher.endpoint, publisher.latest_endpoint, context=context
        ) as plaintext:
            assert plaintext.wait_for(1, timeout_s=0.5) is None
        assert _auth_threads() == 1  # one authenticator per context, shared by three servers
    assert _auth_threads() == 0


@pytest.mark.parametrize(
    ("endpoint", "loopback"),
    [
        ("tcp://127.0.0.1:0", True),
        ("tcp://127.0.0.2:5555", True),
        ("tcp://[::1]:0", True),
        ("tcp://localhost:7000", True),
        ("ipc:///tmp/x.sock", True),
        ("inproc://params", True),
        ("tcp://0.0.0.0:0", False),
        ("tcp://*:5555", False),
        ("tcp://eth0:5555", False),
        ("tcp://10.0.0.5:5555", False),
        ("tcp://127.0.0.1.evil.com:80", False),
        ("epgm://eth0;239.192.1.1:5555", False),
    ],
)
def test_is_loopback(endpoint: str, loopback: bool) -> None:
    assert is_loopback(endpoint) is loopback


def test_non_loopback_bind_without_keys_is_refused(context: zmq.Context) -> None:
    with pytest.raises(InsecureBindError, match=r"refusing to bind 'tcp://0\.0\.0\.0:0'.*keys"):
        TrajectoryReceiver("tcp://0.0.0.0:0", context=context)
    for make in (
        lambda: ControlServer("tcp://0.0.0.0:0", context=context),
        lambda: ParamPublisher("tcp://127.0.0.1:0", "tcp://*:0", context=context),
    ):
        with pytest.raises(InsecureBindError, match="insecure=True"):
            make()
    check_bind_policy("tcp://127.0.0.1:0", None)  # loopback needs no keys


def test_insecure_bind_is_allowed_with_a_warning(
    context: zmq.Context,
    caplog: pytest.LogCaptureFixture,
    make_trajectory: Callable[..., Trajectory],
) -> None:
    with (
        caplog.at_level(logging.WARNING, logger="distrl_jax.transport.security"),
        TrajectoryReceiver("tcp://0.0.0.0:0", context=context, insecure=True) as receiver,
    ):
        port = receiver.endpoint.rsplit(":", 1)[1]
        with TrajectorySender(f"tcp://127.0.0.1:{port}", "a", context=context) as sender:
            sender.send(make_trajectory(seed=0))
            assert receiver.recv(timeout_s=5.0) is not None
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "without CURVE keys" in warnings[0].getMessage()


def test_keys_cli_round_trip(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "keys"
    assert keys.main(["generate", str(folder), "--name", "learner"]) == 0
    assert keys.main(["generate", str(folder), "--name", "actor-3"]) == 0
    assert keys.main(["generate", str(folder), "--name", "actor-3"]) == 2  # never overwrites
    assert keys.main(["generate", str(folder), "--name", "../evil"]) == 2
    assert "actor-N" in capsys.readouterr().err
    for name in ("learner", "actor-3"):
        mode = stat.S_IMODE((folder / f"{name}.key_secret").stat().st_mode)
        assert mode == 0o600, f"{name}.key_secret has mode {oct(mode)}"
    assert sorted(p.name for p in folder.iterdir()) == [
        "actor-3.key",
        "actor-3.key_secret",
        "authorized",
        "learner.key",
        "learner.key_secret",
    ]
    assert [p.name for p in (folder / "authorized").iterdir()] == ["actor-3.key"]
    listing = subprocess.run(
        [sys.executable, "-m", "distrl_jax.transport.keys", "list", str(folder)],
        capture_output=True,
        text=True,
        check=True,
        timeout=20,
    ).stdout.splitlines()
    rows = [line.split("\t") for line in listing]
    actor = SocketSecurity.from_keys_dir(folder, "actor-3")
    learner = SocketSecurity.from_keys_dir(folder, "learner")
    assert rows == [
        ["actor-3", actor.client_public.decode(), "secret=true", "authorized=true"],
        ["learner", learner.server_public.decode(), "secret=true", "authorized=false"],
    ]
    assert actor.server_public == learner.server_public and learner.is_server


def test_key_misuse_gets_clear_errors(keys_dir: pathlib.Path, context: zmq.Context) -> None:
    with pytest.raises(FileNotFoundError, match="--name actor-9"):
        SocketSecurity.from_keys_dir(keys_dir, "actor-9")
    actor = SocketSecurity.from_keys_dir(keys_dir, "actor-0")
    with pytest.raises(ValueError, match="needs the learner's keys"):
        TrajectoryReceiver(context=context, security=actor)
    server = SocketSecurity.from_keys_dir(keys_dir, "learner")
    with pytest.raises(ValueError, match="needs actor keys"):
        TrajectorySender("tcp://127.0.0.1:1", "a", context=context, security=server)
    (keys_dir / "learner.key_secret").write_text("not a certificate")
    with pytest.raises(ValueError, match="learner"):
        SocketSecurity.from_keys_dir(keys_dir, "learner")
