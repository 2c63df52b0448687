"""Parameter broadcast over real loopback ZeroMQ: inline chunks, path mode, late joiners."""

from __future__ import annotations

import json
import time

import ml_dtypes
import numpy as np
import pytest
import zmq
from hypothesis import given, settings
from hypothesis import strategies as st

from distrl_jax.transport import wire
from distrl_jax.transport.param_broadcast import (
    BROADCAST_LIMITS,
    ParamPublisher,
    ParamSubscriber,
    encode_inline,
    plan_chunks,
)

pytestmark = pytest.mark.timeout(30)


def make_params(seed: int) -> dict[str, np.ndarray]:
    """About 3 MB of parameters of several dtypes, including 0-d and empty arrays."""
    rng = np.random.default_rng(seed)
    return {
        "encoder/dense/kernel": rng.normal(size=(512, 1024)).astype(np.float32),
        "encoder/dense/bias": rng.normal(size=(1024,)).astype(np.float32),
        "embed/table": rng.normal(size=(1000, 300)).astype(ml_dtypes.bfloat16),
        "heads/value/scale": np.asarray(rng.normal(), np.float16),
        "step": np.asarray(seed, np.int64),
        "mask": rng.random(7) < 0.5,
        "unused": np.zeros((0, 4), np.float32),
    }


def assert_same_params(got, want) -> None:
    assert list(got) == list(want)
    for name, arr in want.items():
        assert got[name].dtype == arr.dtype and got[name].shape == arr.shape, name
        assert got[name].tobytes() == arr.tobytes(), name
        assert not got[name].flags.writeable


def test_inline_version_reaches_two_subscribers_exactly() -> None:
    params = make_params(1)
    with ParamPublisher(chunk_bytes=256 * 1024) as pub:
        subs = [
            ParamSubscriber(pub.endpoint, pub.latest_endpoint, resync_after_s=0.2) for _ in range(2)
        ]
        try:
            pub.publish_inline(1, step=100, params=params)
            for sub in subs:
                got = sub.wait_for(1, timeout_s=20)
                assert got is not None and (got.version, got.step, got.path) == (1, 100, None)
                assert_same_params(got.params, params)
                assert sub.stats()["rejects"] == {}
        finally:
            for sub in subs:
                sub.close()


def test_late_subscriber_gets_the_latest_version_at_once() -> None:
    with ParamPublisher(chunk_bytes=64 * 1024) as pub:
        pub.publish_path(1, step=10, path="/ckpt/10")
        pub.publish_inline(2, step=20, params=make_params(2))
        pub.publish_path(3, step=30, path="/ckpt/30")
        with ParamSubscriber(pub.endpoint, pub.latest_endpoint) as late:
            got = late.wait_for(3, timeout_s=20)
            assert got is not None and (got.version, got.step, got.path, got.params) == (
                3,
                30,
                "/ckpt/30",
                None,
            )
            pub.publish_inline(4, step=40, params=make_params(4))  # and then follows the broadcast
            newer = late.wait_for(4, timeout_s=20)
            assert newer is not None and newer.version == 4
            assert_same_params(newer.params, make_params(4))
            assert late.latest() is newer


def test_versions_must_increase() -> None:
    with ParamPublisher() as pub:
        pub.publish_path(5, step=1, path="/a")
        with pytest.raises(ValueError, match="greater than the latest published"):
            pub.publish_path(5, step=2, path="/b")
        assert pub.latest_version == 5


def test_subscriber_rejects_a_chunk_that_breaks_the_plan_and_still_completes() -> None:
    """A fake publisher answers latest? with a tampered chunk, then with the right ones."""
    ctx = zmq.Context.instance()
    params = make_params(3)
    messages = encode_inline(7, 70, params, chunk_bytes=512 * 1024, sender="fake")
    announce, chunks = messages[0], messages[1:]
    # Well-formed on the wire, but its last piece is a byte shorter than the plan says.
    header = json.loads(chunks[0][0])
    header["arrays"][-1][2] = [header["arrays"][-1][2][0] - 1]
    tampered = [json.dumps(header).encode(), *chunks[0][1:-1], np.asarray(chunks[0][-1])[:-1]]
    with ctx.socket(zmq.PUB) as pub, ctx.socket(zmq.ROUTER) as router:
        pub_port = pub.bind_to_random_port("tcp://127.0.0.1")
        router_port = router.bind_to_random_port("tcp://127.0.0.1")
        sub = ParamSubscriber(f"tcp://127.0.0.1:{pub_port}", f"tcp://127.0.0.1:{router_port}")
        try:
            assert router.poll(10_000)
            identity, *request = router.recv_multipart()
            assert wire.decode(request, BROADCAST_LIMITS).kind == "latest?"
            for frames in [announce, tampered, chunks[0], chunks[0], *chunks[1:], chunks[0]]:
                router.send_multipart([identity, *frames], copy=False)
            got = sub.wait_for(7, timeout_s=20)
            assert got is not None
            assert_same_params(got.params, params)
            deadline = time.monotonic() + 10
            while sub.stats()["stale"] == 0 and time.monotonic() < deadline:
                time.sleep(0.01)  # the last chunk[0] arrives after the version completed
            stats = sub.stats()
            assert stats["rejects"] == {"bad_payload": 1}
            assert (stats["duplicate_chunks"], stats["stale"]) == (1, 1)
        finally:
            sub.close()


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    sizes=st.lists(st.integers(0, 5000), max_size=12),
    chunk_bytes=st.integers(1, 3000),
    max_pieces=st.integers(1, 5),
)
def test_plan_covers_every_byte_once_within_bounds(sizes, chunk_bytes, max_pieces) -> None:
    plan = plan_chunks(sizes, chunk_bytes, max_pieces)
    covered = [[] for _ in sizes]
    for pieces in plan:
        assert 0 < len(pieces) <= max_pieces
        assert sum(b - a for _, a, b in pieces) <= chunk_bytes
        for index, a, b in pieces:
            assert 0 <= a < b <= sizes[index]
            covered[index].append((a, b))
    for size, spans in zip(sizes, covered, strict=True):
        starts, ends = [a for a, _ in spans], [b for _, b in spans]
        assert starts == ([0, *ends[:-1]] if spans else [])  # contiguous, in order
        assert (ends[-1] if spans else 0) == size


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="chunk_bytes=0"):
        ParamPublisher(chunk_bytes=0)
    with ParamPublisher() as pub, pytest.raises(wire.WireError, match="complex"):
        pub.publish_inline(1, step=0, params={"w": np.zeros(3, np.complex64)})
