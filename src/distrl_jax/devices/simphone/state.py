"""simphone's state: a small tree of dataclasses that a snapshot copies in O(1).

Every field of :class:`PhoneState` holds an immutable value (a str, an int, a tuple, a frozenset
or a frozen dataclass), so ``state.copy()`` is a shallow copy and still a full snapshot, and the
screen engine can hash the parts a screen depends on to cache it. Mutation happens only by
assigning fields (``state.view = View(...)``), never by changing a value in place.

Where the user is is a :class:`View` (an app key and a page with its few parameters); the back
stack is a tuple of views. The judge reads the view and the app data (alarms, installed apps,
notification switches, Chrome tabs) to decide whether a goal holds.
"""

from __future__ import annotations

import dataclasses

LAUNCHER = "launcher"  # View.app of the home screen and the app drawer
SHADE = "shade"  # View.app of the notification shade


@dataclasses.dataclass(frozen=True)
class View:
    """Where the user is: an app key (``catalog.app_key``) and a page with its parameters.

    ``query`` is what a results page was searched for, ``site`` a shopping site's domain,
    ``index`` the position of the opened item in its list (-1 for none) and ``name`` a
    free-form subject (the app whose settings are shown, a place or a video title).
    """

    app: str
    page: str
    query: str = ""
    site: str = ""
    index: int = -1
    name: str = ""


HOME_VIEW = View(LAUNCHER, "home", index=0)


@dataclasses.dataclass(frozen=True)
class Alarm:
    """An alarm at ``hour``:``minute`` (24-hour clock)."""

    hour: int
    minute: int
    enabled: bool = True

    @property
    def hhmm(self) -> str:
        """The time as "HH:MM" (24-hour), the form of a SET_ALARM goal's ``time`` slot."""
        return f"{self.hour:02d}:{self.minute:02d}"

    @property
    def label(self) -> str:
        """The time as a phone shows it, e.g. "7:30 AM"."""
        return clock_label(self.hour, self.minute)


def clock_label(hour: int, minute: int) -> str:
    """A 24-hour time as a 12-hour label: ``clock_label(15, 0) == "3:00 PM"``."""
    h12 = hour % 12 or 12
    return f"{h12}:{minute:02d} {'PM' if hour >= 12 else 'AM'}"


@dataclasses.dataclass(frozen=True)
class AlarmDraft:
    """The alarm editor's current choice (12-hour clock) and which alarm it edits (-1: new)."""

    hour12: int = 6
    minute: int = 0
    pm: bool = False
    editing: int = -1

    @property
    def hour24(self) -> int:
        """The chosen hour on the 24-hour clock."""
        return self.hour12 % 12 + (12 if self.pm else 0)


@dataclasses.dataclass(frozen=True)
class Tab:
    """A Chrome tab: the page it shows, whether it is incognito, and whether it was opened
    during the current episode (what CHROME_NEW_TAB asks for)."""

    page: View
    incognito: bool = False
    opened: bool = False


@dataclasses.dataclass(frozen=True)
class LauncherLayout:
    """Home-screen pages (each a tuple of grid slots holding an app name or "") and the dock."""

    pages: tuple[tuple[str, ...], ...]
    dock: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Notification:
    """One notification in the shade; tapping it opens ``app`` (an app key)."""

    app: str
    title: str
    text: str


@dataclasses.dataclass
class PhoneState:
    """Everything the phone remembers; all field values are immutable (see the module doc)."""

    seed: int  # the episode seed: content (results, products, places) derives from it
    theme: int
    installed: tuple[str, ...]  # display names of installed apps, sorted case-insensitively
    layout: LauncherLayout
    view: View = HOME_VIEW
    back: tuple[View, ...] = ()
    focus: str = ""  # the focused text field's id ("" = none, keyboard hidden)
    text: str = ""  # the focused field's contents
    text_selected: bool = False  # focusing selects the old contents: the next TYPE replaces them
    scroll: int = 0  # rows scrolled in the current list
    notif_off: frozenset[str] = frozenset()  # app keys whose notifications are switched off
    start_notif_off: frozenset[str] = frozenset()  # the same at reset ("toggle" compares to it)
    alarms: tuple[Alarm, ...] = ()
    draft: AlarmDraft = AlarmDraft()
    tabs: tuple[Tab, ...] = ()
    tab: int = 0  # the current Chrome tab
    cart: tuple[str, ...] = ()  # product names added to a shopping cart
    notifications: tuple[Notification, ...] = ()
    clock: str = "9:41"  # the status bar's time

    def copy(self) -> PhoneState:
        """A snapshot (shallow: every field value is immutable)."""
        return dataclasses.replace(self)

    @property
    def current_tab(self) -> Tab | None:
        """The current Chrome tab, or None when Chrome has none."""
        return self.tabs[self.tab] if 0 <= self.tab < len(self.tabs) else None

    def screen_key(self) -> tuple:
        """The parts every screen may depend on, hashable: equal keys give equal screens."""
        return (
            self.seed,
            self.theme,
            self.view,
            self.focus,
            self.text,
            self.scroll,
            self.installed,
            self.layout,
            self.notif_off,
            self.alarms,
            self.draft,
            self.tabs,
            self.tab,
            self.cart,
            self.notifications,
            self.clock,
        )
