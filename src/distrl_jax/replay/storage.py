"""Padded trajectory storage for the prioritized replay (DESIGN §5).

One pre-allocated, zero-padded NumPy array per trajectory field, ``capacity`` slots of horizon H
(``screens [capacity, H+1, Hs, Ws, 3] uint8`` etc.), allocated from the first trajectory's shapes.
In compressed mode the screens live as one zlib blob per slot instead. This module owns the rows,
the gather of sampled rows and the memory accounting; :mod:`distrl_jax.replay.buffer` owns the
bookkeeping (priorities, generations, staleness) and the lock that guards both.
"""

from __future__ import annotations

import itertools
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from distrl_jax.types import TRAJECTORY_ARRAYS, Trajectory

# Fields with H+1 entries (one per state); the others have H (one per action).
_STATE_FIELDS = ("screens", "context")
# Per-slot bookkeeping bytes: priority f8, generation i8, version i8, length i4, success f4,
# valid b1, and in compressed mode the blob's size i8 and its object pointer.
_META_BYTES_PER_SLOT = 8 + 8 + 8 + 4 + 4 + 1
_BLOB_META_BYTES_PER_SLOT = 8 + 8
# Above this many bytes of screens a batch's gather is split across ``gather_threads``: one core
# copied ~9 GB/s from DRAM on the dev box, so a batch of 64 x 11 x 96x48x3 (9.7 MB) took ~1.1 ms
# on one thread and ~0.7 ms on two; below ~1 MB, handing work to a thread costs more than it saves.
_PARALLEL_GATHER_BYTES = 1 << 20
# zlib level 1: measured on simphone-like 96x48 screens, level 1 compresses ~26x at ~290 µs per
# 11-screen trajectory vs ~60x at ~620 µs for level 6; inflating costs ~180 µs either way.
_ZLIB_LEVEL = 1


