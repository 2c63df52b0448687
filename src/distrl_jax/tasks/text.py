"""Text normalisation shared by the task parser and the devices' judges.

A search counts as being "for" a question when its query contains the question's content words.
Both sides must normalise words the same way, which is why this lives in one place.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[a-z0-9]+(?:['.&-][a-z0-9]+)*")

# Function words and question frames that carry no content for a search.
STOPWORDS = frozenset(
    """a an the of in on at to for from by with and or is are was were be been am do does did
    what what's whats how where when who whom which why can could would should i me my we you your
    it its this that these those there here some any s much many like good nice new best top latest
    please show tell find search google look up get go about near me""".split()
)


def words(text: str) -> list[str]:
    """Lower-case word tokens (keeps 12', at&t, 5-star, u.s. as single tokens)."""
    text = text.lower().replace("’", "'")
    return [_stem(w) for w in _WORD.findall(text)]


def _stem(w: str) -> str:
    if w.endswith("'s"):  # possessive or contraction: "what's" -> "what", "lowe's" -> "lowe"
        w = w[:-2]
    if w in STOPWORDS:
        return w
    # A light plural fold so "restaurants" matches "restaurant"; never shorter than 3 letters,
    # and never onto a stopword ("news" must not become "new" and vanish from the keywords).
    folded = w
    if len(w) > 4 and w.endswith("ies"):
        folded = w[:-3] + "y"
    elif len(w) > 3 and w.endswith("s") and w[-2].isalnum() and not w.endswith(("ss", "us", "is")):
        folded = w[:-1]
    return w if folded in STOPWORDS else folded


def keywords(text: str) -> tuple[str, ...]:
    """Content words of ``text`` in order, without duplicates or stopwords."""
    seen: dict[str, None] = {}
    for w in words(text):
        if w not in STOPWORDS and w not in seen:
            seen[w] = None
    return tuple(seen)


def covers(query: str, required: str | tuple[str, ...]) -> bool:
    """True when every required keyword occurs among the words of ``query``."""
    need = required.split() if isinstance(required, str) else required
    have = set(words(query))
    return all(w in have for w in need)
