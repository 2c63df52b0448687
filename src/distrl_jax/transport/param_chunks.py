"""Inline parameter chunks: the deterministic chunk plan, encoding, and subscriber-side assembly.

The parameters' bytes, concatenated in manifest order, form one stream; :func:`plan_chunks` cuts
it into chunks of at most ``chunk_bytes`` bytes and ``MAX_PIECES_PER_CHUNK`` pieces. The
publisher (:func:`encode_inline`) and the subscriber (:class:`ChunkAssembly`) both compute the
plan from the same inputs, so every received chunk can be checked against it.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from distrl_jax.transport.wire import (
    Message,
    Reason,
    WireError,
    WireLimits,
    array_frame,
    encode,
    parse_array_spec,
)

DEFAULT_CHUNK_BYTES = 4 * 2**20
MAX_PIECES_PER_CHUNK = 512  # bounds the header of a chunk made of many small parameters
# Bounds the plan a subscriber computes from an announcement (and its set of missing chunks):
# 16 GiB in the default 4 MiB chunks is 4096; a forged "1-byte chunks" announcement must not
# make the subscriber loop a billion times before it can notice the count is absurd.
MAX_CHUNKS = 2**18
# Every message on this channel: a manifest or up to 64 MiB of pieces named by parameter index.
BROADCAST_LIMITS = WireLimits(
    max_header_bytes=64 * 1024, max_arrays=MAX_PIECES_PER_CHUNK, max_total_bytes=64 * 2**20
)
# The manifest inside an announcement: parameter names can be long paths.
MANIFEST_LIMITS = WireLimits(max_arrays=2**20, max_total_bytes=2**40, max_name_chars=1024)

Piece = tuple[int, int, int]  # (parameter index, first byte, end byte) within that parameter


@dataclasses.dataclass(frozen=True)
class ParamsVersion:
    """One complete policy version: a checkpoint path, or the parameters (read-only arrays)."""

    version: int
    step: int
    path: str | None = None
    params: Mapping[str, np.ndarray] | None = None


def plan_chunks(sizes: list[int], chunk_bytes: int, max_pieces: int) -> list[list[Piece]]:
    """Cut the concatenated bytes of parameters of ``sizes`` into chunks of pieces.

    A chunk holds at most ``chunk_bytes`` bytes and ``max_pieces`` pieces; empty parameters get
    no piece. Publisher and subscriber both call this, so a chunk's layout is checkable.
    """
    chunks: list[list[Piece]] = []
    current: list[Piece] = []
    room = chunk_bytes
    for index, size in enumerate(sizes):
        start = 0
        while start < size:
            take = min(room, size - start)
            current.append((index, start, start + take))
            start += take
            room -= take
            if room == 0 or len(current) == max_pieces:
                chunks.append(current)
                current, room = [], chunk_bytes
    if current:
        chunks.append(current)
    return chunks


def _byte_view(arr: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(arr).reshape(-1).view(np.uint8)


def encode_inline(
    version: int, step: int, params: Mapping[str, np.ndarray], chunk_bytes: int, sender: str
) -> list[list[Any]]:
    """The frames of a version's announcement and chunks (views of ``params``, no copies)."""
    specs, views = [], []
    for name, arr in params.items():
        spec, _ = array_frame(name, arr, MANIFEST_LIMITS)  # checks dtype and ndim
        specs.append(spec)
        views.append(_byte_view(arr))
    plan = plan_chunks([v.nbytes for v in views], chunk_bytes, MAX_PIECES_PER_CHUNK)
    if len(plan) > MAX_CHUNKS:
        raise ValueError(
            f"{len(plan)} chunks > {MAX_CHUNKS}: raise chunk_bytes (now {chunk_bytes})"
        )
    manifest = np.frombuffer(json.dumps(specs, separators=(",", ":")).encode(), np.uint8)
    common = {"sender": sender, "policy_version": version}
    meta = {"mode": "inline", "step": step, "chunks": len(plan), "chunk_bytes": chunk_bytes}
    messages = [
        encode(
            Message("params_announce", **common, arrays={"manifest": manifest}, meta=meta),
            BROADCAST_LIMITS,
        )
    ]
    for i, pieces in enumerate(plan):
        arrays = {str(p): views[p][a:b] for p, a, b in pieces}
        chunk_meta = {"chunk": i, "chunks": len(plan)}
        messages.append(
            encode(
                Message("params_chunk", **common, arrays=arrays, meta=chunk_meta), BROADCAST_LIMITS
            )
        )
    return messages


