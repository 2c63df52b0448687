"""VlmJudge against a stub OpenAI-compatible chat-completions server on 127.0.0.1 (port 0)."""

from __future__ import annotations

import base64
import io
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from PIL import Image

from distrl_jax.core import InfrastructureError, Verdict
from distrl_jax.devices import actions as A
from distrl_jax.devices.simphone.phone import SimPhone
from distrl_jax.devices.vlm_judge import (
    ENV_KEY,
    ENV_MODEL,
    ENV_URL,
    VlmJudge,
    load_fewshot,
    parse_verdict,
)
from distrl_jax.tasks.goals import Task
from distrl_jax.tasks.parser import parse

pytestmark = pytest.mark.timeout(60)

SECRET = "sk-test-9f3c1a7e5b2d4c6a8e0f"
MODEL = "judge-vl-7b"
TASK = Task("What's the weather like in Paris?", parse("What's the weather like in Paris?"))


def _reply(content: str) -> tuple[int, bytes, float]:
    body = {
        "id": "x",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}],
    }
    return 200, json.dumps(body).encode(), 0.0


class StubChat:
    """Serves scripted (status, body, delay_s) replies in order (the last repeats); records
    every request's path, headers and JSON body."""

    def __init__(self, replies: list[tuple[int, bytes, float]]):
        self.replies = list(replies)
        self.requests: list[dict] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                stub.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": json.loads(raw)}
                )
                i = min(len(stub.requests), len(stub.replies)) - 1
                status, body, delay = stub.replies[i]
                time.sleep(delay)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub_factory() -> Iterator:
    made: list[StubChat] = []

    def make(*replies: tuple[int, bytes, float]) -> StubChat:
        s = StubChat(list(replies))
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def _judge(stub: StubChat, **kw) -> VlmJudge:
    env = {ENV_URL: stub.url, ENV_MODEL: MODEL, ENV_KEY: SECRET}
    kw.setdefault("backoff_s", 0.01)
    kw.setdefault("timeout_s", 5.0)
    return VlmJudge(env=env, **kw)


def _screen(seed: int = 0) -> np.ndarray:
    phone = SimPhone(size=(128, 64), seed=seed, layout_seed=0)
    return np.array(phone.reset(TASK))


HISTORY = [A.tap(0.08, 0.5), A.type_text("weather Paris"), A.ENTER]


def test_request_has_model_fewshot_image_and_bearer_key(stub_factory) -> None:
    stub = stub_factory(_reply('{"success": true, "reason": "results shown"}'))
    judge = _judge(stub)
    screen = _screen()
    verdict = judge.evaluate(TASK, None, screen, HISTORY)
    assert verdict == Verdict(True, "results shown")

    (req,) = stub.requests
    assert req["path"] == "/v1/chat/completions"
    assert req["headers"]["Authorization"] == f"Bearer {SECRET}"
    body = req["body"]
    assert body["model"] == MODEL and body["temperature"] == 0
    msgs = body["messages"]
    fewshot = load_fewshot()
    assert len(fewshot) >= 2
    assert {ex.success for ex in fewshot} == {True, False}
    # system, then a user/assistant pair per example, then the question
    assert [m["role"] for m in msgs] == ["system"] + ["user", "assistant"] * len(fewshot) + ["user"]
    for ex, answer in zip(fewshot, msgs[2:-1:2], strict=True):
        assert json.loads(answer["content"]) == {"success": ex.success, "reason": ex.reason}
    text, image = msgs[-1]["content"]
    assert TASK.text in text["text"]
    assert '1. TAP 0.08 0.50\n2. TYPE "weather Paris"\n3. ENTER' in text["text"]
    url = image["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    sent = np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))
    np.testing.assert_array_equal(sent, screen)  # lossless, not rescaled (under max_side)


def test_large_screens_are_scaled_down_to_max_side(stub_factory) -> None:
    stub = stub_factory(_reply("FAILURE: nothing yet"))
    judge = _judge(stub, max_side=100, fewshot=())
    big = np.zeros((400, 200, 3), np.uint8)
    judge.evaluate(TASK, None, big, [])
    url = stub.requests[0]["body"]["messages"][-1]["content"][1]["image_url"]["url"]
    img = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert img.size == (50, 100)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (
            '{"success": false, "reason": "still on the home screen"}',
            Verdict(False, "still on the home screen"),
        ),
        ('```json\n{"success": true, "reason": "done"}\n```', Verdict(True, "done")),
        (
            "The screen shows results.\nSUCCESS: weather results are shown",
            Verdict(True, "weather results are shown"),
        ),
        ("failure: the app is not open", Verdict(False, "the app is not open")),
    ],
)
def test_parse_verdict_accepts_json_and_status_lines(answer: str, expected: Verdict) -> None:
    assert parse_verdict(answer) == expected


