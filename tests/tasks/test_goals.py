"""Goals: an intent with exactly its slots, hashable, and read by name."""

from __future__ import annotations

import pytest

from distrl_jax.tasks.goals import INTENT_SLOTS, Goal, Intent, Task

EXAMPLE_SLOTS = {
    "app": "Clock",
    "query": "weather paris",
    "keywords": "weather paris",
    "site": "costco.com",
    "state": "off",
    "time": "07:00",
    "incognito": "yes",
}


def test_every_intent_lists_its_slots() -> None:
    assert set(INTENT_SLOTS) == set(Intent)
    for slots in INTENT_SLOTS.values():
        assert set(slots) <= set(EXAMPLE_SLOTS)
        assert len(set(slots)) == len(slots)


@pytest.mark.parametrize("intent", list(Intent), ids=lambda i: i.value)
def test_make_with_exactly_the_slots(intent: Intent) -> None:
    slots = {k: EXAMPLE_SLOTS[k] for k in INTENT_SLOTS[intent]}
    goal = Goal.make(intent, **slots)
    assert [k for k, _ in goal.slots] == sorted(slots)
    for k, v in slots.items():
        assert goal[k] == v and goal.get(k) == v


@pytest.mark.parametrize("intent", [i for i in Intent if INTENT_SLOTS[i]], ids=lambda i: i.value)
def test_missing_slot_is_refused(intent: Intent) -> None:
    slots = {k: EXAMPLE_SLOTS[k] for k in INTENT_SLOTS[intent][1:]}
    with pytest.raises(ValueError, match=f"goal {intent.value} needs slots") as exc:
        Goal.make(intent, **slots)
    assert INTENT_SLOTS[intent][0] in str(exc.value)


def test_extra_slot_is_refused() -> None:
    with pytest.raises(ValueError, match=r"needs slots \['app'\], got \['app', 'site'\]"):
        Goal.make(Intent.OPEN_APP, app="Clock", site="costco.com")
    with pytest.raises(ValueError, match=r"needs slots \[\]"):
        Goal(Intent.CHECK_EMAIL, (("app", "Gmail"),))


def test_direct_construction_is_validated() -> None:
    with pytest.raises(ValueError, match="open_app"):
        Goal(Intent.OPEN_APP)
    assert Goal(Intent.OPEN_APP, (("app", "Clock"),))["app"] == "Clock"


def test_goals_hash_and_compare_by_value() -> None:
    a = Goal.make(Intent.SITE_SEARCH, site="costco.com", query="bose")
    b = Goal.make(Intent.SITE_SEARCH, query="bose", site="costco.com")  # kwarg order is irrelevant
    c = Goal.make(Intent.SITE_SEARCH, query="sony", site="costco.com")
    assert a == b and hash(a) == hash(b)
    assert a != c
    assert len({a, b, c}) == 2


def test_slot_values_become_strings() -> None:
    goal = Goal.make(Intent.SET_ALARM, time=7)  # type: ignore[arg-type]
    assert goal["time"] == "7"


def test_missing_slot_lookup() -> None:
    goal = Goal.make(Intent.OPEN_APP, app="Clock")
    with pytest.raises(KeyError, match="open_app has no slot 'site'"):
        goal["site"]
    assert goal.get("site") == ""
    assert goal.get("site", "none") == "none"


def test_goal_is_frozen() -> None:
    goal = Goal.make(Intent.OPEN_APP, app="Clock")
    with pytest.raises(AttributeError):
        goal.intent = Intent.CHECK_EMAIL  # type: ignore[misc]


def test_task_defaults() -> None:
    task = Task("Open the clock", Goal.make(Intent.OPEN_APP, app="Clock"))
    assert task.suite == "general" and task.horizon == 10
    assert Task("unsupported thing", None).goal is None
