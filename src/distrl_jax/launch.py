"""``python -m distrl_jax.launch``: build the parts of a run from a config and run them.

Roles:

* ``all`` (default) — everything on this machine: the learner here, ``runtime.num_actors``
  actor processes beside it (the main job of the README);
* ``learner`` / ``actor`` — one side of a multi-machine run (``--learner=tcp://HOST:PORT``);
* ``baselines`` — evaluate the scripted expert and the random policy on the evaluation tasks.

Config: ``--config`` names a preset in ``configs/`` (or a path to one); any field is overridden
as ``--section.field=value``; ``--help`` lists every field with its current value and help.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from distrl_jax.config import (
    Config,
    ConfigError,
    apply_overrides,
    describe_fields,
    load_preset,
    preset_names,
    split_overrides,
)

ROLES = ("all", "learner", "actor", "baselines")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m distrl_jax.launch",
        description="Train a phone-control agent with asynchronous distributed RL (DistRL / A-RIDE).",
        add_help=False,
    )
    p.add_argument(
        "--help", "-h", action="store_true", help="show this help and every config field"
    )
    p.add_argument(
        "--config", default="smoke", help=f"preset name ({', '.join(preset_names())}) or path"
    )
    p.add_argument("--accel", default=None, help="cpu | gpu | tpu | auto (overrides the preset)")
    p.add_argument("--role", default="all", choices=ROLES, help="what this process runs")
    p.add_argument("--run-dir", default=None, help="run folder (default runs/<time>-<preset>)")
    p.add_argument(
        "--learner", default="", help="actor role: the learner's address tcp://HOST:PORT"
    )
    p.add_argument("--actor-id", type=int, default=0, help="actor role: this actor's index")
    p.add_argument(
        "--devices",
        default=None,
        help="shorthand: simphone:N (N simphones per actor) or adb:SERIAL,SERIAL,...",
    )
    p.add_argument("--log-level", default="WARNING", help="Python logging level")
    return p


def devices_overrides(spec: str, parser: argparse.ArgumentParser) -> list[str]:
    """``simphone:8`` -> device.kind/count; ``adb:a,b`` -> device.kind/serials."""
    kind, _, rest = spec.partition(":")
    if kind == "simphone" and rest.isdigit() and int(rest) >= 1:
        return ["device.kind=simphone", f"device.count={rest}"]
    if kind == "adb" and rest and all(rest.split(",")):
        return ["device.kind=adb", f"device.serials={rest}", f"device.count={len(rest.split(','))}"]
    parser.error(
        f"--devices={spec!r}: expected simphone:N (e.g. simphone:8) or adb:SERIAL[,SERIAL...] "
        "(e.g. adb:emulator-5554,emulator-5556; see `adb devices`)"
    )
    raise AssertionError("unreachable")  # parser.error exits


def parse_args(argv: Sequence[str]) -> tuple[argparse.Namespace, Config]:
    """Parse flags and overrides into (namespace, validated Config)."""
    parser = _parser()
    known = {a for action in parser._actions for a in action.option_strings}
    flags, overrides = split_overrides(argv, known)
    ns, rest = parser.parse_known_args(flags)
    if rest:
        parser.error(
            f"unrecognised arguments {rest}; config fields are set as --section.field=value"
        )
    cfg = load_preset(ns.config)
    if ns.accel:
        overrides.append(f"accel={ns.accel}")
    if ns.run_dir:
        overrides.append(f"run_dir={ns.run_dir}")
    if ns.devices:
        overrides.extend(devices_overrides(ns.devices, parser))
    cfg = apply_overrides(cfg, overrides)
    return ns, cfg


def print_help(cfg: Config) -> None:
    """Flags, then every config field with its current value and help."""
    _parser().print_help()
    print("\nconfig fields (set with --section.field=value):")
    rows = describe_fields(cfg)
    width = max(len(r[0]) for r in rows)
    for name, value, help_text in rows:
        print(f"  --{name:<{width}} = {value:<14} {help_text}")


def prepare(argv: Sequence[str]) -> tuple[argparse.Namespace, Config, str] | int:
    """Parse, print help, set up logging and pick the platform: ``(ns, cfg, platform)``, or the
    exit code to return at once (0 after --help, 2 for a bad config, 3 for a missing device)."""
    try:
        ns, cfg = parse_args(argv)
    except ConfigError as e:
        print(f"config error: {e}", file=sys.stderr)
        return 2
    if ns.help:
        print_help(cfg)
        return 0
    logging.basicConfig(
        level=ns.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from distrl_jax.accel import AcceleratorUnavailable, select_platform

    try:
        return ns, cfg, select_platform(cfg.accel)
    except AcceleratorUnavailable as e:
        print(f"error: {e}", file=sys.stderr)
        return 3


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    prepared = prepare(argv)
    if isinstance(prepared, int):
        return prepared
    ns, cfg, platform = prepared

    if ns.role == "actor":
        if not ns.learner:
            print("error: --role=actor needs --learner=tcp://HOST:PORT", file=sys.stderr)
            return 2
        from distrl_jax.runtime.actor_service import main as actor_main

        return actor_main(cfg, ns.learner, ns.actor_id)
    drop = ("--role", "--run-dir", "--run_dir", "--actor-id", "--accel", "--learner")
    # Actors act on CPU (the accelerator is the learner's); they need no run folder.
    child_argv = [a for a in argv if not a.startswith(drop)] + ["--accel=cpu"]
    if ns.role == "all":
        from distrl_jax.runtime.training import ActorSupervisor

        try:  # before the run folder, the warm start and the learner: fail in a second
            ActorSupervisor.actor_commands(cfg, "", child_argv)
        except ConfigError as e:
            print(f"config error: {e}", file=sys.stderr)
            return 2
    from distrl_jax.run_folder import create_run_folder

    run_dir = create_run_folder(cfg)
    print(f"run folder: {run_dir}  (platform: {platform}, preset: {cfg.name}, role: {ns.role})")
    if ns.role == "baselines":
        from distrl_jax.evaluate import run_baselines

        run_baselines(cfg, run_dir)
        return 0
    from distrl_jax.checkpoint.manager import CheckpointError
    from distrl_jax.runtime.training import train

    try:
        return train(cfg, run_dir, spawn_actors=ns.role == "all", child_argv=child_argv)
    except (ConfigError, CheckpointError) as e:  # e.g. a checkpoint.init_from that is not one
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
