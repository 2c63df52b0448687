"""The worker-host emulator fleet without emulators: port leases across threads and processes,
command lines (checked against launch's real parser), boot waits through real adbutils against
a stub adb server, and the supervisor's restart policy driving harmless python processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from distrl_jax.core import InfrastructureError
from distrl_jax.devices.emulator_fleet import (
    AdbBootProbe,
    EmulatorSpec,
    PortPair,
    actor_command,
    allocate_ports,
    boot_schedule,
    emulator_command,
    wait_for_boot,
)
from distrl_jax.devices.emulator_supervisor import (
    FleetSupervisor,
    RestartPolicy,
    Slot,
    SlotState,
    fleet_slots,
    spawn_process,
)
from distrl_jax.launch import parse_args

pytestmark = pytest.mark.timeout(60)

# A pid-dependent range keeps concurrent test runs on this host apart. It lies below the OS's
# ephemeral range (32768-60999 here): ports there go to other tests' outgoing sockets at random,
# and one in this block once made a pair look taken.
BASE = 20000 + (os.getpid() % 500) * 16


# ------------------------------------------------------------------ ports


def test_threads_get_disjoint_pairs(tmp_path: Path) -> None:
    barrier = threading.Barrier(8)
    leases: list = [None] * 8

    def take(i: int) -> None:
        barrier.wait()
        leases[i] = allocate_ports(2, first=BASE, last=BASE + 200, lock_dir=tmp_path)

    threads = [threading.Thread(target=take, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ports = [p.console for lease in leases for p in lease.pairs]
    assert len(ports) == 16 and len(set(ports)) == 16
    assert all(p % 2 == 0 for p in ports)
    for lease in leases:
        lease.release()


_HOLDER = """
import sys
from distrl_jax.devices.emulator_fleet import allocate_ports
lease = allocate_ports(3, first=int(sys.argv[1]), last=int(sys.argv[1]) + 200, lock_dir=sys.argv[2])
print(",".join(str(p.console) for p in lease.pairs), flush=True)
sys.stdin.readline()  # hold the lease until the test lets go
"""


def test_processes_get_disjoint_pairs(tmp_path: Path) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _HOLDER, str(BASE), str(tmp_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    try:
        got = [p.stdout.readline().strip().split(",") for p in procs]
    finally:
        for p in procs:
            p.communicate("\n", timeout=30)
    ports = [int(x) for line in got for x in line]
    assert len(ports) == 12 and len(set(ports)) == 12


def test_lease_holds_until_released_and_busy_ports_are_skipped(tmp_path: Path) -> None:
    first = allocate_ports(1, first=BASE, last=BASE + 20, lock_dir=tmp_path)
    second = allocate_ports(1, first=BASE, last=BASE + 20, lock_dir=tmp_path)
    assert first.pairs[0] != second.pairs[0]
    first.release()
    again = allocate_ports(1, first=BASE, last=BASE + 20, lock_dir=tmp_path)
    assert again.pairs == first.pairs  # a released pair is free again
    again.release()
    second.release()

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        start = port - port % 2  # the pair holding ``port`` (console or adb side)
        with allocate_ports(1, first=start, last=start + 40, lock_dir=tmp_path) as lease:
            assert lease.pairs[0].console != start


def test_too_few_free_pairs_fails_clearly_and_keeps_nothing(tmp_path: Path) -> None:
    held = allocate_ports(2, first=BASE, last=BASE + 2, lock_dir=tmp_path)
    with pytest.raises(RuntimeError, match="found only 0 free emulator port pairs of 1"):
        allocate_ports(1, first=BASE, last=BASE + 2, lock_dir=tmp_path)
    held.release()
    with allocate_ports(2, first=BASE, last=BASE + 2, lock_dir=tmp_path) as lease:
        assert lease.serials == [f"emulator-{BASE}", f"emulator-{BASE + 2}"]
    with pytest.raises(ValueError, match="even first port"):
        allocate_ports(1, first=5555, lock_dir=tmp_path)
    with pytest.raises(ValueError, match="count"):
        allocate_ports(0, lock_dir=tmp_path)


# ------------------------------------------------------------------ commands


def test_emulator_command_is_headless_read_only_from_snapshot() -> None:
    spec = EmulatorSpec(avd="distrl_pixel", memory_mb=3072, cores=4, extra_args=("-verbose",))
    argv = emulator_command(spec, PortPair(5556))
    assert argv[:5] == ["emulator", "-avd", "distrl_pixel", "-port", "5556"]
    for flag in ("-no-window", "-no-audio", "-no-boot-anim", "-read-only", "-no-snapshot-save"):
        assert flag in argv
    pairs = {argv[i]: argv[i + 1] for i in range(len(argv) - 1)}
    assert pairs["-gpu"] == "swiftshader_indirect" and pairs["-accel"] == "on"
    assert pairs["-memory"] == "3072" and pairs["-cores"] == "4"
    assert pairs["-snapshot"] == "default_boot" and argv[-1] == "-verbose"
    assert PortPair(5556).adb == 5557 and PortPair(5556).serial == "emulator-5556"

    cold = emulator_command(EmulatorSpec(avd="a", snapshot=None, read_only=False), PortPair(5554))
    assert "-no-snapshot" in cold and "-snapshot" not in cold and "-read-only" not in cold


@pytest.mark.parametrize(
    "kwargs", [{"avd": "my avd"}, {"avd": "a;rm -rf"}, {"avd": "ok", "memory_mb": 100}]
)
def test_emulator_spec_rejects_bad_values(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        EmulatorSpec(**kwargs)


def test_actor_command_parses_with_the_real_launcher() -> None:
    argv = actor_command(
        "tcp://10.0.0.2:5555", ["emulator-5554", "emulator-5556"], actor_id=3, adb_port=5038
    )
    assert argv[:3] == [sys.executable, "-m", "distrl_jax.launch"]
    ns, cfg = parse_args(argv[3:])
    assert ns.role == "actor" and ns.learner == "tcp://10.0.0.2:5555" and ns.actor_id == 3
    assert cfg.device.kind == "adb" and cfg.device.adb_port == 5038
    assert cfg.device.serials == ("emulator-5554", "emulator-5556")
    with pytest.raises(ValueError, match="tcp://HOST:PORT"):
        actor_command("10.0.0.2:5555", ["emulator-5554"])
    with pytest.raises(ValueError, match="serials"):
        actor_command("tcp://h:1", [])


def test_boot_schedule_staggers() -> None:
    assert boot_schedule(4, 7.5) == [0.0, 7.5, 15.0, 22.5]
    with pytest.raises(ValueError):
        boot_schedule(2, -1)


# ------------------------------------------------------------------ boot wait (real adbutils)


class StubAdbServer:
    """Speaks enough of the adb host protocol for ``getprop``: ``booted[serial]`` polls answer
    '0' before they answer '1'; unknown serials get FAIL."""

    def __init__(self, booted_after: dict[str, int]):
        self.booted_after = dict(booted_after)
        self.polls: dict[str, int] = {}
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    @staticmethod
    def _read_cmd(conn: socket.socket) -> str:
        n = int(conn.recv(4, socket.MSG_WAITALL), 16)
        return conn.recv(n, socket.MSG_WAITALL).decode()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            cmd = self._read_cmd(conn)
            if cmd == "host:version":
                conn.sendall(b"OKAY0004" + b"%04x" % 40)  # 40: the transport:SERIAL dialect
                return
            serial = cmd.removeprefix("host:transport:")
            if serial not in self.booted_after:
                msg = b"device '%s' not found" % serial.encode()
                conn.sendall(b"FAIL" + b"%04x" % len(msg) + msg)
                return
            conn.sendall(b"OKAY")
            assert self._read_cmd(conn) == "shell:getprop sys.boot_completed"
            self.polls[serial] = self.polls.get(serial, 0) + 1
            done = self.polls[serial] > self.booted_after[serial]
            conn.sendall(b"OKAY" + (b"1\n" if done else b"\n"))

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def adb_server() -> Iterator[StubAdbServer]:
    server = StubAdbServer({"emulator-5554": 2, "emulator-5556": 10**9})
    yield server
    server.close()


def test_wait_for_boot_through_adbutils(adb_server: StubAdbServer) -> None:
    probe = AdbBootProbe(port=adb_server.port, timeout_s=2)
    took = wait_for_boot("emulator-5554", 10, probe=probe, poll_s=0.01)
    assert adb_server.polls["emulator-5554"] == 3 and took < 5
    assert probe("emulator-5554") and not probe("emulator-5556")
    assert not probe("emulator-9999")  # not attached: FAIL from the server, not an exception


def test_wait_for_boot_times_out(adb_server: StubAdbServer) -> None:
    probe = AdbBootProbe(port=adb_server.port, timeout_s=2)
    with pytest.raises(InfrastructureError, match=r"did not finish booting within 0\.3 s") as e:
        wait_for_boot("emulator-5556", 0.3, probe=probe, poll_s=0.05)
    assert e.value.device == "emulator-5556" and adb_server.polls["emulator-5556"] >= 2


# ------------------------------------------------------------------ supervisor


class FakeLauncher:
    """Starts ``python -c`` with the code chosen for a slot's argv[0]; records each start."""

    def __init__(self, code: dict[str, str]):
        self.code = code
        self.started: list[list[str]] = []
        self.handles: list = []

    def __call__(self, argv: Sequence[str], log_path: Path | None):
        self.started.append(list(argv))
        h = spawn_process([sys.executable, "-c", self.code[argv[0]]], log_path)
        self.handles.append(h)
        return h


