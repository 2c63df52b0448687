"""Keeping a worker host's emulators (and the actor that drives them) running.

:class:`FleetSupervisor` owns a list of :class:`Slot` s (an emulator with its serial, or the
actor process) and advances them one :meth:`~FleetSupervisor.tick` at a time: start what is
due, watch booting emulators until ``sys.boot_completed`` reads 1, health-check running ones,
and restart any that died, hung at boot or stopped answering, under a :class:`RestartPolicy`.
Time is passed in, and processes are started through a :data:`ProcessLauncher`, so tests drive
the whole policy with harmless ``python -c`` processes and a fake clock.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from distrl_jax.devices.emulator_fleet import BootProbe, boot_schedule

log = logging.getLogger(__name__)


class ProcessHandle(Protocol):
    """What the supervisor needs of a started process (``subprocess.Popen`` has it)."""

    pid: int

    def poll(self) -> int | None:
        """The exit code, or None while running."""

    def terminate(self) -> None:
        """Ask the process to stop (SIGTERM)."""

    def kill(self) -> None:
        """Stop it now (SIGKILL)."""

    def wait(self, timeout: float | None = None) -> int:
        """Wait for exit and return the exit code."""


ProcessLauncher = Callable[[Sequence[str], "Path | None"], ProcessHandle]


def spawn_process(argv: Sequence[str], log_path: Path | None) -> ProcessHandle:
    """Start ``argv`` in its own session, output appended to ``log_path`` (or discarded)."""
    if log_path is None:
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C in the launcher's terminal is ours to relay
        )
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as out:  # the child keeps its own descriptor
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_process(handle: ProcessHandle, grace_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``grace_s``."""
    if handle.poll() is not None:
        return
    handle.terminate()
    try:
        handle.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        handle.kill()
        handle.wait(timeout=grace_s)


@dataclasses.dataclass(frozen=True)
class RestartPolicy:
    """Exponential backoff between restarts; give up after ``max_restarts`` within ``window_s``."""

    base_delay_s: float = 5.0
    factor: float = 2.0
    max_delay_s: float = 300.0
    max_restarts: int = 5
    window_s: float = 1800.0

    def __post_init__(self) -> None:
        if self.base_delay_s < 0 or self.factor < 1 or self.max_delay_s < self.base_delay_s:
            raise ValueError(
                "restart policy needs base_delay_s >= 0, factor >= 1, max_delay_s >= base_delay_s"
            )
        if self.max_restarts < 0 or self.window_s <= 0:
            raise ValueError("restart policy needs max_restarts >= 0 and window_s > 0")

    def recent(self, restart_times: Sequence[float], now: float) -> list[float]:
        """The restarts that still count at ``now`` (those inside the window)."""
        return [t for t in restart_times if now - t < self.window_s]

    def delay_s(self, recent_restarts: int) -> float:
        """Wait before the next restart, given how many happened within the window."""
        return min(self.max_delay_s, self.base_delay_s * self.factor**recent_restarts)

    def allows(self, restart_times: Sequence[float], now: float) -> bool:
        """Whether one more restart is allowed at ``now``."""
        return len(self.recent(restart_times, now)) < self.max_restarts


class SlotState(enum.Enum):
    """Where a supervised process is in its life."""

    WAITING = "waiting"  # due to start at next_start_at (first start or after a backoff)
    BOOTING = "booting"  # started; sys.boot_completed not yet 1
    READY = "ready"  # running (and booted, for an emulator)
    FAILED = "failed"  # restarts exhausted; left down
    STOPPED = "stopped"  # exited cleanly (the actor) or stopped by the supervisor


@dataclasses.dataclass
class Slot:
    """One supervised process. ``serial`` marks an emulator (boot- and health-checked through
    the probe); ``after_boot`` holds a process back until every emulator has booted or failed;
    ``done_on_success`` treats exit code 0 as finished rather than as a failure."""

    name: str
    argv: list[str]
    serial: str | None = None
    log_path: Path | None = None
    start_offset_s: float = 0.0
    after_boot: bool = False
    done_on_success: bool = False
    state: SlotState = SlotState.WAITING
    handle: ProcessHandle | None = None
    next_start_at: float = 0.0
    started_at: float = 0.0
    last_check_at: float = 0.0
    misses: int = 0
    restarts: list[float] = dataclasses.field(default_factory=list)
    reason: str = ""


