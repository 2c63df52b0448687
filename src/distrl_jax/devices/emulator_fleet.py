"""Running K Android emulators on one worker host, and the actor process that drives them.

Each piece is usable alone and tested without an emulator:

* ports: :func:`allocate_ports` leases K (console, adb) port pairs (5554/5555, 5556/5557, ...)
  atomically: a lock file per console port held with ``fcntl.flock`` for the lease's lifetime
  (released by the kernel if the launcher dies), plus a bind test against ports that something
  else already holds. Two launchers on one host never pick the same pair.
* commands: :func:`emulator_command` (headless, ``-read-only`` instances off one AVD, booting
  from a snapshot that is never overwritten) and :func:`actor_command` (the
  ``python -m distrl_jax.launch --role=actor`` line that drives the emulators' serials).
* boot: :func:`boot_schedule` staggers the starts (K emulators booting at once thrash the
  disk); :func:`wait_for_boot` polls ``getprop sys.boot_completed`` through adbutils.

Keeping them running (health checks, restarts with backoff) is
:mod:`distrl_jax.devices.emulator_supervisor`; ``actors/launch_emulators.py`` is the CLI.
"""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import logging
import os
import re
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from distrl_jax.core import InfrastructureError

log = logging.getLogger(__name__)

FIRST_CONSOLE_PORT = 5554
# adb discovers emulators on its own up to console port 5584 (16 instances); beyond that set
# ADB_LOCAL_TRANSPORT_MAX_PORT for the adb server. The emulator itself accepts up to 5682.
LAST_CONSOLE_PORT = 5584
DEFAULT_LOCK_DIR = Path(tempfile.gettempdir()) / "distrl_jax-emulator-ports"
_AVD_NAME = re.compile(r"^[A-Za-z0-9._-]+$")
_LEARNER_URL = re.compile(r"^tcp://[^\s:/]+:\d{1,5}$")


# ------------------------------------------------------------------ ports


@dataclasses.dataclass(frozen=True)
class PortPair:
    """An emulator's console port (even) and its adb port (console + 1)."""

    console: int

    @property
    def adb(self) -> int:
        """The port adb talks to the emulator on."""
        return self.console + 1

    @property
    def serial(self) -> str:
        """The serial adb lists this emulator under."""
        return f"emulator-{self.console}"


def _port_free(port: int, host: str) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


class PortLease:
    """Port pairs held by this process until :meth:`release` (or process exit)."""

    def __init__(self, pairs: list[PortPair], lock_fds: list[int]):
        self.pairs = pairs
        self._fds = lock_fds

    @property
    def serials(self) -> list[str]:
        """The adb serials of the leased pairs, in port order."""
        return [p.serial for p in self.pairs]

    def release(self) -> None:
        """Give the ports back (closing a lock file drops its flock)."""
        for fd in self._fds:
            os.close(fd)
        self._fds = []

    def __enter__(self) -> PortLease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def allocate_ports(
    count: int,
    *,
    first: int = FIRST_CONSOLE_PORT,
    last: int = LAST_CONSOLE_PORT,
    lock_dir: Path | str | None = None,
    host: str = "127.0.0.1",
) -> PortLease:
    """Lease ``count`` free (console, adb) pairs with console ports in ``[first, last]``.

    A pair is taken only when its lock file can be flocked exclusively and both ports bind;
    a pair locked by another launcher or busy with anything else is skipped.
    """
    if count < 1:
        raise ValueError(f"count must be >= 1 emulator, got {count}")
    if first % 2 or not 1024 <= first <= last <= 65534:
        raise ValueError(
            f"console ports must be an even first port with 1024 <= first <= last <= 65534, got "
            f"first={first} last={last} (emulators use 5554..5682)"
        )
    folder = Path(lock_dir) if lock_dir is not None else DEFAULT_LOCK_DIR
    folder.mkdir(parents=True, exist_ok=True)
    pairs: list[PortPair] = []
    fds: list[int] = []
    for console in range(first, last + 1, 2):
        if len(pairs) == count:
            break
        fd = os.open(folder / f"console-{console}.lock", os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EACCES):
                continue  # another launcher holds this pair
            raise
        if _port_free(console, host) and _port_free(console + 1, host):
            pairs.append(PortPair(console))
            fds.append(fd)
        else:
            os.close(fd)
    if len(pairs) < count:
        for fd in fds:
            os.close(fd)
        raise RuntimeError(
            f"found only {len(pairs)} free emulator port pairs of {count} in {first}..{last}: "
            f"stop other emulators (adb devices) or widen the range (--first-port/--last-port)"
        )
    return PortLease(pairs, fds)


# ------------------------------------------------------------------ commands


