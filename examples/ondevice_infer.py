"""Play simphone tasks with an exported ONNX policy, without JAX.

Reads only what ``python -m distrl_jax.export --format onnx`` wrote (``policy.onnx``,
``manifest.json``, ``tokenizer.json``) and runs it with onnxruntime; the context encoding and
action decoding follow the manifest's recipes and vocabulary numbers, in NumPy. From this
project it imports only the simulator, the task parser and the action types, none of which
import JAX (the model package does: ``models.action_codec`` imports ``jax.numpy`` for the
grammar automaton, so its codec is re-implemented here from the manifest)::

    python examples/ondevice_infer.py --model DIR [--tasks general --split val] [--episodes 1]

prints the success rate, the latency of one policy call (ms, p50/p90) and the model size.
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
import sys
import time
import zlib
from collections.abc import Callable, Sequence

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from distrl_jax.devices import actions as A
from distrl_jax.devices.simphone.judge import SimEvaluator
from distrl_jax.devices.simphone.phone import SimPhone
from distrl_jax.devices.task_env import TaskEnv
from distrl_jax.tasks.suites import load_tasks

_KEYS = {
    "<back>": A.ActionType.PRESS_BACK,
    "<home>": A.ActionType.PRESS_HOME,
    "<enter>": A.ActionType.PRESS_ENTER,
    "<complete>": A.ActionType.STATUS_TASK_COMPLETE,
    "<impossible>": A.ActionType.STATUS_TASK_IMPOSSIBLE,
}


class ManifestCodec:
    """Context encoding and action (de)coding from the manifest's recipe and numbers."""

    def __init__(self, manifest: dict, tokenizer: Tokenizer):
        self.v, ctx, act = (
            manifest["vocabulary"],
            manifest["context_encoding"],
            manifest["action_decoding"],
        )
        self.lc, self.k, self.budget = ctx["context_len"], ctx["history_k"], ctx["history_budget"]
        self.la, self.bins, self.tap_distance = (
            act["action_len"],
            act["location_bins"],
            act["tap_distance"],
        )
        self.verb_id = self.v["verbs"]
        self.verb_name = {i: n for n, i in self.verb_id.items()}
        self.tokenizer = tokenizer
        tokenizer.encode_special_tokens = True  # "<tap>" typed in a task is text, not a verb

    def _bin(self, value: float) -> int:
        return min(self.bins - 1, max(0, math.floor(value * self.bins)))

    def _centre(self, i: int) -> float:
        return (i + 0.5) / self.bins

    def _swipe(self, a: A.Action) -> list[int]:
        y0, x0, y1, x1 = (
            self._bin(a.touch[0]),
            self._bin(a.touch[1]),
            self._bin(a.lift[0]),
            self._bin(a.lift[1]),
        )
        dy, dx = a.lift[0] - a.touch[0], a.lift[1] - a.touch[1]
        sy = (1 if dy > 0 else -1) if abs(dy) >= abs(dx) else 0
        sx = 0 if sy else (1 if dx > 0 else -1)
        b, c = self.bins, self._centre
        while math.dist((c(y0), c(x0)), (c(y1), c(x1))) <= self.tap_distance:
            if 0 <= y1 + sy < b and 0 <= x1 + sx < b:
                y1, x1 = y1 + sy, x1 + sx
            elif 0 <= y0 - sy < b and 0 <= x0 - sx < b:
                y0, x0 = y0 - sy, x0 - sx
            else:
                break
        yo, xo = self.v["y_offset"], self.v["x_offset"]
        return [self.verb_id["<swipe>"], yo + y0, xo + x0, yo + y1, xo + x1, self.v["eos_id"]]

    def action_tokens(self, a: A.Action) -> list[int]:
        """The unpadded tokens of an action (as the decoder would emit it)."""
        a, eos, yo, xo = A.validate(a), self.v["eos_id"], self.v["y_offset"], self.v["x_offset"]
        if a.kind is A.ActionType.DUAL_POINT:
            if a.is_tap:
                return [
                    self.verb_id["<tap>"],
                    yo + self._bin(a.touch[0]),
                    xo + self._bin(a.touch[1]),
                    eos,
                ]
            return self._swipe(a)
        if a.kind is A.ActionType.TYPE:
            clean = "".join(" " if (ord(ch) < 0x20 or ord(ch) == 0x7F) else ch for ch in a.text)
            data = clean.encode("utf-8", errors="replace")
            if len(data) > self.la - 2:
                cut = self.la - 2
                while cut > 0 and (data[cut] & 0xC0) == 0x80:
                    cut -= 1
                data = data[:cut]
            if data:
                return [self.verb_id["<type>"], *(self.v["byte_offset"] + b for b in data), eos]
        for name, kind in _KEYS.items():
            if a.kind is kind:
                return [self.verb_id[name], eos]
        return [self.v["invalid_id"], eos]

    def context(self, task: str, history: Sequence[str]) -> np.ndarray:
        """int32[Lc]: ``<bos> task <sep> history <pad>...``."""
        pieces: list[list[int]] = []
        used = 0
        for item in reversed(list(history)[-self.k :] if self.k > 0 else []):
            ids = self.action_tokens(A.parse_action(item))
            if used + len(ids) > self.budget:
                if not pieces and self.budget >= 2:
                    pieces.append([*ids[: self.budget - 1], self.v["eos_id"]])
                break
            pieces.append(ids)
            used += len(ids)
        hist = [t for p in reversed(pieces) for t in p]
        task_ids = self.tokenizer.encode(task, add_special_tokens=False).ids[
            : self.lc - 2 - len(hist)
        ]
        out = np.zeros(self.lc, np.int32)
        seq = [self.v["bos_id"], *task_ids, self.v["sep_id"], *hist]
        out[: len(seq)] = seq
        return out

    def decode(self, tokens: np.ndarray) -> A.Action:
        """The action a grammar-valid token row spells (anything else is INVALID)."""
        t = [int(x) for x in tokens]
        if self.v["eos_id"] not in t:
            return A.invalid("action has no <eos>")
        verb, body = self.verb_name.get(t[0]), t[1 : t.index(self.v["eos_id"])]
        yo, xo, bo = self.v["y_offset"], self.v["x_offset"], self.v["byte_offset"]
        if verb in ("<tap>", "<swipe>"):
            pts = [self._centre(i - (yo if n % 2 == 0 else xo)) for n, i in enumerate(body)]
            return (
                A.tap(*pts)
                if verb == "<tap>" and len(pts) == 2
                else A.swipe(*pts)
                if len(pts) == 4
                else A.invalid("bad points")
            )
        if verb == "<type>" and body:
            try:
                return A.validate(A.type_text(bytes(i - bo for i in body).decode("utf-8")))
            except (UnicodeDecodeError, ValueError):
                return A.invalid("typed bytes are not valid UTF-8")
        if verb in _KEYS and not body:
            return A.Action(_KEYS[verb])
        return A.invalid(f"first token {t[0]} is not an action verb")


