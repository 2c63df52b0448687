"""A VLM judge for real devices: (task, screenshot, last actions) -> Verdict, by a chat model.

Talks to any OpenAI-compatible ``/chat/completions`` endpoint (OpenAI, vLLM, SGLang, Ollama,
a gateway) with the screenshot as a base64 PNG data URL, after a system prompt and a few
worked examples (``data/judge_fewshot``). The endpoint comes from the environment:

* ``DISTRL_JUDGE_URL``: the API base (``https://host/v1``) or the full ``.../chat/completions``;
* ``DISTRL_JUDGE_MODEL``: the model name;
* ``DISTRL_JUDGE_API_KEY``: a bearer token (optional for a local server). It is never logged,
  shown in ``repr`` or put into an error message.

Requests are retried with exponential backoff on timeouts, connection errors, HTTP 408/429 and
5xx. Verdicts are cached per (task, screenshot, actions) in a bounded LRU, so a screen judged
twice costs one call. Anything that leaves the judge unable to answer (an HTTP error after the
retries, a timeout, an answer that is not a verdict) raises :class:`InfrastructureError`: the
episode is retried, never scored zero.
"""

from __future__ import annotations

import base64
import collections
import dataclasses
import hashlib
import http.client
import io
import json
import logging
import os
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from distrl_jax.core import Device, Evaluator, InfrastructureError, Verdict
from distrl_jax.devices.actions import Action, to_compact
from distrl_jax.tasks.goals import Task

log = logging.getLogger(__name__)

ENV_URL, ENV_MODEL, ENV_KEY = "DISTRL_JUDGE_URL", "DISTRL_JUDGE_MODEL", "DISTRL_JUDGE_API_KEY"
RETRY_STATUS = frozenset({408, 409, 425, 429})  # and every 5xx
FEWSHOT_DIR = Path(__file__).resolve().parent.parent / "data" / "judge_fewshot"

SYSTEM_PROMPT = (
    "You judge whether an agent operating an Android phone has completed its task. You are "
    "given the task, the agent's last actions and a screenshot of the phone now. The task is "
    "complete only if the screenshot shows it done: an app task when that app (or the asked-for "
    "page or setting) is open in the required state; a web or shopping task when the asked-for "
    "site, search results or item is on screen; a question when results of a search answering "
    "it are on screen. Typed text that was not submitted does not count. Answer with one JSON "
    'object and nothing else: {"success": true or false, "reason": "<one short sentence>"}'
)


@dataclasses.dataclass(frozen=True)
class FewShotExample:
    """A worked example shown to the judge before the question: a screen and its verdict."""

    task: str
    actions: tuple[str, ...]
    png: bytes
    success: bool
    reason: str


def load_fewshot(folder: Path | str = FEWSHOT_DIR) -> list[FewShotExample]:
    """Read ``examples.jsonl`` (one object a line: task, actions, image, success, reason) and
    the PNG each names, from ``folder``."""
    folder = Path(folder)
    examples = []
    lines = (folder / "examples.jsonl").read_text().splitlines()
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{folder / 'examples.jsonl'}:{n}"
        rec = json.loads(line)
        if not (
            isinstance(rec, dict)
            and isinstance(rec.get("task"), str)
            and isinstance(rec.get("actions"), list)
            and all(isinstance(a, str) for a in rec["actions"])
            and isinstance(rec.get("success"), bool)
            and isinstance(rec.get("reason"), str)
            and isinstance(rec.get("image"), str)
        ):
            raise ValueError(
                f"{where}: need task (str), actions (list of str), image (str), success (bool), "
                f"reason (str)"
            )
        image = rec["image"]
        if Path(image).name != image or not image.endswith(".png"):
            raise ValueError(f"{where}: image {image!r} must be a .png file name in {folder}")
        png = (folder / image).read_bytes()
        examples.append(
            FewShotExample(rec["task"], tuple(rec["actions"]), png, rec["success"], rec["reason"])
        )
    return examples