@dataclasses.dataclass(frozen=True)
class EmulatorSpec:
    """How to start one headless emulator (one AVD serves every instance when ``read_only``)."""

    avd: str
    snapshot: str | None = "default_boot"  # None: cold boot every time
    memory_mb: int = 2048
    cores: int = 2
    read_only: bool = True
    gpu: str = "swiftshader_indirect"
    accel: str = "on"
    binary: str = "emulator"
    extra_args: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not _AVD_NAME.match(self.avd):
            raise ValueError(f"AVD name {self.avd!r} must be letters, digits, '.', '_' or '-'")
        if self.snapshot is not None and not _AVD_NAME.match(self.snapshot):
            raise ValueError(f"snapshot name {self.snapshot!r} must be letters, digits, ._-")
        if self.memory_mb < 512 or self.cores < 1:
            raise ValueError(
                f"an emulator needs memory_mb >= 512 and cores >= 1, got {self.memory_mb}, "
                f"{self.cores}"
            )


def emulator_command(spec: EmulatorSpec, ports: PortPair) -> list[str]:
    """The argv that boots one headless emulator on ``ports``."""
    argv = [spec.binary, "-avd", spec.avd, "-port", str(ports.console)]
    argv += ["-no-window", "-no-audio", "-no-boot-anim", "-skip-adb-auth"]
    argv += ["-gpu", spec.gpu, "-accel", spec.accel]
    argv += ["-memory", str(spec.memory_mb), "-cores", str(spec.cores)]
    if spec.read_only:
        argv.append("-read-only")  # lets many instances share one AVD; nothing is written back
    if spec.snapshot:
        # Every boot starts from the same clean state, and resets stay fast.
        argv += ["-snapshot", spec.snapshot, "-no-snapshot-save"]
    else:
        argv.append("-no-snapshot")
    return argv + list(spec.extra_args)


def actor_command(
    learner: str,
    serials: Sequence[str],
    *,
    config: str = "android_general",
    actor_id: int = 0,
    adb_host: str = "127.0.0.1",
    adb_port: int = 5037,
    python: str = sys.executable,
    extra_args: Sequence[str] = (),
) -> list[str]:
    """The argv of an actor process that drives ``serials`` for the learner at ``learner``."""
    if not _LEARNER_URL.match(learner):
        raise ValueError(f"learner address {learner!r} must look like tcp://HOST:PORT")
    if not serials or any(not s or "," in s for s in serials):
        raise ValueError(f"serials must be non-empty names without commas, got {list(serials)}")
    return [
        python,
        "-m",
        "distrl_jax.launch",
        "--role=actor",
        f"--learner={learner}",
        f"--config={config}",
        f"--actor-id={actor_id}",
        "--device.kind=adb",
        f"--device.serials={','.join(serials)}",
        f"--device.adb_host={adb_host}",
        f"--device.adb_port={adb_port}",
        *extra_args,
    ]


# ------------------------------------------------------------------ boot


def boot_schedule(count: int, stagger_s: float) -> list[float]:
    """Start offsets (seconds after launch) for ``count`` emulators, ``stagger_s`` apart."""
    if count < 0 or stagger_s < 0:
        raise ValueError(f"count and stagger_s must be >= 0, got {count}, {stagger_s}")
    return [i * stagger_s for i in range(count)]


BootProbe = Callable[[str], bool]  # serial -> whether it reports sys.boot_completed=1


class AdbBootProbe:
    """Asks the adb server whether a serial has finished booting (``getprop sys.boot_completed``).

    Note that adbutils starts an adb server when none answers at ``host:port``.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 5037, timeout_s: float = 5.0):
        self.host, self.port, self.timeout_s = host, port, timeout_s

    def __call__(self, serial: str) -> bool:
        """True when ``serial`` is online and booted; False while offline, absent or booting."""
        import adbutils  # the kit imports without adb; only a real probe needs it

        client = adbutils.AdbClient(host=self.host, port=self.port, socket_timeout=self.timeout_s)
        try:
            out = client.device(serial).shell("getprop sys.boot_completed", timeout=self.timeout_s)
        except (adbutils.AdbError, OSError) as e:
            log.debug("boot probe %s: %s", serial, e)
            return False
        return str(out).strip() == "1"


def wait_for_boot(
    serial: str,
    timeout_s: float,
    *,
    probe: BootProbe | None = None,
    poll_s: float = 2.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Poll until ``serial`` has booted; return the seconds it took.

    Raises InfrastructureError when it has not booted within ``timeout_s``.
    """
    check = probe if probe is not None else AdbBootProbe()
    start = clock()
    while True:
        if check(serial):
            return clock() - start
        if clock() - start >= timeout_s:
            raise InfrastructureError(
                f"{serial} did not finish booting within {timeout_s:g} s "
                f"(sys.boot_completed never read 1): read the emulator's log, check /dev/kvm, "
                f"or raise the boot timeout",
                device=serial,
            )
        sleep(poll_s)
