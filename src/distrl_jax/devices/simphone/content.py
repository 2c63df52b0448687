"""Seeded content: search results, products, places, videos, e-mails, app-store listings.

Everything derives from (episode seed, what was searched) through a stable hash, so one episode
always shows the same results for the same query, and another episode shows different counts,
orders and names — a policy cannot memorise where "the first result" is. Results are built from
the query's own words, so a search for "logitech g910" lists Logitech G910 products and a
search for "pizza" on Maps lists pizza places.
"""

from __future__ import annotations

import dataclasses
import functools
import random
import zlib

from distrl_jax.devices.simphone import catalog
from distrl_jax.tasks import text as tasktext

_CACHE = 2048


def rng(seed: int, *parts: object) -> random.Random:
    """A Random seeded by a stable hash of the episode seed and ``parts`` (not Python's hash)."""
    key = "|".join([str(seed), *map(str, parts)])
    return random.Random(zlib.crc32(key.encode()))


_UPPER = {"usb", "lg", "hp", "tv", "hd", "uhd", "ssd", "nyc", "us", "uk", "usa", "tcl", "ibm"}


def title(query: str) -> str:
    """Display form of a query: "logitech g910" -> "Logitech G910", "usb-c to usb-b" -> "USB-C to USB-B"."""
    out = []
    for w in query.split():
        parts = w.split("-")
        fixed = []
        for p in parts:
            low = p.lower()
            if low in _UPPER or (len(p) <= 4 and any(c.isdigit() for c in p)):
                fixed.append(p.upper())
            elif low in ("to", "for", "and", "of", "in", "with") and out:
                fixed.append(low)
            else:
                fixed.append(p[:1].upper() + p[1:])
        out.append("-".join(fixed))
    return " ".join(out)


# ---------------------------------------------------------------- Google results


@dataclasses.dataclass(frozen=True)
class WebResult:
    """A Google result: its title and the domain it links to."""

    title: str
    domain: str


_WEB_DOMAINS = (
    "wikipedia.org", "reddit.com", "nytimes.com", "yelp.com", "tripadvisor.com", "cnn.com",
    "bbc.com", "weather.com", "quora.com", "forbes.com", "theverge.com", "timeanddate.com",
    "britannica.com", "expedia.com", "zillow.com", "apartments.com", "kayak.com", "xe.com",
)  # fmt: skip
_WEB_TEMPLATES = (
    "{q} - Wikipedia", "{q}: what you need to know", "Top 10 {q}", "{q} | Latest updates",
    "{q} - Reviews and guide", "Best {q} of the year", "{q} explained", "{q} news today",
    "Everything about {q}", "{q} - Compare prices",
)  # fmt: skip


@functools.lru_cache(maxsize=_CACHE)
def web_results(seed: int, query: str) -> tuple[WebResult, ...]:
    """4-8 results for a Google search; a query naming a site ("costco.com") or a single word
    ("costco") first links to that site's official page, which Chrome opens as a store."""
    r = rng(seed, "web", query.lower())
    q = title(query.strip()) or "Google"
    templates = r.sample(_WEB_TEMPLATES, r.randint(4, 8))
    results = [WebResult(t.format(q=q), r.choice(_WEB_DOMAINS)) for t in templates]
    words = query.lower().split()
    domain = catalog.normalize_domain(query)
    if not domain and len(words) == 1 and words[0].isalnum():
        domain = f"{words[0]}.com"
    if domain:
        results.insert(0, WebResult(f"{catalog.site_name(domain)} - Official Site", domain))
    return tuple(results)


# ---------------------------------------------------------------- shopping sites


@dataclasses.dataclass(frozen=True)
class Product:
    """A product listing: name and price label."""

    name: str
    price: str


