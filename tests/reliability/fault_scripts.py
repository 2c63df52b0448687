"""Helpers of the fault-injection tests, and the learner process they kill.

Imported by ``test_process_faults.py`` for the shared runtime helpers (re-exported from
``tests/runtime/learner_script.py``), a :class:`LearnerProcess` handle and the small tools the
tests use to damage things (free ports, RSS, checkpoint corruption).

Run as a script it is a child process that a test can ``kill -9``; each prints JSON lines, the
first ``{"event": "ready", ...}``:

* ``python fault_scripts.py learner RUN_DIR PORT [--section.field=value ...]`` builds a
  :class:`LearnerService` on the shrunk smoke config with ``runtime.port=PORT`` (so a restart
  binds the same four ports and actors find it again), prints how it started, then a
  ``{"event": "status", ...}`` line every 0.2 s (version, inserted, receiver counters, RSS), and
  trains until SIGTERM or ``learner.steps``.
* ``python fault_scripts.py sender ENDPOINT SENDER_ID SEED COUNT`` is an actor's trajectory
  channel without the actor: a :class:`TrajectorySender` (a new session, printed in ``ready``)
  sends synthetic trajectories (``task`` = the session, ``episode_id`` = the sequence number)
  and prints ``{"event": "sent", "sent": N}`` once the N-th has been handed to ZeroMQ; COUNT 0
  sends until killed, otherwise it sends COUNT, closes with a linger and prints ``done``.
* ``python fault_scripts.py receiver RCVHWM DELAY_S`` is the learner's trajectory port without
  the learner: a :class:`TrajectoryReceiver` on loopback (an OS-chosen port, the default wire
  limits) that sleeps DELAY_S after each valid trajectory (a slow learner) until ``fast`` arrives
  on stdin, prints its counters and RSS every 0.1 s, and exits when stdin closes.

The ``sender`` and ``receiver`` scripts never import JAX (the helpers re-exported from
``learner_script`` are imported only when this file is imported, not run), so they start in
about a second.
"""

from __future__ import annotations

import contextlib
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

from distrl_jax.types import Trajectory

# The runtime tests' helpers live beside them without a package; reuse, never copy them.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "runtime"))
if __name__ != "__main__":  # they import JAX, which the sender and receiver scripts must not
    from learner_script import (
        SHRUNK,
        compile_cache,
        shrunk_config,
        synthetic_trajectory,
        wait_until,
    )