class ChunkAssembly:
    """The parameters of one inline version, filled in chunk by chunk against the plan."""

    def __init__(self, message: Message, max_model_bytes: int):
        self.version, meta = message.policy_version, message.meta
        chunks, chunk_bytes, step = meta.get("chunks"), meta.get("chunk_bytes"), meta.get("step")
        if (
            not all(type(x) is int and x >= 0 for x in (chunks, chunk_bytes, step))
            or not chunk_bytes
        ):
            raise WireError(Reason.BAD_PAYLOAD, f"inline announcement meta {dict(meta)!r}")
        self.step = step
        manifest = message.arrays.get("manifest")
        try:
            specs = json.loads(manifest.tobytes()) if manifest is not None else None
        except (ValueError, RecursionError):
            specs = None
        if type(specs) is not list or len(specs) > MANIFEST_LIMITS.max_arrays:
            raise WireError(Reason.BAD_PAYLOAD, "announcement has no valid manifest")
        parsed = [parse_array_spec(spec, MANIFEST_LIMITS) for spec in specs]
        total = sum(p[3] for p in parsed)
        if total > max_model_bytes or len({p[0] for p in parsed}) != len(parsed):
            raise WireError(
                Reason.OVERSIZED, f"{total} parameter bytes (max {max_model_bytes}) or dup names"
            )
        # The plan has at least ceil(total / chunk_bytes) chunks: check the announced count
        # against that, and against MAX_CHUNKS, before spending time on the plan itself.
        if not 0 <= chunks <= MAX_CHUNKS or -(-total // chunk_bytes) > chunks:
            raise WireError(
                Reason.BAD_PAYLOAD,
                f"{chunks} chunks announced for {total} bytes in chunks of {chunk_bytes} "
                f"(at most {MAX_CHUNKS})",
            )
        self.plan = plan_chunks([p[3] for p in parsed], chunk_bytes, MAX_PIECES_PER_CHUNK)
        if len(self.plan) != chunks:
            raise WireError(
                Reason.BAD_PAYLOAD, f"{chunks} chunks announced, plan has {len(self.plan)}"
            )
        self.arrays = {name: np.empty(shape, dtype) for name, dtype, shape, _ in parsed}
        self._views = [_byte_view(a) for a in self.arrays.values()]
        self.missing = set(range(chunks))
        self.last_progress = time.monotonic()

    def add(self, message: Message) -> bool:
        """Copy one chunk in after checking it against the plan; False if it was a duplicate."""
        index, chunks = message.meta.get("chunk"), message.meta.get("chunks")
        if type(index) is not int or chunks != len(self.plan) or not 0 <= index < len(self.plan):
            raise WireError(Reason.BAD_PAYLOAD, f"chunk meta {dict(message.meta)!r}")
        if index not in self.missing:
            return False  # a duplicate (e.g. both the broadcast and a latest? reply)
        pieces = self.plan[index]
        if list(message.arrays) != [str(p) for p, _, _ in pieces] or any(
            arr.dtype != np.uint8 or arr.shape != (b - a,)
            for arr, (_, a, b) in zip(message.arrays.values(), pieces, strict=True)
        ):
            raise WireError(Reason.BAD_PAYLOAD, f"chunk {index} does not match its plan")
        for arr, (p, a, b) in zip(message.arrays.values(), pieces, strict=True):
            self._views[p][a:b] = arr
        self.missing.discard(index)
        self.last_progress = time.monotonic()
        return True

    def result(self) -> ParamsVersion:
        """The complete version, its arrays made read-only."""
        for arr in self.arrays.values():
            arr.flags.writeable = False
        return ParamsVersion(self.version, self.step, params=self.arrays)
