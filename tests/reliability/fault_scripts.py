"""Helpers of the fault-injection tests, and the learner process they kill.

Imported by ``test_process_faults.py`` for the shared runtime helpers (re-exported from
``tests/runtime/learner_script.py``), a :class:`LearnerProcess` handle and the small tools the
tests use to damage things (free ports, RSS, checkpoint corruption).

Run as a script it is a learner process that a test can ``kill -9``::

    python fault_scripts.py learner RUN_DIR PORT [--section.field=value ...]

It builds a :class:`LearnerService` on the shrunk smoke config with ``runtime.port=PORT`` (so a
restart binds the same four ports and actors find it again), prints one JSON line
``{"event": "ready", ...}`` with how it started, then a ``{"event": "status", ...}`` line every
0.2 s (version, inserted, receiver counters, RSS), and trains until SIGTERM or ``learner.steps``.
"""

from __future__ import annotations

import json
import os
import pathlib
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

# The runtime tests' helpers live beside them without a package; reuse, never copy them.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "runtime"))
from learner_script import (
    SHRUNK,
    compile_cache,
    shrunk_config,
    synthetic_trajectory,
    wait_until,
)

__all__ = [
    "SHRUNK",
    "LearnerProcess",
    "committed_steps",
    "compile_cache",
    "corrupt_step",
    "free_port_block",
    "rss_bytes",
    "shrunk_config",
    "synthetic_trajectory",
    "wait_until",
]


def free_port_block(n: int = 4, tries: int = 50) -> int:
    """The first of ``n`` consecutive loopback ports that are free now (the learner binds
    control, trajectories, parameters and latest at port..port+3)."""
    for _ in range(tries):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            first = probe.getsockname()[1]
        if first + n > 65535:
            continue
        held: list[socket.socket] = []
        try:
            for p in range(first, first + n):
                s = socket.socket()
                held.append(s)
                s.bind(("127.0.0.1", p))
            return first
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
    raise RuntimeError(f"no block of {n} free loopback ports found in {tries} tries")


def rss_bytes(pid: int) -> int:
    """Resident set size of process ``pid`` (from /proc; Linux only)."""
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS line for pid {pid}")


def committed_steps(ckpt_dir: pathlib.Path) -> list[int]:
    """Step folders Orbax has committed (temporary folders of a save in flight are not numbers)."""
    if not ckpt_dir.is_dir():
        return []
    return sorted(int(p.name) for p in ckpt_dir.iterdir() if p.is_dir() and p.name.isdigit())


def corrupt_step(step_dir: pathlib.Path, how: str) -> list[pathlib.Path]:
    """Damage a committed step like a crash or a bad disk would; returns the files touched.

    ``truncate``: every file of the array items (params, opt) cut to a third;
    ``garble``: the JSON meta item replaced by random bytes of the same length.
    """
    rng = np.random.default_rng(7)
    if how == "truncate":
        files = [f for item in ("params", "opt") for f in (step_dir / item).rglob("*")]
        files = [f for f in files if f.is_file() and f.stat().st_size > 0]
        for f in files:
            f.write_bytes(f.read_bytes()[: f.stat().st_size // 3])
    elif how == "garble":
        files = [f for f in (step_dir / "meta").rglob("*") if f.is_file()]
        for f in files:
            size = max(f.stat().st_size, 16)
            f.write_bytes(rng.integers(0, 256, size, dtype=np.uint8).tobytes())
    else:
        raise ValueError(f"how={how!r}; use truncate or garble")
    if not files:
        raise AssertionError(f"nothing to corrupt under {step_dir}")
    return files


class LearnerProcess:
    """A learner subprocess (this file run as a script) and the JSON lines it prints."""

    def __init__(self, run_dir: pathlib.Path, port: int, *overrides: str, env: dict[str, str]):
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "learner", str(run_dir), str(port), *overrides],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.other: list[str] = []  # non-JSON output (logs), for failure messages
        self.last: dict[str, Any] = {}
        self.ready: dict[str, Any] = {}
        self._reader = threading.Thread(target=self._read, name="learner-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("{"):
                self.lines.put(json.loads(line))
            else:
                self.other.append(line.rstrip())

    def poll_status(self) -> dict[str, Any]:
        """The newest status seen so far (also records the ready line)."""
        while True:
            try:
                item = self.lines.get_nowait()
            except queue.Empty:
                return self.last
            if item["event"] == "ready":
                self.ready = item
            self.last = item

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout_s: float, what: str):
        """Wait until a status line satisfies ``predicate``; returns it."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None and self.lines.empty():
                raise AssertionError(
                    f"learner exited ({self.proc.returncode}) before {what}: "
                    + "\n".join(self.other[-30:])
                )
            try:
                item = self.lines.get(timeout=0.1)
            except queue.Empty:
                continue
            if item["event"] == "ready":
                self.ready = item
            self.last = item
            if predicate(item):
                return item
        raise AssertionError(
            f"timed out after {timeout_s} s waiting for {what}; last {self.last}; "
            + "\n".join(self.other[-30:])
        )

    def kill(self) -> None:
        """SIGKILL (no checkpoint, no goodbye) and reap."""
        self.proc.kill()
        self.proc.wait(timeout=30)

    def close(self) -> None:
        """Make sure the process is gone (SIGKILL if it is still running)."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)
        self._reader.join(timeout=5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _learner_main(run_dir: pathlib.Path, port: int, overrides: list[str]) -> int:
    """The learner process (see the module docstring)."""
    from distrl_jax.learner.learner import install_signal_handlers
    from distrl_jax.metrics.writers import MetricsWriter
    from distrl_jax.runtime.learner_service import LearnerService

    cfg = shrunk_config(run_dir, f"runtime.port={port}", *(o.lstrip("-") for o in overrides))
    service = LearnerService(cfg, run_dir, MetricsWriter([]))
    install_signal_handlers(service.learner)

    def emit(event: str, **extra: Any) -> None:
        try:
            version = service.learner.version
        except RuntimeError:  # the train step donated the state's buffers just now: next tick
            return
        stats = service.receiver.stats()
        line = {
            "event": event,
            "version": version,
            "inserted": service.inserted,
            "received": stats["received"],
            "duplicates": stats["duplicates"],
            "gaps": stats["gaps"],
            "rejects": int(service.receiver.rejects.total),
            "replay_size": int(service.learner.replay.stats()["size"]),
            "alive": service.control.alive(),
            "rss": rss_bytes(os.getpid()),
            **extra,
        }
        print(json.dumps(line), flush=True)

    emit(
        "ready",
        start_kind=service.learner.start_kind,
        endpoint=service.endpoint,
        trajectories=service.receiver.endpoint,
    )
    done = threading.Event()

    def report() -> None:
        while not done.wait(0.2):
            emit("status")

    reporter = threading.Thread(target=report, name="status", daemon=True)
    reporter.start()
    try:
        service.run()
    finally:
        done.set()
        reporter.join(timeout=2)
        service.close()
    emit("done")
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 4 or sys.argv[1] != "learner":
        sys.exit("usage: fault_scripts.py learner RUN_DIR PORT [--section.field=value ...]")
    sys.exit(_learner_main(pathlib.Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]))