SLEEP = "import time; time.sleep(60)"
CRASH = "import sys; sys.exit(3)"


def _slots(n_emus: int, emu_code: str = "emu") -> list[Slot]:
    emus = [(f"emulator-{5554 + 2 * i}", [emu_code, str(i)]) for i in range(n_emus)]
    return fleet_slots(emus, [["actor"]], stagger_s=5.0)


def test_staggered_boot_then_actor_starts(tmp_path: Path) -> None:
    booted: set[str] = set()
    launcher = FakeLauncher({"emu": SLEEP, "actor": "import sys; sys.exit(0)"})
    sup = FleetSupervisor(_slots(2), probe=lambda s: s in booted, launcher=launcher)
    sup.begin(100.0)
    sup.tick(100.0)
    assert [a[1] for a in launcher.started] == ["0"]  # the second waits its stagger
    sup.tick(105.0)
    assert sup.status() == {
        "emulator-5554": SlotState.BOOTING,
        "emulator-5556": SlotState.BOOTING,
        "actor-0": SlotState.WAITING,
    }
    booted.add("emulator-5554")
    sup.tick(106.0)
    assert sup.status()["actor-0"] is SlotState.WAITING  # not until every emulator settled
    booted.add("emulator-5556")
    sup.tick(107.0)
    sup.tick(107.0)
    assert launcher.started[-1] == ["actor"]
    launcher.handles[-1].wait(timeout=20)
    sup.tick(108.0)
    assert sup.status()["actor-0"] is SlotState.STOPPED and sup.finished()
    sup.stop()
    assert all(h.poll() is not None for h in launcher.handles)


