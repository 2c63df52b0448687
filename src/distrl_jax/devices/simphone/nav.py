"""Navigation and the registries through which app modules plug into the engine.

An app module registers, per (screen kind, page), a *builder* that turns the state into a
:class:`Page` of widgets; per tap-target verb a *tap handler* (a widget's ``target`` is
``"verb:arg"``); per text-field id a *submit handler* run on PRESS_ENTER; and per screen kind an
*entry* view that opening the app shows. Navigation keeps a back stack of views: PRESS_BACK
hides the keyboard first, then pops the stack, then goes home.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from distrl_jax.devices.simphone import catalog
from distrl_jax.devices.simphone.state import HOME_VIEW, LAUNCHER, SHADE, PhoneState, Tab, View
from distrl_jax.devices.simphone.ui import KEYBOARD_TOP, THEMES, Theme, keyboard, status_bar
from distrl_jax.devices.simphone.widgets import Color, Screen, Widget


@dataclasses.dataclass
class Page:
    """What a builder returns: the widgets below the status bar, how far the list can scroll,
    and the background colour (None: the theme's)."""

    widgets: list[Widget]
    max_scroll: int = 0
    background: Color | None = None


Builder = Callable[[PhoneState, Theme], Page]
TapHandler = Callable[[PhoneState, str], None]
SubmitHandler = Callable[[PhoneState, str], None]

BUILDERS: dict[tuple[str, str], Builder] = {}
TAPS: dict[str, TapHandler] = {}
SUBMITS: dict[str, SubmitHandler] = {}
ENTRIES: dict[str, Callable[[PhoneState, str], View]] = {}
FIELD_VALUES: dict[str, Callable[[PhoneState], str]] = {}  # what a field holds when focused


def page(kind: str, name: str) -> Callable[[Builder], Builder]:
    """Register the builder of screen ``kind.name``."""

    def deco(fn: Builder) -> Builder:
        BUILDERS[(kind, name)] = fn
        return fn

    return deco


def on_tap(verb: str) -> Callable[[TapHandler], TapHandler]:
    """Register the handler of widget targets ``verb:arg``."""

    def deco(fn: TapHandler) -> TapHandler:
        TAPS[verb] = fn
        return fn

    return deco


def on_submit(field_id: str) -> Callable[[SubmitHandler], SubmitHandler]:
    """Register what PRESS_ENTER does in text field ``field_id``."""

    def deco(fn: SubmitHandler) -> SubmitHandler:
        SUBMITS[field_id] = fn
        return fn

    return deco


def screen_kind(app: str) -> str:
    """The builder family of a view's app: launcher, shade, or the app's catalog kind."""
    return app if app in (LAUNCHER, SHADE) else catalog.kind_of(app)


# ---------------------------------------------------------------- navigation


def _set_view(s: PhoneState, view: View) -> None:
    s.view = view
    s.scroll = 0
    s.focus = ""
    s.text = ""
    s.text_selected = False
    # Chrome's content pages live in the current tab, so reopening Chrome shows them again.
    if view.app == "chrome" and view.page not in ("menu", "tabs") and s.current_tab is not None:
        tab = s.current_tab
        if tab.page != view:
            s.tabs = (*s.tabs[: s.tab], dataclasses.replace(tab, page=view), *s.tabs[s.tab + 1 :])


def navigate(s: PhoneState, view: View, *, push: bool = True) -> None:
    """Show ``view``; with ``push`` the current view goes on the back stack."""
    if push:
        s.back = (*s.back[-15:], s.view)  # bounded, like a real task stack
    _set_view(s, view)


def go_back(s: PhoneState) -> None:
    """PRESS_BACK: hide the keyboard, else pop the back stack, else go home."""
    if s.focus:
        s.focus, s.text, s.text_selected = "", "", False
    elif s.back:
        view, s.back = s.back[-1], s.back[:-1]
        _set_view(s, view)
    elif s.view != HOME_VIEW:
        go_home(s)


def go_home(s: PhoneState) -> None:
    """PRESS_HOME: the launcher's first page, with an empty back stack."""
    s.back = ()
    _set_view(s, HOME_VIEW)


def open_app(s: PhoneState, key: str) -> None:
    """Bring app ``key`` to the foreground at its entry view (BACK from there goes home)."""
    entry = ENTRIES.get(catalog.kind_of(key))
    view = entry(s, key) if entry is not None else View(key, "main")
    s.back = ()
    _set_view(s, view)


def focus_field(s: PhoneState, field_id: str) -> None:
    """Focus a text field: the keyboard comes up and the field's contents are selected."""
    value = FIELD_VALUES.get(field_id, lambda st: st.view.query)(s)
    s.focus, s.text, s.text_selected = field_id, value, bool(value)


def submit(s: PhoneState) -> None:
    """PRESS_ENTER in the focused field: run its submit handler (or just hide the keyboard)."""
    field_id, text = s.focus, s.text.strip()
    s.focus, s.text, s.text_selected = "", "", False
    handler = SUBMITS.get(field_id)
    if handler is not None and text:
        handler(s, text)


def type_into(s: PhoneState, text: str) -> None:
    """TYPE into the focused field: replaces selected contents, else appends."""
    s.text = text if s.text_selected else s.text + text
    s.text_selected = False


def new_tab(s: PhoneState, page: View, *, incognito: bool) -> None:
    """Open a Chrome tab showing ``page`` and make it current."""
    s.tabs = (*s.tabs, Tab(page, incognito=incognito, opened=True))
    s.tab = len(s.tabs) - 1


# ---------------------------------------------------------------- building screens


def build_screen(s: PhoneState) -> tuple[Screen, int]:
    """The screen for state ``s`` and how far its list scrolls (call through a cache)."""
    theme = THEMES[s.theme % len(THEMES)]
    kind = screen_kind(s.view.app)
    builder = BUILDERS.get((kind, s.view.page))
    if builder is None:  # a page this kind does not have: show the app's generic main page
        builder = BUILDERS[("generic", "main")]
    pg = builder(s, theme)
    widgets = [status_bar(theme, s.clock), *pg.widgets]
    if s.focus:
        widgets = [w for w in widgets if w.box[0] < KEYBOARD_TOP]
        widgets.extend(keyboard(theme))
    name = f"{kind}.{s.view.page}"
    bg = theme.bg if pg.background is None else pg.background
    return Screen(name, tuple(widgets), bg, keyboard=bool(s.focus)), pg.max_scroll
