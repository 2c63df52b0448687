"""Goals: what a task string means, as an intent with slots, independent of any device.

The parser (``tasks.parser``) turns a task string into a :class:`Goal`; a device's evaluator
turns a goal into a success predicate over its state (simphone's judge checks its state
exactly). The slots each intent carries are listed in :data:`INTENT_SLOTS`.
"""

from __future__ import annotations

import dataclasses
import enum


class Intent(enum.Enum):
    """The kinds of goal the AitW General and Web Shopping tasks express."""

    OPEN_APP = "open_app"  # "Open the calculator"
    WEB_SEARCH = "web_search"  # "What's the weather in Paris?" -> results of a search on screen
    SITE_VISIT = "site_visit"  # "Go to costco.com"
    SITE_SEARCH = "site_search"  # 'Go to costco.com, search for "bose soundsport free"'
    SITE_SELECT_FIRST = "site_select_first"  # '..., and select the first entry'
    MAPS_SEARCH = "maps_search"  # "Search for pizza places on Maps"
    MAPS_DIRECTIONS = "maps_directions"  # "How do I get to the nearest IKEA?"
    YOUTUBE_PLAY = "youtube_play"  # "Play the new Taylor Swift video on YouTube"
    APP_SETTINGS = "app_settings"  # "Check the settings for the Pandora app"
    APP_NOTIFICATIONS = "app_notifications"  # "Turn off notifications for the Google Maps app"
    INSTALL_APP = "install_app"  # "Install the Yelp app"
    SET_ALARM = "set_alarm"  # "Set an alarm for 7am"
    CHROME_NEW_TAB = "chrome_new_tab"  # "Open a new incognito tab in Chrome"
    SHOW_NOTIFICATIONS = "show_notifications"  # "Show me my notifications"
    CHECK_EMAIL = "check_email"  # "Check my gmail inbox"


# Slot names each intent must carry (values are strings).
#   app:      canonical app name (tasks.apps.canonical_app)
#   query:    the text an expert would type
#   keywords: space-separated normalised tokens (tasks.text.keywords) that a search must contain
#   site:     a lower-case domain such as "costco.com"
#   state:    "on" | "off" | "toggle"
#   time:     "HH:MM", 24-hour clock
#   incognito: "yes" | "no"
INTENT_SLOTS: dict[Intent, tuple[str, ...]] = {
    Intent.OPEN_APP: ("app",),
    Intent.WEB_SEARCH: ("query", "keywords"),
    Intent.SITE_VISIT: ("site",),
    Intent.SITE_SEARCH: ("site", "query"),
    Intent.SITE_SELECT_FIRST: ("site", "query"),
    Intent.MAPS_SEARCH: ("query", "keywords"),
    Intent.MAPS_DIRECTIONS: ("query", "keywords"),
    Intent.YOUTUBE_PLAY: ("query", "keywords"),
    Intent.APP_SETTINGS: ("app",),
    Intent.APP_NOTIFICATIONS: ("app", "state"),
    Intent.INSTALL_APP: ("app",),
    Intent.SET_ALARM: ("time",),
    Intent.CHROME_NEW_TAB: ("incognito",),
    Intent.SHOW_NOTIFICATIONS: (),
    Intent.CHECK_EMAIL: (),
}


@dataclasses.dataclass(frozen=True)
class Goal:
    """An intent with its slots (a sorted tuple of (name, value) pairs, so goals hash)."""

    intent: Intent
    slots: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        names = {k for k, _ in self.slots}
        need = set(INTENT_SLOTS[self.intent])
        if names != need:
            raise ValueError(
                f"goal {self.intent.value} needs slots {sorted(need)}, got {sorted(names)}"
            )

    @classmethod
    def make(cls, intent: Intent, **slots: str) -> Goal:
        """Build a goal from keyword slots: ``Goal.make(Intent.OPEN_APP, app="Clock")``."""
        return cls(intent, tuple(sorted((k, str(v)) for k, v in slots.items())))

    def __getitem__(self, name: str) -> str:
        for k, v in self.slots:
            if k == name:
                return v
        raise KeyError(f"goal {self.intent.value} has no slot {name!r}")

    def get(self, name: str, default: str = "") -> str:
        """A slot's value, or ``default``."""
        try:
            return self[name]
        except KeyError:
            return default


@dataclasses.dataclass(frozen=True)
class Task:
    """A task string with its parsed goal (None when unsupported) and episode horizon."""

    text: str
    goal: Goal | None
    suite: str = "general"  # "general" | "webshop" | a user's own suite name
    horizon: int = 10
