"""Clock: the alarm list (a switch per alarm, "+" to add) and the alarm editor (hour 1-12,
minutes in steps of 5, AM/PM, Save), plus the world-clock, timer and stopwatch tabs."""

from __future__ import annotations

import dataclasses

from distrl_jax.devices.simphone import catalog, content, nav
from distrl_jax.devices.simphone.state import Alarm, AlarmDraft, PhoneState, View, clock_label
from distrl_jax.devices.simphone.ui import BAR_BOTTOM, STATUS_BOTTOM, Row, Theme, button, rows, text
from distrl_jax.devices.simphone.widgets import Widget

TABS = ("Alarm", "Clock", "Timer", "Stopwatch")
MINUTES = tuple(range(0, 60, 5))
_PAGES = {"Alarm": "alarms", "Clock": "world", "Timer": "timer", "Stopwatch": "stopwatch"}


def _frame(s: PhoneState, theme: Theme, current: str) -> list[Widget]:
    out = [Widget((STATUS_BOTTOM, 0.0, BAR_BOTTOM, 1.0), "text", current, theme.bg, theme.text)]
    for i, tab in enumerate(TABS):
        x0 = i * 0.25
        on = tab == current
        out.append(
            button(
                (0.93, x0 + 0.01, 0.99, x0 + 0.24),
                tab,
                f"clock.tab:{tab}",
                theme.accent if on else theme.bar,
                (255, 255, 255) if on else theme.text,
                glyph=catalog.glyph("clock"),
            )
        )
    return out


@nav.page("clock", "alarms")
def _alarms(s: PhoneState, theme: Theme) -> nav.Page:
    items = [
        Row(
            a.label,
            f"clock.edit:{i}",
            sub="On" if a.enabled else "Off",
            toggle_target=f"clock.toggle:{i}",
            checked=a.enabled,
        )
        for i, a in enumerate(s.alarms)
    ]
    widgets, max_scroll = rows(items, BAR_BOTTOM + 0.01, theme, s.scroll, bottom=0.82, row_h=0.1)
    out = _frame(s, theme, "Alarm") + widgets
    out.append(button((0.83, 0.4, 0.91, 0.6), "+", "clock.add", theme.accent))
    return nav.Page(out, max_scroll)


@nav.page("clock", "world")
def _world(s: PhoneState, theme: Theme) -> nav.Page:
    out = [
        *_frame(s, theme, "Clock"),
        text((BAR_BOTTOM + 0.03, 0.1, BAR_BOTTOM + 0.12, 0.9), s.clock, theme, theme.bg),
    ]
    r = content.rng(s.seed, "cities")
    cities = r.sample(("London", "New York", "Tokyo", "Paris", "Sydney", "Berlin", "Moscow"), 3)
    widgets, _ = rows(
        [Row(c, "", sub=f"{r.randint(-9, 9):+d} hrs") for c in cities],
        BAR_BOTTOM + 0.15,
        theme,
        0,
        bottom=0.9,
    )
    return nav.Page(out + widgets)


@nav.page("clock", "timer")
def _timer(s: PhoneState, theme: Theme) -> nav.Page:
    out = [*_frame(s, theme, "Timer"), text((0.2, 0.15, 0.3, 0.85), "00h 00m 00s", theme, theme.bg)]
    out.append(button((0.7, 0.35, 0.78, 0.65), "Start", "clock.noop", theme.accent))
    return nav.Page(out)


@nav.page("clock", "stopwatch")
def _stopwatch(s: PhoneState, theme: Theme) -> nav.Page:
    out = [*_frame(s, theme, "Stopwatch"), text((0.3, 0.2, 0.4, 0.8), "0:00.00", theme, theme.bg)]
    out.append(button((0.7, 0.35, 0.78, 0.65), "Start", "clock.noop", theme.accent))
    return nav.Page(out)