_VARIANTS = (
    "Black", "White", "Silver", "Wireless", "(Renewed)", "2-Pack", "Bundle", "Pro",
    "Gaming Edition", "with Case", "Refurbished", "Starter Kit", "Blue", "Limited Edition",
    "Value Pack", "Special Edition", "Open Box", "Plus",
)  # fmt: skip
_GENERIC_GOODS = (
    "Stainless Steel Water Bottle", "Bluetooth Speaker", "Cotton Bath Towel Set", "LED Desk Lamp",
    "Air Fryer 5.8 qt", "Robot Vacuum", "4K Smart TV 55in", "Office Chair", "Coffee Maker",
    "Cordless Drill Kit", "Yoga Mat", "Wireless Mouse", "Phone Charger 20W", "Backpack",
)  # fmt: skip


def _price(r: random.Random) -> str:
    return f"${r.randint(8, 1400)}.{r.choice(('99', '49', '00', '95'))}"


@functools.lru_cache(maxsize=_CACHE)
def products(seed: int, site: str, query: str) -> tuple[Product, ...]:
    """3-10 results of a site search, named after the query, in a seeded order; a few
    unrelated sponsored items may be mixed in."""
    r = rng(seed, "products", site, query.lower())
    base = title(query.strip())
    n = r.randint(3, 10)
    names = [f"{base} {v}" for v in r.sample(_VARIANTS, n)] if base else []
    for _ in range(r.randint(0, 2)):
        names.insert(r.randint(0, len(names)), r.choice(_GENERIC_GOODS))
    return tuple(Product(name, _price(r)) for name in names)


@functools.lru_cache(maxsize=_CACHE)
def promos(seed: int, site: str) -> tuple[Product, ...]:
    """The 2-4 deals on a site's home page."""
    r = rng(seed, "promos", site)
    return tuple(Product(name, _price(r)) for name in r.sample(_GENERIC_GOODS, r.randint(2, 4)))


# ---------------------------------------------------------------- Maps and YouTube


@dataclasses.dataclass(frozen=True)
class Place:
    """A Maps result: name and a one-line detail (rating, distance, street)."""

    name: str
    detail: str


_PLACE_PREFIX = ("Golden", "Blue Door", "Main Street", "Corner", "Uptown", "Sunset", "Harbor", "Old Town", "Liberty", "Park Avenue")  # fmt: skip
_STREETS = (
    "Main St",
    "Oak Ave",
    "Market St",
    "2nd Ave",
    "Elm St",
    "Broadway",
    "Pine St",
    "Lake Rd",
)


@functools.lru_cache(maxsize=_CACHE)
def places(seed: int, query: str) -> tuple[Place, ...]:
    """3-8 places for a Maps search, named after the query's content words."""
    r = rng(seed, "places", query.lower())
    content = " ".join(tasktext.keywords(query)) or query
    base = title(content)
    out = []
    for prefix in r.sample(_PLACE_PREFIX, r.randint(3, 8)):
        name = f"{base} - {prefix}" if r.random() < 0.5 else f"{prefix} {base}"
        detail = f"{r.randint(30, 50) / 10:.1f}* - {r.randint(2, 90) / 10:.1f} mi - {r.randint(10, 999)} {r.choice(_STREETS)}"
        out.append(Place(name, detail))
    return tuple(out)


@dataclasses.dataclass(frozen=True)
class Video:
    """A YouTube video: title and channel."""

    title: str
    channel: str


_VIDEO_TEMPLATES = (
    "{q} (Official Video)", "{q} - Live Performance", "{q} | Full Episode", "Reacting to {q}",
    "{q} - Highlights", "{q} explained in 10 minutes", "{q} (Lyrics)", "The best of {q}",
    "{q} - Behind the scenes", "{q} review",
)  # fmt: skip
_CHANNELS = (
    "VEVO",
    "Official",
    "Daily Mix",
    "TechLab",
    "NewsNow",
    "Trending",
    "Clips HQ",
    "Studio 9",
)
_FEED_TOPICS = ("cooking pasta", "morning workout", "travel vlog", "guitar lesson", "space news", "cat compilation", "phone review", "football highlights")  # fmt: skip


@functools.lru_cache(maxsize=_CACHE)
def videos(seed: int, query: str) -> tuple[Video, ...]:
    """3-7 videos for a YouTube search (an empty query gives the home feed)."""
    r = rng(seed, "videos", query.lower())
    if not query.strip():
        return tuple(Video(title(t), r.choice(_CHANNELS)) for t in r.sample(_FEED_TOPICS, 5))
    q = title(query.strip())
    return tuple(
        Video(t.format(q=q), f"{q.split()[0]} {r.choice(_CHANNELS)}")
        for t in r.sample(_VIDEO_TEMPLATES, r.randint(3, 7))
    )


