"""The apps simphone knows: names, what kind of screens they have, and how their icons look.

An app is identified by its *key* (:func:`app_key`): the name lower-cased, without a trailing
"app", with a few aliases folded ("Google Maps" and "Maps" are one app, "SMS" is Messages). Goals
and screens compare keys, never display names, so "Open the SMS app" opens the app shown as
"Messages". When ``distrl_jax.tasks.apps`` exists its ``canonical_app`` is applied first, so the
phone and the task parser agree on names.

Any name can be installed: an app the catalog does not know gets the ``generic`` kind (a title
bar and a list), and an icon colour and glyph derived from its name (stable across resets, as a
real app's icon is).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import re
import zlib

from distrl_jax.devices.simphone import glyphs
from distrl_jax.devices.simphone.widgets import Color

try:  # the task parser's app registry, written alongside; fall back to our own aliases
    from distrl_jax.tasks.apps import canonical_app as _canonical_app
except ImportError:  # pragma: no cover - depends on what else is installed
    _canonical_app = None

# App icons use the renderer's pictograms (``glyphs.GLYPH_NAMES``); a few semantic names map onto
# them so app definitions read naturally.
_GLYPH_ALIAS = {
    "globe": "ring", "search": "magnifier", "mail": "envelope", "chat": "bubble", "phone": "bell",
    "music": "note", "folder": "frame", "doc": "menu", "image": "diamond", "cloud": "crescent",
    "calendar": "grid", "bolt": "bars", "car": "house", "bag": "cart", "calc": "plus",
}  # fmt: skip


def glyph(name: str) -> int:
    """The glyph id of a pictogram (a renderer glyph name or one of the semantic aliases)."""
    return glyphs.glyph_index(_GLYPH_ALIAS.get(name, name))


@dataclasses.dataclass(frozen=True)
class AppSpec:
    """An app's display name, screen kind, icon colour and glyph."""

    name: str
    kind: str  # chrome | google | gmail | maps | youtube | playstore | settings | clock | generic
    color: Color
    glyph: int


def _spec(name: str, kind: str, color: Color, glyph_name: str) -> AppSpec:
    return AppSpec(name, kind, color, glyph(glyph_name))


# Apps every phone has (unless the goal is to install one of them): tasks.apps.SYSTEM_APPS.
SYSTEM_APPS: tuple[AppSpec, ...] = (
    _spec("Chrome", "chrome", (219, 68, 55), "globe"),
    _spec("Google", "google", (66, 133, 244), "search"),
    _spec("Gmail", "gmail", (234, 67, 53), "mail"),
    _spec("Maps", "maps", (52, 168, 83), "pin"),
    _spec("YouTube", "youtube", (255, 0, 0), "play"),
    _spec("Play Store", "playstore", (1, 135, 95), "triangle"),
    _spec("Settings", "settings", (95, 99, 104), "gear"),
    _spec("Clock", "clock", (26, 115, 232), "clock"),
    _spec("Calculator", "generic", (60, 64, 67), "calc"),
    _spec("Calendar", "generic", (66, 133, 244), "calendar"),
    _spec("Camera", "generic", (32, 33, 36), "camera"),
    _spec("Contacts", "generic", (25, 103, 210), "person"),
    _spec("Files", "generic", (24, 128, 56), "folder"),
    _spec("Photos", "generic", (251, 188, 4), "image"),
    _spec("Messages", "generic", (26, 115, 232), "chat"),
    _spec("Phone", "generic", (15, 157, 88), "phone"),
    _spec("Music", "generic", (255, 112, 67), "music"),
)

