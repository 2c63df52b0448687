#!/usr/bin/env python3
"""Boot K headless Android emulators on this worker host and run the actor(s) that drive them.

    python actors/launch_emulators.py --count 8 --avd distrl_pixel --learner tcp://LEARNER:5555

Ports are leased atomically (two launchers on one host never collide); emulators start
``--stagger-s`` apart from the AVD's snapshot, read-only; once all have booted (or failed),
``python -m distrl_jax.launch --role=actor --device.kind=adb --device.serials=...`` starts.
Emulators that die, hang at boot or stop answering are restarted with exponential backoff, up
to ``--max-restarts`` within ``--restart-window-s``. Arguments this script does not know go to
the actor (e.g. ``--tasks.train=webshop``). ``--dry-run`` prints what would run and exits.
Logs: ``--log-dir/emulator-PORT.log`` and ``actor-N.log``. Stop with Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from distrl_jax.devices.emulator_fleet import (
    AdbBootProbe,
    EmulatorSpec,
    actor_command,
    allocate_ports,
    boot_schedule,
    emulator_command,
)
from distrl_jax.devices.emulator_supervisor import FleetSupervisor, RestartPolicy, fleet_slots


def _default_emulator() -> str:
    sdk = os.environ.get("ANDROID_HOME") or os.environ.get("ANDROID_SDK_ROOT")
    if sdk and (Path(sdk) / "emulator" / "emulator").exists():
        return str(Path(sdk) / "emulator" / "emulator")
    return "emulator"


def build_parser() -> argparse.ArgumentParser:
    """The command-line flags."""
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    p.add_argument("--count", type=int, required=True, help="emulators to run on this host")
    p.add_argument("--avd", required=True, help="AVD name (see setup_worker.sh)")
    p.add_argument("--learner", required=True, help="learner control address tcp://HOST:PORT")
    p.add_argument("--config", default="android_general", help="distrl_jax preset for actors")
    p.add_argument("--actors", type=int, default=1, help="actor processes sharing the emulators")
    p.add_argument("--actor-id-base", type=int, default=0, help="first --actor-id on this host")
    p.add_argument("--snapshot", default="default_boot", help="snapshot to boot from")
    p.add_argument("--cold-boot", action="store_true", help="ignore snapshots (slow boots)")
    p.add_argument("--memory-mb", type=int, default=2048, help="RAM per emulator")
    p.add_argument("--cores", type=int, default=2, help="vCPUs per emulator")
    p.add_argument("--gpu", default="swiftshader_indirect", help="emulator -gpu mode")
    p.add_argument("--emulator", default=_default_emulator(), help="emulator binary")
    p.add_argument("--stagger-s", type=float, default=10.0, help="seconds between boots")
    p.add_argument("--boot-timeout-s", type=float, default=300.0, help="boot deadline")
    p.add_argument("--max-restarts", type=int, default=5, help="per emulator, within the window")
    p.add_argument("--restart-window-s", type=float, default=1800.0, help="restart window")
    p.add_argument("--first-port", type=int, default=5554, help="lowest console port (even)")
    p.add_argument("--last-port", type=int, default=5584, help="highest console port")
    p.add_argument("--lock-dir", default=None, help="port lock files (default: a tmp folder)")
    p.add_argument("--adb-host", default="127.0.0.1", help="adb server host")
    p.add_argument("--adb-port", type=int, default=5037, help="adb server port")
    p.add_argument("--log-dir", default="logs/emulators", help="per-process log files")
    p.add_argument("--dry-run", action="store_true", help="print the commands and exit")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Parse flags, lease ports, then print (--dry-run) or supervise the fleet."""
    args, actor_extra = build_parser().parse_known_args(argv)
    if args.count < 1 or not 1 <= args.actors <= args.count:
        print("error: need --count >= 1 and 1 <= --actors <= --count", file=sys.stderr)
        return 2
    try:
        spec = EmulatorSpec(
            avd=args.avd,
            snapshot=None if args.cold_boot else args.snapshot,
            memory_mb=args.memory_mb,
            cores=args.cores,
            gpu=args.gpu,
            binary=args.emulator,
        )
        lease = allocate_ports(
            args.count, first=args.first_port, last=args.last_port, lock_dir=args.lock_dir
        )
    except (ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    with lease:
        emulators = [(p.serial, emulator_command(spec, p)) for p in lease.pairs]
        try:
            actors = [
                actor_command(
                    args.learner,
                    lease.serials[i :: args.actors],
                    config=args.config,
                    actor_id=args.actor_id_base + i,
                    adb_host=args.adb_host,
                    adb_port=args.adb_port,
                    extra_args=actor_extra,
                )
                for i in range(args.actors)
            ]
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        if args.dry_run:
            for at, (serial, cmd) in zip(
                boot_schedule(args.count, args.stagger_s), emulators, strict=True
            ):
                print(f"# {serial}, starts at +{at:g} s\n{shlex.join(cmd)}")
            for cmd in actors:
                print(f"# actor, starts once the emulators have booted\n{shlex.join(cmd)}")
            return 0
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
        supervisor = FleetSupervisor(
            fleet_slots(emulators, actors, stagger_s=args.stagger_s, log_dir=Path(args.log_dir)),
            probe=AdbBootProbe(args.adb_host, args.adb_port),
            policy=RestartPolicy(max_restarts=args.max_restarts, window_s=args.restart_window_s),
            boot_timeout_s=args.boot_timeout_s,
        )
        stopping: list[int] = []

        def request_stop(signum: int, _frame: object) -> None:
            stopping.append(signum)

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        code = supervisor.run(should_stop=lambda: bool(stopping))
        for name, state in supervisor.status().items():
            print(f"{name}: {state.value}")
        return code


if __name__ == "__main__":
    sys.exit(main())
