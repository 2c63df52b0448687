"""The control channel: actor registration, heartbeats, and "which policy version is latest?".

ROUTER on the learner (:class:`ControlServer`, one thread, here), DEALER on each actor
(:class:`~distrl_jax.transport.control_client.ControlClient`). The server keeps the learner's
view of the fleet: who registered (actor id, host, pid, devices), when each was last heard from,
and which are alive (heard from within ``heartbeat_timeout_s``). A heartbeat from an actor the
server does not know (the learner restarted) is answered with ``registered: false``, and the
client registers again by itself. Every reply carries the latest policy version, so actors learn
of new versions for free.

The registration ack also names the other endpoints and the folders path-mode broadcasts may
point into (``checkpoint_roots``: the parent of every checkpoint path given to ``set_latest``,
plus any given to ``set_checkpoint_roots``), so an actor loads checkpoints only from there.
A learner bound to a wildcard address (``0.0.0.0``, ``::``) announces endpoints no remote actor
can dial; the client puts the host it reached the control endpoint at in their place.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import pathlib
import threading
import time
from collections.abc import Callable
from typing import Any

import zmq

from distrl_jax.transport.security import SocketSecurity, bind_secured
from distrl_jax.transport.wire import (
    Message,
    RejectCounter,
    WireLimits,
    encode,
    limit_inbound_size,
    try_decode,
)

log = logging.getLogger(__name__)

MAX_STATS = 32  # numbers per heartbeat, sent as meta items "stat/<name>" (meta holds scalars)
STAT_PREFIX = "stat/"
CONTROL_LIMITS = WireLimits(
    max_header_bytes=8 * 1024, max_arrays=1, max_total_bytes=1024, max_meta_items=MAX_STATS + 8
)

# Hosts a socket binds to mean "every interface"; no peer can connect to them.
WILDCARD_HOSTS = frozenset({"0.0.0.0", "*", "::", "[::]", "[*]"})
ROOT_SEPARATOR = "\n"  # between the paths of the ack's checkpoint_roots (meta holds scalars)
MAX_CHECKPOINT_ROOTS = 8


def _split_tcp(endpoint: str) -> tuple[str, str] | None:
    """(host, port) of a ``tcp://host:port`` endpoint (IPv6 hosts keep their brackets)."""
    if not endpoint.startswith("tcp://"):
        return None
    host, sep, port = endpoint[len("tcp://") :].rpartition(":")
    return (host, port) if sep and host else None


def reachable_endpoint(endpoint: str, via: str) -> str:
    """``endpoint`` with a wildcard host (``0.0.0.0``, ``::``, ``*``) replaced by the host of
    ``via`` (the endpoint this side already reached the same machine at); else unchanged."""
    ours, theirs = _split_tcp(endpoint), _split_tcp(via)
    if ours is None or theirs is None or ours[0] not in WILDCARD_HOSTS:
        return endpoint
    if theirs[0] in WILDCARD_HOSTS:
        return endpoint
    return f"tcp://{theirs[0]}:{ours[1]}"


def clean_stats(raw: Any) -> dict[str, float]:
    """The finite numbers among ``raw``'s items (short string keys, at most MAX_STATS); anything
    else is dropped, so a confused or hostile actor cannot put junk into the learner's metrics."""
    if not isinstance(raw, dict):
        return {}
    out: dict[str, float] = {}
    for k, v in list(raw.items())[:MAX_STATS]:
        if isinstance(k, str) and len(k) <= 64 and type(v) in (int, float) and math.isfinite(v):
            out[k] = float(v)
    return out


@dataclasses.dataclass(frozen=True)
class ActorRecord:
    """What the learner knows about one actor process."""

    actor_id: str
    host: str
    pid: int
    devices: str  # a description, e.g. "simphone x4" or "adb:emulator-5554,emulator-5556"
    registered_at: float
    last_seen: float
    alive: bool
    stats: dict[str, float] = dataclasses.field(default_factory=dict)  # the last heartbeat's


