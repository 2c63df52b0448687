"""The exact judge: a true and a false case for every intent, and SimEvaluator's contract."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from distrl_jax.core import Device
from distrl_jax.devices import actions as A
from distrl_jax.devices.simphone.judge import (
    PREDICATES,
    SimEvaluator,
    goal_satisfied,
    query_matches,
)
from distrl_jax.devices.simphone.phone import SimPhone
from distrl_jax.devices.simphone.state import HOME_VIEW, SHADE, Alarm, Tab, View
from distrl_jax.devices.simphone.system_apps import install
from distrl_jax.tasks.goals import Goal, Intent, Task


def _phone(goal: Goal, seed: int = 0) -> SimPhone:
    phone = SimPhone(seed=seed)
    phone.reset(Task("t", goal))
    return phone


def _holds(phone: SimPhone, goal: Goal, **state) -> bool:
    for k, v in state.items():
        setattr(phone.state, k, v)
    return goal_satisfied(goal, phone.state, phone.screen())


def _view_cases(goal: Goal, yes: list[View], no: list[View]) -> None:
    phone = _phone(goal)
    assert not _holds(phone, goal), "the start state must not satisfy the goal"
    for v in yes:
        assert _holds(phone, goal, view=v), v
    for v in no:
        assert not _holds(phone, goal, view=v), v


def test_every_intent_has_a_predicate() -> None:
    assert set(PREDICATES) == set(Intent)


def test_open_app_compares_app_keys() -> None:
    goal = Goal.make(Intent.OPEN_APP, app="SMS")
    _view_cases(
        goal,
        [View("messages", "main"), View("messages", "detail", index=0, name="x")],
        [HOME_VIEW, View("phone", "main"), View(SHADE, "shade")],
    )


def test_web_search_needs_results_covering_the_keywords() -> None:
    goal = Goal.make(Intent.WEB_SEARCH, query="weather in Paris", keywords="weather paris")
    _view_cases(
        goal,
        [
            View("chrome", "serp", query="Paris weather today"),
            View("google", "serp", query="weather paris"),
        ],
        [
            View("chrome", "serp", query="weather london"),
            View("maps", "results", query="weather paris"),
            View("google", "search"),
        ],
    )


def test_site_visit_search_and_first_entry() -> None:
    visit = Goal.make(Intent.SITE_VISIT, site="www.costco.com")
    _view_cases(
        visit,
        [
            View("chrome", "site", site="costco.com"),
            View("chrome", "site_results", site="costco.com", query="tv"),
        ],
        [View("chrome", "site", site="walmart.com"), View("chrome", "serp", query="costco.com")],
    )
    search = Goal.make(Intent.SITE_SEARCH, site="costco.com", query="bose soundsport free")
    _view_cases(
        search,
        [View("chrome", "site_results", site="costco.com", query="Bose SoundSport Free")],
        [
            View("chrome", "site_results", site="costco.com", query="bose"),
            View("chrome", "site_results", site="ebay.com", query="bose soundsport free"),
            View("chrome", "site", site="costco.com"),
        ],
    )
    first = Goal.make(Intent.SITE_SELECT_FIRST, site="costco.com", query="usb-c to usb-b")
    _view_cases(
        first,
        [
            View(
                "chrome",
                "site_product",
                site="costco.com",
                query="usb-c to usb-b",
                index=0,
                name="p",
            )
        ],
        [
            View(
                "chrome",
                "site_product",
                site="costco.com",
                query="usb-c to usb-b",
                index=1,
                name="p",
            ),
            View("chrome", "site_product", site="costco.com", query="", index=0, name="promo"),
            View("chrome", "site_results", site="costco.com", query="usb-c to usb-b"),
        ],
    )


def test_query_matching_uses_content_words() -> None:
    assert query_matches("rayovac triple a batteries", "rayovac triple a")
    assert not query_matches("rayovac", "rayovac triple a")
    assert query_matches("the", "the")  # all stopwords: fall back to the words themselves


def test_maps_search_and_directions() -> None:
    search = Goal.make(Intent.MAPS_SEARCH, query="pizza restaurants", keywords="pizza restaurant")
    _view_cases(
        search,
        [View("maps", "results", query="pizza restaurants")],
        [
            View("maps", "results", query="pizza"),
            View("maps", "home"),
            View("chrome", "serp", query="pizza restaurants"),
        ],
    )
    directions = Goal.make(Intent.MAPS_DIRECTIONS, query="IKEA", keywords="ikea")
    _view_cases(
        directions,
        [View("maps", "directions", query="ikea", index=0, name="Ikea - Uptown")],
        [
            View("maps", "place", query="ikea", index=0, name="Ikea - Uptown"),
            View("maps", "directions", query="target", index=0, name="Target"),
        ],
    )


def test_youtube_play_needs_a_video_from_a_covering_search() -> None:
    goal = Goal.make(Intent.YOUTUBE_PLAY, query="Taylor Swift", keywords="taylor swift")
    _view_cases(
        goal,
        [View("youtube", "watch", query="taylor swift new video", index=2, name="v")],
        [
            View("youtube", "results", query="taylor swift"),
            View("youtube", "watch", query="", index=0, name="Taylor Swift live"),
            View("youtube", "watch", query="drake", index=0, name="v"),
        ],
    )


def test_app_settings_page_of_the_named_app() -> None:
    goal = Goal.make(Intent.APP_SETTINGS, app="Google Maps")
    _view_cases(
        goal,
        [View("settings", "app_info", name="Maps")],
        [
            View("settings", "app_info", name="Photos"),
            View("settings", "all_apps"),
            View("maps", "home"),
        ],
    )


@pytest.mark.parametrize("want", ["on", "off", "toggle"])
def test_app_notifications_switch(want: str) -> None:
    goal = Goal.make(Intent.APP_NOTIFICATIONS, app="Google Maps", state=want)
    for seed in range(6):
        phone = _phone(goal, seed)
        assert not _holds(phone, goal)
        flipped = phone.state.notif_off ^ {"maps"}
        assert _holds(phone, goal, notif_off=flipped)
        assert not _holds(phone, goal, notif_off=flipped ^ {"maps"})


def test_install_app() -> None:
    goal = Goal.make(Intent.INSTALL_APP, app="Yelp")
    phone = _phone(goal)
    assert not _holds(phone, goal)
    install(phone.state, "Spotify")
    assert not _holds(phone, goal)
    install(phone.state, "yelp")
    assert _holds(phone, goal)


def test_set_alarm_needs_an_enabled_alarm_at_that_time() -> None:
    goal = Goal.make(Intent.SET_ALARM, time="15:00")
    phone = _phone(goal)
    assert not _holds(phone, goal)
    assert not _holds(phone, goal, alarms=(Alarm(15, 0, enabled=False), Alarm(3, 0, enabled=True)))
    assert not _holds(phone, goal, alarms=(Alarm(15, 30, enabled=True),))
    assert _holds(phone, goal, alarms=(Alarm(7, 0, enabled=False), Alarm(15, 0, enabled=True)))


@pytest.mark.parametrize("incognito", ["yes", "no"])
def test_chrome_new_tab_of_the_right_kind(incognito: str) -> None:
    goal = Goal.make(Intent.CHROME_NEW_TAB, incognito=incognito)
    phone = _phone(goal)
    ntp = View("chrome", "ntp")
    old = Tab(ntp, incognito=incognito == "yes", opened=False)
    new_right = Tab(ntp, incognito=incognito == "yes", opened=True)
    new_wrong = Tab(ntp, incognito=incognito != "yes", opened=True)
    assert not _holds(phone, goal, view=ntp, tabs=(old,), tab=0)
    assert not _holds(phone, goal, view=ntp, tabs=(old, new_wrong), tab=1)
    assert _holds(phone, goal, view=ntp, tabs=(old, new_right), tab=1)
    assert not _holds(phone, goal, view=HOME_VIEW, tabs=(old, new_right), tab=1)


def test_show_notifications_and_check_email() -> None:
    _view_cases(
        Goal.make(Intent.SHOW_NOTIFICATIONS),
        [View(SHADE, "shade")],
        [HOME_VIEW, View("launcher", "drawer")],
    )
    _view_cases(
        Goal.make(Intent.CHECK_EMAIL),
        [View("gmail", "inbox")],
        [View("gmail", "mail", index=0), View("messages", "main")],
    )


def test_judge_through_real_actions() -> None:
    goal = Goal.make(Intent.SHOW_NOTIFICATIONS)
    phone = _phone(goal)
    ev = SimEvaluator()
    task = Task("Show me my notifications", goal)
    assert not ev.evaluate(task, phone, phone.screenshot(), []).success
    shot = phone.step(A.swipe(0.02, 0.5, 0.7, 0.5))
    verdict = ev.evaluate(task, phone, shot, [])
    assert verdict.success and "shade" in verdict.reason


def test_sim_evaluator_contract() -> None:
    class OtherDevice(Device):
        def reset(self, task: Task) -> np.ndarray:
            return np.zeros((4, 4, 3), np.uint8)

        def step(self, action: A.Action) -> np.ndarray:
            return self.reset(Task("", None))

        def screenshot(self) -> np.ndarray:
            return self.reset(Task("", None))

    ev = SimEvaluator()
    with pytest.raises(TypeError, match="SimPhone"):
        ev.evaluate(Task("t", None), OtherDevice(), np.zeros((4, 4, 3), np.uint8), [])
    phone = SimPhone()
    shot = phone.reset(Task("t", None))
    verdict = ev.evaluate(Task("t", None), phone, shot, [])
    assert not verdict.success and "unsupported" in verdict.reason
    goal = Goal.make(Intent.OPEN_APP, app="Clock")
    phone.reset(Task("t", goal))
    phone.state.view = View("clock", "alarms")
    assert ev.evaluate(Task("Open the clock", goal), phone, phone.screenshot(), []).success
    assert dataclasses.is_dataclass(ev.evaluate(Task("t", goal), phone, shot, []))
