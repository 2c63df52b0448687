"""Evaluation on simphone: per-task success tables for a policy, the scripted expert or random.

``run_baselines`` is the main job until training lands: it evaluates the scripted expert (the
ceiling: every supported task is solvable) and the random policy (the floor) on the evaluation
tasks, prints the suite table and writes ``eval/<name>.md|json`` into the run folder.
"""

from __future__ import annotations

import pathlib
import time
from collections.abc import Callable, Sequence

from distrl_jax.actor.episode import ActFn, RandomPolicy, run_episode
from distrl_jax.config import Config
from distrl_jax.devices.simphone.expert import ScriptedExpert
from distrl_jax.devices.simphone.judge import SimEvaluator
from distrl_jax.devices.simphone.phone import SimPhone
from distrl_jax.devices.task_env import TaskEnv
from distrl_jax.metrics.eval_table import EpisodeRecord, build_table, to_markdown, write_table
from distrl_jax.tasks.goals import Task
from distrl_jax.tasks.suites import load_tasks


def make_env(cfg: Config, seed: int) -> TaskEnv:
    """A simphone TaskEnv at the model's screen size, with the config's penalties."""
    phone = SimPhone(size=cfg.model.image_size, seed=seed)
    return TaskEnv(
        phone,
        SimEvaluator(),
        history_k=cfg.tasks.history_k,
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


__all__ = ["BASELINES", "evaluate", "make_env", "run_baselines", "to_markdown"]
