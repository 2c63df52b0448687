"""Evaluation on simphone: per-task success tables for a policy, the scripted expert or random.

``python -m distrl_jax.evaluate --checkpoint PATH [--tasks FILE|SUITE] [--episodes-per-task N]``
loads the policy from a checkpoint (its meta holds the model spec), plays every task on many
simphones at once with one batched policy call per step (``actor.rollout.VectorRollout``), and
prints and writes the per-task table (trials, success with a 95% interval, mean length, invalid
rate, infrastructure failures apart) and the suite average.

``run_baselines`` is the main job until training lands: it evaluates the scripted expert (the
ceiling: every supported task is solvable) and the random policy (the floor) on the evaluation
tasks, prints the suite table and writes ``eval/<name>.md|json`` into the run folder.
"""

from __future__ import annotations

import argparse
import dataclasses
import pathlib
import sys
import time
import zlib
from collections.abc import Callable, Sequence

from distrl_jax.actor.episode import ActFn, RandomPolicy, run_episode
from distrl_jax.actor.rollout import VectorRollout, policy_act
from distrl_jax.checkpoint.manager import CheckpointError
from distrl_jax.checkpoint.policy_loader import load_policy_state, resolve
from distrl_jax.config import Config
from distrl_jax.core import Policy
from distrl_jax.devices.simphone.expert import ScriptedExpert
from distrl_jax.devices.simphone.judge import SimEvaluator
from distrl_jax.devices.simphone.latency import FaultModel, LatencyModel
from distrl_jax.devices.simphone.phone import SimPhone
from distrl_jax.devices.task_env import TaskEnv
from distrl_jax.metrics.eval_table import (
    EpisodeRecord,
    TaskRow,
    build_table,
    to_markdown,
    write_table,
)
from distrl_jax.models.jax_policy import JaxPolicy
from distrl_jax.tasks.goals import Task
from distrl_jax.tasks.suites import load_tasks


def make_env(cfg: Config, seed: int) -> TaskEnv:
    """A simphone TaskEnv at the model's screen size, with the config's device settings
    (layout, latency model, faults, time scale) and penalties."""
    dc = cfg.device
    # The phone applies time_scale to latencies and hangs (the models keep their reference units).
    latency = LatencyModel() if dc.latency == "emulator" else None
    faults = None
    if dc.hang_prob or dc.offline_prob:
        faults = FaultModel(hang_prob=dc.hang_prob, offline_prob=dc.offline_prob)
    phone = SimPhone(
        size=cfg.model.image_size,
        seed=seed,
        latency=latency,
        faults=faults,
        time_scale=dc.time_scale,
        layout_seed=dc.layout_seed if dc.layout == "fixed" else None,
    )
    return TaskEnv(
        phone,
        SimEvaluator(),
        history_k=cfg.model.history_k,
        invalid_penalty=cfg.tasks.invalid_penalty,
        repeat_penalty=cfg.tasks.repeat_penalty,
    )


def eval_tasks(cfg: Config) -> list[Task]:
    """The evaluation tasks of the config (its eval suite and split, capped at eval.max_tasks)."""
    tasks = load_tasks(
        cfg.tasks.eval, split=cfg.tasks.eval_split, horizon=cfg.tasks.horizon or None
    )
    if cfg.eval.max_tasks:
        tasks = tasks[: cfg.eval.max_tasks]
    if not tasks:
        raise ValueError(f"no supported tasks in {cfg.tasks.eval!r} split {cfg.tasks.eval_split!r}")
    return tasks


def untypeable(tasks: Sequence[Task], action_len: int) -> list[Task]:
    """The tasks whose search query is longer than a TYPE action of ``action_len`` tokens can
    type (La - 2 bytes): no policy of that spec can succeed on them."""
    limit = action_len - 2
    return [t for t in tasks if len(dict(t.goal.slots).get("query", "").encode()) > limit]


def evaluate(
    env: TaskEnv, tasks: Sequence[Task], act: ActFn, episodes_per_task: int = 1
) -> list[EpisodeRecord]:
    """Run every task ``episodes_per_task`` times on ``env``."""
    return [run_episode(env, t, act) for t in tasks for _ in range(episodes_per_task)]


def _expert_act(noise: float, seed: int) -> ActFn:
    expert = ScriptedExpert(noise=noise, seed=seed)

    def act(env: TaskEnv, obs) -> object:
        assert env.task is not None and env.task.goal is not None
        return expert.act(env.task.goal, env.device)

    return act


BASELINES: dict[str, Callable[[int], ActFn]] = {
    "expert": lambda seed: _expert_act(0.0, seed),
    "expert_noise0.3": lambda seed: _expert_act(0.3, seed),
    "random": lambda seed: RandomPolicy(seed),
}