class FleetSupervisor:
    """Starts, watches and restarts :class:`Slot` s; see the module docstring."""

    def __init__(
        self,
        slots: Sequence[Slot],
        *,
        probe: BootProbe,
        launcher: ProcessLauncher = spawn_process,
        policy: RestartPolicy | None = None,
        boot_timeout_s: float = 300.0,
        health_every_s: float = 30.0,
        health_misses: int = 3,
        stop_grace_s: float = 10.0,
    ):
        names = [s.name for s in slots]
        if len(set(names)) != len(names):
            raise ValueError(f"slot names must be unique, got {names}")
        self.slots = list(slots)
        self.probe = probe
        self.launcher = launcher
        self.policy = policy or RestartPolicy()
        self.boot_timeout_s = boot_timeout_s
        self.health_every_s = health_every_s
        self.health_misses = health_misses
        self.stop_grace_s = stop_grace_s
        self.events: list[str] = []

    def begin(self, now: float) -> None:
        """Schedule every slot's first start at ``now`` plus its offset."""
        for s in self.slots:
            s.state, s.next_start_at = SlotState.WAITING, now + s.start_offset_s

    def status(self) -> dict[str, SlotState]:
        """Each slot's state by name."""
        return {s.name: s.state for s in self.slots}

    def emulators_settled(self) -> bool:
        """Every emulator is READY or FAILED, and at least one is READY."""
        emus = [s for s in self.slots if s.serial]
        return all(s.state in (SlotState.READY, SlotState.FAILED) for s in emus) and (
            not emus or any(s.state is SlotState.READY for s in emus)
        )

    def finished(self) -> bool:
        """Nothing is left to do: every slot is done, every actor (non-emulator slot) is done
        (the emulators exist to serve them), or every emulator failed for good."""
        done = (SlotState.FAILED, SlotState.STOPPED)
        emus = [s for s in self.slots if s.serial]
        workers = [s for s in self.slots if not s.serial]
        if all(s.state in done for s in self.slots):
            return True
        if workers and all(s.state in done for s in workers):
            return True
        return bool(emus) and all(s.state is SlotState.FAILED for s in emus)

    def tick(self, now: float) -> list[str]:
        """Advance every slot once at time ``now``; return what happened (also in ``events``)."""
        happened: list[str] = []
        for s in self.slots:
            msg = self._advance(s, now)
            if msg:
                happened.append(f"{s.name}: {msg}")
        for m in happened:
            log.info("%s", m)
        self.events += happened
        return happened

    def _advance(self, s: Slot, now: float) -> str:
        if s.state is SlotState.WAITING:
            if now < s.next_start_at or (s.after_boot and not self.emulators_settled()):
                return ""
            s.handle = self.launcher(s.argv, s.log_path)
            s.started_at = s.last_check_at = now
            s.misses = 0
            s.state = SlotState.BOOTING if s.serial else SlotState.READY
            return f"started (pid {s.handle.pid})"
        if s.state not in (SlotState.BOOTING, SlotState.READY) or s.handle is None:
            return ""
        code = s.handle.poll()
        if code is not None:
            if code == 0 and s.done_on_success:
                s.state, s.reason = SlotState.STOPPED, "exited with code 0"
                return "finished"
            return self._fail(s, now, f"exited with code {code}")
        if s.state is SlotState.BOOTING:
            assert s.serial is not None
            if self.probe(s.serial):
                s.state, s.last_check_at = SlotState.READY, now
                return f"booted in {now - s.started_at:.0f} s"
            if now - s.started_at >= self.boot_timeout_s:
                return self._fail(s, now, f"not booted within {self.boot_timeout_s:.0f} s")
            return ""
        if s.serial and now - s.last_check_at >= self.health_every_s:
            s.last_check_at = now
            if self.probe(s.serial):
                s.misses = 0
            else:
                s.misses += 1
                if s.misses >= self.health_misses:
                    return self._fail(s, now, f"failed {s.misses} health checks in a row")
        return ""

    def _fail(self, s: Slot, now: float, reason: str) -> str:
        if s.handle is not None:
            stop_process(s.handle, self.stop_grace_s)
        s.handle, s.reason = None, reason
        if not self.policy.allows(s.restarts, now):
            s.state = SlotState.FAILED
            n = len(self.policy.recent(s.restarts, now))
            return f"{reason}; gave up after {n} restarts within {self.policy.window_s:.0f} s"
        delay = self.policy.delay_s(len(self.policy.recent(s.restarts, now)))
        s.restarts.append(now)
        s.state, s.next_start_at = SlotState.WAITING, now + delay
        return f"{reason}; restarting in {delay:.1f} s"

    def stop(self) -> None:
        """Stop every running process (the actor first, so it stops using the devices)."""
        for s in sorted(self.slots, key=lambda x: x.serial is not None):
            if s.handle is not None:
                stop_process(s.handle, self.stop_grace_s)
                s.handle = None
            if s.state is not SlotState.FAILED:
                s.state = SlotState.STOPPED

    def run(
        self,
        poll_s: float = 2.0,
        *,
        should_stop: Callable[[], bool] = lambda: False,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> int:
        """Tick until finished or ``should_stop()``; stop everything; 0 if nothing FAILED."""
        self.begin(clock())
        try:
            while not should_stop() and not self.finished():
                self.tick(clock())
                sleep(poll_s)
        finally:
            self.stop()
        return 1 if any(s.state is SlotState.FAILED for s in self.slots) else 0


def fleet_slots(
    emulator_argvs: Sequence[tuple[str, list[str]]],
    actor_argvs: Sequence[list[str]],
    *,
    stagger_s: float = 10.0,
    log_dir: Path | None = None,
) -> list[Slot]:
    """Slots for emulators ``(serial, argv)`` started ``stagger_s`` apart, then the actors,
    which start once every emulator has booted (or failed) and finish when they exit 0."""
    offsets = boot_schedule(len(emulator_argvs), stagger_s)
    slots = [
        Slot(
            name=serial,
            argv=argv,
            serial=serial,
            start_offset_s=offsets[i],
            log_path=log_dir / f"{serial}.log" if log_dir else None,
        )
        for i, (serial, argv) in enumerate(emulator_argvs)
    ]
    slots += [
        Slot(
            name=f"actor-{i}",
            argv=argv,
            after_boot=True,
            done_on_success=True,
            log_path=log_dir / f"actor-{i}.log" if log_dir else None,
        )
        for i, argv in enumerate(actor_argvs)
    ]
    return slots
