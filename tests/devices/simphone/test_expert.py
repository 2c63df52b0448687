"""The scripted expert: 100% within the horizon at zero noise, on hand-made goals of every
intent and (when the parser exists) on every parseable training task; noise stays valid."""

from __future__ import annotations

from pathlib import Path

import pytest

from distrl_jax.devices import actions as A
from distrl_jax.devices.simphone.expert import ScriptedExpert
from distrl_jax.devices.simphone.judge import SimEvaluator, goal_satisfied
from distrl_jax.devices.simphone.phone import SimPhone
from distrl_jax.devices.task_env import TaskEnv
from distrl_jax.tasks.goals import Goal, Intent, Task
from distrl_jax.tasks.text import keywords

_STATUS = (A.ActionType.STATUS_TASK_COMPLETE, A.ActionType.STATUS_TASK_IMPOSSIBLE)
_DATA = Path(__file__).resolve().parents[3] / "src" / "distrl_jax" / "data" / "aitw_tasks"


def _q(intent: Intent, query: str) -> Goal:
    return Goal.make(intent, query=query, keywords=" ".join(keywords(query)))


GOALS: tuple[Goal, ...] = (
    Goal.make(Intent.OPEN_APP, app="Calculator"),
    Goal.make(Intent.OPEN_APP, app="SMS"),
    Goal.make(Intent.OPEN_APP, app="Reddit"),
    Goal.make(Intent.OPEN_APP, app="Google Play Store"),
    Goal.make(Intent.OPEN_APP, app="Zorbo Notes"),  # an app no list names
    _q(Intent.WEB_SEARCH, "weather in Hong Kong"),
    _q(Intent.WEB_SEARCH, "how much does a 2 bedroom apartment rent for in Chicago"),
    Goal.make(Intent.SITE_VISIT, site="costco.com"),
    Goal.make(Intent.SITE_VISIT, site="www.gadgetbarn.com"),
    Goal.make(Intent.SITE_SEARCH, site="bestbuy.com", query="logitech g910"),
    Goal.make(Intent.SITE_SELECT_FIRST, site="newegg.com", query="usb-c to usb-b"),
    Goal.make(Intent.SITE_SELECT_FIRST, site="homedepot.com", query="12' ladder"),
    _q(Intent.MAPS_SEARCH, "top rated sushi restaurants"),
    _q(Intent.MAPS_DIRECTIONS, "nearest IKEA"),
    _q(Intent.YOUTUBE_PLAY, "new Bruno Mars video"),
    Goal.make(Intent.APP_SETTINGS, app="Pandora"),
    Goal.make(Intent.APP_SETTINGS, app="Google Maps"),
    Goal.make(Intent.APP_NOTIFICATIONS, app="Google Maps", state="off"),
    Goal.make(Intent.APP_NOTIFICATIONS, app="Google Maps", state="on"),
    Goal.make(Intent.APP_NOTIFICATIONS, app="Google Photos", state="toggle"),
    Goal.make(Intent.INSTALL_APP, app="Yelp"),
    Goal.make(Intent.INSTALL_APP, app="Calendar"),
    Goal.make(Intent.INSTALL_APP, app="Frobnicator Pro"),
    Goal.make(Intent.SET_ALARM, time="07:00"),
    Goal.make(Intent.SET_ALARM, time="15:00"),
    Goal.make(Intent.SET_ALARM, time="00:30"),
    Goal.make(Intent.SET_ALARM, time="12:00"),
    Goal.make(Intent.CHROME_NEW_TAB, incognito="yes"),
    Goal.make(Intent.CHROME_NEW_TAB, incognito="no"),
    Goal.make(Intent.SHOW_NOTIFICATIONS),
    Goal.make(Intent.CHECK_EMAIL),
)


def _horizon(goal: Goal) -> int:
    return 20 if goal.intent.name.startswith("SITE") else 10


def _solve(goal: Goal, seed: int, expert: ScriptedExpert) -> tuple[bool, int]:
    """Run the expert; (whether the goal held within the horizon, steps taken)."""
    phone = SimPhone(seed=seed)
    phone.reset(Task("t", goal, horizon=_horizon(goal)))
    for t in range(_horizon(goal)):
        action = expert.act(goal, phone)
        if action.kind in _STATUS:
            return False, t
        phone.step(action)
        if goal_satisfied(goal, phone.state, phone.screen()):
            return True, t + 1
    return False, _horizon(goal)