def run_baselines(cfg: Config, run_dir: str | pathlib.Path) -> dict[str, float]:
    """Evaluate the baselines, print their tables' summary, write them; returns success rates."""
    tasks = eval_tasks(cfg)
    print(f"evaluating baselines on {len(tasks)} tasks of {cfg.tasks.eval}:{cfg.tasks.eval_split}")
    rates: dict[str, float] = {}
    summary = []
    for name, make in BASELINES.items():
        t0 = time.perf_counter()
        records = evaluate(
            make_env(cfg, cfg.seed), tasks, make(cfg.seed), cfg.eval.episodes_per_task
        )
        rows, total = build_table(records)
        write_table(rows, total, pathlib.Path(run_dir) / "eval", name)
        rates[name] = total.success_rate
        summary.append((name, total, time.perf_counter() - t0))
    print()
    print(
        "| policy | episodes | success | 95% CI | mean length | invalid rate | infra failures | seconds |"
    )
    print("|---|---:|---:|---|---:|---:|---:|---:|")
    for name, total, secs in summary:
        print(
            f"| {name} | {total.trials} | {total.success_rate:.1%} | [{total.ci_low:.2f}, {total.ci_high:.2f}] "
            f"| {total.mean_length:.1f} | {total.invalid_rate:.1%} | {total.infra_failures} | {secs:.1f} |"
        )
    print(f"\nper-task tables: {pathlib.Path(run_dir) / 'eval'}/<policy>.md")
    return rates


def make_envs(cfg: Config, n: int, seed: int) -> list[TaskEnv]:
    """``n`` simphone environments with distinct seeds."""
    return [make_env(cfg, seed * 1000 + i) for i in range(n)]


def evaluate_policy(
    cfg: Config,
    policy: Policy,
    tasks: Sequence[Task],
    *,
    episodes_per_task: int = 1,
    num_envs: int = 16,
    seed: int = 0,
) -> list[EpisodeRecord]:
    """Play each task ``episodes_per_task`` times with ``policy`` on ``num_envs`` simphones."""
    todo = [t for t in tasks for _ in range(episodes_per_task)]
    envs = make_envs(cfg, max(1, min(num_envs, len(todo))), seed)
    # Episode i starts from the same state whatever the number of environments.
    rollout = VectorRollout(
        envs,
        policy_act(policy),
        # Slow devices step in threads, so their latencies overlap instead of adding up.
        threads=len(envs) if cfg.device.latency != "none" else 0,
        episode_seed=lambda i: zlib.crc32(f"eval:{seed}:{i}".encode()),
    )
    try:
        return [r.record for r in rollout.run(todo)]
    finally:
        rollout.close()


def report(
    records: Sequence[EpisodeRecord], out_dir: str | pathlib.Path, name: str, seconds: float
) -> TaskRow:
    """Print the per-task table and the suite row; write ``<name>.md|json``; returns the suite row."""
    rows, total = build_table(records)
    md, _ = write_table(rows, total, out_dir, name)
    print(to_markdown(rows, total, title=name))
    print(
        f"{name}: success {total.success_rate:.1%} [{total.ci_low:.2f}, {total.ci_high:.2f}] over "
        f"{total.trials} episodes, {total.infra_failures} infrastructure failures, "
        f"{seconds:.1f} s; table: {md}"
    )
    return total


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m distrl_jax.evaluate",
        description="Evaluate a checkpointed policy on simphone and write a per-task success table.",
    )
    p.add_argument("--checkpoint", required=True, help="run folder, checkpoints/ folder or step")
    p.add_argument(
        "--tasks", default="general", help="suite name (general | webshop) or a task file"
    )
    p.add_argument("--split", default="val", help="train | val | all (suites only; files: all)")
    p.add_argument("--episodes-per-task", type=int, default=1)
    p.add_argument("--max-tasks", type=int, default=0, help="0 = all")
    p.add_argument("--envs", type=int, default=16, help="simphones played in parallel")
    p.add_argument("--sample", action="store_true", help="sample at temperature 1, not greedy")
    p.add_argument("--horizon", type=int, default=0, help="0 = the suite's default")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="", help="output folder (default: <run>/eval next to PATH)")
    p.add_argument("--name", default="", help="table name (default: checkpoint-<step>)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit status (2 on bad input, with the reason printed)."""
    args = _parser().parse_args(argv)
    if args.episodes_per_task < 1 or args.envs < 1 or args.max_tasks < 0:
        print(
            "error: --episodes-per-task and --envs must be >= 1, --max-tasks >= 0", file=sys.stderr
        )
        return 2
    try:
        spec, params, meta = load_policy_state(args.checkpoint)
        split = args.split if args.tasks in ("general", "webshop") else "all"
        tasks = load_tasks(args.tasks, split=split, horizon=args.horizon or None)
    except (CheckpointError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.max_tasks:
        tasks = tasks[: args.max_tasks]
    if not tasks:
        print(f"error: no supported tasks in {args.tasks!r} ({split})", file=sys.stderr)
        return 2
    cfg = dataclasses.replace(Config(), model=spec)
    policy = JaxPolicy(
        spec,
        params,
        version=int(meta.get("step", 0)),
        seed=args.seed,
        greedy=not args.sample,
        buckets=(1, 8, min(32, max(8, args.envs))),
    )
    directory, _ = resolve(args.checkpoint)
    out = pathlib.Path(args.out) if args.out else directory.parent / "eval"
    name = args.name or f"checkpoint-{meta.get('step', 0)}"
    print(
        f"evaluating {args.checkpoint} (step {meta.get('step')}, {spec.name}) on "
        f"{len(tasks)} tasks x {args.episodes_per_task} episodes, {args.envs} simphones"
    )
    t0 = time.perf_counter()
    records = evaluate_policy(
        cfg,
        policy,
        tasks,
        episodes_per_task=args.episodes_per_task,
        num_envs=args.envs,
        seed=args.seed,
    )
    report(records, out, name, time.perf_counter() - t0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