def encode_png(screen: np.ndarray, max_side: int | None = None) -> bytes:
    """A [H, W, 3] uint8 screen as PNG bytes, scaled down so its longer side is <= max_side."""
    arr = np.asarray(screen)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise ValueError(f"screen must be [H, W, 3] uint8, got {arr.shape} {arr.dtype}")
    img = Image.fromarray(arr, "RGB")
    if max_side is not None and max(img.size) > max_side:
        img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def png_data_url(png: bytes) -> str:
    """PNG bytes as a ``data:image/png;base64,...`` URL (what chat APIs take inline)."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


_FENCE = re.compile(r"^```[a-zA-Z]*\s*|\s*```$")
_STATUS_LINE = re.compile(r"^\s*\**\s*(SUCCESS|FAILURE)\s*\**\s*:\s*(.*?)\s*$", re.IGNORECASE)


def parse_verdict(answer: str) -> Verdict:
    """Read a judge's answer: a JSON object ``{"success": bool, "reason": str}`` or exactly one
    ``SUCCESS: ...`` / ``FAILURE: ...`` line. Anything else raises InfrastructureError."""
    text = _FENCE.sub("", answer.strip()).strip()
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise _unparseable(answer, f"invalid JSON ({e.msg})") from None
        if not isinstance(obj, dict) or not isinstance(obj.get("success"), bool):
            raise _unparseable(answer, '"success" must be true or false')
        reason = obj.get("reason", "")
        if not isinstance(reason, str):
            raise _unparseable(answer, '"reason" must be a string')
        return Verdict(obj["success"], reason)
    found = [m for m in map(_STATUS_LINE.match, text.splitlines()) if m]
    if len(found) == 1:
        return Verdict(found[0].group(1).upper() == "SUCCESS", found[0].group(2))
    why = "more than one SUCCESS/FAILURE line" if found else "no JSON verdict or SUCCESS/FAILURE"
    raise _unparseable(answer, why)


def _unparseable(answer: str, why: str) -> InfrastructureError:
    excerpt = answer if len(answer) <= 200 else answer[:200] + "..."
    return InfrastructureError(
        f"the judge's answer is not a verdict: {why}; answer was {excerpt!r}", device="vlm_judge"
    )


def user_message(task: str, actions: Sequence[str], png: bytes) -> dict:
    """The chat message asking about one screen."""
    acts = "\n".join(f"{i + 1}. {a}" for i, a in enumerate(actions)) or "(none yet)"
    text = f"Task: {task}\nLast actions, oldest first:\n{acts}\nIs the task complete?"
    return {
        "role": "user",
        "content": [
            {"type": "text", "text": text},
            {"type": "image_url", "image_url": {"url": png_data_url(png)}},
        ],
    }


def _safe_url(url: str) -> str:
    """scheme://host[:port]/path only: user:password@ or a query string (?api-key=...) may
    carry a key."""
    p = urllib.parse.urlsplit(url)
    host = p.hostname or ""
    if ":" in host:
        host = f"[{host}]"  # IPv6
    try:
        port = p.port
    except ValueError:  # not a number or out of range: the caller's message says what is wrong
        port = None
    if port is not None:
        host = f"{host}:{port}"
    return urllib.parse.urlunsplit((p.scheme, host, p.path, "", ""))


class VlmJudge(Evaluator):
    """Judges screenshots with a chat VLM; see the module docstring.

    Arguments left None are read from the environment (``env``, default ``os.environ``).
    ``fewshot`` None loads the packaged examples; pass ``()`` for none. ``max_side`` scales
    screenshots down before sending (a 1080x2280 PNG is ~1 MB of base64).
    """

    def __init__(
        self,
        url: str | None = None,
        model: str | None = None,
        api_key: str | None = None,
        *,
        timeout_s: float = 60.0,
        retries: int = 3,
        backoff_s: float = 1.0,
        max_backoff_s: float = 30.0,
        cache_size: int = 4096,
        fewshot: Sequence[FewShotExample] | None = None,
        max_side: int | None = 1024,
        history_len: int = 5,
        max_tokens: int = 200,
        env: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        env = os.environ if env is None else env
        url = url or env.get(ENV_URL, "")
        self.model = model or env.get(ENV_MODEL, "")
        self._api_key = api_key if api_key is not None else env.get(ENV_KEY, "")
        if not url or not self.model:
            raise ValueError(
                f"the VLM judge needs an endpoint and a model: set {ENV_URL} (e.g. "
                f"https://api.openai.com/v1 or http://127.0.0.1:8000/v1) and {ENV_MODEL}, and "
                f"{ENV_KEY} if the endpoint wants a key"
            )
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise ValueError(f"{ENV_URL} must be an http(s) URL, got {_safe_url(url)!r}")
        if not url.rstrip("/").endswith("/chat/completions"):
            url = url.rstrip("/") + "/chat/completions"
        self._url = url
        if retries < 0 or timeout_s <= 0 or cache_size < 0 or history_len < 0:
            raise ValueError("need retries >= 0, timeout_s > 0, cache_size >= 0, history_len >= 0")
        self.timeout_s, self.retries = timeout_s, retries
        self.backoff_s, self.max_backoff_s = backoff_s, max_backoff_s
        self.cache_size, self.max_side = cache_size, max_side
        self.history_len, self.max_tokens = history_len, max_tokens
        self.fewshot = tuple(load_fewshot() if fewshot is None else fewshot)
        self._sleep = sleep
        self._cache: collections.OrderedDict[str, Verdict] = collections.OrderedDict()
        self._lock = threading.Lock()
        self.requests = 0  # HTTP attempts made
        self.cache_hits = 0

    def __repr__(self) -> str:
        key = "set" if self._api_key else "unset"
        return f"VlmJudge(url={_safe_url(self._url)!r}, model={self.model!r}, api_key={key})"

    # ------------------------------------------------------------ Evaluator

    def evaluate(
        self, task: Task, device: Device, screen: np.ndarray, history: Sequence[Action]
    ) -> Verdict:
        """Ask the VLM whether ``task`` is done on ``screen``; cached per screen and actions."""
        recent = history[max(0, len(history) - self.history_len) :] if self.history_len else []
        actions = [to_compact(a) for a in recent]
        png = encode_png(screen, self.max_side)
        key = hashlib.sha256(json.dumps([task.text, actions]).encode() + b"\0" + png).hexdigest()
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                self.cache_hits += 1
                return self._cache[key]
        verdict = parse_verdict(self._complete(self.messages(task.text, actions, png)))
        with self._lock:
            self._cache[key] = verdict
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return verdict

    def messages(self, task: str, actions: Sequence[str], png: bytes) -> list[dict]:
        """System prompt, the few-shot examples as user/assistant turns, then the question."""
        msgs: list[dict] = [{"role": "system", "content": SYSTEM_PROMPT}]
        for ex in self.fewshot:
            msgs.append(user_message(ex.task, ex.actions, ex.png))
            answer = json.dumps({"success": ex.success, "reason": ex.reason})
            msgs.append({"role": "assistant", "content": answer})
        msgs.append(user_message(task, actions, png))
        return msgs

    # ------------------------------------------------------------ HTTP

    def _redact(self, text: str) -> str:
        return text.replace(self._api_key, "***") if self._api_key else text

    def _complete(self, messages: list[dict]) -> str:
        body = json.dumps(
            {
                "model": self.model,
                "messages": messages,
                "temperature": 0,
                "max_tokens": self.max_tokens,
            }
        ).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        where = _safe_url(self._url)
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                delay = min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1))
                log.warning("judge retry %d/%d in %.1f s: %s", attempt, self.retries, delay, last)
                self._sleep(delay)
            self.requests += 1
            log.debug("judge request to %s (model %s, attempt %d)", where, self.model, attempt)
            req = urllib.request.Request(self._url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                    raw = resp.read()
            except urllib.error.HTTPError as e:
                try:  # the error body is a courtesy: it may time out or be cut short
                    detail = self._redact(e.read(300).decode("utf-8", "replace"))
                except (OSError, ValueError, http.client.HTTPException):
                    detail = ""
                last = f"HTTP {e.code} {self._redact(str(e.reason))}: {detail}"
                if e.code in RETRY_STATUS or e.code >= 500:
                    continue
                raise InfrastructureError(
                    f"the judge at {where} refused the request ({last}); check {ENV_URL}, "
                    f"{ENV_MODEL} and {ENV_KEY}",
                    device="vlm_judge",
                    retryable=False,
                ) from None
            except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
                last = f"{type(e).__name__}: {self._redact(str(e))}"
                continue
            except http.client.HTTPException as e:
                last = f"{type(e).__name__}: {self._redact(str(e))}"
                continue
            return self._content(raw, where)
        raise InfrastructureError(
            f"the judge at {where} did not answer after {self.retries + 1} attempts "
            f"(timeout {self.timeout_s:g} s each): {last}",
            device="vlm_judge",
        )

    def _content(self, raw: bytes, where: str) -> str:
        """The assistant's text from a chat-completions response body."""
        try:
            content = json.loads(raw)["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError, RecursionError):
            excerpt = self._redact(raw[:200].decode("utf-8", "replace"))
            raise InfrastructureError(
                f"the judge at {where} sent a response without choices[0].message.content: "
                f"{excerpt!r}",
                device="vlm_judge",
            ) from None
        if isinstance(content, list):  # some servers return content parts
            texts = [p.get("text", "") for p in content if isinstance(p, dict)]
            if all(isinstance(t, str) for t in texts):
                content = "".join(texts)
        if not isinstance(content, str):
            excerpt = self._redact(raw[:200].decode("utf-8", "replace"))
            raise InfrastructureError(
                f"the judge at {where} sent non-text content: {excerpt!r}", device="vlm_judge"
            )
        return content
