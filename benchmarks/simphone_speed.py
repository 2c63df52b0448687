"""simphone throughput at zero latency: steps per second with rendering included, on one core.

Prints one JSON line. Each case times only ``phone.step(action)`` (which returns the rendered
screenshot); choosing the actions is not timed. Every episode uses a fresh seed, so layouts,
themes and results are new and screens must be built and rendered (the realistic RL case):

* ``expert_noisy``: the scripted expert with noise 0.3 over goals of every intent;
* ``random_policy``: an untrained policy's mix (taps on widgets and at random points, swipes,
  TYPE, BACK/HOME/ENTER);
* ``revisit``: the last 50 expert episodes replayed with their seeds (screens already cached);
* ``reset_per_s``: resets per second with fresh seeds.

Usage: python benchmarks/simphone_speed.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import time

from distrl_jax.devices import actions as A
from distrl_jax.devices.simphone.expert import ScriptedExpert
from distrl_jax.devices.simphone.phone import SimPhone
from distrl_jax.tasks.goals import Goal, Intent, Task

GOALS = (
    Goal.make(Intent.OPEN_APP, app="Calculator"),
    Goal.make(Intent.WEB_SEARCH, query="weather in Paris", keywords="weather paris"),
    Goal.make(Intent.SITE_SELECT_FIRST, site="costco.com", query="bose soundsport free"),
    Goal.make(Intent.MAPS_DIRECTIONS, query="IKEA", keywords="ikea"),
    Goal.make(Intent.YOUTUBE_PLAY, query="Taylor Swift", keywords="taylor swift"),
    Goal.make(Intent.APP_NOTIFICATIONS, app="Maps", state="off"),
    Goal.make(Intent.INSTALL_APP, app="Yelp"),
    Goal.make(Intent.SET_ALARM, time="07:30"),
    Goal.make(Intent.CHROME_NEW_TAB, incognito="yes"),
    Goal.make(Intent.CHECK_EMAIL),
)
_STATUS = (A.ActionType.STATUS_TASK_COMPLETE, A.ActionType.STATUS_TASK_IMPOSSIBLE)


def expert_episodes(phone: SimPhone, episodes: int, seed0: int) -> tuple[int, float, list]:
    """Run the noisy expert; returns (steps, seconds in step, recorded episodes)."""
    steps, spent, recorded = 0, 0.0, []
    for e in range(episodes):
        goal = GOALS[e % len(GOALS)]
        task = Task("bench", goal, horizon=20)
        phone.reset(task, seed=seed0 + e)
        expert = ScriptedExpert(noise=0.3, seed=e)
        acts = []
        for _ in range(task.horizon):
            a = expert.act(goal, phone)
            if a.kind in _STATUS:
                break
            t0 = time.perf_counter()
            phone.step(a)
            spent += time.perf_counter() - t0
            acts.append(a)
        steps += len(acts)
        recorded.append((task, seed0 + e, acts))
    return steps, spent, recorded


def random_policy(phone: SimPhone, episodes: int, seed0: int) -> tuple[int, float]:
    """An untrained policy's action mix; returns (steps, seconds in step)."""
    r = random.Random(seed0)
    steps, spent = 0, 0.0
    for e in range(episodes):
        phone.reset(Task("bench", GOALS[e % len(GOALS)], horizon=20), seed=seed0 + e)
        for _ in range(20):
            u = r.random()
            widgets = [w for w in phone.screen().widgets if w.target]
            if u < 0.5 and widgets:
                a = A.tap(*r.choice(widgets).center)
            elif u < 0.65:
                a = A.tap(r.random(), r.random())
            elif u < 0.75:
                a = A.swipe(r.random(), 0.5, r.random(), 0.5)
            elif u < 0.85:
                a = A.type_text(r.choice(("pizza", "costco.com", "news", "maps")))
            else:
                a = r.choice((A.BACK, A.HOME, A.ENTER))
            t0 = time.perf_counter()
            phone.step(a)
            spent += time.perf_counter() - t0
            steps += 1
    return steps, spent


def suite_success(limit: int = 0) -> dict[str, float]:
    """Expert (noise 0) and random success over each suite's supported training strings."""
    from distrl_jax.actor.episode import RandomPolicy, run_episode
    from distrl_jax.devices.simphone.expert import ScriptedExpert
    from distrl_jax.devices.simphone.judge import SimEvaluator
    from distrl_jax.devices.task_env import TaskEnv
    from distrl_jax.tasks.suites import load_tasks

    out: dict[str, float] = {}
    env = TaskEnv(SimPhone(seed=7), SimEvaluator())
    for suite in ("general", "webshop"):
        tasks = load_tasks(suite, split="all")
        if limit:
            tasks = tasks[:limit]
        expert = ScriptedExpert(noise=0.0, seed=0)
        rand = RandomPolicy(0)
        exp_ok = sum(
            run_episode(env, t, lambda e, o, x=expert: x.act(e.task.goal, e.device)).success
            for t in tasks
        )
        rnd_ok = sum(run_episode(env, t, rand).success for t in tasks)
        out[f"{suite}_tasks"] = len(tasks)
        out[f"{suite}_expert_success"] = round(exp_ok / len(tasks), 4)
        out[f"{suite}_random_success"] = round(rnd_ok / len(tasks), 4)
    return out


def main() -> None:
    """Run the cases and print one JSON line."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer episodes (same keys, < 1 minute)")
    ap.add_argument("--size", type=int, nargs=2, default=(128, 64), metavar=("H", "W"))
    args = ap.parse_args()
    episodes = 150 if args.quick else 1500
    phone = SimPhone(size=tuple(args.size), seed=0)

    n_exp, t_exp, recorded = expert_episodes(phone, episodes, seed0=1_000_000)
    t_rev, n_rev = 0.0, 0
    for task, seed, acts in recorded[-50:]:
        phone.reset(task, seed=seed)
        t0 = time.perf_counter()
        for a in acts:
            phone.step(a)
        t_rev += time.perf_counter() - t0
        n_rev += len(acts)
    n_rand, t_rand = random_policy(phone, episodes, seed0=2_000_000)
    t0 = time.perf_counter()
    n_reset = episodes
    for e in range(n_reset):
        phone.reset(Task("bench", GOALS[e % len(GOALS)]), seed=3_000_000 + e)
    t_reset = time.perf_counter() - t0

    success = suite_success(limit=60 if args.quick else 0)
    print(json.dumps({
        "bench": "simphone_speed",
        **success,
        "quick": args.quick,
        "size": list(args.size),
        "latency": "none",
        "episodes": episodes,
        "expert_noisy_steps_per_s": round(n_exp / t_exp),
        "random_policy_steps_per_s": round(n_rand / t_rand),
        "revisit_steps_per_s": round(n_rev / t_rev),
        "reset_per_s": round(n_reset / t_reset),
        "steps_timed": n_exp + n_rand,
        "python": platform.python_version(),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
