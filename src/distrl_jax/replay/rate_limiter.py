"""A samples-per-insert rate limiter between the ingest thread and the train loop.

Modelled on Reverb's ``SampleToInsertRatio``: the limiter keeps the running difference
``D = inserts · samples_per_insert − samples`` inside a window around its target, so the learner
neither overfits a buffer that actors fill slowly (it waits for new trajectories) nor falls behind
actors that produce faster than it trains (the ingest side waits, which back-pressures the
transport's bounded queues). Until ``min_size_to_sample`` items have been inserted, inserts are
free and sampling is blocked.

With ``offset = samples_per_insert · min_size_to_sample`` the window is
``[offset − error_buffer, offset + error_buffer]``: a sample of n is allowed while
``D − n >= offset − error_buffer``, an insert of n while ``D + n·samples_per_insert <= offset +
error_buffer``. Sampler and inserter can both be blocked only when the window is narrower than
one batch plus one insert, so ``2·error_buffer >= n + samples_per_insert`` is enforced for every
sample of n (and for n = 1 at construction).

One "sample" is one trajectory drawn: a train step on a batch of B trajectories samples B.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class SampleToInsertRatio:
    """Blocks samplers and inserters to hold samples/inserts near ``samples_per_insert``."""

    def __init__(
        self, *, samples_per_insert: float, min_size_to_sample: int, error_buffer: float
    ) -> None:
        if not samples_per_insert > 0:
            raise ValueError(f"samples_per_insert must be > 0, got {samples_per_insert}")
        if int(min_size_to_sample) < 1:
            raise ValueError(f"min_size_to_sample must be >= 1, got {min_size_to_sample}")
        if 2 * error_buffer < 1 + samples_per_insert:
            raise ValueError(
                f"error_buffer={error_buffer} is too small for samples_per_insert="
                f"{samples_per_insert}: it must be >= (batch_size + samples_per_insert) / 2, "
                f"and at least {(1 + samples_per_insert) / 2} even for single samples"
            )
        self.samples_per_insert = float(samples_per_insert)
        self.min_size_to_sample = int(min_size_to_sample)
        self.error_buffer = float(error_buffer)
        offset = self.samples_per_insert * self.min_size_to_sample
        self._min_diff = offset - self.error_buffer
        self._max_diff = offset + self.error_buffer
        self._cond = threading.Condition()
        self._inserts = 0
        self._samples = 0
        self._closed = False
        # Wait accounting: seconds spent blocked, calls that blocked at all, and timeouts.
        self._insert_wait_s = 0.0
        self._sample_wait_s = 0.0
        self._insert_blocked = 0
        self._sample_blocked = 0
        self._insert_timeouts = 0
        self._sample_timeouts = 0

    def can_insert(self, n: int = 1) -> bool:
        """Whether n inserts would be allowed now (does not count them)."""
        with self._cond:
            return self._can_insert(n)

    def can_sample(self, n: int = 1) -> bool:
        """Whether a sample of n would be allowed now (does not count it)."""
        with self._cond:
            return self._can_sample(n)

    def await_insert(self, n: int = 1, timeout: float | None = None) -> bool:
        """Block until n inserts are allowed, then count them; False on timeout or after close()."""
        self._check_count("n", n)
        with self._cond:
            ok, waited = self._wait(lambda: self._can_insert(n), timeout)
            self._insert_wait_s += waited
            self._insert_blocked += waited > 0
            if not ok:
                self._insert_timeouts += not self._closed
                return False
            self._inserts += n
            self._cond.notify_all()
            return True

    def await_sample(self, n: int = 1, timeout: float | None = None) -> bool:
        """Block until a sample of n is allowed, then count it; False on timeout or after close()."""
        self._check_count("n", n)
        if 2 * self.error_buffer < n + self.samples_per_insert:
            raise ValueError(
                f"a sample of n={n} can deadlock with error_buffer={self.error_buffer} and "
                f"samples_per_insert={self.samples_per_insert}: error_buffer must be >= "
                f"(n + samples_per_insert) / 2 = {(n + self.samples_per_insert) / 2}"
            )
        with self._cond:
            ok, waited = self._wait(lambda: self._can_sample(n), timeout)
            self._sample_wait_s += waited
            self._sample_blocked += waited > 0
            if not ok:
                self._sample_timeouts += not self._closed
                return False
            self._samples += n
            self._cond.notify_all()
            return True

    def close(self) -> None:
        """Wake every waiter (they return False) and make further waits return False at once."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        """Whether close() was called."""
        return self._closed

    def stats(self) -> dict[str, float]:
        """Counts and wait times of both sides, for the metrics sink."""
        with self._cond:
            return {
                "inserts": self._inserts,
                "samples": self._samples,
                "samples_per_insert": self._samples / max(1, self._inserts),
                "insert_wait_s": self._insert_wait_s,
                "sample_wait_s": self._sample_wait_s,
                "insert_blocked": self._insert_blocked,
                "sample_blocked": self._sample_blocked,
                "insert_timeouts": self._insert_timeouts,
                "sample_timeouts": self._sample_timeouts,
            }

    def _can_insert(self, n: int) -> bool:
        if self._inserts + n <= self.min_size_to_sample:
            return True  # until the minimum size is reached inserts are free
        return (self._inserts + n) * self.samples_per_insert - self._samples <= self._max_diff

    def _can_sample(self, n: int) -> bool:
        if self._inserts < self.min_size_to_sample:
            return False
        return self._inserts * self.samples_per_insert - self._samples - n >= self._min_diff

    def _wait(self, allowed: Callable[[], bool], timeout: float | None) -> tuple[bool, float]:
        """Wait on the condition (held) until ``allowed()``; returns (allowed, seconds blocked)."""
        if self._closed:
            return False, 0.0
        if allowed():
            return True, 0.0
        start = time.monotonic()
        deadline = None if timeout is None else start + max(0.0, timeout)
        while not self._closed and not allowed():
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                break
            self._cond.wait(remaining)
        waited = time.monotonic() - start
        return (not self._closed and allowed()), waited

    @staticmethod
    def _check_count(name: str, n: int) -> None:
        if int(n) < 1:
            raise ValueError(f"{name} must be >= 1, got {n}")