@nav.page("clock", "edit")
def _editor(s: PhoneState, theme: Theme) -> nav.Page:
    d = s.draft
    out = [
        Widget(
            (STATUS_BOTTOM, 0.0, BAR_BOTTOM, 1.0),
            "text",
            "Edit alarm" if d.editing >= 0 else "New alarm",
            theme.bar,
            theme.text,
        )
    ]
    out.append(
        Widget(
            (BAR_BOTTOM + 0.01, 0.15, BAR_BOTTOM + 0.09, 0.85),
            "text",
            clock_label(d.hour24, d.minute),
            theme.bg,
            theme.accent,
        )
    )
    for j, (label, target, on) in enumerate(
        (("AM", "clock.ampm:am", not d.pm), ("PM", "clock.ampm:pm", d.pm))
    ):
        x0 = 0.2 + j * 0.32
        out.append(_choice((0.2, x0, 0.25, x0 + 0.28), label, target, on, theme))
    for h in range(1, 13):  # hours: 3 rows of 4
        y0 = 0.27 + ((h - 1) // 4) * 0.07
        x0 = 0.04 + ((h - 1) % 4) * 0.24
        out.append(
            _choice((y0, x0, y0 + 0.06, x0 + 0.2), str(h), f"clock.hour:{h}", h == d.hour12, theme)
        )
    for k, m in enumerate(MINUTES):  # minutes: 3 rows of 4
        y0 = 0.5 + (k // 4) * 0.07
        x0 = 0.04 + (k % 4) * 0.24
        out.append(
            _choice(
                (y0, x0, y0 + 0.06, x0 + 0.2), f":{m:02d}", f"clock.min:{m}", m == d.minute, theme
            )
        )
    out.append(button((0.8, 0.06, 0.87, 0.46), "Cancel", "back", theme.surface, theme.accent))
    out.append(button((0.8, 0.54, 0.87, 0.94), "Save", "clock.save", theme.accent))
    return nav.Page(out)


def _choice(
    box: tuple[float, float, float, float], label: str, target: str, on: bool, theme: Theme
) -> Widget:
    color, tc = (theme.accent, (255, 255, 255)) if on else (theme.surface, theme.text)
    return Widget(box, "button", label, color, tc, target=target, checked=on)


@nav.on_tap("clock.tab")
def _tab(s: PhoneState, tab: str) -> None:
    nav.navigate(s, View("clock", _PAGES[tab]), push=False)


@nav.on_tap("clock.add")
def _add(s: PhoneState, _: str) -> None:
    r = content.rng(s.seed, "draft")  # the editor opens on a seeded time, so it must be read
    s.draft = AlarmDraft(hour12=r.randint(1, 12), minute=r.choice((0, 0, 30)), pm=r.random() < 0.5)
    nav.navigate(s, View("clock", "edit"))


@nav.on_tap("clock.edit")
def _edit(s: PhoneState, arg: str) -> None:
    i = int(arg)
    a = s.alarms[i]
    s.draft = AlarmDraft(hour12=a.hour % 12 or 12, minute=a.minute, pm=a.hour >= 12, editing=i)
    nav.navigate(s, View("clock", "edit"))


@nav.on_tap("clock.toggle")
def _toggle(s: PhoneState, arg: str) -> None:
    i = int(arg)
    a = s.alarms[i]
    s.alarms = (*s.alarms[:i], dataclasses.replace(a, enabled=not a.enabled), *s.alarms[i + 1 :])


@nav.on_tap("clock.hour")
def _hour(s: PhoneState, arg: str) -> None:
    s.draft = dataclasses.replace(s.draft, hour12=int(arg))


@nav.on_tap("clock.min")
def _minute(s: PhoneState, arg: str) -> None:
    s.draft = dataclasses.replace(s.draft, minute=int(arg))


@nav.on_tap("clock.ampm")
def _ampm(s: PhoneState, arg: str) -> None:
    s.draft = dataclasses.replace(s.draft, pm=arg == "pm")


@nav.on_tap("clock.save")
def _save(s: PhoneState, _: str) -> None:
    d = s.draft
    new = Alarm(d.hour24, d.minute, enabled=True)
    alarms = [
        a
        for i, a in enumerate(s.alarms)
        if i != d.editing and (a.hour, a.minute) != (new.hour, new.minute)
    ]
    s.alarms = tuple(sorted([*alarms, new], key=lambda a: (a.hour, a.minute)))
    nav.go_back(s)


@nav.on_tap("clock.noop")
def _noop(s: PhoneState, _: str) -> None:
    """Timer and stopwatch buttons: a tap that changes nothing."""


nav.ENTRIES["clock"] = lambda s, key: View("clock", "alarms")