# ---------------------------------------------------------------- mail, store, generic apps

_SENDERS = (
    "Alex Kim",
    "Google",
    "Amazon",
    "Maria Lopez",
    "Team Calendar",
    "Bank Alerts",
    "Chris Park",
    "Newsletter",
)
_SUBJECTS = ("Lunch tomorrow?", "Your order has shipped", "Security alert", "Meeting notes", "Weekend plans", "Invoice #4821", "Welcome!", "Photos from the trip")  # fmt: skip


@functools.lru_cache(maxsize=_CACHE)
def emails(seed: int) -> tuple[tuple[str, str], ...]:
    """(sender, subject) of 4-8 inbox messages."""
    r = rng(seed, "mail")
    n = r.randint(4, 8)
    return tuple((r.choice(_SENDERS), s) for s in r.sample(_SUBJECTS, n))


@functools.lru_cache(maxsize=_CACHE)
def store_results(seed: int, query: str) -> tuple[str, ...]:
    """Play Store results: the app named by the query near the top, then similar apps."""
    r = rng(seed, "store", query.lower())
    q = query.strip()
    pool = [s.name for s in catalog.THIRD_PARTY_APPS + catalog.SYSTEM_APPS]
    key = catalog.app_key(q) if q else ""
    exact = next(
        (n for n in pool if catalog.app_key(n) == key), catalog.display_name(q) if q else ""
    )
    others = [n for n in r.sample(pool, 6) if catalog.app_key(n) != key]
    out = others[: r.randint(2, 5)]
    if exact:
        out.insert(r.randint(0, min(1, len(out))), exact)
    return tuple(out)


_GENERIC_ITEMS = {
    "calculator": ("7", "8", "9", "/", "4", "5", "6", "x", "1", "2", "3", "-", "0", ".", "=", "+"),
    "calendar": (
        "Team standup 9:30",
        "Dentist 14:00",
        "Lunch with Sam",
        "Gym",
        "Flight to Denver",
        "Birthday: Jo",
    ),
    "camera": ("Photo", "Video", "Portrait", "Night Sight", "Panorama"),
    "contacts": (
        "Alex Kim",
        "Bea Novak",
        "Chris Park",
        "Dana Ruiz",
        "Eli Cohen",
        "Fay Wong",
        "Gus Lee",
    ),
    "messages": ("Mom: Call me back", "Alex: See you at 7", "Bank: Your code is 4411", "Sam: ok!"),
    "photos": ("Today", "Yesterday", "Last week", "Albums", "Favourites", "Screenshots"),
    "gallery": ("Camera", "Screenshots", "Downloads", "WhatsApp Images", "Favourites"),
    "files": ("Downloads", "Images", "Videos", "Audio", "Documents", "Apps"),
    "downloads": ("invoice.pdf", "boarding_pass.pdf", "IMG_2041.jpg", "notes.txt", "setup.apk"),
    "music": ("Liked songs", "Recently played", "Albums", "Artists", "Playlists"),
    "phone": ("Recents", "Favorites", "Contacts", "Voicemail"),
    "reddit": (
        "r/news: Top story today",
        "r/pics: Sunset",
        "r/AskReddit: What's your tip?",
        "r/technology: New chip",
    ),
}
_GENERIC_FALLBACK = (
    "Home",
    "Explore",
    "Trending",
    "Saved",
    "Notifications",
    "Profile",
    "Settings",
    "Help",
)


@functools.lru_cache(maxsize=_CACHE)
def app_items(seed: int, key: str) -> tuple[str, ...]:
    """The list an app without special screens shows (its own vocabulary where known)."""
    items = _GENERIC_ITEMS.get(key)
    if items is None:
        r = rng(seed, "items", key)
        return tuple(r.sample(_GENERIC_FALLBACK, r.randint(4, 7)))
    return items
