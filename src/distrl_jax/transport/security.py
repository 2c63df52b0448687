"""CURVE security for the transport sockets, and the policy on what may be bound without it.

A keys folder (made by ``python -m distrl_jax.transport.keys generate DIR --name ...``) holds::

    DIR/learner.key           the learner's public key (every actor needs it)
    DIR/learner.key_secret    the learner's secret key (the learner machine only; mode 0600)
    DIR/actor-N.key(_secret)  one actor's keypair
    DIR/authorized/actor-N.key  public keys of the actors the learner accepts

The learner's sockets are CURVE servers whose ZAP handler (a
``zmq.auth.thread.ThreadAuthenticator``, one per ZeroMQ context) admits only clients whose
public key is in ``authorized/``; an actor's sockets are CURVE clients that know the learner's
public key. A client holding no authorised key, or speaking plaintext, never completes the
handshake, so none of its messages reach the receiver.

Binding anything but loopback without keys raises :class:`InsecureBindError`, unless
``insecure=True`` is given (logged as a warning): traffic that leaves the machine is encrypted
and authenticated, or the operator said explicitly that it need not be.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import pathlib
import threading
from typing import ClassVar

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from distrl_jax.transport.wire import bind_socket

log = logging.getLogger(__name__)

SERVER_NAME = "learner"
AUTHORIZED_DIR = "authorized"
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "[::1]", "localhost"})
_LOCAL_SCHEMES = ("ipc://", "inproc://")


class InsecureBindError(ValueError):
    """A non-loopback bind was asked for without CURVE keys and without ``insecure=True``."""


def is_loopback(endpoint: str) -> bool:
    """True for endpoints no other machine can reach: loopback TCP, ipc://, inproc://."""
    if endpoint.startswith(_LOCAL_SCHEMES):
        return True
    if not endpoint.startswith("tcp://"):
        return False  # pgm, epgm, udp, ...: multicast or network by nature
    host = endpoint[len("tcp://") :].rpartition(":")[0]
    return host in _LOOPBACK_HOSTS or (host.startswith("127.") and host.count(".") == 3)


def check_bind_policy(
    endpoint: str, security: SocketSecurity | None, *, insecure: bool = False
) -> None:
    """Raise :class:`InsecureBindError` for a plaintext non-loopback bind (unless ``insecure``)."""
    if security is not None or is_loopback(endpoint):
        return
    if not insecure:
        raise InsecureBindError(
            f"refusing to bind {endpoint!r} without CURVE keys: anyone who can reach it could "
            "send trajectories or read parameters. Generate keys with `python -m "
            "distrl_jax.transport.keys generate DIR --name learner` (and --name actor-N per "
            "actor) and pass security=SocketSecurity.from_keys_dir(DIR, ...), bind to "
            "127.0.0.1, or pass insecure=True on a network you trust"
        )
    log.warning("binding %s without CURVE keys (insecure=True): traffic is plaintext", endpoint)


