"""SampleToInsertRatio: min size, the ratio window, blocking with threads, timeouts, close."""

from __future__ import annotations

import threading
import time

import pytest

from distrl_jax.replay.rate_limiter import SampleToInsertRatio


def test_min_size_blocks_sampling_and_frees_inserts() -> None:
    limiter = SampleToInsertRatio(samples_per_insert=2.0, min_size_to_sample=3, error_buffer=4.0)
    assert not limiter.can_sample(1)
    assert limiter.await_insert(3, timeout=0)  # free until the minimum size
    assert limiter.can_sample(1)
    assert limiter.stats()["insert_blocked"] == 0


def test_window_bounds_both_sides() -> None:
    # offset = 2 * 3 = 6, window [0, 12] for D = inserts * 2 - samples.
    limiter = SampleToInsertRatio(samples_per_insert=2.0, min_size_to_sample=3, error_buffer=6.0)
    assert limiter.await_insert(3)  # D = 6
    assert limiter.await_insert(3, timeout=0)  # D = 12 = max
    assert not limiter.can_insert(1)  # D would be 14 > 12
    assert not limiter.await_insert(1, timeout=0.01)
    assert limiter.await_sample(10, timeout=0)  # D = 2
    assert not limiter.can_sample(3)  # D would be -1 < 0
    assert limiter.await_sample(2, timeout=0)  # D = 0 = min
    assert not limiter.can_sample(1)
    assert limiter.can_insert(1)
    s = limiter.stats()
    assert (s["inserts"], s["samples"], s["insert_timeouts"]) == (6, 12, 1)
    assert s["insert_wait_s"] >= 0.01


def test_error_buffer_too_small_for_a_batch_is_refused() -> None:
    with pytest.raises(ValueError, match="error_buffer"):
        SampleToInsertRatio(samples_per_insert=4.0, min_size_to_sample=1, error_buffer=2.0)
    limiter = SampleToInsertRatio(samples_per_insert=1.0, min_size_to_sample=1, error_buffer=4.0)
    with pytest.raises(ValueError, match=r"n=16 can deadlock"):
        limiter.await_sample(16)
    with pytest.raises(ValueError, match="min_size_to_sample"):
        SampleToInsertRatio(samples_per_insert=1.0, min_size_to_sample=0, error_buffer=4.0)


@pytest.mark.timeout(30)
def test_threads_hold_the_ratio_and_record_waits() -> None:
    spi, batch, min_size, eb = 4.0, 8, 10, 24.0
    limiter = SampleToInsertRatio(
        samples_per_insert=spi, min_size_to_sample=min_size, error_buffer=eb
    )
    inserts_to_do, steps = 200, 0
    violations: list[float] = []

    def producer() -> None:
        for _ in range(inserts_to_do):
            assert limiter.await_insert(1, timeout=10)

    def check_window() -> None:
        s = limiter.stats()
        diff = s["inserts"] * spi - s["samples"]
        if s["inserts"] > min_size and not (spi * min_size - eb <= diff <= spi * min_size + eb):
            violations.append(diff)

    thread = threading.Thread(target=producer)
    thread.start()
    # The consumer takes as many batches as the ratio allows for the producer's inserts.
    while limiter.await_sample(batch, timeout=0.5):
        steps += 1
        check_window()
        if steps == 5:
            time.sleep(0.05)  # a slow train step: the producer must block meanwhile
    thread.join(timeout=10)
    assert not thread.is_alive()
    s = limiter.stats()
    assert not violations
    assert s["inserts"] == inserts_to_do
    # The consumer stopped only when the ratio forbade another batch.
    assert s["samples"] + batch > s["inserts"] * spi - (spi * min_size - eb)
    assert s["samples"] <= s["inserts"] * spi
    assert s["insert_blocked"] > 0 and s["insert_wait_s"] > 0
    assert s["sample_blocked"] > 0 and s["sample_wait_s"] > 0


@pytest.mark.timeout(10)
def test_close_wakes_blocked_waiters() -> None:
    limiter = SampleToInsertRatio(samples_per_insert=1.0, min_size_to_sample=5, error_buffer=2.0)
    results: list[bool] = []
    thread = threading.Thread(target=lambda: results.append(limiter.await_sample(1)))
    thread.start()
    time.sleep(0.05)
    assert thread.is_alive()  # blocked with no timeout: nothing was inserted
    limiter.close()
    thread.join(timeout=5)
    assert results == [False] and limiter.closed
    assert not limiter.await_insert(1)  # closed: refuses at once
    assert limiter.stats()["sample_timeouts"] == 0  # a close is not a timeout
