"""Task strings -> goals: normalise the text, then match it against the intent frames.

``parse("Set an alarmfor 5pm")`` gives ``Goal(SET_ALARM, time="17:00")``. The grammar lives in
``tasks.frames`` (intent frames with slot patterns) and ``tasks.slots`` (slot extraction); this
module cleans the text first, so that frames see one spelling of each phrasing:

- quotes and apostrophes straightened, whitespace collapsed, trailing ``?.!`` dropped;
- words the task lists glue together split again: a frame word glued to another ("Searchfor",
  "alarmfor", "Checkthe", "rateagainst", "goodrestaurant"), a short preposition glued to a
  capitalised word ("inToronto", "theFalkland"), an article glued to a number ("a3 bedroom"), and
  "TV" glued to a brand ("HisenseTV");
- politeness stripped ("Hey Google, can you please ...", "... for me, thanks").

A string that no frame accepts raises :class:`UnsupportedTask` with the reason; the parser never
guesses an intent.
"""

from __future__ import annotations

import re

from distrl_jax.tasks.frames import FRAMES
from distrl_jax.tasks.goals import Goal
from distrl_jax.tasks.slots import Refusal

__all__ = ["UnsupportedTask", "normalise", "parse"]


class UnsupportedTask(ValueError):
    """A task string the parser cannot turn into a goal; ``reason`` says why."""

    def __init__(self, text: str, reason: str):
        self.text = text
        self.reason = reason
        super().__init__(
            f"unsupported task {text!r}: {reason} "
            "(see `python -m distrl_jax.tasks coverage` for the phrasings that are understood)"
        )


# Frame words that the task lists glue together ("Searchfor"): a head glued to a tail is split.
_GLUE_HEADS = frozenset(
    """search alarm check rate good what whats open install find turn toggle show price weather
    news time nearest notifications settings capital video restaurant restaurants hotels flights
    directions for""".split()
)
_GLUE_TAILS = frozenset(
    """for the against restaurant restaurants in on at to of from me my an is off new nearest near
    app apps""".split()
)
_MIN_GLUED = 6  # shorter tokens ("goat", "into", "forme") are more likely real words

_CAMEL_PREPOSITION = re.compile(r"(?<![A-Za-z])(in|the|to|for|at|on|of|from)(?=[A-Z][a-z])")
_ARTICLE_NUMBER = re.compile(r"(?<![A-Za-z'])(a|an)(?=\d)")
_GLUED_TV = re.compile(r"(?<=[a-z]{3})(?=TV\b)")
_POLITE_HEAD = re.compile(
    r"^(?:(?:ok(?:ay)?|hey) google[,!]?\s+)?(?:(?:please|kindly)\s+)?"
    r"(?:(?:can|could|would|will) you(?: please)?\s+)?(?:please\s+)?"
    r"(?:i want to|i'd like to|i would like to|i need to|help me|let's)?\s*",
    re.IGNORECASE,
)
_POLITE_TAIL = re.compile(r"[,\s]+(?:please|for me|thanks|thank you)$", re.IGNORECASE)
_TELL_ME = re.compile(r"^tell me (?=(?:what|who|how|where|when|which|why)\b)", re.IGNORECASE)


def _split_glued(token: str, first: bool) -> str:
    """``token`` with a glued head+tail pair split ("Searchfor" -> "Search for")."""
    if len(token) < _MIN_GLUED or not token.isalpha():
        return token
    if token[0].isupper() and not first:  # a name mid-sentence ("Seton"): leave it alone
        return token
    lower = token.lower()
    for cut in range(2, len(token) - 1):
        if lower[:cut] in _GLUE_HEADS and lower[cut:] in _GLUE_TAILS and lower not in _GLUE_HEADS:
            return f"{token[:cut]} {token[cut:]}"
    return token


def normalise(text: str) -> str:
    """The task text cleaned for matching (see the module docstring); case is kept."""
    s = text.replace("’", "'").replace("‘", "'").replace("“", '"').replace("”", '"')
    s = _CAMEL_PREPOSITION.sub(r"\1 ", s)
    s = _ARTICLE_NUMBER.sub(r"\1 ", s)
    s = _GLUED_TV.sub(" ", s)
    tokens = s.split()
    s = " ".join(_split_glued(t, i == 0) for i, t in enumerate(tokens))
    s = re.sub(r"\s+([,?!;:])", r"\1", s)
    s = s.strip().rstrip("?!. ").strip()
    s = _POLITE_TAIL.sub("", s)
    s = _POLITE_HEAD.sub("", s, count=1)
    s = _TELL_ME.sub("", s)
    return s.strip(" ,")


def parse(text: str) -> Goal:
    """The goal a task string asks for; raises :class:`UnsupportedTask` when there is none."""
    if not isinstance(text, str):
        raise UnsupportedTask(repr(text), f"a task must be a str, got {type(text).__name__}")
    clean = normalise(text)
    if not clean:
        raise UnsupportedTask(text, "the task string is empty")
    for fr in FRAMES:
        for pattern in fr.patterns:
            m = pattern.fullmatch(clean)
            if m is None:
                continue
            try:
                goal = fr.build(m)
            except Refusal as refusal:
                raise UnsupportedTask(text, f"{fr.name}: {refusal}") from None
            except ValueError as err:  # e.g. an empty app name from the registry
                raise UnsupportedTask(text, f"{fr.name}: {err}") from None
            if goal is not None:
                return goal
    raise UnsupportedTask(text, "it matches none of the supported request frames")


def try_parse(text: str) -> tuple[Goal | None, str]:
    """``(goal, "")`` when ``text`` parses, else ``(None, reason)``."""
    try:
        return parse(text), ""
    except UnsupportedTask as err:
        return None, err.reason
