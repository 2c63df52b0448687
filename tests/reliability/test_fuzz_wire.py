"""Fuzzing the wire decoder: malformed input is rejected with a known reason, counted, and cheap.

A seeded NumPy mutation fuzzer corrupts valid encoded messages of every channel (bit flips,
truncation, extension, dropped/added frames, header fields replaced by hostile values, absurd
declared shapes and dtypes) over 100,000+ inputs; Hypothesis adds unstructured frames and
hostile JSON headers. Nothing may raise but :class:`WireError`, every reason must be one of
:class:`Reason`'s codes, the real receiver must count every rejection, and declared sizes beyond
the limits must be refused before anything of that size is allocated.
"""

from __future__ import annotations

import json
import pathlib
import sys
import time
import tracemalloc
from collections.abc import Callable

import numpy as np
import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from distrl_jax.transport import wire
from distrl_jax.transport.control import CONTROL_LIMITS
from distrl_jax.transport.param_chunks import BROADCAST_LIMITS, ChunkAssembly, encode_inline
from distrl_jax.transport.trajectory_channel import TrajectoryReceiver
from distrl_jax.transport.wire import Message, Reason, RejectCounter, WireError

# The transport tests' trajectory builder lives beside them without a package; reuse, never copy.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "transport"))
from sample_trajectories import build_trajectory

KNOWN_REASONS = frozenset(v for k, v in vars(Reason).items() if k.isupper())
HOSTILE_VALUES: list = [
    None, True, -1, 0, 2**63, -(2**63), 10**30, 1.5, "", "x" * 5000, [], {}, [[[[]]]],
    {"a": {"b": [1, 2]}}, [2**40, 2**40], [-3], ["1", "2"], [1.0, 2.0], "float64", ">i4",
]  # fmt: skip
HUGE_SHAPES: list = [
    [2**40], [2**31, 2**31], [10**18, 10**18, 10**18], [0, 2**62], [2**62, 0], [1] * 9,
    [2**20, 2**20], [-1, 4], [True, 3], [2.0], [0] * 8 + [2**63],
]  # fmt: skip
DTYPES: list = ["float64", "object", ">i4", "<f4", "complex64", "U10", 7, None, "bfloat16"]


def _as_bytes(frames: list) -> list[bytes]:
    return [bytes(memoryview(f).cast("B")) if not isinstance(f, bytes) else f for f in frames]


def _corpus() -> list[tuple[list[bytes], wire.WireLimits]]:
    """Valid encoded messages of every channel, with the limits their receiver applies."""
    trajectories = [
        build_trajectory(1 + s, seed=s, episode_id=s, screen_hw=(4, 3)) for s in range(3)
    ]
    out = [
        (_as_bytes(wire.encode_trajectory(t, sender="a", seq=s)), None)
        for s, t in enumerate(trajectories)
    ]
    params = {"w": np.arange(40, dtype=np.float32).reshape(5, 8), "b": np.ones(3, np.int32)}
    out += [(_as_bytes(m), BROADCAST_LIMITS) for m in encode_inline(3, 7, params, 64, "learner")]
    hello = Message("hello", "actor-0", 1, meta={"host": "h", "pid": 4, "devices": "x"})
    out.append((_as_bytes(wire.encode(hello, CONTROL_LIMITS)), CONTROL_LIMITS))
    return [(frames, limits or wire.DEFAULT_LIMITS) for frames, limits in out]


def _flip_bits(rng: np.random.Generator, raw: bytes) -> bytes:
    if not raw:
        return b"\x00"
    buf = bytearray(raw)
    for pos in rng.integers(0, len(buf), int(rng.integers(1, 9))):
        buf[pos] ^= 1 << int(rng.integers(0, 8))
    return bytes(buf)


def _edit_header(rng: np.random.Generator, raw: bytes, edit: Callable[[dict], None]) -> bytes:
    header = json.loads(raw)
    edit(header)
    return json.dumps(header).encode()  # allow_nan: "NaN" must be refused by the decoder


def _pick(rng: np.random.Generator, pool: list):
    return pool[int(rng.integers(0, len(pool)))]


def _corrupt_field(rng: np.random.Generator, header: dict) -> None:
    key = _pick(rng, [*sorted(header), "extra"])
    if rng.random() < 0.1:
        header.pop(key, None)
    else:
        header[key] = _pick(rng, [*HOSTILE_VALUES, float("nan")])


