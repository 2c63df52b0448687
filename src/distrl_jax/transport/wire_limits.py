"""The wire format's vocabulary: kinds, dtypes, limits, reason codes and the reject counter.

Split from :mod:`distrl_jax.transport.wire` (which re-exports all of it) so that the encoder and
decoder module stays readable; import from ``distrl_jax.transport.wire`` as before.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping

import numpy as np

MAGIC = "distrl"
SCHEMA_VERSION = 1

# Every kind a peer may send; a receiver additionally checks the kinds it expects.
KINDS = frozenset(
    {
        "trajectory",  # actor -> learner: one episode
        "params_announce",  # learner -> actors: a new policy version (path or inline manifest)
        "params_chunk",  # learner -> actors: a slice of the inline parameter bytes
        "hello",  # actor -> learner: registration
        "heartbeat",  # actor -> learner: liveness
        "ack",  # reply to hello / heartbeat
        "latest?",  # "give me the latest policy version" (control or parameter side socket)
        "latest",  # reply to latest?
    }
)

_ALLOWED_DTYPES: dict[str, np.dtype] = {
    name: np.dtype(name) for name in ("uint8", "int32", "int64", "float32", "float16", "bool")
}
try:  # bfloat16 is what accelerators train in; ml_dtypes ships with jax.
    import ml_dtypes

    _ALLOWED_DTYPES["bfloat16"] = np.dtype(ml_dtypes.bfloat16)
except ImportError:  # pragma: no cover - jax always brings ml_dtypes
    pass
ALLOWED_DTYPES: Mapping[str, np.dtype] = _ALLOWED_DTYPES
# np.dtype equality includes byte order, so a big-endian int32 is not found here.
DTYPE_NAMES: dict[np.dtype, str] = {dtype: name for name, dtype in _ALLOWED_DTYPES.items()}

Scalar = str | int | float | bool | None
SCALAR_TYPES = frozenset({str, int, float, bool, type(None)})
HEADER_KEYS = frozenset(
    {"magic", "schema", "kind", "sender", "session", "seq", "policy_version", "arrays", "meta"}
)


class Reason:
    """The reason codes a :class:`WireError` carries (the keys of a :class:`RejectCounter`)."""

    EMPTY = "empty"  # no frames at all
    HEADER_TOO_LARGE = "header_too_large"
    BAD_HEADER = "bad_header"  # not UTF-8 JSON, not an object, a field missing or mistyped
    BAD_MAGIC = "bad_magic"
    WRONG_VERSION = "wrong_version"
    UNKNOWN_KIND = "unknown_kind"
    UNEXPECTED_KIND = "unexpected_kind"  # a valid kind this socket does not take
    TOO_MANY_ARRAYS = "too_many_arrays"
    BAD_NAME = "bad_name"
    BAD_DTYPE = "bad_dtype"
    BAD_SHAPE = "bad_shape"
    OVERSIZED = "oversized"
    FRAME_COUNT = "frame_count"  # frames != 1 + number of arrays (a truncated or padded message)
    FRAME_LENGTH = "frame_length"  # a frame's length != prod(shape) * itemsize
    BAD_META = "bad_meta"
    BAD_PAYLOAD = "bad_payload"  # the arrays decode but are not a valid object of that kind


class WireError(ValueError):
    """A message that must be rejected; ``reason`` is one of :class:`Reason`'s codes."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclasses.dataclass(frozen=True)
class WireLimits:
    """Bounds every decoded message must respect (checked before any array is built)."""

    max_header_bytes: int = 16 * 1024
    max_arrays: int = 64
    max_total_bytes: int = 256 * 2**20
    max_ndim: int = 8
    max_meta_items: int = 32
    max_name_chars: int = 128

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if type(value) is not int or value < 1:
                raise ValueError(f"WireLimits.{field.name} must be a positive int, got {value!r}")


DEFAULT_LIMITS = WireLimits()


@dataclasses.dataclass(frozen=True)
class Message:
    """One decoded (or to-be-encoded) message; arrays decoded from the wire are read-only views."""

    kind: str
    sender: str = ""
    seq: int = 0
    policy_version: int = 0
    arrays: Mapping[str, np.ndarray] = dataclasses.field(default_factory=dict)
    meta: Mapping[str, Scalar] = dataclasses.field(default_factory=dict)
    session: str = ""  # distinguishes incarnations of a sender (sequence numbers restart)


class RejectCounter:
    """Thread-safe per-reason counts of rejected messages."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}

    def add(self, reason: str) -> None:
        """Count one rejected message under ``reason``."""
        with self._lock:
            self._counts[reason] = self._counts.get(reason, 0) + 1

    def __getitem__(self, reason: str) -> int:
        return self._counts.get(reason, 0)

    @property
    def total(self) -> int:
        """All rejected messages."""
        return sum(self.as_dict().values())

    def as_dict(self) -> dict[str, int]:
        """A snapshot of the counts by reason."""
        with self._lock:
            return dict(self._counts)
