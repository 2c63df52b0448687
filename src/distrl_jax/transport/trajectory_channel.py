"""Trajectories, actor -> learner: PUSH/PULL with bounded queues at every hop.

The path of one episode and where each bound sits::

    actor: send() -> outbox (deque, outbox_size) -> PUSH (SNDHWM)
        ~~ tcp ~~> PULL (RCVHWM, filled by libzmq's I/O thread) -> recv(): decode + checks

When the learner falls behind, the PULL socket's receive queue fills, libzmq stops reading,
the sender's high-water mark fills, and the actor's outbox fills; there the actor chooses, per
``overflow``, to drop its oldest unsent trajectory (counted; the learner sees the gap in the
sequence numbers) or to block until there is room. Memory stays bounded either way.

Every sender numbers its messages within a random ``session`` (so a restarted actor is not
mistaken for a replay); the receiver counts duplicates (dropped) and gaps per (sender, session).
"""

from __future__ import annotations

import collections
import secrets
import time
from typing import Any

import zmq

from distrl_jax.transport.security import SocketSecurity, bind_secured, connect_secured
from distrl_jax.transport.wire import (
    DEFAULT_LIMITS,
    RejectCounter,
    WireError,
    WireLimits,
    decode_trajectory,
    encode_trajectory,
    limit_inbound_size,
    try_decode,
)
from distrl_jax.types import Trajectory

OVERFLOW_POLICIES = ("drop_oldest", "block")


class TrajectorySender:
    """Actor side: numbers trajectories and pushes them through a bounded outbox (no thread).

    ``send`` never blocks in ``drop_oldest`` mode; in ``block`` mode it waits (up to
    ``block_timeout_s``, None = forever) for room. Unsent trajectories leave on the next
    ``send`` or ``flush``. Arrays are sent zero-copy: do not modify them after ``send``.
    """

    def __init__(
        self,
        endpoint: str,
        sender_id: str,
        *,
        outbox_size: int = 16,
        overflow: str = "drop_oldest",
        sndhwm: int = 8,
        block_timeout_s: float | None = None,
        limits: WireLimits = DEFAULT_LIMITS,
        context: zmq.Context | None = None,
        security: SocketSecurity | None = None,
    ):
        if overflow not in OVERFLOW_POLICIES:
            raise ValueError(f"overflow={overflow!r}; allowed: {OVERFLOW_POLICIES}")
        if outbox_size < 1 or sndhwm < 1:
            raise ValueError(f"outbox_size={outbox_size} and sndhwm={sndhwm} must be >= 1")
        self.sender_id = sender_id
        self.session = secrets.token_hex(8)
        self._overflow = overflow
        self._outbox_size = outbox_size
        self._block_timeout_s = block_timeout_s
        self._limits = limits
        self._outbox: collections.deque[list[Any]] = collections.deque()
        self._next_seq = 0
        self.dropped = 0  # trajectories dropped from a full outbox (drop_oldest mode)
        self.sent = 0  # trajectories handed to ZeroMQ
        self._socket = (context or zmq.Context.instance()).socket(zmq.PUSH)
        self._socket.setsockopt(zmq.SNDHWM, sndhwm)
        self._socket.setsockopt(zmq.LINGER, 0)
        connect_secured(self._socket, endpoint, security)

    @property
    def pending(self) -> int:
        """Trajectories waiting in the outbox."""
        return len(self._outbox)

    def send(self, traj: Trajectory) -> int:
        """Queue one trajectory (validated first; ValueError if invalid); returns its seq."""
        frames = encode_trajectory(
            traj,
            sender=self.sender_id,
            seq=self._next_seq,
            session=self.session,
            limits=self._limits,
        )
        self._drain()
        if len(self._outbox) >= self._outbox_size:
            if self._overflow == "drop_oldest":
                self._outbox.popleft()
                self.dropped += 1
            else:
                self._wait_for_room()
        self._outbox.append(frames)
        seq, self._next_seq = self._next_seq, self._next_seq + 1
        self._drain()
        return seq

    def flush(self, timeout_s: float = 0.0) -> int:
        """Push what the socket will take within ``timeout_s``; returns how many remain."""
        deadline = time.monotonic() + timeout_s
        while self._drain() and (remaining := deadline - time.monotonic()) > 0:
            self._socket.poll(int(remaining * 1000) + 1, zmq.POLLOUT)
        return len(self._outbox)

    def _drain(self) -> int:
        """Send from the outbox until it is empty or the socket is full; returns what remains."""
        while self._outbox:
            try:
                self._socket.send_multipart(self._outbox[0], flags=zmq.NOBLOCK, copy=False)
            except zmq.Again:
                break
            self._outbox.popleft()
            self.sent += 1
        return len(self._outbox)

    def _wait_for_room(self) -> None:
        deadline = (
            None if self._block_timeout_s is None else time.monotonic() + self._block_timeout_s
        )
        while self._drain() >= self._outbox_size:
            wait_ms = 100 if deadline is None else int((deadline - time.monotonic()) * 1000)
            if wait_ms <= 0:
                raise TimeoutError(
                    f"trajectory outbox full ({self._outbox_size}) for {self._block_timeout_s}s:"
                    " the learner is not reading; raise block_timeout_s or use drop_oldest"
                )
            self._socket.poll(min(wait_ms, 100), zmq.POLLOUT)

    def stats(self) -> dict[str, int]:
        """Counters: sent, dropped, pending."""
        return {"sent": self.sent, "dropped": self.dropped, "pending": self.pending}

    def close(self, linger_s: float = 0.0) -> None:
        """Close the socket; messages already handed to ZeroMQ get ``linger_s`` seconds to leave
        (0: discarded at once, for a learner that is gone). The outbox is discarded."""
        self._outbox.clear()
        self._socket.close(linger=int(linger_s * 1000))

    def __enter__(self) -> TrajectorySender:
        return self

    def __exit__(self, *exc: object) -> None:
        # A clean exit gives what ZeroMQ holds a second to leave (``flush() == 0`` only means the
        # messages reached ZeroMQ, not the learner); an exception discards it at once.
        self.close(linger_s=1.0 if exc[0] is None else 0.0)