def _corrupt_spec(rng: np.random.Generator, header: dict) -> None:
    if not header["arrays"]:
        header["arrays"] = [["x", "uint8", _pick(rng, HUGE_SHAPES)]]
        return
    spec = _pick(rng, header["arrays"])
    slot = int(rng.integers(0, 4))
    if slot == 0:
        spec[0] = _pick(rng, ["", "x" * 200, 5, None, header["arrays"][0][0]])
    elif slot == 1:
        spec[1] = _pick(rng, DTYPES)
    elif slot == 2:
        spec[2] = _pick(rng, HUGE_SHAPES)
    else:
        spec.append(_pick(rng, HOSTILE_VALUES))


def _corrupt_meta(rng: np.random.Generator, header: dict) -> None:
    if rng.random() < 0.2:
        header["meta"] = {f"k{i}": i for i in range(int(rng.integers(30, 40)))}
    else:
        header["meta"][str(_pick(rng, ["chunk", "chunks", "policy_version", "z"]))] = _pick(
            rng, HOSTILE_VALUES
        )


def mutate(rng: np.random.Generator, frames: list[bytes]) -> list[bytes]:
    """One random corruption of a valid message's frames."""
    frames = list(frames)
    op = int(rng.integers(0, 12))
    i = int(rng.integers(0, len(frames)))
    if op == 0:
        frames[0] = _flip_bits(rng, frames[0])
    elif op == 1:
        frames[i] = _flip_bits(rng, frames[i])
    elif op == 2:
        frames[i] = frames[i][: int(rng.integers(0, len(frames[i]) + 1))]
    elif op == 3:
        frames[i] = frames[i] + rng.bytes(int(rng.integers(1, 64)))
    elif op == 4:
        del frames[i]
    elif op == 5:
        frames.insert(i + 1, rng.bytes(int(rng.integers(0, 32))))
    elif op == 6:
        frames[0] = _edit_header(rng, frames[0], lambda h: _corrupt_field(rng, h))
    elif op == 7:
        frames[0] = _edit_header(rng, frames[0], lambda h: _corrupt_spec(rng, h))
    elif op == 8:
        frames[0] = _edit_header(rng, frames[0], lambda h: _corrupt_meta(rng, h))
    elif op == 9:
        frames[0] = rng.bytes(int(rng.integers(0, 200)))
    elif op == 10:
        frames = [] if rng.random() < 0.05 else frames[:1] + frames[1:][::-1]
    else:  # a frame twice its declared size or a header over the limit
        frames[i] = frames[i] * 2 if i else frames[0] + b" " * 20000
    return frames


def _check_one(frames: list[bytes], limits: wire.WireLimits, counter: RejectCounter) -> bool:
    """Decode as a receiver does (payload checks included); True if it was accepted."""
    message = wire.try_decode(frames, limits, wire.KINDS, counter)
    if message is None:
        return False
    try:
        if message.kind == "trajectory":
            wire.decode_trajectory(message)
        elif message.kind == "params_announce" and message.meta.get("mode") == "inline":
            ChunkAssembly(message, max_model_bytes=2**20)
    except WireError as exc:
        assert exc.reason in KNOWN_REASONS, exc
        counter.add(exc.reason)
        return False
    return True


def test_mutation_fuzz_100k_inputs_only_known_rejections() -> None:
    corpus = _corpus()
    rng = np.random.default_rng(20240607)
    counter, accepted, n = RejectCounter(), 0, 100_000
    start = time.perf_counter()
    for k in range(n):
        frames, limits = corpus[k % len(corpus)]
        accepted += _check_one(mutate(rng, frames), limits, counter)
    elapsed = time.perf_counter() - start
    counts = counter.as_dict()
    assert set(counts) <= KNOWN_REASONS, counts
    assert counter.total + accepted == n
    # The fuzzer reaches deep into the decoder, not just the JSON parser.
    reached = {"bad_header", "bad_shape", "oversized", "frame_count", "frame_length", "bad_meta"}
    assert reached | {"bad_dtype", "bad_payload", "bad_name"} <= set(counts), counts
    assert accepted < n // 4, f"{accepted} of {n} mutants accepted: the mutations are too weak"
    assert elapsed < 60, f"{n} decodes took {elapsed:.1f}s"