__all__ = [
    "SHRUNK",
    "ChildProcess",
    "LearnerProcess",
    "committed_steps",
    "compile_cache",
    "corrupt_step",
    "free_port_block",
    "numpy_trajectory",
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


def numpy_trajectory(
    rng: np.random.Generator, *, episode_id: int = 0, task: str = "", hw: tuple[int, int] = (32, 32)
) -> Trajectory:
    """A valid trajectory of random content built with NumPy alone (no model spec, no JAX):
    what the transport checks, not what a learner of the tiny model would accept."""
    t = int(rng.integers(1, 4))
    return Trajectory(
        screens=rng.integers(0, 256, (t + 1, *hw, 3), dtype=np.uint8),
        context=rng.integers(1, 200, (t + 1, 16), dtype=np.int32),
        actions=rng.integers(1, 200, (t, 8), dtype=np.int32),
        rewards=np.zeros(t, np.float32),
        penalties=np.zeros(t, np.float32),
        dones=np.zeros(t, np.float32),
        behaviour_logp=rng.uniform(-8.0, -1.0, t).astype(np.float32),
        task=task,
        episode_id=episode_id,
    )


class ChildProcess:
    """This file run as a script (``mode`` and its arguments) and the JSON lines it prints."""

    def __init__(
        self,
        mode: str,
        *args: str,
        env: dict[str, str] | None = None,
        stdin: bool = False,
    ):
        self.proc = subprocess.Popen(
            [sys.executable, __file__, mode, *args],
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.other: list[str] = []  # non-JSON output (logs), for failure messages
        self.last: dict[str, Any] = {}
        self.ready: dict[str, Any] = {}
        self._reader = threading.Thread(target=self._read, name=f"{mode}-reader", daemon=True)
        self._reader.start()

    def tell(self, command: str) -> None:
        """Write one line to the child's stdin (started with ``stdin=True``)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

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
                    f"child exited ({self.proc.returncode}) before {what}: "
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
        """Make sure the process is gone (SIGKILL if it is still running); every line it printed
        is in ``lines`` afterwards (``poll_status`` reads them)."""
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            with contextlib.suppress(BrokenPipeError):  # it died with unread input
                self.proc.stdin.close()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)
        self._reader.join(timeout=5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


class LearnerProcess(ChildProcess):
    """A learner subprocess (``fault_scripts.py learner``) and the JSON lines it prints."""

    def __init__(self, run_dir: pathlib.Path, port: int, *overrides: str, env: dict[str, str]):
        super().__init__("learner", str(run_dir), str(port), *overrides, env=env)


def _learner_main(run_dir: pathlib.Path, port: int, overrides: list[str]) -> int:
    """The learner process (see the module docstring)."""
    from learner_script import shrunk_config

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


def _emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def _sender_main(endpoint: str, sender_id: str, seed: int, count: int) -> int:
    """An actor's trajectory channel alone (see the module docstring); no JAX."""
    from distrl_jax.transport.trajectory_channel import TrajectorySender

    # One unsent trajectory at most and ``block``: the receiver sees every sequence number, so
    # only what ZeroMQ holds (SNDHWM, plus the message on the wire) can vanish at a kill -9.
    sndhwm = 4
    sender = TrajectorySender(endpoint, sender_id, outbox_size=1, overflow="block", sndhwm=sndhwm)
    _emit("ready", session=sender.session, sndhwm=sndhwm, pid=os.getpid())
    rng = np.random.default_rng(seed)
    seq = 0
    while count <= 0 or seq < count:
        traj = numpy_trajectory(rng, episode_id=seq, task=sender.session)
        if sender.send(traj) != seq or sender.flush(timeout_s=30.0):
            sys.exit(f"trajectory {seq} not handed to ZeroMQ in 30 s: {sender.stats()}")
        seq += 1
        _emit("sent", sent=sender.sent)
    sender.close(linger_s=30.0)
    _emit("done", sent=seq)
    return 0


def _receiver_main(rcvhwm: int, delay_s: float) -> int:
    """The learner's trajectory port alone, draining slowly (see the module docstring); no JAX."""
    from distrl_jax.transport.trajectory_channel import TrajectoryReceiver

    receiver = TrajectoryReceiver(rcvhwm=rcvhwm)
    slow = threading.Event()
    if delay_s > 0:
        slow.set()
    stop = threading.Event()

    def commands() -> None:
        for line in sys.stdin:
            if line.strip() == "fast":
                slow.clear()
        stop.set()

    threading.Thread(target=commands, name="commands", daemon=True).start()

    def status(event: str) -> None:
        _emit(event, **receiver.stats(), rss=rss_bytes(os.getpid()))

    _emit("ready", endpoint=receiver.endpoint, pid=os.getpid(), rss=rss_bytes(os.getpid()))
    next_status = 0.0
    while not stop.is_set():
        if receiver.recv(timeout_s=0.02) is not None and slow.is_set():
            time.sleep(delay_s)  # a learner busy inserting into replay
        if (now := time.monotonic()) >= next_status:
            status("status")
            next_status = now + 0.1
    status("done")
    receiver.close()
    return 0


_USAGE = """usage: fault_scripts.py learner RUN_DIR PORT [--section.field=value ...]
       fault_scripts.py sender ENDPOINT SENDER_ID SEED COUNT
       fault_scripts.py receiver RCVHWM DELAY_S"""

if __name__ == "__main__":
    mode, args = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("", [])
    if mode == "learner" and len(args) >= 2:
        sys.exit(_learner_main(pathlib.Path(args[0]), int(args[1]), args[2:]))
    if mode == "sender" and len(args) == 4:
        sys.exit(_sender_main(args[0], args[1], int(args[2]), int(args[3])))
    if mode == "receiver" and len(args) == 2:
        sys.exit(_receiver_main(int(args[0]), float(args[1])))
    sys.exit(_USAGE)
