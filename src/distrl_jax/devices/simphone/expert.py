"""A scripted expert that solves every supported goal on simphone, with optional noise.

It reads the current screen's widgets as an accessibility tree would (screen name, targets,
labels, checked/focused flags) plus the few things such a tree also exposes (the foreground
app, the focused field's text and selection, the page's URL parameters), and returns the next
action towards the goal: taps at widget centres, TYPE of the goal's query, ENTER, swipes for the
drawer and the shade, and STATUS_TASK_COMPLETE once the goal holds. With probability ``noise``
it takes a random plausible action instead (a tap on a random widget, BACK, HOME, a wrong TYPE,
a swipe), which makes imperfect demonstrations for behaviour cloning.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from distrl_jax.devices import actions as A
from distrl_jax.devices.actions import Action
from distrl_jax.devices.simphone import catalog
from distrl_jax.devices.simphone.judge import goal_satisfied, query_matches
from distrl_jax.devices.simphone.phone import SimPhone
from distrl_jax.devices.simphone.state import clock_label
from distrl_jax.devices.simphone.widgets import Screen, Widget
from distrl_jax.tasks.goals import Goal, Intent
from distrl_jax.tasks.text import covers

_WRONG_WORDS = ("hello", "weather", "abc", "settings", "pizza", "news", "asdf")


def _tap(w: Widget) -> Action:
    return A.tap(*w.center)


def _find(screen: Screen, pred: Callable[[Widget], bool]) -> Widget | None:
    return next((w for w in screen.widgets if w.target and pred(w)), None)


def _by_prefix(screen: Screen, prefix: str) -> Widget | None:
    return _find(screen, lambda w: w.target.startswith(prefix))


def _search_query(goal: Goal) -> str:
    """What to type: the goal's query when it covers the keywords, else the keywords."""
    q = goal["query"]
    kw = goal.get("keywords")
    return q if not kw or covers(q, kw) else kw


