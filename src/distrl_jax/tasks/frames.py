"""The task grammar: intent frames, each a pattern over normalised task text and a slot builder.

Frames are tried in the order they are defined here; the first whose pattern matches the whole
(normalised) text and whose builder returns a goal wins. A builder returns ``None`` to let later
frames try, and raises :class:`~distrl_jax.tasks.slots.Refusal` when the request is recognised but
cannot be filled (an empty search query, an alarm at "25pm"). Patterns match case-insensitively;
slot values keep the case they were written in.

Documented choices:

- Product questions that name a known store ("Find a nice sofa on eBay", "What is the price of a
  12' ladder at Home Depot?") are SITE_SEARCH on that store's domain with the product as query;
  an unknown store name leaves the request to the web-search frames.
- A known website named without "app" ("Go to Reddit", "Open Reddit", "What's on Reddit today",
  "What's the top post on reddit?") is SITE_VISIT of its domain (reddit.com); "Open the Reddit
  app" is OPEN_APP.
- "What time is it?" is OPEN_APP Clock; "What time is it in Tokyo?" is a WEB_SEARCH.
- "What's on my calendar ..." and "Open the calendar and show me ..." are OPEN_APP Calendar.
- "... near me", "nearest/closest X" and "... on (Google) Maps" are MAPS_SEARCH; "How do I get to
  (the nearest) X" is MAPS_DIRECTIONS with query X.
- "Play/Watch/Search for X on YouTube" and "the latest video from X" are YOUTUBE_PLAY, query X.
- Questions become WEB_SEARCH with their content words as query; commands ("Search for",
  "Google", "Look up", "Show me") keep their object as a phrase (see ``tasks.slots``).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable

from distrl_jax.tasks import apps, text
from distrl_jax.tasks.goals import Goal, Intent
from distrl_jax.tasks.slots import (
    Refusal,
    content_query,
    is_browse_only,
    normalise_domain,
    parse_time,
    phrase,
    search_goal,
)


@dataclasses.dataclass(frozen=True)
class Frame:
    """One intent frame: a name, a full-match pattern and the builder of its goal."""

    name: str
    patterns: tuple[re.Pattern[str], ...]
    build: Callable[[re.Match[str]], Goal | None]


FRAMES: list[Frame] = []


def frame(*patterns: str) -> Callable[[Callable[[re.Match[str]], Goal | None]], Callable]:
    """Register a builder for ``patterns`` (tried in registration order)."""

    def register(build: Callable[[re.Match[str]], Goal | None]) -> Callable:
        compiled = tuple(re.compile(p, re.IGNORECASE) for p in patterns)
        FRAMES.append(Frame(build.__name__.lstrip("_"), compiled, build))
        return build

    return register


# ---- building blocks -----------------------------------------------------------------------
_LABEL = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
DOMAIN = rf"(?P<site>(?:https?://)?(?:www\.)?{_LABEL}(?:\.{_LABEL})*\.[a-z]{{2,24}}(?:/[^\s,\"]*)?)"
_COMMON_TLD = r"(?:com|org|net|edu|gov|io|co|uk|us|de|fr|ca|au|jp|in|info|biz|shop|store)"
_QUERY = r'(?:"(?P<qq>[^"]*)"|(?P<qu>[^",]*?[^",\s]))'
_AND = r"(?:\s*,\s*|\s+)(?:and\s+)?(?:then\s+)?"
_FIRST = (
    r"(?:select|click|tap|choose|open|pick|view)(?: on| into)? the (?:first|1st|top)(?: search)?"
    r" (?:entry|result|item|product|listing|link|one|option|hit)"
)
_SEARCH = r"(?:search(?: the site| it| there)?(?: for)?|look for|look up|find|shop for)"
_GO = r"(?:(?:go|navigate|head|browse|surf) to|visit|open|load|launch|check out)"
_APP_TAIL = r"(?: app| application)?"
_ON = "turn on|switch on|enable|unmute|allow|activate"
_OFF = "turn off|switch off|disable|mute|silence|block|stop|deactivate"
_OFF_VERBS = frozenset([*_OFF.split("|"), "off"])
_RECENT = r"(?:new|newest|latest|most recent|recent)"
_NOT_AN_APP = frozenset("all every any everything my the a an".split())


def _app(raw: str) -> str:
    name = apps.canonical_app(raw)
    if name.lower() in _NOT_AN_APP or name.lower().startswith(("all ", "every ")):
        raise Refusal(f"{raw!r} is not one app; name the app, e.g. 'the Spotify app'")
    return name


# ---- websites by domain (Web Shopping) -----------------------------------------------------
@frame(
    rf"{_GO} (?:the )?(?:website |site |page )?{DOMAIN}(?:{_AND}{_SEARCH} {_QUERY}(?P<first>{_AND}{_FIRST})?)?",
    rf"{_SEARCH} {_QUERY} (?:on|at|in|from) {DOMAIN}(?P<first>{_AND}{_FIRST})?",
    rf"search {DOMAIN} for {_QUERY}(?P<first>{_AND}{_FIRST})?",
)
def _site(m: re.Match[str]) -> Goal:
    site = normalise_domain(m["site"])
    if m["qq"] is None and m["qu"] is None:
        return Goal.make(Intent.SITE_VISIT, site=site)
    raw = m["qq"] if m["qq"] is not None else m["qu"].strip("'")  # 'single-quoted' too
    query = " ".join(raw.split())
    if not query:
        raise Refusal(f"the search query for {site} is empty; put the product in quotes")
    intent = Intent.SITE_SELECT_FIRST if m["first"] else Intent.SITE_SEARCH
    return Goal.make(intent, site=site, query=query)


@frame(rf".*?(?<![\w.@])(?P<site>{_LABEL}(?:\.{_LABEL})*\.{_COMMON_TLD})\b.*")
def _unknown_site_request(m: re.Match[str]) -> Goal:
    raise Refusal(f"names the site {m['site']!r} but the request around it is not understood")


# ---- phone intents -------------------------------------------------------------------------
_WHEN = r"(?: (?:tomorrow|today|tonight|tomorrow morning|this morning|this afternoon|this evening|every day|daily))?"


@frame(
    rf"(?:set|create|make|add|schedule|put)(?: up)?(?: me)? (?:an?|my|the|one|new)? ?(?:new )?alarm(?: clock)?"
    rf"(?: (?:for|at|to go off at|to ring at|to) (?P<time>.+?))?{_WHEN}",
    rf"wake me(?: up)? at (?P<time>.+?){_WHEN}",
)
def _alarm(m: re.Match[str]) -> Goal:
    if not m["time"]:
        raise Refusal("no alarm time given; say e.g. 'Set an alarm for 7am'")
    return Goal.make(Intent.SET_ALARM, time=parse_time(m["time"]))


@frame(
    r"open(?: up)? (?:a |an |one )?(?P<new>new )?(?:(?:google )?chrome )?(?:(?P<mode>incognito|private)"
    r"(?: browsing| mode)? )?(?:(?:google )?chrome )?(?:browser )?(?:tab|window)"
    r"(?: (?:in|on|using|with) (?:the )?(?:google )?chrome(?: app| browser)?)?",
    r"(?:open|start|launch) (?:google )?chrome in (?P<mode>incognito|private)(?: browsing)? mode",
)
def _chrome_tab(m: re.Match[str]) -> Goal | None:
    # The "Chrome in incognito mode" pattern has no "new" group: it always means a new tab.
    new = m.re.groupindex.get("new") is None or m["new"]
    if not (new or m["mode"]):
        return None  # "Open the window": not a browser request
    return Goal.make(Intent.CHROME_NEW_TAB, incognito="yes" if m["mode"] else "no")


@frame(
    r"(?:show|open|check|view|see|display|read|pull down|bring up|look at)(?: me)?(?: all)?(?: of)?"
    r" (?:my |the )?(?:recent |latest |new |unread )?notifications?"
    r"(?: (?:shade|panel|tray|drawer|center|centre|bar))?",
    r"(?:do i have|are there) (?:any )?(?:new )?notifications",
)
def _show_notifications(m: re.Match[str]) -> Goal:
    return Goal.make(Intent.SHOW_NOTIFICATIONS)


@frame(
    rf"(?P<verb>{_ON}|{_OFF}|toggle)(?: all)?(?: the)?(?: push)? notifications? (?:for|from|of|on|in)"
    rf" (?:the )?(?P<app>.+?){_APP_TAIL}",
    rf"(?P<verb>turn|switch) (?:all )?(?:the )?(?:push )?notifications? (?P<state>on|off)"
    rf" (?:for|from|of|in) (?:the )?(?P<app>.+?){_APP_TAIL}",
    rf"(?P<verb>{_ON}|{_OFF}|toggle) (?:the )?(?P<app>.+?){_APP_TAIL}(?:'s)? notifications?",
)
def _app_notifications(m: re.Match[str]) -> Goal:
    verb = (m.groupdict().get("state") or m["verb"]).lower()
    state = "toggle" if verb == "toggle" else "off" if verb in _OFF_VERBS else "on"
    return Goal.make(Intent.APP_NOTIFICATIONS, app=_app(m["app"]), state=state)


_SETTINGS_VERB = r"(?:check|open|show(?: me)?|view|see|go to|look at|change|adjust|manage|review)"


@frame(
    rf"{_SETTINGS_VERB}(?: at)? (?:the |my )?(?:app )?settings (?:for|of|in|on) (?:the |my )?(?P<app>.+?){_APP_TAIL}",
    rf"{_SETTINGS_VERB} (?:the |my )?(?P<app>.+?)(?: app's| app|'s) settings",
)
def _app_settings(m: re.Match[str]) -> Goal:
    return Goal.make(Intent.APP_SETTINGS, app=_app(m["app"]))


@frame(
    r"(?P<verb>check|read|view|see|show(?: me)?|look at|go to|open)(?: at)? (?:my |the )?"
    r"(?P<what>(?:new |unread |latest |recent )?(?:e-?mails?|mail|inbox|mailbox)|gmail(?: inbox)?"
    r"|(?:e-?mail|mail) inbox|gmail (?:messages|mail|emails?))",
    r"(?:do i have|are there|any) (?:any )?(?:new |unread )?e-?mails?(?: in (?:my )?(?:inbox|gmail))?",
)
def _check_email(m: re.Match[str]) -> Goal | None:
    verb = (m.groupdict().get("verb") or "").lower()
    if verb in ("open", "go to") and m["what"].lower() == "gmail":
        return None  # "Open gmail" is OPEN_APP Gmail
    return Goal.make(Intent.CHECK_EMAIL)


@frame(
    r"(?:install|download|get|add)(?: me)? (?:the |a )?(?P<app>.+?) (?:app|application)"
    r"(?: (?:from|on|in|via|using) (?:the )?(?:google )?play(?: store)?)?",
    r"install (?:the )?(?P<app>.+?)(?: (?:from|on|in|via|using) (?:the )?(?:google )?play(?: store)?)?",
)
def _install_app(m: re.Match[str]) -> Goal:
    if len(m["app"].split()) > 5:
        raise Refusal(f"{m['app']!r} does not look like an app name")
    return Goal.make(Intent.INSTALL_APP, app=_app(m["app"]))


@frame(
    r"what(?:'s| is) the (?:current )?time(?: now| right now)?|what time is it(?: now| right now)?",
    r"(?:tell|show) me the (?:current )?time|what time it is",
)
def _clock(m: re.Match[str]) -> Goal:
    return Goal.make(Intent.OPEN_APP, app="Clock")


@frame(
    r"what(?:'s| is| do i have)(?: on)? (?:my )?(?:calendar|schedule|agenda)(?: .+)?",
    r"(?:show|tell)(?: me)? (?:my |the )?(?:calendar|schedule|agenda|upcoming events|events|appointments)(?: .+)?",
    r"what(?:'s| is| are)(?: my)? (?:upcoming )?(?:events|appointments|meetings)(?: .+)?",
)
def _calendar(m: re.Match[str]) -> Goal:
    return Goal.make(Intent.OPEN_APP, app="Calendar")


# ---- YouTube and Maps ----------------------------------------------------------------------
_YT = r"(?: (?:on|in|from) (?:the )?youtube(?: app)?)"


@frame(
    rf"(?:play|watch|show me|put on|find|open)(?: me)? (?:the )?{_RECENT} (?P<q>.+?) (?:music )?videos?{_YT}?",
    rf"(?:play|watch|show me|put on|find|open|what(?:'s| is| are))(?: me)? (?:the )?{_RECENT} (?:youtube )?"
    rf"(?:videos?|upload|clip) (?:from|by|of|on) (?:the )?(?P<q>.+?)(?: channel)?{_YT}?",
    rf"(?:play|watch|put on|stream|listen to|search for|search|find|look up|look for)(?: me)? (?P<q>.+?){_YT}",
    r"(?:open|go to) youtube and (?:play|watch|search for|find) (?P<q>.+)",
)
def _youtube(m: re.Match[str]) -> Goal:
    return search_goal(Intent.YOUTUBE_PLAY, phrase(m["q"]))


_PLACE_FILTER = re.compile(
    r"(?P<main>.+?)(?P<qual> (?:that's|that is|which is|that are|which are) .+)?$", re.I
)


@frame(
    r"(?:how (?:do|can|would|should) i|how to) (?:get|go|drive|walk|bike|cycle|travel|commute)"
    r" (?:to|from here to) (?:the )?(?P<dest>.+?)(?: from here)?(?: (?:on|using|with) (?:google )?maps)?",
    r"(?:get |give me |show me |find |what are the |i need )?directions (?:to|for) (?:the )?(?P<dest>.+?)"
    r"(?: (?:on|using|in) (?:google )?maps)?",
    r"(?:navigate|take me|drive me|route me) to (?:the )?(?P<dest>(?:nearest|closest) .+)",
)
def _maps_directions(m: re.Match[str]) -> Goal:
    dest = re.sub(r"^(?:nearest|closest|nearby|local)\s+", "", phrase(m["dest"]), flags=re.I)
    return search_goal(Intent.MAPS_DIRECTIONS, dest)


_PLACE_OPENER = (
    r"(?:search for|search|find(?: me)?|show me|locate|look up|look for|where (?:is|are)|where's"
    r"|what(?:'s| is| are)|open (?:google )?maps and (?:search for|find|look for|show me))"
)


@frame(
    rf"{_PLACE_OPENER} (?P<what>.+?) (?:on|in|using|with|via) (?:the )?(?:google )?maps(?: app)?",
    rf"{_PLACE_OPENER} (?:a |an |the )?(?:nearest|closest) (?P<what>.+?)",
    rf"{_PLACE_OPENER} (?P<what>.+?) (?:near me|nearby|near here|around me|around here|close to me|in my area)",
    r"open (?:google )?maps and (?:search for|find|look for|show me) (?P<what>.+)",
)
def _maps_search(m: re.Match[str]) -> Goal:
    parts = _PLACE_FILTER.match(phrase(m["what"]))
    main = phrase(parts["main"])
    qual = re.sub(r"^ (?:that's|that is|which is|that are|which are) ", " ", parts["qual"] or "")
    return search_goal(Intent.MAPS_SEARCH, main + qual, required=main)


# ---- websites by name ----------------------------------------------------------------------
# What a request asks of a named store: the object of a product question or command.
_PRODUCT = tuple(
    re.compile(p, re.IGNORECASE)
    for p in (
        r"what(?:'s| is| are) the (?:price|cost) (?:of|for) (?P<x>.+)",
        r"how much (?:does|do|is|are|would|will|did) (?P<x>.+?)(?: cost| sell for| go for)?",
        r"what (?:does|do) (?P<x>.+?) look like",
        r"(?:search for|search|find(?: me)?|look for|look up|shop for|buy|browse(?: for)?|show me"
        r"|get(?: me)?|where can i (?:buy|find|get)|check(?: out)?)(?: (?P<x>.+))?",
        r"what(?:'s| is| are)(?: (?P<x>.+))?",
    )
)
_SITE_NAME = r"(?:the )?(?P<name>[\w'&.-]+(?: [\w'&.-]+){0,2}?)"
_SITE_WORD = r"(?: (?:website|web site|site|homepage|home page|front page|online|store))?"


@frame(
    rf"(?P<body>.+) (?:on|at|from) {_SITE_NAME}{_SITE_WORD}"
    r"(?: (?:right now|now|today|tonight|this week|this weekend|this month))?"
)
def _named_site_search(m: re.Match[str]) -> Goal | None:
    domain = apps.site_domain(m["name"])
    if domain is None:
        return None  # an unknown store: leave it to the web-search frames
    for pattern in _PRODUCT:
        product = pattern.fullmatch(m["body"])
        if product:
            break
    else:
        return None
    query = phrase(product["x"] or "")
    if is_browse_only(query):
        return Goal.make(Intent.SITE_VISIT, site=domain)
    return Goal.make(Intent.SITE_SEARCH, site=domain, query=query)


@frame(rf"(?:{_GO}|show me|take me to) {_SITE_NAME}(?P<app> app| application)?{_SITE_WORD}")
def _named_site_visit(m: re.Match[str]) -> Goal | None:
    domain = apps.site_domain(m["name"])
    if domain is None or m["app"] or apps.is_system_app(m["name"]):
        return None  # "Open the Reddit app" is OPEN_APP
    return Goal.make(Intent.SITE_VISIT, site=domain)


# ---- apps ----------------------------------------------------------------------------------
_OPEN_ANY = ("open", "launch", "start", "run")
_NOT_APP_LEAD = frozenset("a an some this that these those all new".split())


@frame(
    r"(?P<verb>open|launch|start|run|go to|take me to|bring up|pull up|show me|switch to|navigate to)"
    r"(?: up)? (?:the |my )?(?P<app>.+?)(?P<suffix> app| application)?"
    r"(?P<more> (?:and|then) (?:show|check|see|view|look at)(?: me)? .+)?"
)
def _open_app(m: re.Match[str]) -> Goal | None:
    name = m["app"]
    if re.search(r",| and | then ", name) or len(name.split()) > 4:
        return None
    if name.split()[0].lower() in _NOT_APP_LEAD:
        return None  # "Open a new document" names no app
    if name.lower().endswith(" settings"):
        raise Refusal(
            f"{name!r} is a settings page, not an app; try 'Check the settings for the X app'"
        )
    canonical = apps.canonical_app(name)
    system = canonical in apps.SYSTEM_APPS
    if m["more"] and not system:
        return None  # "Open Spotify and show me X" asks for more than opening it
    if system or m["suffix"] or m["verb"].lower() in _OPEN_ANY:
        return Goal.make(Intent.OPEN_APP, app=canonical)
    return None


# ---- web search (last: the catch-all for questions and search commands) --------------------
_QUESTION = (
    r"(?:what|what's|whats|who|who's|whose|whom|where|where's|when|when's|which|why|how|how's"
    r"|is|are|was|were|does|did|will|can|should|has|have)"
)
_CHECKABLE = frozenset(
    "weather forecast news time score price stock exchange traffic temperature".split()
)


@frame(rf"(?P<q>{_QUESTION}\b.+)")
def _question(m: re.Match[str]) -> Goal:
    return search_goal(Intent.WEB_SEARCH, content_query(m["q"]))


@frame(
    r"(?P<verb>google|search(?: the web| online| google| the internet)?(?: for)?|look up|look for"
    r"|find(?: me)?(?: out)?|show me|tell me(?: about)?|check|get me)(?: (?P<q>.+))?"
)
def _command_search(m: re.Match[str]) -> Goal | None:
    q = re.sub(r" (?:online|on google|on the web|on the internet)$", "", m["q"] or "", flags=re.I)
    query = phrase(q)
    if not query:
        raise Refusal("nothing to search for; say what to search, e.g. 'Search for hotels in Lima'")
    first = text.keywords(query)[:1]
    if m["verb"].lower() == "check" and not (first and first[0] in _CHECKABLE):
        return None  # "Check my balance" is not a search
    return search_goal(Intent.WEB_SEARCH, query)