class TrajectoryStorage:
    """Fixed-shape slot storage: padded arrays per field, optional zlib-compressed screens.

    Not thread-safe by itself: the owning replay calls the mutating methods with its lock held.
    """

    def __init__(
        self, *, capacity: int, horizon: int, compress_screens: bool, gather_threads: int
    ) -> None:
        self.capacity = capacity
        self.horizon = horizon
        self.compress_screens = compress_screens
        self.gather_threads = gather_threads
        self._pool = (
            ThreadPoolExecutor(gather_threads - 1, thread_name_prefix="replay-gather")
            if gather_threads > 1
            else None
        )
        self.blobs = np.full(capacity, None, dtype=object) if compress_screens else None
        self.blob_nbytes = np.zeros(capacity, np.int64) if compress_screens else None
        self.blob_bytes = 0
        self._store: dict[str, np.ndarray] | None = None  # allocated from the first trajectory
        self.step_shapes: dict[str, tuple[int, ...]] | None = None

    # ------------------------------------------------------------------ layout, memory

    def store_shape(
        self, name: str, shapes: dict[str, tuple[int, ...]] | None = None
    ) -> tuple[int, ...]:
        """A slot's shape for field ``name``: (H+1 or H, *per-step shape)."""
        steps = self.horizon + 1 if name in _STATE_FIELDS else self.horizon
        return (steps, *(shapes or self.step_shapes)[name])

    def bytes_for_capacity(
        self, capacity: int, shapes: dict[str, tuple[int, ...]] | None = None
    ) -> int:
        """Fixed bytes that ``capacity`` slots take (everything but compressed screen blobs)."""
        per_slot = _META_BYTES_PER_SLOT
        for name, dtype in TRAJECTORY_ARRAYS.items():
            if name == "screens" and self.compress_screens:
                per_slot += _BLOB_META_BYTES_PER_SLOT
                continue
            per_slot += int(np.prod(self.store_shape(name, shapes))) * dtype.itemsize
        leaves = 1 << max(0, (capacity - 1).bit_length())
        return capacity * per_slot + 2 * 2 * leaves * 8  # + the sum and max trees

    def bytes_in_use(self) -> int:
        """Fixed storage (once allocated) plus the live compressed blobs."""
        fixed = self.bytes_for_capacity(self.capacity) if self.step_shapes else 0
        return fixed + self.blob_bytes

    def allocate(
        self, step_shapes: dict[str, tuple[int, ...]], memory_budget_bytes: int | None
    ) -> None:
        """Check the memory budget and allocate storage for these per-step shapes.

        The shapes are published last, so other threads see either nothing or a complete store.
        """
        shapes = {n: tuple(int(d) for d in s) for n, s in step_shapes.items()}
        if len(shapes["screens"]) != 3 or shapes["screens"][-1] != 3:
            raise ValueError(
                f"step shape of 'screens' must be (Hs, Ws, 3), got {shapes['screens']}"
            )
        need = self.bytes_for_capacity(self.capacity, shapes)
        budget = memory_budget_bytes
        if budget is not None and need > budget:
            lo, hi = 0, self.capacity  # the largest capacity that fits: the cost is monotone
            while lo < hi:
                mid = (lo + hi + 1) // 2
                fits = self.bytes_for_capacity(mid, shapes) <= budget
                lo, hi = (mid, hi) if fits else (lo, mid - 1)
            what = "screens compressed, blobs not counted" if self.compress_screens else "raw"
            raise ValueError(
                f"replay capacity={self.capacity} needs {need:,} bytes ({need / 2**30:.2f} GiB; "
                f"horizon {self.horizon}, screens {shapes['screens']}, {what}), more than "
                f"memory_budget_bytes={budget:,}; a capacity of at most {lo} fits "
                "(lower `capacity`, enable `compress_screens`, or raise the budget)"
            )
        self._store = {
            n: np.zeros((self.capacity, *self.store_shape(n, shapes)), dtype)
            for n, dtype in TRAJECTORY_ARRAYS.items()
            if not (n == "screens" and self.compress_screens)
        }
        self.step_shapes = shapes

    def check_shapes(self, trajectory: Trajectory) -> None:
        """Raise ValueError if ``trajectory``'s per-step shapes differ from the stored ones."""
        for name, arr in trajectory.arrays().items():
            if arr.shape[1:] != self.step_shapes[name]:
                raise ValueError(
                    f"trajectory field {name!r} has per-step shape {arr.shape[1:]}, but this replay "
                    f"stores {self.step_shapes[name]} (fixed by its first trajectory); every actor "
                    "must use the same screen size, context length and action length"
                )

    def check_blob_fits(self, nbytes: int, memory_budget_bytes: int | None) -> None:
        """Raise ValueError if one blob of ``nbytes`` cannot fit beside the fixed storage."""
        if memory_budget_bytes is None:
            return
        room = memory_budget_bytes - self.bytes_for_capacity(self.capacity)
        if nbytes > room:
            raise ValueError(
                f"a trajectory's compressed screens take {nbytes:,} bytes, more than the "
                f"{room:,} bytes memory_budget_bytes leaves beside the fixed storage"
            )

    # ------------------------------------------------------------------ rows

    @staticmethod
    def compress(screens: np.ndarray) -> bytes:
        """A trajectory's screens as one zlib blob (call outside the lock: it is the slow part)."""
        return zlib.compress(np.ascontiguousarray(screens).data, _ZLIB_LEVEL)

    def write(self, slot: int, trajectory: Trajectory, blob: bytes | None) -> None:
        """Copy one trajectory into its slot and zero the padding past its length (lock held)."""
        for name, arr in trajectory.arrays().items():
            if name == "screens" and blob is not None:
                continue
            rows = self._store[name][slot]
            rows[: arr.shape[0]] = arr
            rows[arr.shape[0] :] = 0
        if blob is not None:
            self.blobs[slot] = blob
            self.blob_nbytes[slot] = len(blob)
            self.blob_bytes += len(blob)

    def release(self, slots: np.ndarray) -> None:
        """Free the compressed blobs of removed slots (lock held); raw rows stay until rewritten."""
        if self.blobs is not None:
            self.blob_bytes -= int(self.blob_nbytes[slots].sum())
            self.blobs[slots] = None
            self.blob_nbytes[slots] = 0

    def blobs_at(self, slots: np.ndarray) -> np.ndarray | None:
        """The blobs of ``slots`` to gather from later (lock held); None in raw mode."""
        return self.blobs[slots] if self.blobs is not None else None

    def gather(self, slots: np.ndarray, blobs: np.ndarray | None) -> dict[str, np.ndarray]:
        """Fancy-index only the sampled rows of every field; inflate screens in compressed mode."""
        rows = {n: np.take(a, slots, axis=0) for n, a in self._store.items() if n != "screens"}
        screens = np.empty((slots.size, *self.store_shape("screens")), np.uint8)
        bounds = np.linspace(0, slots.size, self._gather_parts(screens.nbytes) + 1).astype(int)

        def fill(lo: int, hi: int) -> None:
            if blobs is None:  # mode="clip" skips the bounds pass and the buffered copy of "raise"
                np.take(self._store["screens"], slots[lo:hi], 0, screens[lo:hi], "clip")
                return
            state = self.step_shapes["screens"]
            for i in range(lo, hi):  # one inflate per trajectory, not per element
                flat = np.frombuffer(zlib.decompress(blobs[i]), np.uint8).reshape(-1, *state)
                screens[i, : flat.shape[0]] = flat
                screens[i, flat.shape[0] :] = 0

        first, *rest = itertools.pairwise(bounds)
        pending = [self._pool.submit(fill, lo, hi) for lo, hi in rest]
        fill(*first)  # the calling thread takes the first part itself
        for future in pending:
            future.result()
        rows["screens"] = screens
        return rows

    def _gather_parts(self, nbytes: int) -> int:
        """How many threads share a gather: one below the size where splitting pays."""
        if self._pool is None or nbytes < _PARALLEL_GATHER_BYTES:
            return 1
        return self.gather_threads

    def close(self) -> None:
        """Stop the gather threads (the storage stays usable, single-threaded)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
