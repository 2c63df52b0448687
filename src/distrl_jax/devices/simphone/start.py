"""The seeded start state of an episode, consistent with the task's goal.

Always: the home screen, a random theme and launcher layout, the system apps plus a few
third-party ones, some alarms, notifications and Chrome tabs. Per goal: the apps it names are
installed, except the one INSTALL_APP asks for (which is not); no enabled alarm already rings at
a SET_ALARM time (sometimes a disabled one does: switching it on is a second way to succeed); an
APP_NOTIFICATIONS switch starts opposite to the requested state; Chrome's tabs never already
show the goal's site or search.
"""

from __future__ import annotations

import random

from distrl_jax.devices.simphone import catalog, launcher
from distrl_jax.devices.simphone.state import Alarm, Notification, PhoneState, Tab, View
from distrl_jax.devices.simphone.ui import THEMES
from distrl_jax.tasks.goals import Goal, Intent
from distrl_jax.tasks.text import covers

_TAB_QUERIES = ("weather today", "movie times", "pizza recipe", "football scores", "flight status", "stock market")  # fmt: skip
_TAB_SITES = ("amazon.com", "walmart.com", "ebay.com", "bestbuy.com", "target.com", "costco.com", "newegg.com")  # fmt: skip
_NOTES = (
    ("Gmail", "New email", "Maria Lopez: Weekend plans"),
    ("Messages", "Alex Kim", "See you at 7?"),
    ("Calendar", "Team standup", "In 15 minutes"),
    ("Play Store", "Updates available", "3 apps can be updated"),
    ("YouTube", "New video", "A channel you follow uploaded"),
    ("Photos", "Memories", "1 year ago today"),
    ("Clock", "Upcoming alarm", "Tap to dismiss"),
)


def _fixed_device(layout_seed: int, banned: str) -> tuple[int, tuple[str, ...], object]:
    """Theme, installed apps and home screen of a *fixed* device: every app installed (but the
    one an INSTALL_APP task asks for), one layout for every episode, like an emulator reset to
    the same snapshot each time (the DigiRL/DistRL setting)."""
    r = random.Random(layout_seed)
    theme = r.randrange(len(THEMES))
    everything = [a.name for a in catalog.SYSTEM_APPS] + [a.name for a in catalog.THIRD_PARTY_APPS]
    installed = tuple(sorted(set(everything), key=str.lower))
    layout = launcher.make_layout(r, installed)
    kept = tuple(n for n in installed if catalog.app_key(n) != banned)
    for name in set(installed) - set(kept):
        layout = launcher.remove_from_layout(layout, name)
    return theme, kept, layout


def start_state(goal: Goal | None, seed: int, layout_seed: int | None = None) -> PhoneState:
    """The start state of an episode with ``goal`` (None: just a home screen) and ``seed``.

    With ``layout_seed`` the device itself (theme, installed apps, home screen) is fixed by it
    and only the episode's content (alarms, tabs, notifications, results) varies with ``seed``.
    """
    r = random.Random(seed)
    intent = goal.intent if goal is not None else None
    banned = catalog.app_key(goal["app"]) if intent is Intent.INSTALL_APP else ""
    if layout_seed is not None:
        theme, installed, layout = _fixed_device(layout_seed, banned)
        by_key = {catalog.app_key(n): n for n in installed}
        return PhoneState(
            seed=seed,
            theme=theme,
            installed=installed,
            layout=layout,
            **_notification_switches(r, goal, by_key),
            alarms=_alarms(r, goal),
            tabs=_tabs(r, goal),
            tab=0,
            notifications=_notifications(r, by_key),
            clock=f"{r.randint(1, 12)}:{r.randint(0, 59):02d}",
        )
    names = [a.name for a in catalog.SYSTEM_APPS]
    names += r.sample([a.name for a in catalog.THIRD_PARTY_APPS], r.randint(4, 9))
    if goal is not None and goal.get("app") and intent is not Intent.INSTALL_APP:
        names.append(catalog.display_name(goal["app"]))
    by_key: dict[str, str] = {}
    for n in names:
        by_key.setdefault(catalog.app_key(n), n)
    by_key.pop(banned, None)
    installed = tuple(sorted(by_key.values(), key=str.lower))

    return PhoneState(
        seed=seed,
        theme=r.randrange(len(THEMES)),
        installed=installed,
        layout=launcher.make_layout(r, installed),
        **_notification_switches(r, goal, by_key),
        alarms=_alarms(r, goal),
        tabs=_tabs(r, goal),
        tab=0,
        notifications=_notifications(r, by_key),
        clock=f"{r.randint(1, 12)}:{r.randint(0, 59):02d}",
    )


def _notification_switches(
    r: random.Random, goal: Goal | None, by_key: dict[str, str]
) -> dict[str, frozenset[str]]:
    off = {k for k in sorted(by_key) if r.random() < 0.2}
    if goal is not None and goal.intent is Intent.APP_NOTIFICATIONS:
        key = catalog.app_key(goal["app"])
        want = goal["state"]
        if want == "on" or (want == "toggle" and r.random() < 0.5):
            off.add(key)
        else:
            off.discard(key)
    return {"notif_off": frozenset(off), "start_notif_off": frozenset(off)}


def _alarms(r: random.Random, goal: Goal | None) -> tuple[Alarm, ...]:
    alarms = {
        (r.randint(5, 22), r.choice((0, 15, 30, 45))): r.random() < 0.6
        for _ in range(r.randint(1, 4))
    }
    if goal is not None and goal.intent is Intent.SET_ALARM:
        hh, mm = (int(v) for v in goal["time"].split(":"))
        alarms.pop((hh, mm), None)
        if mm % 5 == 0 and r.random() < 0.3:
            alarms[(hh, mm)] = False  # switching this one on also sets the alarm
    return tuple(Alarm(h, m, on) for (h, m), on in sorted(alarms.items()))


def _tabs(r: random.Random, goal: Goal | None) -> tuple[Tab, ...]:
    avoid_site = catalog.normalize_domain(goal.get("site")) if goal is not None else ""
    keywords = goal.get("keywords") if goal is not None else ""
    pages = []
    for _ in range(r.randint(1, 3)):
        pick = r.random()
        if pick < 0.35:
            pages.append(View("chrome", "ntp"))
        elif pick < 0.7:
            q = r.choice(_TAB_QUERIES)
            if not (keywords and covers(q, keywords)):
                pages.append(View("chrome", "serp", query=q))
        else:
            site = r.choice([d for d in _TAB_SITES if d != avoid_site])
            pages.append(View("chrome", "site", site=site))
    pages = pages or [View("chrome", "ntp")]
    # An old incognito tab may exist behind the first one; it never counts as a new tab.
    incognito = [
        len(pages) > 1 and i == len(pages) - 1 and r.random() < 0.3 for i in range(len(pages))
    ]
    return tuple(Tab(p, incognito=inc) for p, inc in zip(pages, incognito, strict=True))


def _notifications(r: random.Random, by_key: dict[str, str]) -> tuple[Notification, ...]:
    pool = [
        Notification(catalog.app_key(app), t, x)
        for app, t, x in _NOTES
        if catalog.app_key(app) in by_key
    ]
    third = [k for k in by_key if k not in catalog.SYSTEM_KEYS]
    pool += [Notification(k, by_key[k], "You have new activity") for k in third]
    notes = r.sample(pool, min(len(pool), r.randint(2, 5)))
    return tuple(notes)