class OnnxPolicy:
    """The exported greedy policy: ``act(observation) -> Action``; records call latencies."""

    def __init__(self, model_dir: str | pathlib.Path, threads: int = 1):
        d = pathlib.Path(model_dir)
        self.manifest = json.loads((d / "manifest.json").read_text())
        if self.manifest["format"] != "onnx":
            raise SystemExit(
                f"error: {d} holds a {self.manifest['format']} export; this example runs onnx"
            )
        self.model_path = d / self.manifest["model_file"]
        self.codec = ManifestCodec(self.manifest, Tokenizer.from_file(str(d / "tokenizer.json")))
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        options.log_severity_level = 3
        self.session = ort.InferenceSession(
            str(self.model_path), options, providers=["CPUExecutionProvider"]
        )
        self.batch = self.manifest["batch"]
        self.latencies_ms: list[float] = []

    def tokens(self, screen: np.ndarray, context: np.ndarray) -> np.ndarray:
        """Greedy action tokens int32[La] for one screen (padded up to the exported batch)."""
        screens = np.zeros((self.batch, *screen.shape), np.uint8)
        contexts = np.zeros((self.batch, context.shape[0]), np.int32)
        screens[0], contexts[0] = screen, context
        t0 = time.perf_counter()
        tokens = self.session.run(["tokens"], {"screens": screens, "context": contexts})[0]
        self.latencies_ms.append((time.perf_counter() - t0) * 1e3)
        return tokens[0]

    def act(self, obs) -> A.Action:
        """One greedy action for a TaskEnv observation."""
        return self.codec.decode(self.tokens(obs.screen, self.codec.context(obs.task, obs.history)))


def play(
    tasks, act: Callable, *, size: tuple[int, int], history_k: int, episodes: int = 1, seed: int = 0
) -> list[dict]:
    """Play each task ``episodes`` times on a fixed-layout simphone; one record per episode.

    Episode ``i`` starts from the evaluation's seed ``crc32("eval:{seed}:{i}")``, so the same
    episodes can be replayed with any other policy."""
    env = TaskEnv(
        SimPhone(size=size, seed=seed, layout_seed=0), SimEvaluator(), history_k=history_k
    )
    records = []
    for i, task in enumerate(t for t in tasks for _ in range(episodes)):
        obs = env.reset(task, seed=zlib.crc32(f"eval:{seed}:{i}".encode()))
        taken, success = [], False
        while True:
            action = act(obs)
            obs, info = env.step(action)
            taken.append(A.to_compact(action))
            success = success or info.success
            if info.done:
                break
        records.append({"task": task.text, "success": success, "actions": taken})
    return records


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point."""
    p = argparse.ArgumentParser(description="Play simphone tasks with an exported ONNX policy.")
    p.add_argument("--model", required=True, help="folder written by python -m distrl_jax.export")
    p.add_argument("--tasks", default="general", help="suite name or task file")
    p.add_argument("--split", default="val", help="train | val | all (suites only)")
    p.add_argument("--max-tasks", type=int, default=10, help="0 = all")
    p.add_argument("--episodes", type=int, default=1, help="episodes per task")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default="", help="also write the episode records here")
    args = p.parse_args(argv)
    policy = OnnxPolicy(args.model)
    split = args.split if args.tasks in ("general", "webshop") else "all"
    tasks = load_tasks(args.tasks, split=split)[: args.max_tasks or None]
    if not tasks:
        print(f"error: no supported tasks in {args.tasks!r}", file=sys.stderr)
        return 2
    m = policy.manifest
    records = play(
        tasks,
        policy.act,
        size=tuple(m["preprocessing"]["screen_size"]),
        history_k=m["context_encoding"]["history_k"],
        episodes=args.episodes,
        seed=args.seed,
    )
    rate = float(np.mean([r["success"] for r in records]))
    lat = np.asarray(policy.latencies_ms)
    size_mb = policy.model_path.stat().st_size / 1e6
    print(f"episodes: {len(records)}  success: {rate:.1%}")
    print(
        f"latency per action: p50 {np.percentile(lat, 50):.2f} ms, p90 {np.percentile(lat, 90):.2f} ms ({len(lat)} calls)"
    )
    print(f"model: {policy.model_path.name} {size_mb:.2f} MB ({m['quantization']})")
    if args.json:
        summary = {"success_rate": rate, "latency_ms": lat.tolist(), "records": records}
        pathlib.Path(args.json).write_text(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
