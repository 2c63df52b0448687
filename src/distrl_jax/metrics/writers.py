"""One metrics fan-out: a writer that sends every record to JSONL, TensorBoard and the console.

Records are flat ``{name: float}`` dicts at an integer step. JSONL is the source of truth
(notebooks read it); TensorBoard event files are real ``tensorboardX`` files; the console sink
prints a compact line (rich when attached to a terminal, plain otherwise) at most every
``console_every_s`` seconds so a fast learner does not flood the terminal.
"""

from __future__ import annotations

import json
import math
import pathlib
import sys
import threading
import time
from collections.abc import Iterable, Mapping

from distrl_jax.core import MetricsSink


def _finite(metrics: Mapping[str, float]) -> dict[str, float]:
    out: dict[str, float] = {}
    for k, v in metrics.items():
        try:
            f = float(v)
        except (TypeError, ValueError):
            continue
        out[k] = f if math.isfinite(f) else float("nan")
    return out


class JsonlSink(MetricsSink):
    """Appends ``{"step": s, "time": t, **metrics}`` lines to a file (line-buffered)."""

    def __init__(self, path: str | pathlib.Path):
        self.path = pathlib.Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = self.path.open("a", buffering=1)
        self._lock = threading.Lock()

    def write(self, step: int, metrics: Mapping[str, float]) -> None:
        """Append one record (NaN/inf written as null, so the file stays valid JSON)."""
        rec = {"step": int(step), "time": time.time()}
        rec.update({k: (v if math.isfinite(v) else None) for k, v in _finite(metrics).items()})
        with self._lock:
            self._f.write(json.dumps(rec) + "\n")

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._f.close()


class TensorBoardSink(MetricsSink):
    """Writes scalars to TensorBoard event files with tensorboardX."""

    def __init__(self, logdir: str | pathlib.Path):
        from tensorboardX import SummaryWriter  # imported here: only runs that log need it

        self._w = SummaryWriter(str(logdir), flush_secs=10)

    def write(self, step: int, metrics: Mapping[str, float]) -> None:
        """Add one scalar per metric."""
        for k, v in _finite(metrics).items():
            self._w.add_scalar(k, v, int(step))

    def close(self) -> None:
        """Flush and close the event file."""
        self._w.flush()
        self._w.close()


class ConsoleSink(MetricsSink):
    """Prints selected metrics, rate-limited; ``keys=None`` prints everything."""

    def __init__(self, keys: Iterable[str] | None = None, every_s: float = 5.0, stream=None):
        self.keys = list(keys) if keys is not None else None
        self.every_s = every_s
        self.stream = stream or sys.stdout
        self._last = -math.inf

    def write(self, step: int, metrics: Mapping[str, float]) -> None:
        """Print one line if ``every_s`` has passed since the last one."""
        now = time.monotonic()
        if now - self._last < self.every_s:
            return
        m = _finite(metrics)
        keys = self.keys if self.keys is not None else sorted(m)
        parts = [f"{k}={m[k]:.4g}" for k in keys if k in m]
        if not parts:  # a side record (e.g. a timer) must not use up the print slot
            return
        self._last = now
        print(f"[step {step}] " + "  ".join(parts), file=self.stream, flush=True)


class MetricsWriter(MetricsSink):
    """Fans every record out to several sinks; safe to call from several threads."""

    def __init__(self, sinks: Iterable[MetricsSink]):
        self.sinks = list(sinks)
        self._lock = threading.Lock()

    def write(self, step: int, metrics: Mapping[str, float]) -> None:
        """Send to every sink."""
        with self._lock:
            for s in self.sinks:
                s.write(step, metrics)

    def close(self) -> None:
        """Close every sink."""
        with self._lock:
            for s in self.sinks:
                s.close()


def run_writer(
    run_dir: str | pathlib.Path,
    console_keys: Iterable[str] | None = (),
    console_every_s: float = 5.0,
) -> MetricsWriter:
    """The standard writer of a run folder: metrics.jsonl + tb/ (+ console if keys given)."""
    run_dir = pathlib.Path(run_dir)
    sinks: list[MetricsSink] = [
        JsonlSink(run_dir / "metrics.jsonl"),
        TensorBoardSink(run_dir / "tb"),
    ]
    if console_keys is None or list(console_keys):
        sinks.append(ConsoleSink(console_keys, console_every_s))
    return MetricsWriter(sinks)


def read_jsonl(path: str | pathlib.Path) -> list[dict[str, float]]:
    """Read a metrics.jsonl file back (skips a torn last line from a crashed run)."""
    rows = []
    for line in pathlib.Path(path).read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows
