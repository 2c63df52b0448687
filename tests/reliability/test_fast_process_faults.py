"""CI-sized process faults on the trajectory channel: no JAX in the child processes.

The full versions in ``test_process_faults.py`` (the real supervisor and actors, a learner
process) are ``extended``; these keep the same promises in CI with the channel alone:

* an actor's sender killed with SIGKILL again and again while sending, and restarted, costs
  only the few trajectories ZeroMQ held for it (its in-flight tail); nothing arrives twice and
  nothing within a life goes missing;
* 64 connections flooding the learner's trajectory port (valid trajectories, garbage, oversized
  frames, replays) while the learner drains slowly keep its memory within a fixed bound, every
  bad message is counted by reason, and valid trajectories are accepted afterwards.

Counts come from the components' own counters (the child's ``sent``, the receiver's stats);
the test's bookkeeping only cross-checks them.
"""

from __future__ import annotations

import collections
import json
import threading
import time

import numpy as np
import pytest
import zmq
from fault_scripts import ChildProcess, numpy_trajectory, rss_bytes

from distrl_jax.config_runtime import RuntimeConfig
from distrl_jax.transport.trajectory_channel import TrajectoryReceiver, TrajectorySender
from distrl_jax.transport.wire import MAGIC, SCHEMA_VERSION, encode_trajectory


def settle(count, quiet_s: float, timeout_s: float, what: str) -> int:
    """Wait until ``count()`` has not changed for ``quiet_s``; returns it."""
    deadline = time.monotonic() + timeout_s
    value, since = count(), time.monotonic()
    while time.monotonic() - since < quiet_s:
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} still changing after {timeout_s} s ({value})")
        time.sleep(0.02)
        if (now := count()) != value:
            value, since = now, time.monotonic()
    return value


# ------------------------------------------------------------------ a sender killed


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_sender_killed_repeatedly_loses_only_its_in_flight_tail():
    """kill -9 of a sending actor's channel three times, each time restarted (a new session)
    as the supervisor would: per session the receiver gets sequence numbers 0..R-1 in order
    (no duplicate, no gap), a killed life loses at most what ZeroMQ held (SNDHWM + its write
    batch), the last life (closed cleanly) loses nothing, and each life is received."""
    rng = np.random.default_rng(8)
    kills, final_count = 3, 50
    got: list[tuple[str, int]] = []  # (session, seq) in arrival order
    lives: list[dict] = []
    receiver = TrajectoryReceiver(rcvhwm=16)
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            traj = receiver.recv(timeout_s=0.05)
            if traj is not None:
                got.append((traj.task, traj.episode_id))

    reader = threading.Thread(target=read, name="receiver", daemon=True)
    reader.start()
    try:
        for life in range(kills + 1):
            last = life == kills
            target = final_count if last else int(rng.integers(100, 300))
            received_before = len(got)
            count = str(final_count if last else 0)
            child = ChildProcess("sender", receiver.endpoint, "actor-0", str(life), count)
            try:
                child.wait_for(lambda s: s["event"] == "ready", 30, f"life {life} to start")
                child.wait_for(
                    lambda s, n=target: s.get("sent", 0) >= n, 30, f"life {life}: {target} sent"
                )
                if last:
                    child.wait_for(lambda s: s["event"] == "done", 30, "the last life's close")
                    child.proc.wait(timeout=30)
                else:
                    child.kill()  # SIGKILL while it sends: it never pauses between messages
            finally:
                child.close()
            status = child.poll_status()  # its last line before dying
            lives.append(
                {
                    "session": child.ready["session"],
                    "sndhwm": child.ready["sndhwm"],
                    "sent": status["sent"],
                    "rc": child.proc.returncode,
                    "killed": not last,
                }
            )
            # The receiver accepts each new life's messages: nothing is stuck after a kill.
            session = lives[-1]["session"]
            deadline = time.monotonic() + 30
            while not any(s == session for s, _ in got[received_before:]):
                assert time.monotonic() < deadline, f"nothing received from life {life}"
                time.sleep(0.02)
        final = lives[-1]["session"]
        settle(lambda: len(got), 0.3, 30, "arrivals")
    finally:
        stop.set()
        reader.join(timeout=10)
        stats = receiver.stats()
        receiver.close()

    by_session: dict[str, list[int]] = collections.defaultdict(list)
    for session, seq in got:
        by_session[session].append(seq)
    assert set(by_session) == {life["session"] for life in lives}, (set(by_session), lives)
    lost = []
    for life in lives:
        seqs = by_session[life["session"]]
        # No duplicate, no gap, in order: exactly 0..R-1 (what is missing is a tail).
        assert seqs == list(range(len(seqs))), (life, seqs[:10], len(seqs))
        lost.append(life["sent"] - len(seqs))
    print(
        f"\nsender kills: lives {[(life['sent'], life['rc']) for life in lives]} "
        f"(sent, exit code), received {len(got)}, lost per life {lost}, receiver {stats}"
    )
    assert [life["rc"] for life in lives] == [-9] * kills + [0], lives
    assert lives[-1]["sent"] == final_count and len(by_session[final]) == final_count
    # A kill may land after a message was handed to ZeroMQ and before its "sent" line (-1);
    # beyond that only what libzmq held can vanish: SNDHWM queued, and what its I/O thread had
    # taken into its 8 KiB write batch but not yet written (at most two of these messages).
    assert all(-1 <= n <= life["sndhwm"] + 2 for n, life in zip(lost, lives, strict=True)), lost
    assert sum(life["sent"] for life in lives) - sum(lost) == len(got) == stats["received"]
    assert stats["duplicates"] == 0 and stats["gaps"] == 0 and stats["rejects"] == {}, stats