@pytest.mark.parametrize(
    "answer",
    [
        "Yes, the task looks complete.",
        '{"success": "yes", "reason": "done"}',
        '{"success": true, "reason": 3}',
        '{"success": true',
        "SUCCESS: a\nFAILURE: b",
    ],
)
def test_parse_verdict_rejects_anything_else(answer: str) -> None:
    with pytest.raises(InfrastructureError, match="not a verdict"):
        parse_verdict(answer)


def test_unparseable_answer_from_server_is_infrastructure_error(stub_factory) -> None:
    stub = stub_factory(_reply("I think so"))
    with pytest.raises(InfrastructureError, match="not a verdict"):
        _judge(stub).evaluate(TASK, None, _screen(), HISTORY)
    assert len(stub.requests) == 1  # a deterministic answer is not retried


def test_retries_500_then_succeeds(stub_factory) -> None:
    err = (500, b'{"error": "overloaded"}', 0.0)
    stub = stub_factory(err, err, _reply("FAILURE: keyboard still open"))
    judge = _judge(stub, retries=3)
    assert judge.evaluate(TASK, None, _screen(), HISTORY) == Verdict(False, "keyboard still open")
    assert len(stub.requests) == 3 and judge.requests == 3


def test_persistent_500_raises_after_retries(stub_factory) -> None:
    stub = stub_factory((503, b"{}", 0.0))
    with pytest.raises(InfrastructureError, match="did not answer after 3 attempts") as e:
        _judge(stub, retries=2).evaluate(TASK, None, _screen(), HISTORY)
    assert e.value.retryable and len(stub.requests) == 3


def test_auth_error_is_not_retried_and_hides_the_key(stub_factory, caplog) -> None:
    echo = json.dumps({"error": f"Incorrect API key provided: {SECRET}"}).encode()
    stub = stub_factory((401, echo, 0.0))
    caplog.set_level(logging.DEBUG)
    with pytest.raises(InfrastructureError, match="HTTP 401") as e:
        _judge(stub).evaluate(TASK, None, _screen(), HISTORY)
    assert not e.value.retryable and len(stub.requests) == 1
    assert SECRET not in str(e.value) and "***" in str(e.value)


def test_timeout_raises_infrastructure_error(stub_factory) -> None:
    stub = stub_factory((200, b"{}", 1.5))
    judge = _judge(stub, timeout_s=0.3, retries=1)
    t0 = time.monotonic()
    with pytest.raises(InfrastructureError, match="did not answer after 2 attempts"):
        judge.evaluate(TASK, None, _screen(), HISTORY)
    assert time.monotonic() - t0 < 1.4  # gave up on the client side, not after the server
    assert len(stub.requests) == 2


def test_cache_hit_avoids_second_request(stub_factory) -> None:
    stub = stub_factory(_reply('{"success": true, "reason": "ok"}'))
    judge = _judge(stub, cache_size=2)
    a = _screen(0)
    first = judge.evaluate(TASK, None, a, HISTORY)
    assert judge.evaluate(TASK, None, a.copy(), list(HISTORY)) == first
    assert len(stub.requests) == 1 and judge.cache_hits == 1
    judge.evaluate(TASK, None, a, HISTORY[:2])  # other actions: a new question
    assert len(stub.requests) == 2


