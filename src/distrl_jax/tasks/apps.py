"""The app and website registry: which apps every phone has, and what names mean.

Task strings name apps loosely ("the Google play store app", "the SMS app", "the gallery"), so
goals carry a canonical name from :func:`canonical_app`. Names the registry does not know are kept
as written (title-cased only when written all in lower case), so an unseen app such as
"Amazon Alexa" or "eBay" still yields a goal a device can check.

Websites named without a domain ("on eBay", "at Home Depot", "Go to Reddit") resolve through
:func:`site_domain`; an unknown store name resolves to ``None`` and the parser then treats the
request as a web search rather than guessing a domain.

Choices (consistent everywhere): "gallery" and "Google Photos" are Photos; "downloads",
"file manager" and "files" are Files; "SMS"/"text messages" are Messages; "Google Maps" is Maps;
"Google Chrome" is Chrome; "Google Play Store" is Play Store.
"""

from __future__ import annotations

import re

# The apps every simphone has installed (and every AitW emulator image had).
SYSTEM_APPS: tuple[str, ...] = (
    "Chrome",
    "Google",
    "Settings",
    "Clock",
    "Play Store",
    "Gmail",
    "Maps",
    "YouTube",
    "Calculator",
    "Calendar",
    "Camera",
    "Contacts",
    "Files",
    "Photos",
    "Messages",
    "Music",
    "Phone",
)

# Lower-case alias -> canonical name. Only names that unambiguously mean one system app.
_ALIASES: dict[str, str] = {
    **{a: "Chrome" for a in ("chrome", "google chrome", "chrome browser", "browser")},
    **{a: "Google" for a in ("google", "google search", "google app")},
    **{a: "Settings" for a in ("settings", "setting", "system settings", "phone settings")},
    **{a: "Clock" for a in ("clock", "alarm", "alarms", "alarm clock", "clock app")},
    **{a: "Play Store" for a in ("play store", "google play store", "google play", "playstore")},
    **{a: "Gmail" for a in ("gmail", "google mail", "email", "e-mail", "mail")},
    **{a: "Maps" for a in ("maps", "map", "google maps", "google map")},
    **{a: "YouTube" for a in ("youtube", "you tube")},
    **{a: "Calculator" for a in ("calculator", "calc")},
    **{a: "Calendar" for a in ("calendar", "google calendar")},
    **{a: "Camera" for a in ("camera",)},
    **{a: "Contacts" for a in ("contacts", "contact", "contact list", "google contacts")},
    **{a: "Files" for a in ("files", "file", "downloads", "download", "file manager", "my files")},
    **{a: "Photos" for a in ("photos", "photo", "gallery", "google photos", "pictures")},
    **{a: "Messages" for a in ("messages", "sms", "text messages", "messaging", "texts")},
    **{a: "Music" for a in ("music", "music player")},
    **{a: "Phone" for a in ("phone", "dialer", "phone dialer")},
}

# Brand spellings for names typed in lower case (otherwise lower-case names are title-cased).
_CASING: dict[str, str] = {
    w.lower(): w
    for w in (
        "eBay CNN ESPN BBC NPR HBO IMDb WhatsApp TikTok LinkedIn PayPal DoorDash SoundCloud "
        "iHeartRadio GrubHub YouTube TED NYTimes AccuWeather WeChat"
    ).split()
}

# Website names (letters and digits only, lower case) -> domain.
_SITES: dict[str, str] = {
    "ebay": "ebay.com",
    "amazon": "amazon.com",
    "homedepot": "homedepot.com",
    "thehomedepot": "homedepot.com",
    "lowes": "lowes.com",
    "sephora": "sephora.com",
    "ulta": "ulta.com",
    "bestbuy": "bestbuy.com",
    "costco": "costco.com",
    "walmart": "walmart.com",
    "newegg": "newegg.com",
    "target": "target.com",
    "etsy": "etsy.com",
    "ikea": "ikea.com",
    "macys": "macys.com",
    "wayfair": "wayfair.com",
    "reddit": "reddit.com",
    "wikipedia": "wikipedia.org",
}


def _tidy(name: str) -> str:
    name = " ".join(name.replace("’", "'").split())
    name = re.sub(r"^the\s+", "", name, flags=re.I)
    return re.sub(r"(?:^|\s+)(?:app|application)$", "", name, flags=re.I).strip()


def canonical_app(name: str) -> str:
    """The canonical name of an app: aliases and case folded for known apps, others as written.

    >>> canonical_app("Google play store"), canonical_app("SMS"), canonical_app("amazon alexa")
    ('Play Store', 'Messages', 'Amazon Alexa')
    """
    if not isinstance(name, str):
        raise TypeError(f"app name must be a str, got {type(name).__name__}")
    tidy = _tidy(name)
    if not tidy:
        raise ValueError(f"app name is empty (got {name!r}); give the app's name, e.g. 'Spotify'")
    key = tidy.lower()
    if key in _ALIASES:
        return _ALIASES[key]
    if tidy == key:  # typed all in lower case: use the brand's spelling, else title case
        return " ".join(_CASING.get(w, w[:1].upper() + w[1:]) for w in key.split())
    return tidy


def is_system_app(name: str) -> bool:
    """True when ``name`` (any alias) is one of :data:`SYSTEM_APPS`."""
    try:
        return canonical_app(name) in SYSTEM_APPS
    except ValueError:
        return False


def site_domain(name: str) -> str | None:
    """The domain of a website named without one ("eBay" -> "ebay.com"), or None if unknown."""
    key = re.sub(r"[^a-z0-9]", "", name.lower())
    return _SITES.get(key)