# Third-party apps: some are installed at random as distractors; all can be searched for in
# the Play Store. Colours roughly follow the real brands so that icons are learnable.
THIRD_PARTY_APPS: tuple[AppSpec, ...] = (
    _spec("Spotify", "generic", (30, 215, 96), "music"),
    _spec("Netflix", "generic", (229, 9, 20), "play"),
    _spec("Facebook", "generic", (24, 119, 242), "person"),
    _spec("Instagram", "generic", (193, 53, 132), "camera"),
    _spec("Twitter", "generic", (29, 161, 242), "chat"),
    _spec("Uber", "generic", (10, 10, 10), "car"),
    _spec("Lyft", "generic", (255, 0, 191), "car"),
    _spec("Pandora", "generic", (34, 75, 145), "music"),
    _spec("Amazon Shopping", "generic", (255, 153, 0), "cart"),
    _spec("Amazon Prime Video", "generic", (0, 168, 225), "play"),
    _spec("Amazon Music", "generic", (37, 209, 218), "music"),
    _spec("Amazon Alexa", "generic", (49, 196, 243), "ring"),
    _spec("Reddit", "generic", (255, 69, 0), "chat"),
    _spec("WhatsApp", "generic", (37, 211, 102), "phone"),
    _spec("Snapchat", "generic", (255, 252, 0), "ring"),
    _spec("Yelp", "generic", (211, 35, 35), "star"),
    _spec("ESPN", "generic", (204, 0, 0), "bolt"),
    _spec("CNN", "generic", (204, 0, 0), "doc"),
    _spec("Starbucks", "generic", (0, 112, 74), "circle"),
    _spec("eBay", "generic", (229, 50, 56), "bag"),
    _spec("Wikipedia", "generic", (120, 120, 120), "doc"),
    _spec("Yahoo", "generic", (96, 1, 210), "mail"),
    _spec("Weather", "generic", (3, 155, 229), "cloud"),
    _spec("News", "generic", (66, 133, 244), "doc"),
    _spec("Google Play Movies", "generic", (229, 57, 53), "play"),
    _spec("Google Play Music", "generic", (255, 87, 34), "music"),
    _spec("Google Play Books", "generic", (3, 155, 229), "note"),
    _spec("LinkedIn", "generic", (10, 102, 194), "person"),
    _spec("Pinterest", "generic", (230, 0, 35), "pin"),
    _spec("Zoom", "generic", (45, 140, 255), "camera"),
    _spec("Duolingo", "generic", (88, 204, 2), "star"),
    _spec("Waze", "generic", (51, 204, 255), "car"),
    _spec("Discord", "generic", (88, 101, 242), "chat"),
    _spec("TikTok", "generic", (1, 1, 1), "music"),
)

# Folded names: several spellings of one app (applied after lower-casing and "app" removal).
_ALIASES = {
    "google maps": "maps",
    "google chrome": "chrome",
    "chrome browser": "chrome",
    "google play store": "play store",
    "google play": "play store",
    "playstore": "play store",
    "google photos": "photos",
    "google calendar": "calendar",
    "google contacts": "contacts",
    "google clock": "clock",
    "alarm clock": "clock",
    "google search": "google",
    "google gmail": "gmail",
    "email": "gmail",
    "sms": "messages",
    "text messages": "messages",
    "messaging": "messages",
    "google messages": "messages",
    "message": "messages",
    "file manager": "files",
    "files by google": "files",
    "file": "files",
    "download": "files",
    "downloads": "files",
    "gallery": "photos",
    "pictures": "photos",
    "dialer": "phone",
    "youtube app": "youtube",
    "amazon": "amazon shopping",
    "prime video": "amazon prime video",
    "alexa": "amazon alexa",
    "calculator app": "calculator",
    "setting": "settings",
    "camera app": "camera",
}

_SPACES = re.compile(r"\s+")


@functools.lru_cache(maxsize=4096)
def app_key(name: str) -> str:
    """The identity of an app name: ``app_key("Google Maps") == app_key("maps") == "maps"``."""
    if _canonical_app is not None:
        # A name the registry rejects (empty, odd) is kept as given: the catalog handles any name.
        with contextlib.suppress(Exception):
            name = _canonical_app(name)
    key = _SPACES.sub(" ", name.lower().replace("’", "'")).strip()
    key = key.removeprefix("the ").strip()
    if key.endswith(" app") and len(key) > 4:
        key = key[:-4].strip()
    return _ALIASES.get(key, key)


