"""simphone's exact judge: one predicate per intent over the phone's state and current screen.

Information questions count as answered when a results page of a search covering the
question's keywords is on screen (what the AitW judge accepted); app goals compare app keys
(``catalog.app_key``), so "SMS" and "Messages" are one app; sites compare bare domains, so
"www.costco.com" is costco.com.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from distrl_jax.core import Device, Evaluator, Verdict
from distrl_jax.devices.actions import Action
from distrl_jax.devices.simphone import catalog
from distrl_jax.devices.simphone.phone import SimPhone
from distrl_jax.devices.simphone.state import SHADE, PhoneState
from distrl_jax.devices.simphone.widgets import Screen
from distrl_jax.tasks.goals import Goal, Intent, Task
from distrl_jax.tasks.text import covers, keywords, words


def query_matches(searched: str, wanted: str) -> bool:
    """Whether a search for ``searched`` is a search for ``wanted`` (its content words all occur)."""
    need = keywords(wanted) or tuple(words(wanted))
    return covers(searched, need)


def _same_site(domain: str, goal_site: str) -> bool:
    return bool(domain) and catalog.normalize_domain(domain) == catalog.normalize_domain(goal_site)


def _on(screen: Screen, name: str) -> bool:
    return screen.name == name


def _open_app(g: Goal, s: PhoneState, sc: Screen) -> bool:
    return s.view.app == catalog.app_key(g["app"])


def _web_search(g: Goal, s: PhoneState, sc: Screen) -> bool:
    v = s.view
    return (
        v.page == "serp"
        and sc.name in ("chrome.serp", "google.serp")
        and covers(v.query, g["keywords"])
    )


def _site_visit(g: Goal, s: PhoneState, sc: Screen) -> bool:
    v = s.view
    return v.app == "chrome" and v.page.startswith("site") and _same_site(v.site, g["site"])


def _site_search(g: Goal, s: PhoneState, sc: Screen) -> bool:
    v = s.view
    return (
        _on(sc, "chrome.site_results")
        and _same_site(v.site, g["site"])
        and query_matches(v.query, g["query"])
    )


def _site_select_first(g: Goal, s: PhoneState, sc: Screen) -> bool:
    v = s.view
    return (
        _on(sc, "chrome.site_product")
        and v.index == 0
        and _same_site(v.site, g["site"])
        and bool(v.query)
        and query_matches(v.query, g["query"])
    )


def _maps_search(g: Goal, s: PhoneState, sc: Screen) -> bool:
    return _on(sc, "maps.results") and covers(s.view.query, g["keywords"])


def _maps_directions(g: Goal, s: PhoneState, sc: Screen) -> bool:
    v = s.view
    return _on(sc, "maps.directions") and (
        covers(v.query, g["keywords"]) or covers(v.name, g["keywords"])
    )


def _youtube_play(g: Goal, s: PhoneState, sc: Screen) -> bool:
    v = s.view
    return _on(sc, "youtube.watch") and bool(v.query) and covers(v.query, g["keywords"])


def _app_settings(g: Goal, s: PhoneState, sc: Screen) -> bool:
    return _on(sc, "settings.app_info") and catalog.app_key(s.view.name) == catalog.app_key(
        g["app"]
    )


def _app_notifications(g: Goal, s: PhoneState, sc: Screen) -> bool:
    key = catalog.app_key(g["app"])
    off = key in s.notif_off
    want = g["state"]
    if want == "toggle":
        return off != (key in s.start_notif_off)
    return off == (want == "off")


def _install_app(g: Goal, s: PhoneState, sc: Screen) -> bool:
    key = catalog.app_key(g["app"])
    return any(catalog.app_key(n) == key for n in s.installed)


def _set_alarm(g: Goal, s: PhoneState, sc: Screen) -> bool:
    hh, mm = (int(v) for v in g["time"].split(":"))
    return any(a.enabled and a.hour == hh and a.minute == mm for a in s.alarms)


def _chrome_new_tab(g: Goal, s: PhoneState, sc: Screen) -> bool:
    tab = s.current_tab
    want_incognito = g["incognito"] == "yes"
    return (
        _on(sc, "chrome.ntp") and tab is not None and tab.opened and tab.incognito == want_incognito
    )


def _show_notifications(g: Goal, s: PhoneState, sc: Screen) -> bool:
    return s.view.app == SHADE


def _check_email(g: Goal, s: PhoneState, sc: Screen) -> bool:
    return _on(sc, "gmail.inbox")


PREDICATES: dict[Intent, Callable[[Goal, PhoneState, Screen], bool]] = {
    Intent.OPEN_APP: _open_app,
    Intent.WEB_SEARCH: _web_search,
    Intent.SITE_VISIT: _site_visit,
    Intent.SITE_SEARCH: _site_search,
    Intent.SITE_SELECT_FIRST: _site_select_first,
    Intent.MAPS_SEARCH: _maps_search,
    Intent.MAPS_DIRECTIONS: _maps_directions,
    Intent.YOUTUBE_PLAY: _youtube_play,
    Intent.APP_SETTINGS: _app_settings,
    Intent.APP_NOTIFICATIONS: _app_notifications,
    Intent.INSTALL_APP: _install_app,
    Intent.SET_ALARM: _set_alarm,
    Intent.CHROME_NEW_TAB: _chrome_new_tab,
    Intent.SHOW_NOTIFICATIONS: _show_notifications,
    Intent.CHECK_EMAIL: _check_email,
}


def goal_satisfied(goal: Goal, state: PhoneState, screen: Screen) -> bool:
    """Whether ``goal`` holds on a phone in ``state`` showing ``screen``."""
    return PREDICATES[goal.intent](goal, state, screen)


class SimEvaluator(Evaluator):
    """The exact judge as a ``core.Evaluator``; it reads a SimPhone's state, so only a SimPhone
    can be judged (real devices need a VLM judge)."""

    def evaluate(
        self, task: Task, device: Device, screen: np.ndarray, history: Sequence[Action]
    ) -> Verdict:
        """Success when the task's goal holds on the phone now."""
        if not isinstance(device, SimPhone):
            raise TypeError(
                f"SimEvaluator judges simphone's internal state and needs a SimPhone device, got "
                f"{type(device).__name__}; use an evaluator that reads screenshots for other devices"
            )
        if task.goal is None:
            return Verdict(False, f"unsupported task {task.text!r}: no goal to check")
        ok = goal_satisfied(task.goal, device.state, device.screen())
        where = device.screen().name
        return Verdict(ok, f"{task.goal.intent.value} {'holds' if ok else 'not yet'} on {where}")
