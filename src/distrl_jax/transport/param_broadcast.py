"""Policy versions, learner -> actors: PUB/SUB announcements plus a "give me the latest" socket.

Two modes per version:

- ``path``: one ``params_announce`` with ``{version, step, path}``; actors restore the Orbax
  checkpoint at ``path`` from shared storage.
- ``inline`` (no shared storage): a ``params_announce`` carrying a manifest (a uint8 frame of
  JSON ``[[name, dtype, shape], ...]``), then ``params_chunk`` messages of at most
  ``chunk_bytes`` each. The parameters' bytes, concatenated in manifest order, form one stream;
  a deterministic plan (:func:`plan_chunks`) cuts it into chunks of zero-copy slices. A
  subscriber recomputes the plan from the announcement, checks every chunk against it, and
  exposes the version only when every chunk has arrived.

PUB drops what it sends before a subscriber has joined, and drops for a subscriber that falls a
high-water mark behind. So the publisher also binds a ROUTER: a subscriber sends ``latest?`` when
it starts, while it holds no version, when it sees chunks of a version it has no announcement
for, and when an assembly stalls; the reply is the latest version's messages, sent to it alone.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import zmq

from distrl_jax.transport.param_chunks import (
    BROADCAST_LIMITS,
    DEFAULT_CHUNK_BYTES,
    MANIFEST_LIMITS,
    MAX_PIECES_PER_CHUNK,
    ChunkAssembly,
    ParamsVersion,
    Piece,
    encode_inline,
    plan_chunks,
)
from distrl_jax.transport.security import SocketSecurity, bind_secured, connect_secured
from distrl_jax.transport.wire import (
    Message,
    Reason,
    RejectCounter,
    WireError,
    encode,
    limit_inbound_size,
    try_decode,
)

# Re-exported so existing `from distrl_jax.transport.param_broadcast import ...` keeps working.
__all__ = [
    "BROADCAST_LIMITS",
    "DEFAULT_CHUNK_BYTES",
    "MANIFEST_LIMITS",
    "MAX_PIECES_PER_CHUNK",
    "ChunkAssembly",
    "ParamPublisher",
    "ParamSubscriber",
    "ParamsVersion",
    "Piece",
    "encode_inline",
    "plan_chunks",
]


class ParamPublisher:
    """Learner side: ``publish_path`` / ``publish_inline`` a new version to every subscriber.

    Binds a PUB socket (``.endpoint``) and a ROUTER for ``latest?`` requests
    (``.latest_endpoint``), served by a small thread. Inline arrays are sent zero-copy and kept
    for late joiners: do not modify them after publishing (publish fresh arrays each version).
    ``security`` makes both sockets CURVE servers (a non-loopback bind needs it, or
    ``insecure=True``).
    """

    def __init__(
        self,
        endpoint: str = "tcp://127.0.0.1:0",
        latest_endpoint: str = "tcp://127.0.0.1:0",
        *,
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
        sndhwm: int = 1000,
        sender_id: str = "learner",
        context: zmq.Context | None = None,
        security: SocketSecurity | None = None,
        insecure: bool = False,
    ):
        if not 0 < chunk_bytes <= BROADCAST_LIMITS.max_total_bytes:
            raise ValueError(
                f"chunk_bytes={chunk_bytes}; allowed 1..{BROADCAST_LIMITS.max_total_bytes}"
            )
        ctx = context or zmq.Context.instance()
        self._chunk_bytes = chunk_bytes
        self._sender = sender_id
        self._lock = threading.Lock()
        self._latest: tuple[int, list[list[Any]]] | None = None  # (version, messages)
        self.rejects = RejectCounter()
        self._pub = ctx.socket(zmq.PUB)
        self._router = ctx.socket(zmq.ROUTER)
        for sock in (self._pub, self._router):
            sock.setsockopt(zmq.SNDHWM, sndhwm)
            sock.setsockopt(zmq.LINGER, 0)
        limit_inbound_size(self._router, BROADCAST_LIMITS)
        self.endpoint, pub_auth = bind_secured(self._pub, endpoint, security, insecure=insecure)
        self.latest_endpoint, router_auth = bind_secured(
            self._router, latest_endpoint, security, insecure=insecure
        )
        self._auths = [lease for lease in (pub_auth, router_auth) if lease is not None]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve_latest, name="param-latest", daemon=True)
        self._thread.start()

    @property
    def latest_version(self) -> int | None:
        """The newest published version, or None."""
        with self._lock:
            return None if self._latest is None else self._latest[0]

    def publish_path(self, version: int, step: int, path: str) -> None:
        """Announce a version whose parameters are in the Orbax checkpoint at ``path``."""
        meta = {"mode": "path", "step": int(step), "path": str(path)}
        message = Message("params_announce", sender=self._sender, policy_version=version, meta=meta)
        self._publish(version, [encode(message, BROADCAST_LIMITS)])

    def publish_inline(self, version: int, step: int, params: Mapping[str, np.ndarray]) -> None:
        """Send a version's parameters (a flat dict name -> array) in chunks to every subscriber."""
        self._publish(
            version, encode_inline(version, int(step), params, self._chunk_bytes, self._sender)
        )

    def _publish(self, version: int, messages: list[list[Any]]) -> None:
        with self._lock:
            newest = None if self._latest is None else self._latest[0]
            if type(version) is not int or (newest is not None and version <= newest):
                raise ValueError(
                    f"version={version!r} must be an int greater than the latest published ({newest})"
                )
            self._latest = (version, messages)
            for frames in messages:
                self._pub.send_multipart(frames, copy=False)

    def _serve_latest(self) -> None:
        try:
            while not self._stop.is_set():
                if not self._router.poll(50, zmq.POLLIN):
                    continue
                identity, *frames = self._router.recv_multipart(copy=False)
                if try_decode(frames, BROADCAST_LIMITS, ("latest?",), self.rejects) is None:
                    continue
                with self._lock:
                    messages = [] if self._latest is None else self._latest[1]
                for msg_frames in messages:
                    self._router.send_multipart([identity, *msg_frames], copy=False)
        finally:
            self._router.close(linger=0)

    def close(self) -> None:
        """Stop the latest-server thread and close both sockets (linger 0)."""
        self._stop.set()
        self._thread.join(timeout=5.0)
        with self._lock:
            self._pub.close(linger=0)
        for lease in self._auths:
            lease.release()

    def __enter__(self) -> ParamPublisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ParamSubscriber:
    """Actor side: a thread assembles versions; ``latest()`` returns the newest complete one.

    Connects a SUB to the publisher's ``endpoint`` and a DEALER to its ``latest_endpoint``
    (asked at start, while no version is held, when chunks arrive for an unannounced version,
    and when an assembly has made no progress for ``resync_after_s``). Memory is bounded: at most
    one version in assembly besides the newest complete one.
    """

    def __init__(
        self,
        endpoint: str,
        latest_endpoint: str,
        *,
        subscriber_id: str = "",
        max_model_bytes: int = 16 * 2**30,
        rcvhwm: int = 256,
        resync_after_s: float = 1.0,
        context: zmq.Context | None = None,
        security: SocketSecurity | None = None,
    ):
        ctx = context or zmq.Context.instance()
        self._id = subscriber_id
        self._max_model_bytes = max_model_bytes
        self._resync_after_s = resync_after_s
        self.rejects = RejectCounter()
        self.counts = {"stale": 0, "duplicate_chunks": 0, "orphan_chunks": 0, "requests": 0}
        self._latest: ParamsVersion | None = None
        self._changed = threading.Condition()
        self._assembly: ChunkAssembly | None = None
        self._need_resync = True  # ask for the latest version as soon as we start
        self._last_request = -float("inf")
        self._sub = ctx.socket(zmq.SUB)
        self._sub.setsockopt(zmq.SUBSCRIBE, b"")
        self._sub.setsockopt(zmq.RCVHWM, rcvhwm)
        self._dealer = ctx.socket(zmq.DEALER)
        self._dealer.setsockopt(zmq.SNDHWM, 4)  # a few pending latest? requests at most
        for sock in (self._sub, self._dealer):
            sock.setsockopt(zmq.LINGER, 0)
            limit_inbound_size(sock, BROADCAST_LIMITS)
        connect_secured(self._sub, endpoint, security)
        connect_secured(self._dealer, latest_endpoint, security)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="param-subscriber", daemon=True)
        self._thread.start()

    def latest(self) -> ParamsVersion | None:
        """The newest complete version received so far, or None; never blocks."""
        return self._latest

    def wait_for(self, min_version: int, timeout_s: float) -> ParamsVersion | None:
        """Wait up to ``timeout_s`` for a version >= ``min_version``; the newest one, or None."""
        with self._changed:
            self._changed.wait_for(
                lambda: self._latest is not None and self._latest.version >= min_version, timeout_s
            )
            latest = self._latest
        return latest if latest is not None and latest.version >= min_version else None

    def _run(self) -> None:
        poller = zmq.Poller()
        poller.register(self._sub, zmq.POLLIN)
        poller.register(self._dealer, zmq.POLLIN)
        try:
            while not self._stop.is_set():
                self._maybe_request_latest()
                for sock, _ in poller.poll(50):
                    # A bounded batch per socket, so neither can starve the other.
                    for _ in range(64):
                        try:
                            frames = sock.recv_multipart(flags=zmq.NOBLOCK, copy=False)
                        except zmq.Again:
                            break
                        self._handle(frames)
        finally:
            self._sub.close(linger=0)
            self._dealer.close(linger=0)

    def _maybe_request_latest(self) -> None:
        now = time.monotonic()
        stalled = (
            self._assembly is not None and now - self._assembly.last_progress > self._resync_after_s
        )
        if not (self._need_resync or self._latest is None or stalled):
            return
        if now - self._last_request < self._resync_after_s:
            return
        try:
            self._dealer.send_multipart(
                encode(Message("latest?", sender=self._id), BROADCAST_LIMITS), flags=zmq.NOBLOCK
            )
        except zmq.Again:
            return  # publisher unreachable and requests already queued: try again later
        self._last_request, self._need_resync = now, False
        self.counts["requests"] += 1

    def _handle(self, frames: list[Any]) -> None:
        kinds = ("params_announce", "params_chunk")
        message = try_decode(frames, BROADCAST_LIMITS, kinds, self.rejects)
        if message is None:
            return
        try:
            if message.kind == "params_announce":
                self._on_announce(message)
            else:
                self._on_chunk(message)
        except WireError as exc:
            self.rejects.add(exc.reason)

    def _on_announce(self, message: Message) -> None:
        version = message.policy_version
        newest = -1 if self._latest is None else self._latest.version
        assembling = -1 if self._assembly is None else self._assembly.version
        if version < max(newest, assembling):
            self.counts["stale"] += 1
            return
        if version in (newest, assembling):
            return  # announced again (a latest? reply racing the broadcast): nothing new
        mode = message.meta.get("mode")
        if mode == "path":
            path, step = message.meta.get("path"), message.meta.get("step")
            if type(path) is not str or type(step) is not int:
                raise WireError(
                    Reason.BAD_PAYLOAD, f"path announcement meta {dict(message.meta)!r}"
                )
            self._assembly = None
            self._complete(ParamsVersion(version, step, path=path))
        elif mode == "inline":
            try:
                self._assembly = ChunkAssembly(message, self._max_model_bytes)
            except MemoryError:
                raise WireError(Reason.OVERSIZED, "no memory for the announced version") from None
            if not self._assembly.missing:
                self._complete(self._assembly.result())
        else:
            raise WireError(Reason.BAD_PAYLOAD, f"announcement mode {mode!r}")

    def _on_chunk(self, message: Message) -> None:
        version = message.policy_version
        assembly = self._assembly
        if assembly is None or assembly.version != version:
            newest = -1 if self._latest is None else self._latest.version
            if version > max(newest, -1 if assembly is None else assembly.version):
                self.counts["orphan_chunks"] += 1  # we missed its announcement: ask again
                self._need_resync = True
            else:
                self.counts["stale"] += 1
            return
        if not assembly.add(message):
            self.counts["duplicate_chunks"] += 1
        elif not assembly.missing:
            self._complete(assembly.result())

    def _complete(self, version: ParamsVersion) -> None:
        self._assembly = None
        with self._changed:
            self._latest = version
            self._changed.notify_all()

    def stats(self) -> dict[str, Any]:
        """Counters: the newest version, stale/duplicate/orphan messages, requests, rejects."""
        latest = self._latest
        return {
            "version": None if latest is None else latest.version,
            **self.counts,
            "rejects": self.rejects.as_dict(),
        }

    def close(self) -> None:
        """Stop the thread and close its sockets (linger 0)."""
        self._stop.set()
        self._thread.join(timeout=5.0)

    def __enter__(self) -> ParamSubscriber:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
