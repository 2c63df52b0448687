"""Training-task augmentation: the same requests with made-up values in place of the real ones.

The validation split holds out slot values (artists, places, brands: ``suites.is_validation``),
so a policy that has only seen the training values must *copy* a name from the task into its
TYPE action rather than recall it. A small model trained on a few hundred task strings memorises
instead (it types a training artist for an unseen one). Replacing a capitalised name, a quoted
search query or a shopping site's name in a training string with a pronounceable made-up one,
and keeping the variant only when the parser reads the new value into the same kind of goal,
gives unlimited fresh values and teaches copying. App names are never replaced (an app must
exist on the device); simphone serves any shopping site.
Variants never use a held-out value (they are re-checked with ``is_validation``).
"""

from __future__ import annotations

import dataclasses
import random
import re
from collections.abc import Sequence

from distrl_jax.tasks.goals import Task
from distrl_jax.tasks.parser import try_parse
from distrl_jax.tasks.suites import is_validation

_ONSETS = ("b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "ch", "st", "tr")  # fmt: skip
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ou")
# A run of capitalised words not at the start of the string (the names in a request).
_NAME = re.compile(r"(?<=\s)([A-Z][A-Za-z'&.-]*(?:\s+[A-Z][A-Za-z'&.-]*)*)")
# A quoted search query ('search for "logitech g910"') and a shopping site's name.
_QUOTED = re.compile(r'"([^"]+)"')
_SITE = re.compile(r"\b([a-z0-9-]+)(?=\.com\b)")
# A lowercase word (held-out search terms are often plain nouns such as "speed", which the
# capitalised-name rule never varies); kept only where the goal's query holds it.
_WORD = re.compile(r"\b([a-z]{3,})\b")
# Capitalised words that are part of a request's wording, not a value to vary.
_KEEP = {"YouTube", "Google", "Maps", "Chrome", "Gmail", "Play", "Store", "Settings", "Wi-Fi", "I"}


def made_up_name(rng: random.Random) -> str:
    """One or two capitalised pseudo-words, e.g. ``"Trelo Vasik"``."""

    def word() -> str:
        syllables = rng.randint(2, 3)
        w = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(syllables))
        return w.capitalize()

    return " ".join(word() for _ in range(rng.choice((1, 1, 2))))


def _replacements(text: str, rng: random.Random, query: str = "") -> list[tuple[int, int, str]]:
    """Candidate (start, end, new text) edits: capitalised names, quoted queries, site names and
    the lowercase words of a search ``query``."""
    out = [
        (m.start(1), m.end(1), made_up_name(rng))
        for m in _NAME.finditer(text)
        if m.group(1) not in _KEEP
    ]
    for m in _QUOTED.finditer(text):
        out.append((m.start(1), m.end(1), made_up_name(rng).lower()))
    for m in _SITE.finditer(text):
        out.append((m.start(1), m.end(1), made_up_name(rng).lower().replace(" ", "")))
    query_words = set(query.lower().split())
    for m in _WORD.finditer(text):
        if m.group(1) in query_words:
            out.append((m.start(1), m.end(1), made_up_name(rng).split()[0].lower()))
    return out


def variants(task: Task, n: int, rng: random.Random, tries: int = 4) -> list[Task]:
    """Up to ``n`` variants of ``task`` with one value replaced; fewer if none parse alike."""
    if task.goal is None:
        return []
    out: list[Task] = []
    for _ in range(n * tries):
        if len(out) >= n:
            break
        edits = _replacements(task.text, rng, str(task.goal.get("query") or ""))
        if not edits:
            break
        start, end, new_value = rng.choice(edits)
        text = task.text[:start] + new_value + task.text[end:]
        goal, _ = try_parse(text)
        if goal is None or goal.intent != task.goal.intent or is_validation(goal):
            continue
        if goal.get("app") != task.goal.get("app"):
            continue  # apps must exist on the device; sites and free text may be anything
        if not any(new_value.lower() in str(v).lower() for _, v in goal.slots):
            continue  # the parser did not read the new value into a slot
        out.append(dataclasses.replace(task, text=text, goal=goal))
    return out


def augment(tasks: Sequence[Task], per_task: int, seed: int = 0) -> list[Task]:
    """``tasks`` followed by up to ``per_task`` made-up-name variants of each."""
    rng = random.Random(seed)
    extra = [v for t in tasks for v in variants(t, per_task, rng)]
    return [*tasks, *extra]