# ------------------------------------------------------------------ a flood of connections

N_CONN = 64
BIG = 64 * 1024  # bytes in one oversized (or big garbage) frame
FLOOD_MAX_S = 20.0  # the flood lasts until it has offered OFFER_FACTOR x the bound
OFFER_FACTOR = 3
DRAIN_DELAY_S = 0.002  # the slow learner: 2 ms per valid trajectory (~500 a second at most)
# What the receiver may buffer: RCVHWM messages per connection, the largest ~BIG + a header;
# libzmq's batch buffers and the allocator's slack on top.
SLACK = 32 * 2**20


def _bad_messages(rng: np.random.Generator, valid: list) -> dict[str, tuple[str, list]]:
    """kind -> (the reason the receiver must count it under, its frames)."""
    huge = {
        "magic": MAGIC,
        "schema": SCHEMA_VERSION,
        "kind": "trajectory",
        "sender": "flood",
        "session": "x",
        "seq": 0,
        "policy_version": 0,
        "arrays": [["screens", "uint8", [2**16, 2**16, 3]]],  # 12 GiB declared
        "meta": {},
    }
    return {
        "garbage": ("bad_header", [rng.bytes(200)]),
        "big_header": ("header_too_large", [rng.bytes(BIG)]),
        "oversized": ("oversized", [json.dumps(huge).encode(), rng.bytes(BIG)]),
        "truncated": ("frame_count", valid[:-1]),
    }


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_flood_of_64_connections_keeps_receiver_memory_bounded():
    """A receiver with the learner's queue sizes and wire limits, draining slowly, flooded for
    seconds by 64 connections (valid trajectories, garbage, oversized headers and declared sizes,
    truncated messages, replays) until it has taken in three times what its queues may hold:
    its RSS grows by less than that bound, the senders see their queues full (back-pressure),
    every bad message is counted under its reason, every replay as a duplicate, every valid one
    is received, and a new sender is served once the flood is over."""
    rcvhwm = max(4, RuntimeConfig().ingest_queue // 16)  # as LearnerService sets it
    bound = N_CONN * rcvhwm * (BIG + 1024) + SLACK
    rng = np.random.default_rng(64)
    child = ChildProcess("receiver", str(rcvhwm), str(DRAIN_DELAY_S), stdin=True)
    ctx = zmq.Context()
    socks: list[zmq.Socket] = []
    try:
        ready = child.wait_for(lambda s: s["event"] == "ready", 30, "the receiver")
        endpoint, pid = ready["endpoint"], ready["pid"]
        with TrajectorySender(endpoint, "warm-up") as warm:
            for i in range(20):
                warm.send(numpy_trajectory(rng, episode_id=i, hw=(64, 64)))
            assert warm.flush(timeout_s=10.0) == 0
            # Inside the block: closing a sender discards what ZeroMQ has not sent yet.
            child.wait_for(lambda s: s.get("received") == 20, 30, "the warm-up")
        rss0 = rss_bytes(pid)

        pool = [numpy_trajectory(rng, episode_id=i, hw=(64, 64)) for i in range(8)]
        bad = _bad_messages(rng, encode_trajectory(pool[0], sender="t", seq=0))
        kinds = ["valid"] * 4 + ["dup"] + list(bad)
        for _ in range(N_CONN):
            s = ctx.socket(zmq.PUSH)
            s.setsockopt(zmq.SNDHWM, 4)
            s.setsockopt(zmq.LINGER, 0)
            s.connect(endpoint)
            socks.append(s)
        next_seq = [0] * N_CONN
        last_valid: list[list | None] = [None] * N_CONN
        pending: list[tuple[str, list] | None] = [None] * N_CONN
        accepted = collections.Counter()
        attempted_bytes = accepted_bytes = 0
        peak = rss0
        t0 = next_sample = time.monotonic()
        while accepted_bytes < OFFER_FACTOR * bound:
            now = time.monotonic()
            assert now - t0 < FLOOD_MAX_S, f"only {accepted_bytes} B got in in {FLOOD_MAX_S} s"
            progress = False
            for c, s in enumerate(socks):
                if pending[c] is None:
                    kind = str(rng.choice(kinds))
                    if kind == "valid" or (kind == "dup" and last_valid[c] is None):
                        traj = pool[int(rng.integers(len(pool)))]
                        frames = encode_trajectory(
                            traj, sender=f"flood-{c}", seq=next_seq[c], session=f"s{c}"
                        )
                        pending[c] = ("valid", frames)
                    elif kind == "dup":  # a replay of this connection's last valid message
                        pending[c] = ("dup", last_valid[c])
                    else:
                        pending[c] = (kind, bad[kind][1])
                kind, frames = pending[c]
                size = sum(memoryview(f).nbytes for f in frames)
                attempted_bytes += size
                try:
                    s.send_multipart(frames, flags=zmq.NOBLOCK, copy=False)
                except zmq.Again:
                    accepted["again"] += 1  # refused by the full queues: a drop the sender sees
                    continue
                progress = True
                accepted[kind] += 1
                accepted_bytes += size
                pending[c] = None
                if kind == "valid":
                    next_seq[c] += 1
                    last_valid[c] = frames
            if now >= next_sample:
                peak = max(peak, rss_bytes(pid))
                next_sample = now + 0.01
            if not progress:
                time.sleep(0.001)  # every queue is full: leave the CPU to the receiver
        flood_s = time.monotonic() - t0
        flood_rss = max(peak, rss_bytes(pid))
        child.tell("fast")  # the learner catches up; what the queues hold must all arrive
        want_rejects = collections.Counter()
        for kind, (reason, _) in bad.items():
            want_rejects[reason] += accepted[kind]
        want_received = 20 + accepted["valid"]
        deadline = time.monotonic() + 60
        while True:
            status = child.wait_for(lambda s: s["event"] == "status", 30, "a status line")
            peak = max(peak, status["rss"])
            if (
                status["received"] == want_received
                and status["rejects"] == dict(+want_rejects)
                and status["duplicates"] == accepted["dup"]
            ):
                break
            assert time.monotonic() < deadline, (
                f"flood not accounted for: {status}, want received {want_received}, "
                f"rejects {dict(want_rejects)}, duplicates {accepted['dup']}"
            )
        for s in socks:
            s.close()
        socks.clear()
        with TrajectorySender(endpoint, "after-the-flood") as probe:
            for i in range(10):
                probe.send(numpy_trajectory(rng, episode_id=i))
            assert probe.flush(timeout_s=10.0) == 0
            after = child.wait_for(
                lambda s: s.get("received") == want_received + 10, 30, "the probe's trajectories"
            )
        peak = max(peak, rss_bytes(pid))
    finally:
        for s in socks:
            s.close()
        ctx.term()
        child.close()
    growth = peak - rss0
    mib = 2**20
    print(
        f"\nflood: {N_CONN} connections for {flood_s:.1f} s, rcvhwm {rcvhwm}: attempted "
        f"{attempted_bytes / mib:.0f} MiB, accepted {accepted_bytes / mib:.0f} MiB "
        f"{dict(accepted)}; receiver RSS {rss0 / mib:.0f} -> peak {peak / mib:.0f} MiB "
        f"(+{growth / mib:.1f}, {flood_rss - rss0:+} B by the end of the flood, bound "
        f"{bound / mib:.0f}); final {after}"
    )
    assert all(accepted[k] > 0 for k in ("valid", "dup", *bad)), accepted
    assert accepted["again"] > 0, "the queues never filled: no back-pressure was exercised"
    # The receiver took in (and drained) several times what it may hold, and held no more.
    assert accepted_bytes >= OFFER_FACTOR * bound
    assert growth < bound, f"receiver RSS grew by {growth / mib:.0f} MiB > {bound / mib:.0f}"
    assert after["gaps"] == 0 and after["duplicates"] == accepted["dup"], after
    assert after["rejects"] == dict(+want_rejects), after