def test_goal_set_covers_every_intent() -> None:
    assert {g.intent for g in GOALS} == set(Intent)


@pytest.mark.parametrize(
    "goal", GOALS, ids=lambda g: f"{g.intent.value}:{'|'.join(v for _, v in g.slots)}"
)
def test_expert_solves_every_goal_at_zero_noise(goal: Goal) -> None:
    for seed in range(8):
        ok, steps = _solve(goal, seed, ScriptedExpert(seed=seed))
        assert ok, f"seed {seed}: not solved in {steps} steps"


def test_expert_says_complete_once_the_goal_holds_and_impossible_without_goal() -> None:
    goal = Goal.make(Intent.SHOW_NOTIFICATIONS)
    phone = SimPhone(seed=0)
    phone.reset(Task("t", goal))
    expert = ScriptedExpert()
    phone.step(expert.act(goal, phone))
    assert expert.act(goal, phone) == A.COMPLETE
    assert expert.act(None, phone) == A.IMPOSSIBLE


def test_expert_through_task_env_gets_the_reward() -> None:
    goal = Goal.make(Intent.SITE_SELECT_FIRST, site="costco.com", query="bose soundsport free")
    task = Task(
        'Go to costco.com, search for "bose soundsport free", and select the first entry',
        goal,
        "webshop",
        20,
    )
    phone = SimPhone(seed=3)
    env = TaskEnv(phone, SimEvaluator())
    env.reset(task)
    expert, rewards = ScriptedExpert(), []
    while not env.done:
        _, info = env.step(expert.act(goal, phone))
        rewards.append(info.reward)
        assert not info.invalid
    assert rewards[-1] == 1.0 and sum(rewards) == 1.0 and len(rewards) <= task.horizon


def test_noisy_expert_is_valid_deterministic_and_still_often_succeeds() -> None:
    def run(seed: int) -> tuple[list[str], int]:
        trace, wins = [], 0
        for i, goal in enumerate(GOALS):
            phone = SimPhone(seed=i)
            phone.reset(Task("t", goal, horizon=_horizon(goal)))
            expert = ScriptedExpert(noise=0.3, seed=seed + i)
            for _ in range(_horizon(goal)):
                a = expert.act(goal, phone)
                trace.append(A.to_compact(a))
                if a.kind in _STATUS:
                    break
                phone.step(a)
                if goal_satisfied(goal, phone.state, phone.screen()):
                    wins += 1
                    break
        return trace, wins

    (t1, w1), (t2, w2) = run(0), run(0)
    assert t1 == t2 and w1 == w2
    assert any(a.startswith("TYPE") for a in t1) and "BACK" in t1
    assert len(GOALS) // 3 <= w1  # noise 0.3 costs some episodes, not most
    t3, _ = run(100)
    assert t3 != t1


def test_full_noise_never_breaks_the_phone() -> None:
    expert = ScriptedExpert(noise=1.0, seed=5)
    phone = SimPhone(seed=5)
    for goal in GOALS[:10]:
        phone.reset(Task("t", goal))
        for _ in range(30):
            phone.step(expert.act(goal, phone))
            assert phone.screenshot().shape == (128, 64, 3)


def test_noise_must_be_a_probability() -> None:
    with pytest.raises(ValueError, match="noise"):
        ScriptedExpert(noise=1.5)


def test_expert_solves_every_parseable_training_task() -> None:
    parser = pytest.importorskip("distrl_jax.tasks.parser")
    solved, total, failures = 0, 0, []
    for name in ("general_train.txt", "webshop_train.txt"):
        for i, line in enumerate((_DATA / name).read_text().splitlines()):
            if not line.strip():
                continue
            try:
                goal = parser.parse(line)
            except parser.UnsupportedTask:
                continue
            total += 1
            ok, steps = _solve(goal, i, ScriptedExpert())
            solved += ok
            if not ok:
                failures.append((line, steps))
    assert total > 900
    assert solved == total, failures[:5]