def test_cache_is_bounded_and_evicts_least_recently_used(stub_factory) -> None:
    stub = stub_factory(_reply("SUCCESS: ok"))
    judge = _judge(stub, cache_size=2, fewshot=())
    a, b, c = (np.full((16, 8, 3), v, np.uint8) for v in (0, 100, 200))
    for screen in (a, b, a, c):  # a is used again before c arrives, so c evicts b
        judge.evaluate(TASK, None, screen, [])
    assert len(stub.requests) == 3
    judge.evaluate(TASK, None, a, [])
    assert len(stub.requests) == 3  # still cached
    judge.evaluate(TASK, None, b, [])
    assert len(stub.requests) == 4  # was evicted


def test_key_never_in_logs_repr_or_errors(stub_factory, caplog) -> None:
    stub = stub_factory((500, json.dumps({"error": f"bad key {SECRET}"}).encode(), 0.0))
    caplog.set_level(logging.DEBUG)
    judge = _judge(stub, retries=2)
    assert SECRET not in repr(judge) and "api_key=set" in repr(judge)
    with pytest.raises(InfrastructureError) as e:
        judge.evaluate(TASK, None, _screen(), HISTORY)
    assert caplog.records, "the retries should have been logged"
    assert any("retry" in r.getMessage() for r in caplog.records)
    assert all(SECRET not in r.getMessage() for r in caplog.records)
    assert SECRET not in str(e.value) and SECRET not in repr(e.value)


def test_missing_endpoint_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=ENV_URL):
        VlmJudge(env={ENV_MODEL: MODEL})
    with pytest.raises(ValueError, match="http"):
        VlmJudge(env={ENV_URL: "ftp://x/v1", ENV_MODEL: MODEL})


class TruncatedErrorServer:
    """Answers every request with ``status`` and a reason phrase that echoes the API key, and
    promises a 100-byte body but sends 5 bytes and holds the connection open: reading the error
    body times out."""

    def __init__(self, status: int):
        self.status = status
        self.requests = 0
        self.conns: list[socket.socket] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/v1"
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            self.conns.append(conn)
            conn.settimeout(5.0)
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
            while len(body) < length:
                body += conn.recv(65536)
            self.requests += 1
            conn.sendall(
                f"HTTP/1.1 {self.status} Rejected key {SECRET}\r\n".encode()
                + b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\nshort"
            )

    def close(self) -> None:
        self._stop.set()
        self.thread.join(timeout=5)
        for c in self.conns:
            c.close()
        self.listener.close()


@pytest.mark.parametrize(("status", "attempts"), [(401, 1), (500, 2)])
def test_error_body_that_times_out_is_still_an_infrastructure_error(status, attempts) -> None:
    server = TruncatedErrorServer(status)
    try:
        env = {ENV_URL: server.url, ENV_MODEL: MODEL, ENV_KEY: SECRET}
        judge = VlmJudge(env=env, timeout_s=0.3, retries=1, backoff_s=0.01, fewshot=())
        t0 = time.monotonic()
        with pytest.raises(InfrastructureError, match=f"HTTP {status} Rejected key") as e:
            judge.evaluate(TASK, None, np.zeros((16, 8, 3), np.uint8), [])
        assert time.monotonic() - t0 < 3.0
    finally:
        server.close()
    assert server.requests == attempts
    assert e.value.retryable == (status != 401)
    assert SECRET not in str(e.value) and "***" in str(e.value)
    assert server.url.removeprefix("http://").split("/")[0] in str(e.value)  # host:port


@pytest.mark.parametrize(
    "content",
    [[{"type": "text", "text": 5}], [{"type": "text", "text": None}], 7, {"text": "x"}],
    ids=["int-part", "null-part", "number", "object"],
)
def test_content_that_is_not_text_is_an_infrastructure_error(stub_factory, content) -> None:
    body = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]})
    stub = stub_factory((200, body.encode(), 0.0))
    with pytest.raises(InfrastructureError, match="non-text content"):
        _judge(stub, fewshot=()).evaluate(TASK, None, _screen(), HISTORY)


def test_content_parts_are_joined(stub_factory) -> None:
    parts = [{"type": "text", "text": "SUCCESS: "}, {"type": "text", "text": "results shown"}]
    body = json.dumps({"choices": [{"message": {"role": "assistant", "content": parts}}]})
    stub = stub_factory((200, body.encode(), 0.0))
    verdict = _judge(stub, fewshot=()).evaluate(TASK, None, _screen(), HISTORY)
    assert verdict == Verdict(True, "results shown")