class ControlServer:
    """Learner side: registers actors, tracks heartbeats, answers ``latest?``.

    ``clock`` (default ``time.monotonic``) is injectable so liveness can be tested exactly.
    ``security`` makes the ROUTER a CURVE server (see :mod:`distrl_jax.transport.security`);
    a non-loopback ``endpoint`` needs it, or ``insecure=True``.
    """

    def __init__(
        self,
        endpoint: str = "tcp://127.0.0.1:0",
        *,
        heartbeat_timeout_s: float = 10.0,
        max_actors: int = 4096,
        clock: Callable[[], float] = time.monotonic,
        context: zmq.Context | None = None,
        security: SocketSecurity | None = None,
        insecure: bool = False,
    ):
        if heartbeat_timeout_s <= 0:
            raise ValueError(f"heartbeat_timeout_s={heartbeat_timeout_s} must be > 0")
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self._max_actors = max_actors
        self._clock = clock
        self._lock = threading.Lock()
        self._actors: dict[str, dict[str, Any]] = {}
        self._latest: dict[str, Any] = {"version": -1, "step": 0, "path": ""}
        self._info: dict[str, str] = {}
        self._checkpoint_roots: list[str] = []
        self.rejects = RejectCounter()
        self.errors = 0  # requests whose handling raised: logged and skipped, never fatal
        self._router = (context or zmq.Context.instance()).socket(zmq.ROUTER)
        self._router.setsockopt(zmq.LINGER, 0)
        limit_inbound_size(self._router, CONTROL_LIMITS)
        self.endpoint, self._auth = bind_secured(
            self._router, endpoint, security, insecure=insecure
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="control-server", daemon=True)
        self._thread.start()

    def set_latest(self, version: int, step: int = 0, path: str = "") -> None:
        """Record the newest policy version (and its checkpoint path, if any) for replies."""
        # The folder the learner writes checkpoints into is one actors may read from.
        root = pathlib.Path(path).resolve().parent if path else None
        with self._lock:
            self._latest = {"version": int(version), "step": int(step), "path": str(path)}
            if root is not None:
                self._add_root(root)

    def set_checkpoint_roots(self, *roots: str | os.PathLike[str]) -> None:
        """Folders (besides those of ``set_latest`` paths) path-mode broadcasts may point into;
        named in every registration ack as ``checkpoint_roots``."""
        resolved = [pathlib.Path(root).resolve() for root in roots]
        with self._lock:
            for root in resolved:
                self._add_root(root)

    def _add_root(self, root: pathlib.Path) -> None:
        text = str(root)
        if ROOT_SEPARATOR in text or text in self._checkpoint_roots:
            return
        self._checkpoint_roots.append(text)
        del self._checkpoint_roots[:-MAX_CHECKPOINT_ROOTS]

    def set_info(self, **info: str) -> None:
        """Strings every registration ack carries (e.g. the trajectory and parameter endpoints,
        so an actor needs only the control address)."""
        with self._lock:
            self._info.update({k: str(v) for k, v in info.items()})

    def actors(self) -> list[ActorRecord]:
        """Every registered actor with its liveness as of now."""
        now = self._clock()
        with self._lock:
            records = list(self._actors.values())
        return [
            ActorRecord(
                **{**r, "stats": dict(r["stats"])},
                alive=now - r["last_seen"] <= self.heartbeat_timeout_s,
            )
            for r in records
        ]

    def alive(self) -> list[str]:
        """Ids of actors heard from within the heartbeat timeout."""
        return [r.actor_id for r in self.actors() if r.alive]

    def dead(self) -> list[str]:
        """Ids of registered actors silent for longer than the heartbeat timeout."""
        return [r.actor_id for r in self.actors() if not r.alive]

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                if not self._router.poll(50, zmq.POLLIN):
                    continue
                identity, *frames = self._router.recv_multipart(copy=False)
                try:
                    self._handle(identity, frames)
                except Exception:  # one bad request must not take the control channel down
                    self.errors += 1
                    log.exception("control server: request %d failed; going on", self.errors)
        finally:
            self._router.close(linger=0)

    def _handle(self, identity: Any, frames: list[Any]) -> None:
        message = try_decode(
            frames, CONTROL_LIMITS, ("hello", "heartbeat", "latest?"), self.rejects
        )
        if message is None:
            return
        kind, meta = self._reply(message)
        reply = Message(kind, sender="learner", seq=message.seq, meta=meta)
        # ROUTER never blocks: a reply to an actor that stopped reading is dropped.
        self._router.send_multipart([identity, *encode(reply, CONTROL_LIMITS)])

    def _reply(self, message: Message) -> tuple[str, dict[str, Any]]:
        now = self._clock()
        with self._lock:
            latest = dict(self._latest)
            if message.kind == "latest?":
                return "latest", latest
            record = self._actors.get(message.sender)
            if message.kind == "hello":
                record = self._register(message, now)
                if record is None:
                    return "ack", {"registered": False, "error": "too many actors"}
                record["last_seen"] = now
                ack = {"registered": True, "latest_version": latest["version"], **self._info}
                if self._checkpoint_roots:
                    ack["checkpoint_roots"] = ROOT_SEPARATOR.join(self._checkpoint_roots)
                return "ack", ack
            elif record is None:
                return "ack", {"registered": False, "latest_version": latest["version"]}
            record["last_seen"] = now
            if message.kind == "heartbeat":
                n = len(STAT_PREFIX)
                stats = {k[n:]: v for k, v in message.meta.items() if k.startswith(STAT_PREFIX)}
                if stats:
                    record["stats"] = clean_stats(stats)
        return "ack", {"registered": True, "latest_version": latest["version"]}

    def _register(self, message: Message, now: float) -> dict[str, Any] | None:
        if message.sender not in self._actors and len(self._actors) >= self._max_actors:
            # Make room by forgetting actors that have been dead for a long time.
            cutoff = now - 10 * self.heartbeat_timeout_s
            for actor_id in [a for a, r in self._actors.items() if r["last_seen"] < cutoff]:
                del self._actors[actor_id]
            if len(self._actors) >= self._max_actors:
                return None
        meta = message.meta
        record = {
            "actor_id": message.sender,
            "host": str(meta.get("host", "")),
            "pid": int(meta["pid"]) if type(meta.get("pid")) is int else -1,
            "devices": str(meta.get("devices", "")),
            "registered_at": now,
            "last_seen": now,
            "stats": {},
        }
        self._actors[message.sender] = record
        return record

    def close(self) -> None:
        """Stop the thread and close the socket (linger 0)."""
        self._stop.set()
        self._thread.join(timeout=5.0)
        if self._auth is not None:
            self._auth.release()

    def __enter__(self) -> ControlServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
