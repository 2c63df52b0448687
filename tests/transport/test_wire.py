"""The wire format: round trips, zero-copy, limits, and every malformed message rejected."""

from __future__ import annotations

import json

import ml_dtypes
import numpy as np
import pytest
import zmq
from hypothesis import given, settings
from hypothesis import strategies as st

from distrl_jax.transport import wire
from distrl_jax.transport.wire import Message, Reason, WireError, WireLimits

SHAPES = [(), (0,), (3, 0, 2), (7,), (2, 3, 4)]


def random_array(dtype_name: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Random values of every allowed dtype (bit patterns for floats, so NaNs are covered too)."""
    dtype = wire.ALLOWED_DTYPES[dtype_name]
    if dtype_name == "bool":
        return np.asarray(rng.random(shape) < 0.5)
    raw = rng.integers(0, 256, (*shape, dtype.itemsize), dtype=np.uint8)
    return raw.view(dtype).reshape(shape)


def as_bytes(frames: list) -> list[bytes]:
    """What a copying transport would deliver."""
    return [bytes(f) if isinstance(f, bytes) else np.asarray(f).tobytes() for f in frames]


@pytest.mark.parametrize("dtype_name", sorted(wire.ALLOWED_DTYPES))
@pytest.mark.parametrize("shape", SHAPES)
def test_round_trip_every_dtype_and_shape(dtype_name: str, shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(0)
    arr = random_array(dtype_name, shape, rng)
    message = Message(
        "params_chunk",
        sender="s",
        seq=5,
        policy_version=9,
        arrays={"x": arr},
        meta={"a": 1, "b": "two", "c": 0.5, "d": None, "e": True},
    )
    out = wire.decode(as_bytes(wire.encode(message)))
    got = out.arrays["x"]
    assert got.dtype == arr.dtype and got.shape == arr.shape
    assert got.tobytes() == arr.tobytes()
    assert not got.flags.writeable
    assert (out.kind, out.sender, out.seq, out.policy_version) == ("params_chunk", "s", 5, 9)
    assert out.meta == message.meta


def test_bfloat16_is_allowed() -> None:
    assert wire.ALLOWED_DTYPES["bfloat16"] == np.dtype(ml_dtypes.bfloat16)


def test_non_contiguous_arrays_are_sent_in_c_order() -> None:
    arr = np.arange(12, dtype=np.int32).reshape(3, 4).T
    out = wire.decode(as_bytes(wire.encode(Message("ack", arrays={"t": arr}))))
    np.testing.assert_array_equal(out.arrays["t"], arr)


@pytest.mark.timeout(20)
def test_zmq_round_trip_is_zero_copy_on_receive() -> None:
    ctx = zmq.Context.instance()
    with ctx.socket(zmq.PAIR) as a, ctx.socket(zmq.PAIR) as b:
        port = a.bind_to_random_port("tcp://127.0.0.1")
        b.connect(f"tcp://127.0.0.1:{port}")
        rng = np.random.default_rng(1)
        arrays = {name: random_array(name, (64, 1024), rng) for name in wire.ALLOWED_DTYPES}
        a.send_multipart(wire.encode(Message("params_chunk", arrays=arrays)), copy=False)
        assert b.poll(10_000)
        frames = b.recv_multipart(copy=False)
        out = wire.decode(frames)
        for (name, arr), frame in zip(arrays.items(), frames[1:], strict=True):
            got = out.arrays[name]
            assert got.tobytes() == arr.tobytes()
            assert np.shares_memory(got, np.frombuffer(frame.buffer, np.uint8)), name
            assert not got.flags.writeable


def test_trajectory_round_trip(make_trajectory) -> None:
    traj = make_trajectory(4, seed=3, episode_id=11)
    frames = wire.encode_trajectory(traj, sender="actor-1", seq=2, session="abc")
    message = wire.decode(as_bytes(frames))
    assert (message.sender, message.seq, message.session) == ("actor-1", 2, "abc")
    out = wire.decode_trajectory(message)
    for name, arr in traj.arrays().items():
        np.testing.assert_array_equal(getattr(out, name), arr)
    assert out.meta() == traj.meta()


def test_encode_rejects_bad_input_with_clear_errors() -> None:
    with pytest.raises(WireError, match=r"complex128.*allowed"):
        wire.encode(Message("ack", arrays={"z": np.zeros(2, np.complex128)}))
    with pytest.raises(WireError, match=">i4"):
        wire.encode(Message("ack", arrays={"z": np.zeros(2, ">i4")}))
    with pytest.raises(ValueError, match="numpy array"):
        wire.encode(Message("ack", arrays={"z": [1, 2]}))  # type: ignore[dict-item]
    with pytest.raises(WireError, match="unknown_kind"):
        wire.encode(Message("bogus"))
    with pytest.raises(WireError, match="bad_meta"):
        wire.encode(Message("ack", meta={"x": [1]}))  # type: ignore[dict-item]
    with pytest.raises(WireError, match="oversized"):
        wire.encode(
            Message("ack", arrays={"z": np.zeros(9, np.uint8)}), WireLimits(max_total_bytes=8)
        )
    with pytest.raises(ValueError, match="max_arrays"):
        WireLimits(max_arrays=0)


def test_encode_trajectory_validates(make_trajectory) -> None:
    traj = make_trajectory(3)
    traj.rewards = traj.rewards[:2]
    with pytest.raises(ValueError, match="rewards"):
        wire.encode_trajectory(traj, sender="a", seq=0)


# --- malformed messages: each builder takes valid frames and returns broken ones --------------


def edit_header(frames: list[bytes], **changes) -> list[bytes]:
    header = json.loads(frames[0])
    header.update(changes)
    return [json.dumps(header).encode(), *frames[1:]]


def edit_spec(frames: list[bytes], index: int, position: int, value) -> list[bytes]:
    header = json.loads(frames[0])
    header["arrays"][index][position] = value
    return [json.dumps(header).encode(), *frames[1:]]


MALFORMED = {
    "no frames": (lambda f: [], Reason.EMPTY),
    "missing last frame": (lambda f: f[:-1], Reason.FRAME_COUNT),
    "extra frame": (lambda f: [*f, b"x"], Reason.FRAME_COUNT),
    "truncated frame": (lambda f: [*f[:-1], f[-1][:-1]], Reason.FRAME_LENGTH),
    "padded frame": (lambda f: [*f[:-1], f[-1] + b"\0"], Reason.FRAME_LENGTH),
    "bad json": (lambda f: [b"{not json", *f[1:]], Reason.BAD_HEADER),
    "not utf-8": (lambda f: [b"\xff\xfe\xfd", *f[1:]], Reason.BAD_HEADER),
    "header is a list": (lambda f: [b"[1, 2]", *f[1:]], Reason.BAD_HEADER),
    "NaN in header": (
        lambda f: [f[0].replace(b'"seq":0', b'"seq":NaN'), *f[1:]],
        Reason.BAD_HEADER,
    ),
    "deeply nested": (lambda f: [b"[" * 5000 + b"]" * 5000, *f[1:]], Reason.BAD_HEADER),
    "missing field": (lambda f: [f[0].replace(b'"sender"', b'"sendr"'), *f[1:]], Reason.BAD_HEADER),
    "seq is a string": (lambda f: edit_header(f, seq="0"), Reason.BAD_HEADER),
    "negative seq": (lambda f: edit_header(f, seq=-1), Reason.BAD_HEADER),
    "bad magic": (lambda f: edit_header(f, magic="pickle"), Reason.BAD_MAGIC),
    "wrong version": (lambda f: edit_header(f, schema=2), Reason.WRONG_VERSION),
    "unknown kind": (lambda f: edit_header(f, kind="exec"), Reason.UNKNOWN_KIND),
    "unexpected kind": (lambda f: edit_header(f, kind="hello"), Reason.UNEXPECTED_KIND),
    "unknown dtype": (lambda f: edit_spec(f, 0, 1, "object"), Reason.BAD_DTYPE),
    "complex dtype": (lambda f: edit_spec(f, 0, 1, "complex128"), Reason.BAD_DTYPE),
    "negative dim": (lambda f: edit_spec(f, 0, 2, [-1, 3]), Reason.BAD_SHAPE),
    "too many dims": (lambda f: edit_spec(f, 0, 2, [1] * 9), Reason.BAD_SHAPE),
    "float dim": (lambda f: edit_spec(f, 0, 2, [1.5]), Reason.BAD_SHAPE),
    "wrong shape": (lambda f: edit_spec(f, 1, 2, [2, 2]), Reason.FRAME_LENGTH),
    "empty name": (lambda f: edit_spec(f, 0, 0, ""), Reason.BAD_NAME),
    "duplicate name": (lambda f: edit_spec(f, 1, 0, "screens"), Reason.BAD_NAME),
    "oversized": (lambda f: edit_spec(f, 0, 2, [2**20, 2**10]), Reason.OVERSIZED),
    "empty but absurd": (lambda f: edit_spec(f, 0, 2, [0, 2**40, 2**40]), Reason.OVERSIZED),
    "too many arrays": (
        lambda f: edit_header(f, arrays=[["a", "uint8", [1]]] * 65),
        Reason.TOO_MANY_ARRAYS,
    ),
    "header too large": (lambda f: edit_header(f, sender="x" * 20_000), Reason.HEADER_TOO_LARGE),
    "nested meta": (lambda f: edit_header(f, meta={"a": {"b": 1}}), Reason.BAD_META),
    "too much meta": (
        lambda f: edit_header(f, meta={str(i): i for i in range(40)}),
        Reason.BAD_META,
    ),
}

TRAJECTORY_MALFORMED = {
    "field of wrong dtype": (lambda f: edit_spec(f, 0, 1, "int8"), Reason.BAD_DTYPE),
    "screens as int32": (
        lambda f: edit_spec(edit_spec(f, 0, 1, "int32"), 0, 2, [4, 2, 6, 3]),
        Reason.BAD_PAYLOAD,
    ),
    "missing field": (
        lambda f: edit_header(f[:-1], arrays=json.loads(f[0])["arrays"][:-1]),
        Reason.BAD_PAYLOAD,
    ),
    "bad meta type": (
        lambda f: edit_header(f, meta={**json.loads(f[0])["meta"], "success": 1}),
        Reason.BAD_PAYLOAD,
    ),
    "versions disagree": (lambda f: edit_header(f, policy_version=99), Reason.BAD_PAYLOAD),
}


def valid_trajectory_frames(make_trajectory) -> list[bytes]:
    return as_bytes(wire.encode_trajectory(make_trajectory(3), sender="a", seq=0))


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_message_is_rejected_with_its_reason(case: str, make_trajectory) -> None:
    build, reason = MALFORMED[case]
    frames = build(valid_trajectory_frames(make_trajectory))
    with pytest.raises(WireError) as info:
        wire.decode(frames, kinds=("trajectory",))
    assert info.value.reason == reason, info.value


@pytest.mark.parametrize("case", sorted(TRAJECTORY_MALFORMED))
def test_malformed_trajectory_is_rejected_with_its_reason(case: str, make_trajectory) -> None:
    build, reason = TRAJECTORY_MALFORMED[case]
    frames = build(valid_trajectory_frames(make_trajectory))
    with pytest.raises(WireError) as info:
        wire.decode_trajectory(wire.decode(frames, kinds=("trajectory",)))
    assert info.value.reason == reason, info.value


def poisoned_frames(traj) -> list[bytes]:
    """A trajectory's frames encoded without the sender's validation (a hostile actor)."""
    meta = traj.meta()
    message = Message("trajectory", "evil", 0, meta["policy_version"], traj.arrays(), meta)
    return as_bytes(wire.encode(message))


POISONS = {
    "NaN reward": ("rewards", np.nan),
    "inf reward": ("rewards", np.inf),
    "-inf penalty": ("penalties", -np.inf),
    "NaN behaviour_logp": ("behaviour_logp", np.nan),
    "done of 2": ("dones", 2.0),
    "negative context id": ("context", -5),
    "negative action id": ("actions", -1),
}


@pytest.mark.parametrize("case", sorted(POISONS))
def test_poisoned_trajectory_is_a_bad_payload(case: str, make_trajectory) -> None:
    """Well-formed on the wire but poison for training: rejected as bad_payload at decode."""
    name, value = POISONS[case]
    traj = make_trajectory(3, seed=2)
    arr = getattr(traj, name).copy()
    arr.reshape(-1)[1] = value
    setattr(traj, name, arr)
    message = wire.decode(poisoned_frames(traj), kinds=("trajectory",))  # the frames are fine
    with pytest.raises(WireError) as info:
        wire.decode_trajectory(message)
    assert info.value.reason == Reason.BAD_PAYLOAD and name in str(info.value)
    counter = wire.RejectCounter()
    assert wire.try_decode(poisoned_frames(traj), wire.DEFAULT_LIMITS, ("trajectory",), counter)
    assert counter.total == 0  # only decode_trajectory knows what a trajectory may hold


def test_decode_trajectory_bounds_ids_and_versions_when_told(make_trajectory) -> None:
    traj = make_trajectory(3, seed=4)  # policy_version 4, ids < 500
    message = wire.decode(as_bytes(wire.encode_trajectory(traj, sender="a", seq=0)))
    top = int(max(traj.context.max(), traj.actions.max()))
    ok = wire.decode_trajectory(message, vocab_size=top + 1, max_policy_version=4)
    assert ok.policy_version == 4
    for kwargs, words in (
        ({"vocab_size": top}, "token ids"),
        ({"max_policy_version": 3}, "policy_version 4"),
    ):
        with pytest.raises(WireError) as info:
            wire.decode_trajectory(message, **kwargs)
        assert info.value.reason == Reason.BAD_PAYLOAD and words in str(info.value)


def test_a_negative_policy_version_is_a_bad_payload(make_trajectory) -> None:
    traj = make_trajectory(2)
    traj.policy_version = -3
    with pytest.raises(WireError) as info:
        wire.decode_trajectory(wire.decode(poisoned_frames(traj)))
    assert info.value.reason == Reason.BAD_PAYLOAD


def test_reject_counter_counts_by_reason() -> None:
    counter = wire.RejectCounter()
    for frames in ([], [b"{"], [b"{"]):
        assert wire.try_decode(frames, wire.DEFAULT_LIMITS, wire.KINDS, counter) is None
    assert counter.as_dict() == {Reason.EMPTY: 1, Reason.BAD_HEADER: 2}
    assert counter.total == 3 and counter[Reason.BAD_HEADER] == 2 and counter["other"] == 0


# --- fuzzing: whatever the frames, decode returns a Message or raises WireError ---------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
HEADER_KEYS = [
    "magic",
    "schema",
    "kind",
    "sender",
    "session",
    "seq",
    "policy_version",
    "arrays",
    "meta",
]


def decode_or_wire_error(frames: list[bytes]) -> None:
    try:
        message = wire.decode(frames)
    except WireError as exc:
        assert exc.reason in vars(Reason).values()
        return
    for arr in message.arrays.values():
        assert not arr.flags.writeable


@settings(max_examples=150, deadline=None, derandomize=True)
@given(st.lists(st.binary(max_size=48), max_size=6))
def test_fuzz_random_frames(frames: list[bytes]) -> None:
    decode_or_wire_error(frames)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    key=st.sampled_from(HEADER_KEYS),
    value=json_values,
    extra=st.lists(st.binary(max_size=32), max_size=3),
    cut=st.integers(0, 8),
)
def test_fuzz_mutated_headers(key: str, value, extra: list[bytes], cut: int) -> None:
    good = wire.encode(
        Message("params_chunk", arrays={"a": np.arange(6, dtype=np.int32).reshape(2, 3)})
    )
    header = json.loads(good[0])
    header[key] = value
    frames = [json.dumps(header).encode(), *as_bytes(good[1:])][: 1 + cut] + extra
    decode_or_wire_error(frames)