def test_crashing_emulator_backs_off_then_gives_up() -> None:
    launcher = FakeLauncher({"crash": CRASH, "actor": SLEEP})
    policy = RestartPolicy(base_delay_s=1, factor=2, max_delay_s=100, max_restarts=3, window_s=1e4)
    sup = FleetSupervisor(
        _slots(1, "crash"), probe=lambda s: False, launcher=launcher, policy=policy
    )
    sup.begin(0.0)
    now, delays = 0.0, []
    for _ in range(4):
        sup.tick(now)  # starts it
        launcher.handles[-1].wait(timeout=20)
        (event,) = sup.tick(now)
        assert "exited with code 3" in event
        slot = sup.slots[0]
        if slot.state is SlotState.FAILED:
            break
        delays.append(slot.next_start_at - now)
        sup.tick(now + 0.5 * delays[-1])  # still backing off: nothing starts
        now = slot.next_start_at
    assert delays == [1.0, 2.0, 4.0]
    assert sup.slots[0].state is SlotState.FAILED and "gave up after 3 restarts" in event
    assert len(launcher.started) == 4 and sup.finished()


def test_restarts_outside_the_window_are_forgotten() -> None:
    policy = RestartPolicy(base_delay_s=1, max_restarts=2, window_s=60)
    assert policy.allows([0.0, 10.0], 59.0) is False
    assert policy.allows([0.0, 10.0], 65.0) is True  # the restart at 0 left the window
    assert policy.delay_s(0) == 1 and policy.delay_s(10) == 300.0  # capped at max_delay_s
    with pytest.raises(ValueError):
        RestartPolicy(factor=0.5)


def test_boot_timeout_and_failed_health_checks_restart() -> None:
    healthy = {"emulator-5554": False}
    launcher = FakeLauncher({"emu": SLEEP, "actor": SLEEP})
    sup = FleetSupervisor(
        _slots(1),
        probe=lambda s: healthy[s],
        launcher=launcher,
        policy=RestartPolicy(base_delay_s=2, max_restarts=5),
        boot_timeout_s=30,
        health_every_s=10,
        health_misses=2,
    )
    sup.begin(0.0)
    sup.tick(0.0)
    first = launcher.handles[-1]
    (event,) = [e for e in sup.tick(30.0) if e.startswith("emulator")]
    assert "not booted within 30 s" in event and first.poll() is not None  # killed
    healthy["emulator-5554"] = True
    sup.tick(32.0)  # restart after the 2 s backoff
    sup.tick(33.0)
    assert sup.status()["emulator-5554"] is SlotState.READY
    healthy["emulator-5554"] = False
    assert sup.tick(40.0) == []  # not due for a health check yet
    sup.tick(43.0)  # first miss
    assert sup.status()["emulator-5554"] is SlotState.READY
    events = sup.tick(53.0)  # second miss
    assert any("failed 2 health checks" in e for e in events)
    assert sup.status()["emulator-5554"] is SlotState.WAITING
    sup.stop()
    assert all(h.poll() is not None for h in launcher.handles)


def test_run_loop_ends_when_the_actor_finishes(tmp_path: Path) -> None:
    launcher = FakeLauncher({"emu": SLEEP, "actor": "print('actor ran')"})
    slots = fleet_slots([("emulator-5554", ["emu"])], [["actor"]], stagger_s=0, log_dir=tmp_path)
    sup = FleetSupervisor(slots, probe=lambda s: True, launcher=launcher)
    assert sup.run(poll_s=0.05) == 0
    assert (tmp_path / "actor-0.log").read_text().strip() == "actor ran"
    assert all(h.poll() is not None for h in launcher.handles)  # the emulator was stopped
