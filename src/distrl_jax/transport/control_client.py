"""The actor side of the control channel: :class:`ControlClient`, a DEALER that registers with
the learner's :class:`~distrl_jax.transport.control.ControlServer`, sends heartbeats (with the
actor's stats) and asks for the latest policy version.

The protocol (message kinds, limits, the registration ack and its ``checkpoint_roots``) is
described in :mod:`distrl_jax.transport.control`.
"""

from __future__ import annotations

import os
import socket as _socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import zmq

from distrl_jax.transport.control import (
    CONTROL_LIMITS,
    ROOT_SEPARATOR,
    STAT_PREFIX,
    clean_stats,
    reachable_endpoint,
)
from distrl_jax.transport.security import SocketSecurity, connect_secured
from distrl_jax.transport.wire import Message, RejectCounter, encode, limit_inbound_size, try_decode


class ControlClient:
    """Actor side: ``register``, ``latest``, and heartbeats (call ``heartbeat`` or start a thread).

    One lock serialises use of the DEALER socket, so the heartbeat thread and the actor's own
    calls can share it. ``latest_known_version`` follows every reply the client sees.
    """

    def __init__(
        self,
        endpoint: str,
        actor_id: str,
        *,
        devices: str = "",
        heartbeat_interval_s: float = 1.0,
        stats: Callable[[], Mapping[str, float]] | None = None,
        context: zmq.Context | None = None,
        security: SocketSecurity | None = None,
    ):
        if not actor_id:
            raise ValueError("actor_id must be a non-empty string")
        self.actor_id = actor_id
        self.endpoint = endpoint
        self.info: dict[str, Any] = {}  # the last registration ack (endpoints made reachable)
        self._hello_meta = {"host": _socket.gethostname(), "pid": os.getpid(), "devices": devices}
        self._interval = heartbeat_interval_s
        self._stats = stats  # numbers sent with each heartbeat (stage timers, counters)
        self._lock = threading.Lock()
        self._seq = 0
        self.registered = False
        self.latest_known_version = -1
        self.rejects = RejectCounter()
        self._dealer = (context or zmq.Context.instance()).socket(zmq.DEALER)
        self._dealer.setsockopt(zmq.LINGER, 0)
        self._dealer.setsockopt(zmq.SNDHWM, 16)
        limit_inbound_size(self._dealer, CONTROL_LIMITS)
        connect_secured(self._dealer, endpoint, security)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _send(self, kind: str, meta: dict[str, Any] | None = None) -> int | None:
        """Send one request without blocking; its seq, or None if the socket is full."""
        self._seq += 1
        message = Message(kind, sender=self.actor_id, seq=self._seq, meta=meta or {})
        try:
            self._dealer.send_multipart(encode(message, CONTROL_LIMITS), flags=zmq.NOBLOCK)
        except zmq.Again:
            return None
        return self._seq

    def _absorb(self, reply: Message) -> None:
        version = reply.meta.get("latest_version", reply.meta.get("version"))
        if type(version) is int:
            self.latest_known_version = max(self.latest_known_version, version)
        if reply.kind == "ack":
            self.registered = reply.meta.get("registered") is True
            if not self.registered and "error" not in reply.meta:
                self._send("hello", self._hello_meta)  # the learner forgot us (restart)

    def _recv(self, timeout_ms: int) -> Message | None:
        if not self._dealer.poll(timeout_ms, zmq.POLLIN):
            return None
        frames = self._dealer.recv_multipart(copy=False)
        reply = try_decode(frames, CONTROL_LIMITS, ("ack", "latest"), self.rejects)
        if reply is not None:
            self._absorb(reply)
        return reply

    def _request(self, kind: str, meta: dict[str, Any] | None, timeout_s: float) -> Message:
        deadline = time.monotonic() + timeout_s
        with self._lock:
            seq = self._send(kind, meta)
            while seq is not None and (left := deadline - time.monotonic()) > 0:
                reply = self._recv(int(left * 1000) + 1)
                if reply is not None and reply.seq == seq:
                    return reply
        raise TimeoutError(f"no reply to {kind!r} from the learner within {timeout_s}s")

    def register(self, timeout_s: float = 10.0) -> dict[str, Any]:
        """Register with the learner; returns its ack (``registered``, ``latest_version``, the
        learner's other endpoints, ``checkpoint_roots``), also kept as ``info``.

        An endpoint the learner bound to a wildcard host (``tcp://0.0.0.0:P``) comes back with
        the host this client reached the control endpoint at, so a remote actor can dial it.
        """
        reply = self._request("hello", self._hello_meta, timeout_s)
        if reply.meta.get("registered") is not True:
            raise RuntimeError(
                f"the learner refused registration of {self.actor_id!r}: {reply.meta}"
            )
        ack = {
            k: reachable_endpoint(v, self.endpoint) if isinstance(v, str) else v
            for k, v in reply.meta.items()
        }
        self.info = ack
        return dict(ack)

    def checkpoint_roots(self) -> list[str]:
        """The folders the learner said its path-mode broadcasts point into (from the ack)."""
        raw = self.info.get("checkpoint_roots")
        return [r for r in raw.split(ROOT_SEPARATOR) if r] if isinstance(raw, str) else []

    def latest(self, timeout_s: float = 5.0) -> dict[str, Any]:
        """Ask the learner for the latest policy version: ``{version, step, path}``."""
        return dict(self._request("latest?", None, timeout_s).meta)

    def heartbeat(self) -> None:
        """Send one heartbeat and absorb any replies that have arrived (never blocks)."""
        meta = None
        if self._stats is not None:
            stats = clean_stats(dict(self._stats()))
            meta = {STAT_PREFIX + k: v for k, v in stats.items()}
        with self._lock:
            self._send("heartbeat", meta)
            while self._recv(0) is not None:
                pass

    def start_heartbeats(self) -> None:
        """Send heartbeats every ``heartbeat_interval_s`` from a daemon thread until close()."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._beat, name="heartbeat", daemon=True)
            self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self._interval):
            self.heartbeat()

    def close(self) -> None:
        """Stop heartbeats and close the socket (linger 0)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        with self._lock:
            self._dealer.close(linger=0)

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
