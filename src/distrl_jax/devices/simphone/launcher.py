"""The launcher: home-screen pages with a Google search bar and a dock, the app drawer (swipe up,
with a search field), and the notification shade (swipe down).

The home-screen layout is drawn at random per episode (which apps are on which page and in which
grid slot, which apps are in the dock); every installed app is always in the drawer, sorted by
name, so an app can always be found in at most three steps from anywhere.
"""

from __future__ import annotations

import dataclasses
import random

from distrl_jax.devices.simphone import catalog, nav
from distrl_jax.devices.simphone.state import LAUNCHER, SHADE, LauncherLayout, PhoneState, View
from distrl_jax.devices.simphone.ui import STATUS_BOTTOM, Row, Theme, button, field, rows, text
from distrl_jax.devices.simphone.widgets import Widget

GRID_COLS, GRID_ROWS = 4, 5
SLOTS = GRID_COLS * GRID_ROWS
DRAWER_COLS = 5
_GRID_TOP, _GRID_ROW_H = 0.14, 0.125
_DOCK_Y = (0.86, 0.94)
_DRAWER_TOP, _DRAWER_ROW_H = 0.12, 0.11
_DOCK_CHOICES = (
    "Phone",
    "Messages",
    "Chrome",
    "Camera",
    "Gmail",
    "Play Store",
    "Maps",
    "YouTube",
    "Photos",
)


