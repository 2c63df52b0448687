"""Task suites: loading task lists, parsing them into tasks, and the validation split.

Built-in suites are the AitW training lists used by DigiRL, shipped as package data:
``"general"`` (AitW General, horizon 10) and ``"webshop"`` (AitW Web Shopping, horizon 20). Any
other argument is a path to a text file with one task string per line (blank lines and lines
starting with ``#`` are skipped). Strings are deduplicated in order of first appearance. A
file's suite is "webshop" when its name contains "webshop"/"web_shop", else "general", unless
given explicitly; the horizon follows the suite unless given.

Strings the parser cannot handle are never dropped silently: :func:`load_suite` returns them with
their reasons, and :func:`load_tasks` logs a warning with their count.

Validation split (deterministic, fixed in advance and never tuned on; the held-out test strings
of AitW are not available, so this stands in for "unseen sites, products, places and apps").
A task is in the validation split when its goal involves any held-out value; everything else is
train. Whole values are held out, so no validation site, brand, place, app or artist occurs in
train:

- sites: ``newegg.com`` (every visit, search and select-first task on it), ``sephora.com``;
- product brands (any site): jbl, rayovac;
- places: seattle, tokyo, sydney, chicago, peru, japan;
- apps: spotify, uber;
- artists and channels: drake, taylor swift, gamespot;
- question families: wallpapers, speed ("What is the speed of ...");
- alarm times: 08:00 and 20:00.

Matching uses ``tasks.text.words`` of the goal's slot values, so the rule applies to any task
list, not only to the built-in ones.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import logging
from collections.abc import Iterable
from pathlib import Path

from distrl_jax.tasks import text
from distrl_jax.tasks.goals import Goal, Task
from distrl_jax.tasks.parser import try_parse

log = logging.getLogger(__name__)

BUILTIN_SUITES: dict[str, str] = {
    "general": "general_train.txt",
    "webshop": "webshop_train.txt",
}
DEFAULT_HORIZONS: dict[str, int] = {"general": 10, "webshop": 20}
SPLITS = ("train", "val", "all")

HELD_OUT_SITES = frozenset({"newegg.com", "sephora.com"})
HELD_OUT_TERMS: tuple[tuple[str, ...], ...] = tuple(
    tuple(text.words(term))
    for term in (
        "jbl",
        "rayovac",
        "seattle",
        "tokyo",
        "sydney",
        "chicago",
        "peru",
        "japan",
        "spotify",
        "uber",
        "drake",
        "taylor swift",
        "gamespot",
        "wallpapers",
        "speed",
    )
)
HELD_OUT_TIMES = frozenset({"08:00", "20:00"})
_WORDY_SLOTS = ("query", "app")


@dataclasses.dataclass(frozen=True)
class SuiteLoad:
    """A parsed task list: supported tasks, and unsupported strings with their reasons."""

    name: str
    source: str
    unique: int
    tasks: tuple[Task, ...]
    unsupported: tuple[tuple[str, str], ...]

    @property
    def supported_fraction(self) -> float:
        """The share of unique strings that parsed."""
        return len(self.tasks) / self.unique if self.unique else 0.0


def is_validation(goal: Goal) -> bool:
    """True when ``goal`` involves a held-out site, term or time (see the module docstring)."""
    if goal.get("site") in HELD_OUT_SITES or goal.get("time") in HELD_OUT_TIMES:
        return True
    have: set[str] = set()
    for slot in _WORDY_SLOTS:
        have.update(text.words(goal.get(slot)))
    return any(all(w in have for w in term) for term in HELD_OUT_TERMS)


def suite_for_path(path: str | Path) -> str:
    """The suite a task file belongs to by its name: "webshop" or "general"."""
    name = Path(path).name.lower()
    return "webshop" if "webshop" in name or "web_shop" in name else "general"


def read_task_strings(name_or_path: str | Path) -> tuple[str, list[str]]:
    """``(source, unique strings)`` of a built-in suite name or a task file path."""
    if isinstance(name_or_path, str) and name_or_path in BUILTIN_SUITES:
        ref = importlib.resources.files("distrl_jax") / "data" / "aitw_tasks"
        ref = ref / BUILTIN_SUITES[name_or_path]
        source, content = str(ref), ref.read_text(encoding="utf-8")
    else:
        path = Path(name_or_path)
        if not path.is_file():
            raise ValueError(
                f"task list {str(name_or_path)!r} is neither a built-in suite "
                f"({', '.join(BUILTIN_SUITES)}) nor an existing file"
            )
        source, content = str(path), path.read_text(encoding="utf-8")
    return source, dedup(content.splitlines())


def dedup(lines: Iterable[str]) -> list[str]:
    """Stripped, non-empty, non-comment lines without repeats, in order of first appearance."""
    seen: dict[str, None] = {}
    for line in lines:
        s = line.strip()
        if s and not s.startswith("#"):
            seen.setdefault(s, None)
    return list(seen)


def load_suite(
    name_or_path: str | Path,
    split: str = "train",
    horizon: int | None = None,
    suite: str | None = None,
) -> SuiteLoad:
    """Parse a task list into tasks of one split, keeping the unsupported strings and reasons."""
    if split not in SPLITS:
        raise ValueError(f"split={split!r} is not one of {SPLITS}")
    source, strings = read_task_strings(name_or_path)
    if suite is None:
        builtin = isinstance(name_or_path, str) and name_or_path in BUILTIN_SUITES
        suite = str(name_or_path) if builtin else suite_for_path(name_or_path)
    if horizon is None:
        horizon = DEFAULT_HORIZONS.get(suite, DEFAULT_HORIZONS["general"])
    if not isinstance(horizon, int) or isinstance(horizon, bool) or horizon < 1:
        raise ValueError(f"horizon={horizon!r} must be a positive int (steps per episode)")
    tasks, unsupported = [], []
    for s in strings:
        goal, reason = try_parse(s)
        if goal is None:
            unsupported.append((s, reason))
            continue
        in_val = is_validation(goal)
        if split == "all" or (split == "val") == in_val:
            tasks.append(Task(text=s, goal=goal, suite=suite, horizon=horizon))
    return SuiteLoad(suite, source, len(strings), tuple(tasks), tuple(unsupported))


def load_tasks(
    name_or_path: str | Path,
    split: str = "train",
    horizon: int | None = None,
    suite: str | None = None,
) -> list[Task]:
    """The supported tasks of a suite split; logs how many strings were unsupported."""
    loaded = load_suite(name_or_path, split=split, horizon=horizon, suite=suite)
    if loaded.unsupported:
        log.warning(
            "%d of %d unique task strings in %s are unsupported and left out "
            "(list them with `python -m distrl_jax.tasks coverage %s`)",
            len(loaded.unsupported),
            loaded.unique,
            loaded.source,
            name_or_path,
        )
    return list(loaded.tasks)
