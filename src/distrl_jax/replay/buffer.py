"""Prioritized trajectory replay (DESIGN §5): A-RIDE's distributed prioritized experience replay.

Storage (:mod:`distrl_jax.replay.storage`) is one pre-allocated, zero-padded NumPy array per
trajectory field, ``capacity`` slots of horizon H, allocated from the first trajectory's shapes.
Slots are overwritten in FIFO order. A slot holds a trajectory's raw
priority p; the sum tree holds its sampling mass p^α, so P(τ) = p(τ)^α / Σ p^α. A batch carries
importance weights (N·P(τ))^−β / max_batch, with β annealed linearly from β0 to 1 over
``beta_steps`` calls to :meth:`sample`.

Keys: ``Batch.indices`` are *keys*, ``generation · capacity + slot``; a slot's generation goes up
on every write, so :meth:`update_priorities` can tell a sampled trajectory from one that has since
overwritten its slot (that update is ignored, not applied to the newcomer).

Concurrency: one lock guards the bookkeeping. An insert copies its arrays (a few hundred KB)
while holding it; a sample draws slots and reads their generations under the lock, copies the
rows *outside* it, then re-checks the generations: a row overwritten during the copy is redrawn
under the lock. So the train loop's large gather never stalls the ingest thread.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

import numpy as np

from distrl_jax.replay.storage import TrajectoryStorage
from distrl_jax.replay.sum_tree import SumTree
from distrl_jax.types import TRAJECTORY_ARRAYS, Batch, Trajectory

_SAMPLING_MODES = ("prioritized", "uniform")


class PrioritizedTrajectoryReplay:
    """FIFO trajectory store with prioritized (or uniform) sampling, staleness and memory limits."""

    def __init__(
        self,
        *,
        capacity: int,
        horizon: int,
        alpha: float = 0.5,
        beta0: float = 0.4,
        beta_steps: int = 10_000,
        max_staleness: int | None = None,
        sampling: str = "prioritized",
        priority_eps: float = 1e-6,
        compress_screens: bool = False,
        memory_budget_bytes: int | None = None,
        seed: int = 0,
        step_shapes: Mapping[str, tuple[int, ...]] | None = None,
        gather_threads: int = 2,
    ) -> None:
        _require(int(capacity) >= 1, "capacity", capacity, "an integer >= 1")
        _require(int(horizon) >= 1, "horizon", horizon, "an integer >= 1")
        _require(alpha >= 0, "alpha", alpha, "a float >= 0")
        _require(0 <= beta0 <= 1, "beta0", beta0, "a float in [0, 1]")
        _require(int(beta_steps) >= 0, "beta_steps", beta_steps, "an integer >= 0")
        _require(
            max_staleness is None or int(max_staleness) >= 0,
            "max_staleness",
            max_staleness,
            "None or an integer >= 0",
        )
        _require(sampling in _SAMPLING_MODES, "sampling", sampling, f"one of {_SAMPLING_MODES}")
        _require(priority_eps > 0, "priority_eps", priority_eps, "a float > 0")
        _require(int(gather_threads) >= 1, "gather_threads", gather_threads, "an integer >= 1")
        _require(
            memory_budget_bytes is None or int(memory_budget_bytes) > 0,
            "memory_budget_bytes",
            memory_budget_bytes,
            "None or an integer > 0",
        )
        self.capacity = int(capacity)
        self.horizon = int(horizon)
        self.alpha = float(alpha)
        self.beta0 = float(beta0)
        self.beta_steps = int(beta_steps)
        self.max_staleness = None if max_staleness is None else int(max_staleness)
        self.sampling = sampling
        self.priority_eps = float(priority_eps)
        self.compress_screens = bool(compress_screens)
        self.memory_budget_bytes = None if memory_budget_bytes is None else int(memory_budget_bytes)
        self.gather_threads = int(gather_threads)
        self._storage = TrajectoryStorage(
            capacity=self.capacity,
            horizon=self.horizon,
            compress_screens=self.compress_screens,
            gather_threads=self.gather_threads,
        )

        self._lock = threading.Lock()
        self._rng = np.random.default_rng(seed)
        self._tree = SumTree(self.capacity)
        self._priority = np.zeros(self.capacity, np.float64)
        self._generation = np.zeros(self.capacity, np.int64)
        self._version = np.zeros(self.capacity, np.int64)
        self._length = np.zeros(self.capacity, np.int32)
        self._success = np.zeros(self.capacity, np.float32)
        self._valid = np.zeros(self.capacity, bool)
        self._cursor = 0
        self._size = 0
        self._steps = 0
        self._policy_version = 0
        self._counts = dict.fromkeys(
            (
                "inserts samples sample_calls dropped_stale rejected evicted evicted_for_memory "
                "priority_updates ignored_priority_updates torn_redraws"
            ).split(),
            0,
        )
        if step_shapes is not None:
            self._storage.allocate(
                {name: tuple(step_shapes.get(name, ())) for name in TRAJECTORY_ARRAYS},
                self.memory_budget_bytes,
            )

    # ------------------------------------------------------------------ insert

    def insert(self, trajectory: Trajectory) -> int | None:
        """Store a trajectory at the current max priority; returns its key, None if already stale.

        A trajectory with more than ``horizon`` actions, or whose shapes or dtypes differ from those
        stored, raises ValueError and changes nothing but the ``rejected`` count.
        """
        try:
            trajectory.validate()
            t = trajectory.length
            if t > self.horizon:
                raise ValueError(
                    f"trajectory has T={t} actions, more than the replay horizon H={self.horizon}; "
                    "raise `horizon` or cut episodes at the horizon on the actor"
                )
            if self._storage.step_shapes is None:
                with self._lock:
                    if self._storage.step_shapes is None:
                        shapes = {n: a.shape[1:] for n, a in trajectory.arrays().items()}
                        self._storage.allocate(shapes, self.memory_budget_bytes)
            self._storage.check_shapes(trajectory)
            blob = None
            if self.compress_screens:  # compress outside the lock: it is the slow part
                blob = self._storage.compress(trajectory.screens)
                self._storage.check_blob_fits(len(blob), self.memory_budget_bytes)
        except ValueError:
            with self._lock:
                self._counts["rejected"] += 1
            raise
        with self._lock:
            if self._is_stale(trajectory.policy_version):
                self._counts["dropped_stale"] += 1
                return None
            slot = self._cursor
            self._cursor = (slot + 1) % self.capacity
            if self._valid[slot]:
                self._counts["evicted"] += 1
                self._invalidate(np.array([slot]))
            entry = self._entry_priority()
            self._write(slot, trajectory, blob)
            self._priority[slot] = entry
            self._tree.update(slot, self._mass(np.float64(entry)))
            self._counts["inserts"] += 1
            if blob is not None:
                self._evict_for_memory(keep=slot)
            return int(self._generation[slot]) * self.capacity + slot

    def _write(self, slot: int, trajectory: Trajectory, blob: bytes | None) -> None:
        """Copy one trajectory into its slot (lock held) and zero the padding past its length."""
        t = trajectory.length
        self._generation[slot] += 1
        self._storage.write(slot, trajectory, blob)
        self._length[slot] = t
        self._version[slot] = trajectory.policy_version
        self._success[slot] = float(trajectory.success)
        self._valid[slot] = True
        self._size += 1
        self._steps += t

    # ------------------------------------------------------------------ sample

    def sample(self, batch_size: int, rng: np.random.Generator | None = None) -> Batch:
        """Draw a batch (with replacement) of padded trajectories with importance weights."""
        _require(int(batch_size) >= 1, "batch_size", batch_size, "an integer >= 1")
        with self._lock:
            slots, probs, size = self._draw(int(batch_size), rng if rng is not None else self._rng)
            beta = self._beta()
            self._counts["sample_calls"] += 1
            self._counts["samples"] += int(batch_size)
            gens = self._generation[slots]
            blobs = self._storage.blobs_at(slots)
        rows = self._storage.gather(slots, blobs)  # the big copy, outside the lock
        with self._lock:
            torn = np.flatnonzero(self._generation[slots] != gens)
            if torn.size:  # overwritten while we copied: redraw those rows, copying under the lock
                self._counts["torn_redraws"] += int(torn.size)
                new_slots, new_probs, _ = self._draw(
                    torn.size, rng if rng is not None else self._rng, stratified=False
                )
                slots[torn], probs[torn] = new_slots, new_probs
                blobs = self._storage.blobs_at(new_slots)
                for name, arr in self._storage.gather(new_slots, blobs).items():
                    rows[name][torn] = arr
            lengths = self._length[slots]
            success = self._success[slots]
            versions = self._version[slots].astype(np.int32)
            keys = self._generation[slots] * self.capacity + slots
        if self.sampling == "uniform":
            weights = np.ones(slots.size, np.float32)
        else:
            w = (size * probs) ** (-beta)
            weights = (w / w.max()).astype(np.float32)
        mask = (np.arange(self.horizon)[None, :] < lengths[:, None]).astype(np.float32)
        return Batch(
            **rows,
            mask=mask,
            success=success,
            policy_version=versions,
            is_weights=weights,
            indices=keys.astype(np.int64),
        )

    def _draw(
        self, n: int, rng: np.random.Generator, stratified: bool = True
    ) -> tuple[np.ndarray, np.ndarray, int]:
        """Slots, their sampling probabilities and the live size (lock held)."""
        if self._size == 0:
            raise ValueError(
                "cannot sample from an empty replay; insert trajectories first "
                "(or wait on the rate limiter's min_size_to_sample)"
            )
        # Uniform mode samples i.i.d.: stratifying over slot order would spread every batch
        # evenly over insertion age, which is not what the uniform ablation means.
        strat = stratified and self.sampling == "prioritized"
        slots = self._tree.sample(n, rng, stratified=strat)
        if strat:  # strata come out in slot (= age) order; a learner that splits the batch into
            slots = slots[rng.permutation(n)]  # minibatches or shards must not get age bands
        probs = self._tree.get(slots) / self._tree.total
        return slots, probs, self._size

    def close(self) -> None:
        """Stop the gather threads (the replay stays usable, single-threaded)."""
        self._storage.close()

    # -------------------------------------------------------- priorities, staleness

    def update_priorities(self, keys: np.ndarray, priorities: np.ndarray) -> int:
        """Set fresh priorities for sampled keys; returns how many applied (the rest were overwritten).

        Priorities below ``priority_eps`` are clipped to it; a repeated key takes its last value.
        """
        keys = np.asarray(keys, dtype=np.int64).reshape(-1)
        pr = np.asarray(priorities, dtype=np.float64).reshape(-1)
        if keys.shape != pr.shape:
            raise ValueError(
                f"update_priorities got {keys.size} keys but {pr.size} priorities; pass one each"
            )
        if keys.size and keys.min() < 0:
            raise ValueError(f"replay keys must be >= 0 (from Batch.indices), got {keys.min()}")
        if not np.all(np.isfinite(pr)):
            raise ValueError(
                f"update_priorities got {int((~np.isfinite(pr)).sum())} non-finite priorities "
                "(NaN/inf from the train step); fix the loss before updating replay"
            )
        keys, first = np.unique(keys[::-1], return_index=True)  # the last value wins
        pr = np.maximum(pr[::-1][first], self.priority_eps)
        slots, gens = keys % self.capacity, keys // self.capacity
        with self._lock:
            live = (self._generation[slots] == gens) & self._valid[slots]
            slots, pr = slots[live], pr[live]
            self._priority[slots] = pr
            self._tree.update(slots, self._mass(pr))
            self._counts["priority_updates"] += int(live.sum())
            self._counts["ignored_priority_updates"] += int((~live).sum())
        return int(live.sum())

    def get_priorities(self, keys: np.ndarray) -> np.ndarray:
        """The raw priorities of ``keys``; NaN where the key's trajectory is no longer stored."""
        keys = np.asarray(keys, dtype=np.int64).reshape(-1)
        slots, gens = keys % self.capacity, keys // self.capacity
        with self._lock:
            live = (self._generation[slots] == gens) & self._valid[slots]
            return np.where(live, self._priority[slots], np.nan)

    def set_policy_version(self, version: int) -> int:
        """Tell replay the learner's policy version; drops (and returns the count of) stale items."""
        _require(int(version) >= 0, "version", version, "an integer >= 0")
        with self._lock:
            self._policy_version = int(version)
            if self.max_staleness is None:
                return 0
            stale = np.flatnonzero(self._valid & self._is_stale(self._version))
            self._invalidate(stale)
            self._counts["dropped_stale"] += int(stale.size)
            return int(stale.size)

    def _is_stale(self, version: int | np.ndarray) -> bool | np.ndarray:
        """Whether items of ``version`` are more than max_staleness behind the learner."""
        if self.max_staleness is None:
            return np.zeros(np.shape(version), bool) if np.ndim(version) else False
        return self._policy_version - np.asarray(version) > self.max_staleness

    def _invalidate(self, slots: np.ndarray) -> None:
        """Remove items from sampling and accounting (lock held); their rows stay until rewritten."""
        if slots.size == 0:
            return
        self._valid[slots] = False
        self._size -= int(slots.size)
        self._steps -= int(self._length[slots].sum())
        self._tree.update(slots, 0.0)
        self._storage.release(slots)

    def _mass(self, priority: np.ndarray) -> np.ndarray:
        """Sampling mass p^α (1 for every live item in uniform mode)."""
        if self.sampling == "uniform":
            return np.ones_like(priority)
        return priority**self.alpha

    def _entry_priority(self) -> float:
        """The current max priority among stored items (1.0 when empty); lock held."""
        if self._size == 0:
            return 1.0
        if self.sampling == "prioritized" and self.alpha > 0:
            # x -> x^α is increasing, so the max tree's max mass gives the max priority in O(1).
            return max(self.priority_eps, self._tree.max ** (1.0 / self.alpha))
        # The masses are all 1 here and carry no order; the entry priority cannot change sampling
        # in these modes, so an O(capacity) scan only keeps get_priorities()/stats() truthful.
        return float(self._priority[self._valid].max())

    def _beta(self) -> float:
        if self.beta_steps == 0:
            return 1.0
        frac = min(1.0, self._counts["sample_calls"] / self.beta_steps)
        return self.beta0 + (1.0 - self.beta0) * frac

    # ------------------------------------------------------------------ memory

    def _evict_for_memory(self, keep: int) -> None:
        """Compressed mode: drop the oldest items until the budget holds (lock held)."""
        if self.memory_budget_bytes is None:
            return
        excess = self._bytes_in_use_locked() - self.memory_budget_bytes
        start = self._cursor  # the oldest slot is the next one to be overwritten
        for _ in range(self.capacity // 256 + 2):  # chunks of slots, oldest first
            if excess <= 0:
                break
            order = (start + np.arange(min(256, self.capacity))) % self.capacity
            order = order[self._valid[order] & (order != keep)]
            freed = np.cumsum(self._storage.blob_nbytes[order])
            take = order[: int(np.searchsorted(freed, excess)) + 1]
            excess -= int(self._storage.blob_nbytes[take].sum())
            self._counts["evicted_for_memory"] += int(take.size)
            self._invalidate(take)
            start = (start + 256) % self.capacity

    def _bytes_in_use_locked(self) -> int:
        return self._storage.bytes_in_use()

    def bytes_in_use(self) -> int:
        """Bytes held by storage, bookkeeping, trees and compressed blobs."""
        with self._lock:
            return self._bytes_in_use_locked()

    # ------------------------------------------------------------------ introspection

    @property
    def policy_version(self) -> int:
        """The learner policy version last given to set_policy_version()."""
        return self._policy_version

    def __len__(self) -> int:
        return self._size

    def stats(self) -> dict[str, float | int | str]:
        """Counters and gauges for the metrics sink.

        ``bytes_in_use`` counts the pre-allocated arrays in full from the first insert (plus the
        compressed blobs), so ``bytes_per_step`` falls as the buffer fills.
        """
        with self._lock:
            in_use = self._bytes_in_use_locked()
            live = self._priority[self._valid]
            return {
                **self._counts,
                "size": self._size,
                "capacity": self.capacity,
                "steps": self._steps,
                "bytes_in_use": in_use,
                "bytes_per_step": in_use / self._steps if self._steps else 0.0,
                "max_priority": float(live.max()) if live.size else 0.0,
                "beta": self._beta(),
                "policy_version": self._policy_version,
            }


def _require(ok: bool, field: str, value: object, allowed: str) -> None:
    if not ok:
        raise ValueError(f"replay {field}={value!r} is invalid: must be {allowed}")