def make_layout(r: random.Random, installed: tuple[str, ...]) -> LauncherLayout:
    """A random home screen: 4 dock apps, then 40-80% of the other apps over 1-3 pages."""
    dock_pool = [n for n in _DOCK_CHOICES if n in installed]
    dock = tuple(r.sample(dock_pool, min(4, len(dock_pool))))
    rest = [n for n in installed if n not in dock]
    on_home = r.sample(rest, int(len(rest) * r.uniform(0.4, 0.8)))
    n_pages = min(3, max(1, -(-len(on_home) // (SLOTS - 4))))
    pages: list[list[str]] = [[""] * SLOTS for _ in range(n_pages)]
    free = [(p, i) for p in range(n_pages) for i in range(SLOTS)]
    r.shuffle(free)
    for name, (p, i) in zip(on_home, free, strict=False):
        pages[p][i] = name
    return LauncherLayout(tuple(tuple(p) for p in pages), dock)


def add_to_layout(layout: LauncherLayout, name: str) -> LauncherLayout:
    """Place a newly installed app in the first free home-screen slot (a new page if full)."""
    pages = [list(p) for p in layout.pages]
    for p in pages:
        if "" in p:
            p[p.index("")] = name
            break
    else:
        pages.append([name] + [""] * (SLOTS - 1))
    return dataclasses.replace(layout, pages=tuple(tuple(p) for p in pages))


def remove_from_layout(layout: LauncherLayout, name: str) -> LauncherLayout:
    """Take an app's icon off the home screen and dock (when it is uninstalled)."""
    pages = tuple(tuple("" if n == name else n for n in p) for p in layout.pages)
    return LauncherLayout(pages, tuple(n for n in layout.dock if n != name))


def icon(box: tuple[float, float, float, float], name: str) -> Widget:
    """An app icon that opens the app."""
    sp = catalog.spec(name)
    return Widget(
        box, "icon", sp.name, sp.color, (255, 255, 255), glyph=sp.glyph, target=f"app:{name}"
    )


@nav.page(LAUNCHER, "home")
def _home(s: PhoneState, theme: Theme) -> nav.Page:
    n_pages = len(s.layout.pages)
    pg = min(max(s.view.index, 0), max(n_pages - 1, 0))
    out = [
        Widget(
            (0.05, 0.05, 0.11, 0.95),
            "field",
            "Search",
            theme.surface,
            theme.muted,
            glyph=catalog.glyph("search"),
            target="launcher.search",
        )
    ]
    if n_pages:
        for i, name in enumerate(s.layout.pages[pg]):
            if name:
                y0 = _GRID_TOP + (i // GRID_COLS) * _GRID_ROW_H
                x0 = 0.03 + (i % GRID_COLS) * 0.24
                out.append(icon((y0, x0 + 0.03, y0 + 0.075, x0 + 0.2), name))
        dots = " ".join("*" if p == pg else "o" for p in range(n_pages))
        out.append(text((0.8, 0.35, 0.83, 0.65), dots, theme, theme.bg))
    for i, name in enumerate(s.layout.dock):
        x0 = 0.06 + i * 0.235
        out.append(icon((_DOCK_Y[0], x0, _DOCK_Y[1], x0 + 0.17), name))
    return nav.Page(out)


def drawer_apps(s: PhoneState) -> list[str]:
    """The drawer's apps: all installed, filtered by the search text while the field has focus."""
    q = s.text.lower().strip() if s.focus == "drawer.q" else ""
    return [n for n in s.installed if q in n.lower()] if q else list(s.installed)


@nav.page(LAUNCHER, "drawer")
def _drawer(s: PhoneState, theme: Theme) -> nav.Page:
    focused = s.focus == "drawer.q"
    out = [
        field(
            (0.045, 0.05, 0.1, 0.95),
            "drawer.q",
            s.text if focused else "",
            "Search apps",
            theme,
            focused=focused,
        )
    ]
    apps = drawer_apps(s)
    n_rows = -(-len(apps) // DRAWER_COLS)
    fit = int((0.99 - _DRAWER_TOP) / _DRAWER_ROW_H)
    max_scroll = max(0, n_rows - fit)
    start = min(s.scroll, max_scroll) * DRAWER_COLS
    for j, name in enumerate(apps[start : start + fit * DRAWER_COLS]):
        y0 = _DRAWER_TOP + (j // DRAWER_COLS) * _DRAWER_ROW_H
        x0 = 0.02 + (j % DRAWER_COLS) * 0.193
        out.append(icon((y0 + 0.005, x0 + 0.02, y0 + 0.08, x0 + 0.175), name))
    return nav.Page(out, max_scroll, background=theme.surface)


@nav.page(SHADE, "shade")
def _shade(s: PhoneState, theme: Theme) -> nav.Page:
    dark, light = (32, 33, 36), (232, 234, 237)
    out: list[Widget] = []
    for i, tile in enumerate(("Wi-Fi", "Bluetooth", "Do Not Disturb", "Flashlight")):
        x0 = 0.04 + i * 0.24
        out.append(
            Widget(
                (STATUS_BOTTOM + 0.02, x0, STATUS_BOTTOM + 0.09, x0 + 0.21),
                "button",
                tile,
                (60, 64, 67),
                light,
            )
        )
    items = [
        Row(
            n.title,
            f"shade.open:{n.app}",
            sub=n.text,
            icon=(catalog.spec(n.app).color, catalog.spec(n.app).glyph),
        )
        for n in s.notifications
    ]
    if not items:
        out.append(Widget((0.2, 0.1, 0.26, 0.9), "text", "No notifications", dark, light))
    shade_theme = dataclasses.replace(
        theme, surface=(48, 49, 52), text=light, muted=(170, 170, 170)
    )
    widgets, max_scroll = rows(items, 0.16, shade_theme, s.scroll, bottom=0.88, row_h=0.1)
    out.extend(widgets)
    if items:
        out.append(button((0.9, 0.62, 0.95, 0.96), "Clear all", "shade.clear", (60, 64, 67), light))
    return nav.Page(out, max_scroll, background=dark)


@nav.on_tap("app")
def _tap_app(s: PhoneState, name: str) -> None:
    nav.open_app(s, catalog.app_key(name))


@nav.on_tap("launcher.search")
def _tap_search(s: PhoneState, _: str) -> None:
    nav.navigate(s, View("google", "search"))
    nav.focus_field(s, "google.q")


@nav.on_tap("shade.open")
def _tap_notification(s: PhoneState, key: str) -> None:
    s.notifications = tuple(n for n in s.notifications if n.app != key)
    nav.open_app(s, key)


@nav.on_tap("shade.clear")
def _tap_clear(s: PhoneState, _: str) -> None:
    s.notifications = ()


@nav.on_submit("drawer.q")
def _drawer_enter(s: PhoneState, text_: str) -> None:
    q = text_.lower()
    match = [n for n in s.installed if q in n.lower()]
    if match:  # like the Pixel launcher: ENTER opens the top match
        nav.open_app(s, catalog.app_key(match[0]))


def swipe(s: PhoneState, direction: str, max_scroll: int) -> bool:
    """Launcher gestures: up opens the drawer, down the shade, left/right change pages.
    Returns whether the swipe was handled here."""
    v = s.view
    if v.app == LAUNCHER and v.page == "home":
        n_pages = max(1, len(s.layout.pages))
        if direction == "up":
            nav.navigate(s, View(LAUNCHER, "drawer"))
        elif direction == "down":
            nav.navigate(s, View(SHADE, "shade"))
        elif direction == "left" and v.index < n_pages - 1:
            nav.navigate(s, dataclasses.replace(v, index=v.index + 1), push=False)
        elif direction == "right" and v.index > 0:
            nav.navigate(s, dataclasses.replace(v, index=v.index - 1), push=False)
        return True
    if v.app == LAUNCHER and v.page == "drawer" and direction == "down" and s.scroll == 0:
        s.focus, s.text, s.text_selected = "", "", False  # closing the drawer drops its search
        nav.go_back(s)
        return True
    if v.app == SHADE and direction == "up":
        nav.go_back(s)
        return True
    return False