class ScriptedExpert:
    """``act(goal, phone)`` gives the next action; ``noise`` is the probability of a random one."""

    def __init__(self, noise: float = 0.0, seed: int = 0):
        if not 0.0 <= noise <= 1.0:
            raise ValueError(f"noise must be a probability in [0, 1], got {noise!r}")
        self.noise = noise
        self._rng = random.Random(seed)

    def act(self, goal: Goal | None, phone: SimPhone) -> Action:
        """The next action towards ``goal`` on ``phone`` (COMPLETE once it holds)."""
        if goal is None:
            return A.IMPOSSIBLE
        screen = phone.screen()
        if goal_satisfied(goal, phone.state, screen):
            return A.COMPLETE
        if self.noise and self._rng.random() < self.noise:
            return self._random_action(screen)
        return _PLANS[goal.intent](self, goal, phone, screen)

    # ------------------------------------------------------------ building blocks

    def _random_action(self, screen: Screen) -> Action:
        r = self._rng.random()
        tappable = [w for w in screen.widgets if w.target and w.kind != "key"]
        if r < 0.5 and tappable:
            return _tap(self._rng.choice(tappable))
        if r < 0.65:
            return A.BACK
        if r < 0.75:
            return A.HOME
        if r < 0.9:
            return A.type_text(self._rng.choice(_WRONG_WORDS))
        y0, y1 = self._rng.choice(((0.8, 0.3), (0.3, 0.8)))
        return A.swipe(y0, 0.5, y1, 0.5)

    @staticmethod
    def _to_app(phone: SimPhone, screen: Screen, key: str) -> Action | None:
        """The next step towards app ``key`` in the foreground, or None when it already is."""
        if phone.state.view.app == key:
            return None
        icon = _find(
            screen,
            lambda w: (
                w.kind == "icon"
                and w.target.startswith("app:")
                and catalog.app_key(w.target[4:]) == key
            ),
        )
        if screen.name == "launcher.home":
            return _tap(icon) if icon is not None else A.swipe(0.8, 0.5, 0.25, 0.5)
        if screen.name == "launcher.drawer":
            if icon is not None:
                return _tap(icon)
            return ScriptedExpert._type_in(
                phone, screen, "drawer.q", catalog.display_name(key), submit=False
            )
        return A.HOME

    @staticmethod
    def _type_in(
        phone: SimPhone, screen: Screen, field_id: str, text: str, *, submit: bool = True
    ) -> Action:
        """Focus ``field_id``, type ``text`` (replacing what is there), then ENTER if ``submit``."""
        s = phone.state
        if s.focus == field_id:
            if s.text == text:
                return (
                    A.ENTER if submit else A.BACK
                )  # a live filter that found nothing: give up the field
            if not s.text or s.text_selected:
                return A.type_text(text)
            return A.BACK  # leftover text: unfocus, so that the next tap selects it all
        field = _find(screen, lambda w: w.target == f"focus:{field_id}")
        return _tap(field) if field is not None else A.BACK

    # ------------------------------------------------------------ per intent

    def _open_app(self, goal: Goal, phone: SimPhone, screen: Screen) -> Action:
        return self._to_app(phone, screen, catalog.app_key(goal["app"])) or A.COMPLETE

    def _check_email(self, goal: Goal, phone: SimPhone, screen: Screen) -> Action:
        return self._to_app(phone, screen, "gmail") or A.BACK

    def _show_notifications(self, goal: Goal, phone: SimPhone, screen: Screen) -> Action:
        return A.swipe(0.01, 0.5, 0.6, 0.5)

    def _web_search(self, goal: Goal, phone: SimPhone, screen: Screen) -> Action:
        q = _search_query(goal)
        if screen.name == "launcher.home":
            return _tap(screen.find(target="launcher.search"))
        for fid in ("google.q", "serp.q", "chrome.omni"):
            if screen.find(target=f"focus:{fid}") is not None or phone.state.focus == fid:
                return self._type_in(phone, screen, fid, q)
        return A.HOME

    def _site(self, goal: Goal, phone: SimPhone, screen: Screen) -> Action:
        step = self._to_app(phone, screen, "chrome")
        if step is not None:
            return step
        v = phone.state.view
        if v.page in ("menu", "tabs"):
            return A.BACK
        on_site = v.page.startswith("site") and catalog.normalize_domain(
            v.site
        ) == catalog.normalize_domain(goal["site"])
        if not on_site:
            return self._type_in(phone, screen, "chrome.omni", goal["site"])
        if goal.intent is Intent.SITE_VISIT:
            return A.COMPLETE
        wanted = goal["query"]
        if v.page == "site_results" and query_matches(v.query, wanted):
            if goal.intent is Intent.SITE_SEARCH:
                return A.COMPLETE
            first = screen.find(target="site.product:0")
            return _tap(first) if first is not None else A.swipe(0.3, 0.5, 0.8, 0.5)
        if screen.find(target="focus:site.q") is None and phone.state.focus != "site.q":
            return A.BACK  # the cart: no search box
        return self._type_in(phone, screen, "site.q", wanted)

    def _maps(self, goal: Goal, phone: SimPhone, screen: Screen) -> Action:
        step = self._to_app(phone, screen, "maps")
        if step is not None:
            return step
        v, kw = phone.state.view, goal["keywords"]
        found = covers(v.query, kw)
        if (
            screen.name == "maps.results"
            and found
            and goal.intent is Intent.MAPS_DIRECTIONS
            and not phone.state.focus
        ):
            return _tap(_by_prefix(screen, "maps.place:"))
        if screen.name == "maps.place":
            return _tap(screen.find(target="maps.directions")) if found else A.BACK
        if screen.name == "maps.directions":
            return A.BACK
        return self._type_in(phone, screen, "maps.q", _search_query(goal))

    def _youtube(self, goal: Goal, phone: SimPhone, screen: Screen) -> Action:
        step = self._to_app(phone, screen, "youtube")
        if step is not None:
            return step
        v = phone.state.view
        if screen.name == "youtube.home":
            return _tap(screen.find(target="yt.search"))
        if (
            screen.name == "youtube.results"
            and v.query
            and covers(v.query, goal["keywords"])
            and not phone.state.focus
        ):
            return _tap(_by_prefix(screen, "yt.video:"))
        if screen.name == "youtube.watch":
            return A.BACK
        return self._type_in(phone, screen, "yt.q", _search_query(goal))

    def _settings(self, goal: Goal, phone: SimPhone, screen: Screen) -> Action:
        step = self._to_app(phone, screen, "settings")
        if step is not None:
            return step
        key = catalog.app_key(goal["app"])
        if screen.name == "settings.app_info":
            if catalog.app_key(phone.state.view.name) != key:
                return A.BACK
            if goal.intent is Intent.APP_SETTINGS:
                return A.COMPLETE
            return _tap(_by_prefix(screen, "settings.notif:"))
        row = _find(
            screen,
            lambda w: (
                w.target.startswith("settings.app:") and catalog.app_key(w.target[13:]) == key
            ),
        )
        if row is not None:
            return _tap(row)
        if screen.name != "settings.home":
            return A.BACK
        return self._type_in(
            phone, screen, "settings.q", catalog.display_name(goal["app"]), submit=True
        )

    def _install(self, goal: Goal, phone: SimPhone, screen: Screen) -> Action:
        step = self._to_app(phone, screen, "play store")
        if step is not None:
            return step
        key = catalog.app_key(goal["app"])
        if screen.name == "playstore.app":
            install = _by_prefix(screen, "play.install:")
            same = catalog.app_key(phone.state.view.name) == key
            return _tap(install) if same and install is not None else A.BACK
        if screen.name == "playstore.results" and not phone.state.focus:
            row = _find(
                screen,
                lambda w: w.target.startswith("play.app:") and catalog.app_key(w.target[9:]) == key,
            )
            if row is not None:
                return _tap(row)
        return self._type_in(phone, screen, "play.q", catalog.display_name(goal["app"]))

    def _alarm(self, goal: Goal, phone: SimPhone, screen: Screen) -> Action:
        step = self._to_app(phone, screen, "clock")
        if step is not None:
            return step
        hh, mm = (int(v) for v in goal["time"].split(":"))
        if mm % 5:
            return A.IMPOSSIBLE  # the editor offers minutes in steps of 5
        if screen.name == "clock.alarms":
            label = clock_label(hh, mm)
            row = _find(screen, lambda w: w.kind == "item" and w.label == label)
            if row is not None:
                toggle = _find(
                    screen, lambda w: w.kind == "toggle" and w.box[0] <= row.center[0] <= w.box[2]
                )
                if toggle is not None and not toggle.checked:
                    return _tap(toggle)
            return _tap(screen.find(target="clock.add"))
        if screen.name == "clock.edit":
            for target in (
                f"clock.hour:{hh % 12 or 12}",
                f"clock.min:{mm}",
                f"clock.ampm:{'pm' if hh >= 12 else 'am'}",
            ):
                w = screen.find(target=target)
                if w is not None and not w.checked:
                    return _tap(w)
            return _tap(screen.find(target="clock.save"))
        alarm_tab = screen.find(target="clock.tab:Alarm")
        return _tap(alarm_tab) if alarm_tab is not None else A.BACK

    def _new_tab(self, goal: Goal, phone: SimPhone, screen: Screen) -> Action:
        step = self._to_app(phone, screen, "chrome")
        if step is not None:
            return step
        want = "1" if goal["incognito"] == "yes" else "0"
        if screen.name == "chrome.menu":
            return _tap(screen.find(target=f"chrome.newtab:{want}"))
        if screen.name == "chrome.tabs":
            return A.BACK
        return _tap(screen.find(target="chrome.menu"))


_PLANS: dict[Intent, Callable[[ScriptedExpert, Goal, SimPhone, Screen], Action]] = {
    Intent.OPEN_APP: ScriptedExpert._open_app,
    Intent.WEB_SEARCH: ScriptedExpert._web_search,
    Intent.SITE_VISIT: ScriptedExpert._site,
    Intent.SITE_SEARCH: ScriptedExpert._site,
    Intent.SITE_SELECT_FIRST: ScriptedExpert._site,
    Intent.MAPS_SEARCH: ScriptedExpert._maps,
    Intent.MAPS_DIRECTIONS: ScriptedExpert._maps,
    Intent.YOUTUBE_PLAY: ScriptedExpert._youtube,
    Intent.APP_SETTINGS: ScriptedExpert._settings,
    Intent.APP_NOTIFICATIONS: ScriptedExpert._settings,
    Intent.INSTALL_APP: ScriptedExpert._install,
    Intent.SET_ALARM: ScriptedExpert._alarm,
    Intent.CHROME_NEW_TAB: ScriptedExpert._new_tab,
    Intent.SHOW_NOTIFICATIONS: ScriptedExpert._show_notifications,
    Intent.CHECK_EMAIL: ScriptedExpert._check_email,
}
