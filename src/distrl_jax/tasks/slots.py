"""Slot extraction for the task frames: times, domains, search phrases and their keywords.

Two ways of turning words into a search query, used consistently by the frames:

- :func:`phrase` keeps a command's object as written, minus leading filler ("Search for a new
  blush" -> "blush", "Search for flights from NYC to Paris" -> "flights from NYC to Paris"), so
  word order that matters (from/to) survives. Used after commands and for product names.
- :func:`content_query` keeps only a question's content words in their written form ("What's the
  weather like in Paris?" -> "weather Paris"), which is what a person types into a search box.

Either way a goal's ``keywords`` are ``tasks.text.keywords`` of the words that must be searched,
so ``covers(goal["query"], goal["keywords"])`` holds by construction (and is asserted).
"""

from __future__ import annotations

import re

from distrl_jax.tasks import text
from distrl_jax.tasks.goals import Goal, Intent


class Refusal(Exception):
    """A frame recognised the request but cannot fill its slots; the message says why."""


# Leading words a person leaves out of a search box.
_FILLER_LEAD = frozenset("a an the some any new nice good great my our your".split())
# Same token shape as tasks.text's words, with case kept.
_SURFACE = re.compile(r"[A-Za-z0-9]+(?:['.&-][A-Za-z0-9]+)*")
# Words that only say "show me this site" ("the top post on reddit right now").
BROWSE_WORDS = frozenset(
    """top post posts latest new hot trending popular best front page home homepage feed right now
    today tonight this week weekend month story stories thread threads""".split()
)

_DOMAIN = re.compile(r"^(?:https?://)?(?:www\.)?([a-z0-9.-]+\.[a-z]{2,24})(?:[/?#].*)?$", re.I)
_TIME_12 = re.compile(r"(?P<h>\d{1,2})(?:[:.]?(?P<m>\d{2}))?\s*(?P<ap>[ap])\.?\s*m\.?", re.I)
_TIME_24 = re.compile(r"(?P<h>\d{1,2})[:.h](?P<m>\d{2})(?:\s*(?:hours|hrs|h))?", re.I)
_TIME_WORDS = {"noon": "12:00", "midday": "12:00", "midnight": "00:00"}


def phrase(raw: str) -> str:
    """A command's object as a search phrase: brackets and quotes dropped, filler words trimmed."""
    s = re.sub(r"[()\[\]{}\"]", " ", raw)
    words = s.split()
    # Only lower-case filler: "the new iPad" -> "iPad", but "New York Times" stays a name.
    while words and words[0] in _FILLER_LEAD:
        words.pop(0)
    return " ".join(words).strip(" ,;:-")


def content_query(raw: str, drop: frozenset[str] = frozenset()) -> str:
    """The content words of ``raw`` as written (stopwords and ``drop`` stems removed).

    A capitalised stopword inside a name is kept ("time in New York" -> "time New York").
    """
    tokens = _SURFACE.findall(raw)
    kept = []
    for i, tok in enumerate(tokens):
        stem = text.words(tok)[0]
        if stem in drop:
            continue
        if stem not in text.STOPWORDS or tok.lower() not in text.STOPWORDS:
            kept.append(tok)  # a content word (also "news", whose stem "new" is a stopword)
        elif i > 0 and tok[0].isupper() and i + 1 < len(tokens) and _is_name(tokens[i + 1]):
            kept.append(tok)  # part of a name: "New York", "The Hague" mid-sentence
    return " ".join(kept)


def _is_name(tok: str) -> bool:
    return tok[0].isupper() and text.words(tok)[0] not in text.STOPWORDS


def is_browse_only(words: str) -> bool:
    """True when ``words`` ask for nothing but a site's front page ("top post right now")."""
    return all(w in BROWSE_WORDS for w in words.lower().split())


def search_goal(intent: Intent, query: str, required: str | None = None) -> Goal:
    """A goal whose query is ``query`` and whose keywords are those of ``required`` (or query)."""
    query = " ".join(query.split())
    kws = text.keywords(query if required is None else required)
    if not kws:
        raise Refusal(f"nothing to search for in {query!r} (no content words)")
    keywords = " ".join(kws)
    if not text.covers(query, keywords):  # a frame bug, not bad input
        raise AssertionError(f"query {query!r} does not cover keywords {keywords!r}")
    return Goal.make(intent, query=query, keywords=keywords)


def normalise_domain(raw: str) -> str:
    """A bare lower-case domain: scheme, ``www.`` and any path removed."""
    m = _DOMAIN.match(raw.strip())
    if not m:
        raise Refusal(f"{raw!r} is not a domain such as 'costco.com'")
    return m.group(1).lower().strip(".")


def parse_time(raw: str) -> str:
    """A clock time as 24-hour "HH:MM": "7am", "6:30 pm", "18:00", "noon".

    A bare hour without am/pm ("7") is ambiguous and refused rather than guessed.
    """
    s = raw.strip().lower()
    if s in _TIME_WORDS:
        return _TIME_WORDS[s]
    m = _TIME_12.fullmatch(s)
    if m:
        h, mins = int(m["h"]), int(m["m"] or 0)
        if not 1 <= h <= 12:
            raise Refusal(f"alarm time {raw!r}: hour {h} is not on a 12-hour clock (1-12)")
        if mins > 59:
            raise Refusal(f"alarm time {raw!r}: minute {mins} is not 00-59")
        h = h % 12 + (12 if m["ap"] == "p" else 0)
        return f"{h:02d}:{mins:02d}"
    m = _TIME_24.fullmatch(s)
    if m:
        h, mins = int(m["h"]), int(m["m"])
        if h > 23 or mins > 59:
            raise Refusal(f"alarm time {raw!r} is not a 24-hour time (00:00-23:59)")
        return f"{h:02d}:{mins:02d}"
    raise Refusal(f"alarm time {raw!r} is not understood: use e.g. '7am', '6:30 pm' or '18:00'")