class _SequenceTracker:
    """Per (sender, session) last sequence number; counts duplicates and missing numbers."""

    def __init__(self, max_streams: int):
        self._last: collections.OrderedDict[tuple[str, str], int] = collections.OrderedDict()
        self._max_streams = max_streams
        self.duplicates = 0
        self.gaps = 0  # sequence numbers never seen (dropped by a sender, or lost)

    def accept(self, sender: str, session: str, seq: int) -> bool:
        """Record ``seq``; False for a duplicate (or a reordered late message) to be dropped."""
        key = (sender, session)
        last = self._last.get(key)
        if last is not None and seq <= last:
            self.duplicates += 1
            return False
        # Gaps count from the first message seen: a learner that restarts mid-stream knows
        # nothing of what came before and must not report it as lost.
        if last is not None:
            self.gaps += seq - last - 1
        self._last[key] = seq
        self._last.move_to_end(key)
        if len(self._last) > self._max_streams:
            self._last.popitem(last=False)  # forget the longest-silent stream (bounded memory)
        return True


class TrajectoryReceiver:
    """Learner side: ``recv`` reads, validates and returns trajectories in the caller's thread.

    Binds ``endpoint`` (default loopback with an OS-chosen port; see ``.endpoint``). There is no
    thread of its own: libzmq's I/O thread keeps reading into the socket's bounded receive queue
    (RCVHWM messages per connected actor) while the learner is busy, and when that queue is full
    it stops reading, which pushes back to the actors. Decoding where the caller runs avoids a
    thread hand-off per message (measured as a large share of the cost of a small trajectory)
    and keeps the GIL away from the learner between calls. Use one receiver from one thread
    (e.g. the learner's ingest thread). Rejected messages are counted by reason in ``.rejects``.
    ``security`` makes it a CURVE server (a non-loopback bind needs it, or ``insecure=True``).
    """

    def __init__(
        self,
        endpoint: str = "tcp://127.0.0.1:0",
        *,
        rcvhwm: int = 16,
        limits: WireLimits = DEFAULT_LIMITS,
        max_senders: int = 4096,
        context: zmq.Context | None = None,
        security: SocketSecurity | None = None,
        insecure: bool = False,
        vocab_size: int | None = None,
    ):
        if rcvhwm < 1:
            raise ValueError(f"rcvhwm={rcvhwm} must be >= 1")
        self._limits = limits
        # Token ids at or beyond the model's vocabulary would be read as NaN embeddings.
        self._vocab_size = vocab_size
        self._tracker = _SequenceTracker(max_senders)
        self.rejects = RejectCounter()
        self.received = 0  # valid trajectories returned to the caller
        self._socket = (context or zmq.Context.instance()).socket(zmq.PULL)
        self._socket.setsockopt(zmq.RCVHWM, rcvhwm)
        self._socket.setsockopt(zmq.LINGER, 0)
        limit_inbound_size(self._socket, limits)
        self.endpoint, self._auth = bind_secured(
            self._socket, endpoint, security, insecure=insecure
        )

    def _check(self, frames: list[Any]) -> Trajectory | None:
        message = try_decode(frames, self._limits, ("trajectory",), self.rejects)
        if message is None:
            return None
        try:
            traj = decode_trajectory(message, vocab_size=self._vocab_size)
        except WireError as exc:
            self.rejects.add(exc.reason)
            return None
        if not self._tracker.accept(message.sender, message.session, message.seq):
            return None
        self.received += 1
        return traj

    def recv(self, timeout_s: float | None = None) -> Trajectory | None:
        """The next valid trajectory, waiting up to ``timeout_s`` (None = forever); None on timeout.

        Rejected messages and duplicates are counted and skipped; they never raise.
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            try:
                frames = self._socket.recv_multipart(flags=zmq.NOBLOCK, copy=False)
            except zmq.Again:
                wait_ms = -1 if deadline is None else int((deadline - time.monotonic()) * 1000)
                if deadline is not None and wait_ms <= 0:
                    return None
                self._socket.poll(wait_ms, zmq.POLLIN)
                continue
            traj = self._check(frames)
            if traj is not None:
                return traj

    def drain(self, max_items: int) -> list[Trajectory]:
        """Up to ``max_items`` valid trajectories that have already arrived, without waiting."""
        out: list[Trajectory] = []
        while len(out) < max_items:
            try:
                frames = self._socket.recv_multipart(flags=zmq.NOBLOCK, copy=False)
            except zmq.Again:
                break
            traj = self._check(frames)
            if traj is not None:
                out.append(traj)
        return out

    def stats(self) -> dict[str, Any]:
        """Counters: received, duplicates, gaps, rejects (by reason)."""
        return {
            "received": self.received,
            "duplicates": self._tracker.duplicates,
            "gaps": self._tracker.gaps,
            "rejects": self.rejects.as_dict(),
        }

    def close(self) -> None:
        """Close the socket at once (linger 0); whatever it had buffered is dropped."""
        self._socket.close(linger=0)
        if self._auth is not None:
            self._auth.release()
            self._auth = None

    def __enter__(self) -> TrajectoryReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
