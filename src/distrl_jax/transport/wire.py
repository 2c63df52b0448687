"""The wire format: one JSON header frame, then one raw frame per array, never pickle.

A message is a ZeroMQ multipart message::

    frame 0   header: compact UTF-8 JSON
              {"magic": "distrl", "schema": 1, "kind": ..., "sender": ..., "session": ...,
               "seq": ..., "policy_version": ..., "arrays": [[name, dtype, shape], ...],
               "meta": {key: JSON scalar}}
    frame 1.. the bytes of each array in ``arrays`` order, C order, little-endian

Encoding hands ZeroMQ views of the arrays' own buffers (send with ``copy=False``), so nothing is
copied in Python; decoding builds read-only NumPy arrays over the received frames with
``np.ndarray(buffer=...)``, so nothing is copied there either (except a small frame that landed
misaligned for its dtype in libzmq's shared receive buffer: it is copied to stay aligned).
Every field is checked against :class:`WireLimits` before any array is built: a message that is
malformed, oversized, of an unknown kind or schema raises :class:`WireError` with a reason code,
which a receiver counts in a :class:`RejectCounter` before it carries on.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import zmq

from distrl_jax.transport.wire_limits import (
    ALLOWED_DTYPES,
    DEFAULT_LIMITS,
    DTYPE_NAMES,
    HEADER_KEYS,
    KINDS,
    MAGIC,
    SCALAR_TYPES,
    SCHEMA_VERSION,
    Message,
    Reason,
    RejectCounter,
    Scalar,
    WireError,
    WireLimits,
)
from distrl_jax.types import TRAJECTORY_ARRAYS, Trajectory

__all__ = [
    "ALLOWED_DTYPES",
    "DEFAULT_LIMITS",
    "KINDS",
    "MAGIC",
    "SCHEMA_VERSION",
    "Message",
    "Reason",
    "RejectCounter",
    "Scalar",
    "WireError",
    "WireLimits",
    "array_frame",
    "bind_socket",
    "decode",
    "decode_trajectory",
    "encode",
    "encode_trajectory",
    "limit_inbound_size",
    "parse_array_spec",
    "try_decode",
]


def _check_meta(meta: Any, limits: WireLimits) -> dict[str, Scalar]:
    if not isinstance(meta, dict):
        raise WireError(Reason.BAD_META, f"meta must be an object, got {type(meta).__name__}")
    if len(meta) > limits.max_meta_items:
        raise WireError(Reason.BAD_META, f"{len(meta)} meta items > {limits.max_meta_items}")
    for key, value in meta.items():
        if type(key) is not str or type(value) not in SCALAR_TYPES:
            raise WireError(
                Reason.BAD_META, f"meta[{key!r}] must be a JSON scalar, got {type(value).__name__}"
            )
        if type(value) is float and not math.isfinite(value):
            raise WireError(Reason.BAD_META, f"meta[{key!r}] is not finite: {value!r}")
    return meta


def array_frame(name: str, arr: np.ndarray, limits: WireLimits) -> tuple[list, np.ndarray]:
    """The header spec and the zero-copy frame of one array; WireError/ValueError on bad input."""
    if type(name) is not str or not 0 < len(name) <= limits.max_name_chars:
        raise WireError(Reason.BAD_NAME, f"array name {name!r} (1..{limits.max_name_chars} chars)")
    if isinstance(arr, np.generic):  # a NumPy scalar is a 0-d array
        arr = np.asarray(arr)
    if not isinstance(arr, np.ndarray):
        raise ValueError(f"array {name!r} must be a numpy array, got {type(arr).__name__}")
    dtype_name = DTYPE_NAMES.get(arr.dtype)  # a dict lookup: dtype.name costs ~1.5 µs
    if dtype_name is None:
        raise WireError(
            Reason.BAD_DTYPE,
            f"array {name!r} has dtype {arr.dtype} ({arr.dtype.str}); allowed, native byte order: "
            f"{sorted(ALLOWED_DTYPES)}",
        )
    if arr.ndim > limits.max_ndim:
        raise WireError(Reason.BAD_SHAPE, f"array {name!r} has ndim {arr.ndim} > {limits.max_ndim}")
    if not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr)  # the one copy we cannot avoid: the wire is C order
    frame = arr
    if dtype_name == "bfloat16":  # no buffer-protocol format for it: export its bytes instead
        frame = arr.reshape(-1).view(np.uint8)
    elif arr.size == 0:  # memoryview cannot flatten an empty multi-dimensional buffer
        frame = arr.reshape(-1)
    return [name, dtype_name, list(arr.shape)], frame


def encode(message: Message, limits: WireLimits = DEFAULT_LIMITS) -> list[bytes | np.ndarray]:
    """Frames for ``socket.send_multipart(frames, copy=False)``: the header, then array views.

    The arrays are not copied: do not modify them until ZeroMQ has sent them (treat them as
    handed over). Raises :class:`WireError` (a ValueError) when the message breaks ``limits``.
    """
    if message.kind not in KINDS:
        raise WireError(Reason.UNKNOWN_KIND, f"kind {message.kind!r}; allowed: {sorted(KINDS)}")
    if message.seq < 0:
        raise WireError(Reason.BAD_HEADER, f"seq={message.seq} must be >= 0")
    if len(message.arrays) > limits.max_arrays:
        raise WireError(
            Reason.TOO_MANY_ARRAYS, f"{len(message.arrays)} arrays > {limits.max_arrays}"
        )
    specs, frames, total = [], [], 0
    for name, arr in message.arrays.items():
        spec, frame = array_frame(name, arr, limits)
        specs.append(spec)
        frames.append(frame)
        total += frame.nbytes
    if total > limits.max_total_bytes:
        raise WireError(Reason.OVERSIZED, f"{total} array bytes > {limits.max_total_bytes}")
    header = {"magic": MAGIC, "schema": SCHEMA_VERSION, "kind": message.kind}
    header |= {"sender": message.sender, "session": message.session, "seq": int(message.seq)}
    header |= {"policy_version": int(message.policy_version), "arrays": specs}
    header["meta"] = _check_meta(dict(message.meta), limits)
    raw = _JSON_ENCODER.encode(header).encode()
    if len(raw) > limits.max_header_bytes:
        raise WireError(
            Reason.HEADER_TOO_LARGE, f"header of {len(raw)} bytes > {limits.max_header_bytes}"
        )
    return [raw, *frames]


def _reject_constant(name: str) -> None:
    raise ValueError(f"non-finite number {name} in header")


# Built once: json.dumps / json.loads with options build a new coder on every call.
_JSON_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)
_JSON_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _parse_header(raw: memoryview, limits: WireLimits) -> dict[str, Any]:
    if raw.nbytes > limits.max_header_bytes:
        raise WireError(
            Reason.HEADER_TOO_LARGE, f"header of {raw.nbytes} bytes > {limits.max_header_bytes}"
        )
    try:
        header = _JSON_DECODER.decode(str(raw, "utf-8"))
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise WireError(Reason.BAD_HEADER, f"header is not UTF-8 JSON: {exc}") from None
    if not isinstance(header, dict):
        raise WireError(Reason.BAD_HEADER, f"header must be an object, got {type(header).__name__}")
    if header.get("magic") != MAGIC:
        raise WireError(Reason.BAD_MAGIC, f"magic {header.get('magic')!r}, expected {MAGIC!r}")
    if header.get("schema") != SCHEMA_VERSION:
        raise WireError(
            Reason.WRONG_VERSION,
            f"schema {header.get('schema')!r}, this build speaks {SCHEMA_VERSION}",
        )
    if set(header) != HEADER_KEYS:
        raise WireError(Reason.BAD_HEADER, f"header keys {sorted(header)} != {sorted(HEADER_KEYS)}")
    for key, kind in (("kind", str), ("sender", str), ("session", str), ("seq", int)):
        if type(header[key]) is not kind:
            raise WireError(Reason.BAD_HEADER, f"header field {key!r} must be {kind.__name__}")
    if type(header["policy_version"]) is not int or header["seq"] < 0:
        raise WireError(Reason.BAD_HEADER, "seq must be an int >= 0 and policy_version an int")
    if header["kind"] not in KINDS:
        raise WireError(Reason.UNKNOWN_KIND, f"kind {header['kind']!r}")
    if not isinstance(header["arrays"], list):
        raise WireError(Reason.BAD_HEADER, "header field 'arrays' must be a list")
    return header


def parse_array_spec(spec: Any, limits: WireLimits) -> tuple[str, np.dtype, tuple[int, ...], int]:
    """(name, dtype, shape, nbytes) of one header array spec."""
    if type(spec) is not list or len(spec) != 3:
        raise WireError(Reason.BAD_HEADER, f"array spec must be [name, dtype, shape], got {spec!r}")
    name, dtype_name, shape = spec
    if type(name) is not str or not 0 < len(name) <= limits.max_name_chars:
        raise WireError(Reason.BAD_NAME, f"array name {name!r} (1..{limits.max_name_chars} chars)")
    dtype = ALLOWED_DTYPES.get(dtype_name) if type(dtype_name) is str else None
    if dtype is None:
        raise WireError(Reason.BAD_DTYPE, f"array {name!r} dtype {dtype_name!r} not allowed")
    if type(shape) is not list or len(shape) > limits.max_ndim:
        raise WireError(
            Reason.BAD_SHAPE, f"array {name!r} shape {shape!r} (ndim <= {limits.max_ndim})"
        )
    for dim in shape:
        if type(dim) is not int or dim < 0:
            raise WireError(Reason.BAD_SHAPE, f"array {name!r} shape {shape!r} has a bad dimension")
    nbytes = math.prod(shape) * dtype.itemsize
    # An empty array must not smuggle absurd dimensions past the byte limit either.
    bound = nbytes if nbytes else math.prod(d or 1 for d in shape) * dtype.itemsize
    if bound > limits.max_total_bytes:
        raise WireError(Reason.OVERSIZED, f"array {name!r} shape {shape!r} exceeds the byte limit")
    return name, dtype, tuple(shape), nbytes


def _buffer(frame: Any) -> memoryview:
    """A flat byte view of a zmq.Frame, bytes, bytearray, ndarray or memoryview, without copying."""
    if type(frame) is zmq.Frame:
        return frame.buffer
    view = memoryview(frame)
    if view.format == "B" and view.ndim == 1:
        return view
    return view.cast("B") if view.nbytes else memoryview(b"")  # cast refuses zero-size shapes


def decode(
    frames: Sequence[Any], limits: WireLimits = DEFAULT_LIMITS, kinds: Iterable[str] | None = None
) -> Message:
    """Validate and decode a multipart message; arrays are read-only views of the frames.

    ``kinds``, when given, is the set this receiver accepts (others raise ``unexpected_kind``).
    Raises :class:`WireError` for anything malformed; never anything else for bad input.
    """
    if len(frames) == 0:
        raise WireError(Reason.EMPTY, "no frames")
    header = _parse_header(_buffer(frames[0]), limits)
    if kinds is not None and header["kind"] not in kinds:
        raise WireError(Reason.UNEXPECTED_KIND, f"kind {header['kind']!r} not accepted here")
    specs = header["arrays"]
    if len(specs) > limits.max_arrays:
        raise WireError(Reason.TOO_MANY_ARRAYS, f"{len(specs)} arrays > {limits.max_arrays}")
    parsed = [parse_array_spec(spec, limits) for spec in specs]
    if len({spec[0] for spec in parsed}) != len(parsed):
        raise WireError(Reason.BAD_NAME, "duplicate array names")
    total = sum(spec[3] for spec in parsed)
    if total > limits.max_total_bytes:
        raise WireError(
            Reason.OVERSIZED, f"{total} declared array bytes > {limits.max_total_bytes}"
        )
    if len(frames) != 1 + len(parsed):
        raise WireError(
            Reason.FRAME_COUNT, f"{len(frames)} frames for {len(parsed)} arrays (+1 header)"
        )
    meta = _check_meta(header["meta"], limits)
    arrays: dict[str, np.ndarray] = {}
    for (name, dtype, shape, nbytes), frame in zip(parsed, frames[1:], strict=True):
        view = _buffer(frame)
        if view.nbytes != nbytes:
            raise WireError(
                Reason.FRAME_LENGTH,
                f"array {name!r} frame has {view.nbytes} bytes, expected {nbytes}",
            )
        arr = np.ndarray(shape, dtype, buffer=view)  # read-only when the frame is
        if not arr.flags.aligned:
            # Small frames can sit at odd offsets inside libzmq's shared receive buffer; an
            # aligned copy of those few bytes spares every consumer unaligned loads.
            arr = arr.copy()
        if not view.readonly:  # received frames are; a bytearray or ndarray frame is not
            arr.flags.writeable = False
        arrays[name] = arr
    h = header
    return Message(
        h["kind"], h["sender"], h["seq"], h["policy_version"], arrays, meta, h["session"]
    )


def encode_trajectory(
    traj: Trajectory,
    *,
    sender: str,
    seq: int,
    session: str = "",
    limits: WireLimits = DEFAULT_LIMITS,
) -> list[bytes | np.ndarray]:
    """Frames of one trajectory (its ``arrays()`` + ``meta()``); validates it first."""
    traj.validate()
    meta = traj.meta()
    message = Message(
        "trajectory", sender, seq, meta["policy_version"], traj.arrays(), meta, session
    )
    return encode(message, limits)


_TRAJECTORY_META = {
    "task": str,
    "success": bool,
    "policy_version": int,
    "actor_id": int,
    "episode_id": int,
}


def decode_trajectory(
    message: Message, *, vocab_size: int | None = None, max_policy_version: int | None = None
) -> Trajectory:
    """The Trajectory in a decoded ``trajectory`` message; WireError(bad_payload) if invalid.

    Invalid includes well-formed but poisoned values (see :meth:`Trajectory.validate`): NaN or
    inf rewards, penalties or behaviour log-probs, dones other than 0/1, negative token ids or
    policy version, and, when given, token ids ``>= vocab_size`` or a policy version above
    ``max_policy_version`` (one the learner has not made).
    """
    if message.kind != "trajectory":
        raise WireError(Reason.UNEXPECTED_KIND, f"kind {message.kind!r}, expected 'trajectory'")
    if set(message.arrays) != set(TRAJECTORY_ARRAYS):
        raise WireError(
            Reason.BAD_PAYLOAD,
            f"trajectory arrays {sorted(message.arrays)} != {sorted(TRAJECTORY_ARRAYS)}",
        )
    if set(message.meta) != set(_TRAJECTORY_META) or any(
        type(message.meta[k]) is not t for k, t in _TRAJECTORY_META.items()
    ):
        raise WireError(Reason.BAD_PAYLOAD, f"trajectory meta {dict(message.meta)!r}")
    if message.meta["policy_version"] != message.policy_version:
        raise WireError(Reason.BAD_PAYLOAD, "meta and header disagree on policy_version")
    try:
        return Trajectory.from_arrays(
            dict(message.arrays),
            dict(message.meta),
            vocab_size=vocab_size,
            max_policy_version=max_policy_version,
        )
    except ValueError as exc:
        raise WireError(Reason.BAD_PAYLOAD, str(exc)) from None


# --- socket helpers shared by the channels -------------------------------------------------------


def bind_socket(socket: zmq.Socket, endpoint: str) -> str:
    """Bind ``socket`` (port 0 or ``*`` lets the OS choose) and return the actual endpoint."""
    try:
        socket.bind(endpoint)
    except zmq.ZMQError as exc:
        raise ValueError(
            f"cannot bind {endpoint!r}: {exc} (use e.g. 'tcp://127.0.0.1:0' for an OS-chosen port)"
        ) from exc
    return socket.getsockopt_string(zmq.LAST_ENDPOINT)


def limit_inbound_size(socket: zmq.Socket, limits: WireLimits) -> None:
    """Make libzmq drop any single frame larger than ``limits`` allow before it is buffered."""
    socket.setsockopt(zmq.MAXMSGSIZE, max(limits.max_total_bytes, limits.max_header_bytes))


def try_decode(
    frames: Sequence[Any], limits: WireLimits, kinds: Iterable[str], rejects: RejectCounter
) -> Message | None:
    """:func:`decode`, counting a rejected message in ``rejects`` and returning None for it."""
    try:
        return decode(frames, limits, kinds)
    except WireError as exc:
        rejects.add(exc.reason)
        return None