_BY_KEY: dict[str, AppSpec] = {app_key(s.name): s for s in THIRD_PARTY_APPS + SYSTEM_APPS}
SYSTEM_KEYS: frozenset[str] = frozenset(app_key(s.name) for s in SYSTEM_APPS)


def _generated_color(name: str) -> Color:
    """A saturated colour from a stable hash of the name (so unseen apps look the same each time)."""
    h = zlib.crc32(name.lower().encode())
    hue, val = (h % 360) / 60.0, 0.55 + ((h >> 9) % 40) / 100.0
    c = val * 0.85
    x = c * (1 - abs(hue % 2 - 1))
    r, g, b = [(c, x, 0), (x, c, 0), (0, c, x), (0, x, c), (x, 0, c), (c, 0, x)][int(hue) % 6]
    m = val - c
    return (int((r + m) * 255), int((g + m) * 255), int((b + m) * 255))


def spec(name: str) -> AppSpec:
    """The catalog entry for any app name; unknown names get a generic app with a generated icon."""
    known = _BY_KEY.get(app_key(name))
    if known is not None:
        return known
    h = zlib.crc32(app_key(name).encode())
    shown = name.strip().title() if name.islower() else name.strip()
    return AppSpec(shown, "generic", _generated_color(app_key(name)), (h >> 3) % glyphs.NUM_GLYPHS)


def icon_of(name: str) -> tuple[Color, int]:
    """An app's icon as (colour, glyph)."""
    sp = spec(name)
    return sp.color, sp.glyph


def kind_of(key: str) -> str:
    """The screen kind of an app key (``generic`` for any app without special screens)."""
    known = _BY_KEY.get(key)
    return known.kind if known is not None else "generic"


def display_name(name: str) -> str:
    """How the phone labels an app: the catalog's name if known, else the name as given."""
    return spec(name).name


# ---------------------------------------------------------------- shopping sites

# Pretty names and brand colours of well-known shopping sites; any other domain works too.
_SITE_NAMES = {
    "bestbuy": ("Best Buy", (0, 70, 190)),
    "costco": ("Costco", (227, 24, 55)),
    "walmart": ("Walmart", (0, 113, 206)),
    "ebay": ("eBay", (229, 50, 56)),
    "newegg": ("Newegg", (240, 120, 0)),
    "homedepot": ("The Home Depot", (249, 99, 2)),
    "lowes": ("Lowe's", (0, 73, 144)),
    "sephora": ("Sephora", (20, 20, 20)),
    "amazon": ("Amazon", (35, 47, 62)),
    "target": ("Target", (204, 0, 0)),
}

_DOMAIN = re.compile(
    r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*\.[a-z]{2,}$"
)


def normalize_domain(text: str) -> str:
    """The bare domain of something typed in an address bar, or "" if it is not a web address.

    ``normalize_domain("https://www.Costco.com/") == "costco.com"``.
    """
    t = text.strip().lower()
    for prefix in ("https://", "http://"):
        t = t.removeprefix(prefix)
    t = t.split("/", 1)[0].removeprefix("www.").removeprefix("m.")
    return t if _DOMAIN.match(t) else ""


def site_name(domain: str) -> str:
    """A shopping site's display name: "bestbuy.com" -> "Best Buy", "foo-bar.com" -> "Foo Bar"."""
    root = domain.split(".", 1)[0]
    if root in _SITE_NAMES:
        return _SITE_NAMES[root][0]
    return " ".join(p.capitalize() for p in root.split("-"))


def site_color(domain: str) -> Color:
    """A shopping site's header colour (brand colour if known, else generated)."""
    root = domain.split(".", 1)[0]
    if root in _SITE_NAMES:
        return _SITE_NAMES[root][1]
    return _generated_color(root)