def test_declared_sizes_beyond_limits_are_refused_before_allocation() -> None:
    frames = _corpus()[0][0]
    header = json.loads(frames[0])
    rng = np.random.default_rng(1)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        for k in range(2000):
            header["arrays"][k % len(header["arrays"])][2] = _pick(rng, HUGE_SHAPES)
            raw = json.dumps(header).encode()
            with pytest.raises(WireError) as info:
                wire.decode([raw, *frames[1:]])
            assert info.value.reason in {"bad_shape", "oversized", "frame_count", "frame_length"}
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert peak < 1 * 2**20, f"peak {peak} bytes while refusing absurd shapes"


def test_forged_chunk_count_is_refused_quickly() -> None:
    """A '1-byte chunks' announcement of 1 GiB must not make the subscriber plan 2**30 chunks."""
    manifest = np.frombuffer(json.dumps([["w", "uint8", [2**30]]]).encode(), np.uint8)
    for chunks in (2**30, 3):
        meta = {"mode": "inline", "step": 0, "chunks": chunks, "chunk_bytes": 1}
        frames = wire.encode(
            Message("params_announce", "learner", arrays={"manifest": manifest}, meta=meta),
            BROADCAST_LIMITS,
        )
        start = time.perf_counter()
        with pytest.raises(WireError, match="chunks announced") as info:
            ChunkAssembly(wire.decode(frames, BROADCAST_LIMITS), max_model_bytes=2**31)
        assert info.value.reason == Reason.BAD_PAYLOAD
        assert time.perf_counter() - start < 0.5


@pytest.mark.timeout(60)
def test_real_receiver_counts_every_rejection() -> None:
    """Mutants pushed through a socket: the receiver's counter matches the offline verdicts."""
    corpus = [c for c in _corpus() if c[1] == wire.DEFAULT_LIMITS]
    rng = np.random.default_rng(7)
    mutants = [mutate(rng, corpus[k % len(corpus)][0]) for k in range(3000)]
    mutants = [m for m in mutants if m]  # libzmq cannot send a message of no frames
    expected = RejectCounter()
    for frames in mutants:
        message = wire.try_decode(frames, wire.DEFAULT_LIMITS, ("trajectory",), expected)
        if message is not None:
            try:
                wire.decode_trajectory(message)
            except WireError as exc:
                expected.add(exc.reason)
    ctx = zmq.Context()
    with TrajectoryReceiver(rcvhwm=len(mutants), context=ctx) as receiver:
        push = ctx.socket(zmq.PUSH)
        push.setsockopt(zmq.SNDHWM, len(mutants))
        push.connect(receiver.endpoint)
        for frames in mutants:
            push.send_multipart(frames)
        deadline = time.monotonic() + 30
        seen = 0
        while seen < len(mutants) and time.monotonic() < deadline:
            receiver.recv(timeout_s=0.2)
            stats = receiver.stats()
            seen = receiver.rejects.total + stats["received"] + stats["duplicates"]
        push.close(linger=0)
    ctx.term()
    assert expected.total > len(mutants) // 2
    assert receiver.rejects.as_dict() == expected.as_dict()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(max_size=400), max_size=6))
def test_arbitrary_frames_raise_only_wire_error(frames: list[bytes]) -> None:
    try:
        wire.decode(frames)
    except WireError as exc:
        assert exc.reason in KNOWN_REASONS


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(sorted(wire.KINDS)),
    fields=st.dictionaries(
        st.sampled_from(["sender", "session", "seq", "policy_version", "arrays", "meta"]), _JSON
    ),
    payload=st.lists(st.binary(max_size=64), max_size=4),
)
def test_hostile_headers_raise_only_wire_error(kind: str, fields: dict, payload: list) -> None:
    header = {"magic": "distrl", "schema": 1, "kind": kind, "sender": "a", "session": ""}
    header |= {"seq": 0, "policy_version": 0, "arrays": [], "meta": {}} | fields
    try:
        message = wire.decode([json.dumps(header).encode(), *payload])
    except WireError as exc:
        assert exc.reason in KNOWN_REASONS
    else:
        assert len(message.arrays) == len(payload)
