"""Throughput of the trajectory channel against raw pyzmq, and the wire format's per-message cost.

Both paths push the same arrays over loopback TCP from this process to a receiver in a separate
process, with the same high-water marks, and the receiver times the same number of messages:

- ``raw``: PUSH ``send_multipart(arrays, copy=False)`` -> PULL ``recv_multipart(copy=False)``;
- ``channel``: :class:`TrajectorySender` (validate, JSON header, outbox) ->
  :class:`TrajectoryReceiver.recv` (limits, decode, Trajectory validation, sequence checks).

Prints one JSON line. ``--quick`` gives the same keys in well under a minute.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import statistics
import time

import numpy as np
import zmq

from distrl_jax.transport.trajectory_channel import TrajectoryReceiver, TrajectorySender
from distrl_jax.transport.wire import decode, decode_trajectory, encode_trajectory
from distrl_jax.types import Trajectory

HWM = 16  # the same send and receive high-water marks for both paths


def make_trajectory(horizon: int, screen_hw: tuple[int, int], seed: int = 0) -> Trajectory:
    """A trajectory with DigiRL-like shapes: screens [H+1, h, w, 3], context [H+1, 64]."""
    rng = np.random.default_rng(seed)
    t = horizon
    return Trajectory(
        screens=rng.integers(0, 256, (t + 1, *screen_hw, 3), dtype=np.uint8),
        context=rng.integers(0, 1000, (t + 1, 64), dtype=np.int32),
        actions=rng.integers(0, 300, (t, 24), dtype=np.int32),
        rewards=np.zeros(t, np.float32),
        penalties=np.zeros(t, np.float32),
        dones=np.zeros(t, np.float32),
        behaviour_logp=rng.normal(size=t).astype(np.float32),
        task="Search for a hotel in Paris",
        policy_version=3,
        actor_id=1,
        episode_id=7,
    )


def _receive(mode: str, endpoint_q: mp.Queue, result_q: mp.Queue, warmup: int, count: int) -> None:
    """Receiver process: bind, report the endpoint, time ``count`` messages after ``warmup``."""
    if mode == "raw":
        sock = zmq.Context.instance().socket(zmq.PULL)
        sock.setsockopt(zmq.RCVHWM, HWM)
        sock.bind("tcp://127.0.0.1:0")
        endpoint_q.put(sock.getsockopt_string(zmq.LAST_ENDPOINT))

        def take() -> None:
            sock.recv_multipart(copy=False)

        close = sock.close
    else:
        receiver = TrajectoryReceiver(rcvhwm=HWM)
        endpoint_q.put(receiver.endpoint)

        def take() -> None:
            assert receiver.recv(timeout_s=30) is not None

        close = receiver.close
    for _ in range(warmup):
        take()
    t0 = time.perf_counter()
    for _ in range(count):
        take()
    result_q.put(time.perf_counter() - t0)
    close()


def run_pair(traj: Trajectory, mode: str, warmup: int, count: int) -> float:
    """Seconds the receiver took for ``count`` messages of ``traj`` through ``mode``."""
    ctx = mp.get_context("spawn")
    endpoint_q, result_q = ctx.Queue(), ctx.Queue()
    proc = ctx.Process(target=_receive, args=(mode, endpoint_q, result_q, warmup, count))
    proc.start()
    endpoint = endpoint_q.get(timeout=60)
    total = warmup + count
    if mode == "raw":
        sock = zmq.Context.instance().socket(zmq.PUSH)
        sock.setsockopt(zmq.SNDHWM, HWM)
        sock.setsockopt(zmq.LINGER, 5000)
        sock.connect(endpoint)
        frames = list(traj.arrays().values())
        for _ in range(total):
            sock.send_multipart(frames, copy=False)
        elapsed = result_q.get(timeout=120)
        sock.close()
    else:
        with TrajectorySender(
            endpoint, "bench", outbox_size=HWM, overflow="block", sndhwm=HWM
        ) as tx:
            for _ in range(total):
                tx.send(traj)
            while tx.flush(timeout_s=1.0):
                pass
            elapsed = result_q.get(timeout=120)
    proc.join(timeout=30)
    return elapsed


def serialization_us(traj: Trajectory, iterations: int) -> dict[str, float]:
    """Mean µs per message for encode (incl. validation) and decode (incl. validation)."""
    frames = encode_trajectory(traj, sender="bench", seq=0)
    t0 = time.perf_counter()
    for i in range(iterations):
        frames = encode_trajectory(traj, sender="bench", seq=i)
    t1 = time.perf_counter()
    for _ in range(iterations):
        decode_trajectory(decode(frames))
    t2 = time.perf_counter()
    enc, dec = (t1 - t0) / iterations * 1e6, (t2 - t1) / iterations * 1e6
    return {"encode_us": round(enc, 2), "decode_us": round(dec, 2), "total_us": round(enc + dec, 2)}


def main() -> None:
    """Run both paths side by side and print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer messages (same keys)")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args()
    repeats = args.repeats or (2 if args.quick else 5)
    typical = make_trajectory(10, (96, 48))
    large = make_trajectory(20, (320, 160))  # H=20 at 320x160: about 3.2 MB a trajectory
    result: dict[str, object] = {
        "benchmark": "transport",
        "quick": args.quick,
        "host": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "zmq": zmq.zmq_version(),
        },
        "setup": f"loopback tcp, PUSH/PULL, receiver in a separate process, HWM {HWM}, "
        f"median of {repeats} alternating repeats",
    }
    for label, traj, count in (
        ("typical", typical, 800 if args.quick else 4000),
        ("large", large, 40 if args.quick else 200),
    ):
        nbytes = sum(a.nbytes for a in traj.arrays().values())
        raw, chan = [], []
        for _ in range(repeats):  # alternate so drifting machine load hits both alike
            raw.append(nbytes * count / run_pair(traj, "raw", count // 10, count) / 1e9)
            chan.append(nbytes * count / run_pair(traj, "channel", count // 10, count) / 1e9)
        raw_gbs, chan_gbs = statistics.median(raw), statistics.median(chan)
        result[label] = {
            "message_bytes": nbytes,
            "messages": count,
            "raw_gbps": round(raw_gbs, 3),
            "channel_gbps": round(chan_gbs, 3),
            "ratio": round(chan_gbs / raw_gbs, 3),
        }
    result["ratio"] = result["typical"]["ratio"]  # the headline: goal >= 0.8
    result["serialization_typical"] = serialization_us(typical, 500 if args.quick else 5000)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