@dataclasses.dataclass(frozen=True)
class SocketSecurity:
    """CURVE keys for one process: the learner (server) or an actor (client).

    ``server_public`` is always known; ``server_secret`` and ``authorized_dir`` only to the
    learner; ``client_public``/``client_secret`` only to an actor.
    """

    server_public: bytes
    server_secret: bytes | None = None
    client_public: bytes | None = None
    client_secret: bytes | None = None
    authorized_dir: pathlib.Path | None = None

    def __post_init__(self) -> None:
        if not zmq.has("curve"):
            raise RuntimeError("this libzmq was built without CURVE support; install pyzmq>=25")
        if self.server_secret is not None and self.authorized_dir is None:
            raise ValueError("a server SocketSecurity needs authorized_dir (the actors' keys)")

    @classmethod
    def from_keys_dir(cls, keys_dir: str | pathlib.Path, name: str) -> SocketSecurity:
        """Load the keys of ``name`` ('learner' or 'actor-N') from a folder made by the keys CLI."""
        folder = pathlib.Path(keys_dir)
        server_public, server_secret = _load(folder, SERVER_NAME, need_secret=name == SERVER_NAME)
        if name == SERVER_NAME:
            authorized = folder / AUTHORIZED_DIR
            if not authorized.is_dir():
                raise FileNotFoundError(
                    f"no {authorized}/: generate actor keys with `python -m "
                    f"distrl_jax.transport.keys generate {folder} --name actor-0`"
                )
            return cls(server_public, server_secret, authorized_dir=authorized)
        client_public, client_secret = _load(folder, name, need_secret=True)
        return cls(server_public, client_public=client_public, client_secret=client_secret)

    @property
    def is_server(self) -> bool:
        """True when these keys can serve (the learner's)."""
        return self.server_secret is not None

    def apply_server(self, socket: zmq.Socket) -> AuthLease:
        """Make ``socket`` a CURVE server that admits only authorised keys; release the lease
        when the socket is closed (the last release stops the context's authenticator)."""
        if self.server_secret is None or self.authorized_dir is None:
            raise ValueError("these are client keys: a bound socket needs the learner's keys")
        # One ZAP domain per authorised folder, so servers with different folders can share
        # a context (and its one authenticator) without admitting each other's clients.
        domain = "distrl-" + hashlib.sha1(str(self.authorized_dir.resolve()).encode()).hexdigest()
        lease = AuthLease.acquire(socket.context, domain, self.authorized_dir)
        socket.setsockopt(zmq.ZAP_DOMAIN, domain.encode())
        socket.curve_secretkey = self.server_secret
        socket.curve_publickey = self.server_public
        socket.curve_server = True
        return lease

    def apply_client(self, socket: zmq.Socket) -> None:
        """Make ``socket`` a CURVE client of the learner (before it connects)."""
        if self.client_secret is None or self.client_public is None:
            raise ValueError("these are the learner's keys: a connecting socket needs actor keys")
        socket.curve_secretkey = self.client_secret
        socket.curve_publickey = self.client_public
        socket.curve_serverkey = self.server_public


def _load(folder: pathlib.Path, name: str, *, need_secret: bool) -> tuple[bytes, bytes | None]:
    path = folder / (f"{name}.key_secret" if need_secret else f"{name}.key")
    if not path.is_file():
        raise FileNotFoundError(
            f"no key file {path}: generate it with `python -m distrl_jax.transport.keys "
            f"generate {folder} --name {name}`"
        )
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (ValueError, OSError) as exc:
        raise ValueError(f"{path} is not a ZeroMQ certificate: {exc}") from None
    if need_secret and secret is None:
        raise ValueError(f"{path} holds no secret key")
    return public, secret


class AuthLease:
    """A reference to the ZAP authenticator of one context; ``release`` when done."""

    _lock: ClassVar[threading.Lock] = threading.Lock()
    _running: ClassVar[
        dict[int, tuple[ThreadAuthenticator, int]]
    ] = {}  # id(context) -> (auth, users)

    def __init__(self, context: zmq.Context):
        self._context_id = id(context)
        self._released = False

    @classmethod
    def acquire(cls, context: zmq.Context, domain: str, authorized: pathlib.Path) -> AuthLease:
        """Start (or reuse) the context's authenticator and admit ``authorized``'s keys."""
        with cls._lock:
            auth, users = cls._running.get(id(context), (None, 0))
            if auth is None:
                auth = ThreadAuthenticator(context)
                auth.start()
            # Re-read on every acquire, so a key added to the folder counts for new servers.
            auth.configure_curve(domain=domain, location=str(authorized))
            cls._running[id(context)] = (auth, users + 1)
        return cls(context)

    def release(self) -> None:
        """Drop this reference; the last one stops the authenticator thread (idempotent)."""
        with self._lock:
            if self._released:
                return
            self._released = True
            auth, users = self._running[self._context_id]
            if users > 1:
                self._running[self._context_id] = (auth, users - 1)
                return
            del self._running[self._context_id]
        auth.stop()


def bind_secured(
    socket: zmq.Socket,
    endpoint: str,
    security: SocketSecurity | None,
    *,
    insecure: bool = False,
) -> tuple[str, AuthLease | None]:
    """Bind under the policy (CURVE server when ``security`` is given); (endpoint, lease)."""
    check_bind_policy(endpoint, security, insecure=insecure)
    lease = security.apply_server(socket) if security is not None else None
    try:
        return bind_socket(socket, endpoint), lease
    except ValueError:
        if lease is not None:
            lease.release()
        raise


def connect_secured(socket: zmq.Socket, endpoint: str, security: SocketSecurity | None) -> None:
    """Connect ``socket`` to ``endpoint``, as a CURVE client when ``security`` is given."""
    if security is not None:
        security.apply_client(socket)
    socket.connect(endpoint)
