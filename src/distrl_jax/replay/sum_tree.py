"""An array-backed sum tree (with a parallel max tree) for prioritized sampling.

The tree holds ``capacity`` non-negative leaf values in a complete binary tree of ``2·L`` nodes
(``L`` the next power of two >= capacity; node 1 is the root, leaves are nodes ``L .. 2L-1``,
node ``i`` has children ``2i`` and ``2i+1``). Every operation is vectorised over its queries and
loops only over the ``log2(L)`` levels, never over elements:

- ``update`` writes a batch of leaves (the last write wins for a repeated index) and recomputes
  their ancestors from the children, so sums never accumulate floating-point drift;
- ``sample`` draws leaves with probability proportional to their value by a prefix-sum descent
  of all queries at once (stratified by default: query ``i`` falls in the ``i``-th of ``n`` equal
  slices of the total mass, which lowers the variance of a batch without biasing any draw).

Zero-valued leaves are never returned by ``sample``.
"""

from __future__ import annotations

import numpy as np

# Above this many updated leaves it pays to deduplicate the parent nodes at every level; below
# it the duplicates cost less than the deduplication (a duplicate parent is merely recomputed).
_DEDUP_PARENTS_ABOVE = 32


class SumTree:
    """Sum and max over ``capacity`` non-negative leaf values, with batched update and sampling."""

    def __init__(self, capacity: int):
        if int(capacity) < 1:
            raise ValueError(f"SumTree capacity must be >= 1, got {capacity}")
        self.capacity = int(capacity)
        self._leaves = 1 << max(0, (self.capacity - 1).bit_length())
        self._depth = self._leaves.bit_length() - 1
        self._sums = np.zeros(2 * self._leaves, dtype=np.float64)
        self._maxs = np.zeros(2 * self._leaves, dtype=np.float64)

    @property
    def total(self) -> float:
        """Sum of all leaf values."""
        return float(self._sums[1])

    @property
    def max(self) -> float:
        """Largest leaf value (0 when all are 0)."""
        return float(self._maxs[1])

    @property
    def nbytes(self) -> int:
        """Memory held by the tree's arrays."""
        return int(self._sums.nbytes + self._maxs.nbytes)

    def get(self, indices: np.ndarray | int) -> np.ndarray:
        """Leaf values at ``indices``."""
        idx = self._check_indices(np.asarray(indices, dtype=np.int64))
        return self._sums[idx + self._leaves]

    def values(self) -> np.ndarray:
        """A copy of all ``capacity`` leaf values."""
        return self._sums[self._leaves : self._leaves + self.capacity].copy()

    def update(self, indices: np.ndarray | int, values: np.ndarray | float) -> None:
        """Set leaves ``indices`` to ``values``; for a repeated index the last value wins."""
        idx = np.atleast_1d(np.asarray(indices, dtype=np.int64))
        val = np.broadcast_to(np.asarray(values, dtype=np.float64), idx.shape)
        if idx.ndim != 1:
            raise ValueError(f"indices must be 1-D, got shape {idx.shape}")
        if idx.size == 0:
            return
        self._check_indices(idx)
        if not np.all(np.isfinite(val)) or np.any(val < 0):
            bad = val[~(np.isfinite(val) & (val >= 0))][:5]
            raise ValueError(f"SumTree values must be finite and >= 0, got e.g. {bad.tolist()}")
        if idx.size == 1:
            self._update_one(int(idx[0]), float(val[0]))
            return
        # Last write wins: the first occurrence in the reversed array is the last in the original.
        uniq, first_in_reversed = np.unique(idx[::-1], return_index=True)
        nodes = uniq + self._leaves
        leaf_values = val[::-1][first_in_reversed]
        self._sums[nodes] = leaf_values
        self._maxs[nodes] = leaf_values
        for _ in range(self._depth):
            nodes = nodes >> 1  # stays sorted, so duplicates are adjacent
            if nodes.size > _DEDUP_PARENTS_ABOVE:
                keep = np.empty(nodes.size, dtype=bool)
                keep[0] = True
                np.not_equal(nodes[1:], nodes[:-1], out=keep[1:])
                nodes = nodes[keep]
            left = 2 * nodes
            self._sums[nodes] = self._sums[left] + self._sums[left + 1]
            self._maxs[nodes] = np.maximum(self._maxs[left], self._maxs[left + 1])

    def _update_one(self, index: int, value: float) -> None:
        """One leaf: a scalar walk up the levels (an order of magnitude faster than 1-element arrays)."""
        sums, maxs = self._sums, self._maxs
        node = index + self._leaves
        sums[node] = value
        maxs[node] = value
        node >>= 1
        while node:
            left = 2 * node
            sums[node] = sums[left] + sums[left + 1]
            maxs[node] = max(maxs[left], maxs[left + 1])
            node >>= 1

    def find_prefix_sum(self, targets: np.ndarray) -> np.ndarray:
        """For each target mass u, the leaf i with prefix(i) <= u < prefix(i+1), skipping zero leaves.

        Targets at or beyond the total land on the last leaf with a positive value. The tree must
        hold some positive mass.
        """
        if not self._sums[1] > 0:
            raise ValueError("cannot search a SumTree whose total is 0 (no positive leaf)")
        u = np.array(targets, dtype=np.float64, copy=True).reshape(-1)
        node = np.ones(u.shape, dtype=np.int64)
        sums = self._sums
        for _ in range(self._depth):
            left = 2 * node
            left_sum = sums[left]
            # Go right when the mass lies past the left subtree, unless the right subtree is empty
            # (floating-point round-off at the very top of the range must not pick a zero leaf).
            go_right = (u >= left_sum) & (sums[left + 1] > 0)
            u -= np.where(go_right, left_sum, 0.0)
            node = left + go_right
        return node - self._leaves

    def sample(self, n: int, rng: np.random.Generator, *, stratified: bool = True) -> np.ndarray:
        """Draw ``n`` leaf indices with P(i) = value_i / total (stratified over n equal slices)."""
        if n < 1:
            raise ValueError(f"sample size n must be >= 1, got {n}")
        total = self._sums[1]
        if stratified:
            targets = (np.arange(n, dtype=np.float64) + rng.random(n)) * (total / n)
        else:
            targets = rng.random(n) * total
        return self.find_prefix_sum(targets)

    def _check_indices(self, idx: np.ndarray) -> np.ndarray:
        if idx.size and (idx.min() < 0 or idx.max() >= self.capacity):
            bad = idx[(idx < 0) | (idx >= self.capacity)][:5]
            raise ValueError(
                f"SumTree indices must lie in [0, {self.capacity}), got e.g. {bad.tolist()}"
            )
        return idx
