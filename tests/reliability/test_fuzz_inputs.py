"""Fuzzing the human-facing inputs: config overrides and task strings.

Random keys and values (unicode, huge numbers, separators, non-finite numbers) must yield a
valid Config or a clear ``ConfigError`` (a ValueError) naming the field, never another
exception; random task strings must yield a goal or ``UnsupportedTask``, never a crash.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from distrl_jax.config import Config, ConfigError, apply_overrides, describe_fields, from_dict
from distrl_jax.tasks.parser import UnsupportedTask, parse

FIELDS = [name for name, _, _ in describe_fields(Config())]
HOSTILE_VALUES = [
    "", " ", "0", "-1", "1e400", "-1e400", "nan", "inf", "-inf", "1_000", "0x10", "true", "no",
    "9" * 5000, "1,2,3", ",,,", "a:b", "é", "\x00", "\u202e", "None", "[1, 2]", "{}", "-0.0",
    "3.14", "cpu", "tpu", "path", "inline", "../../etc/passwd", "=", "==", "a=b=c", "\n",
]  # fmt: skip
SEED_TASKS = [
    "Open the clock app",
    "Search for hotels in Paris",
    "Set an alarm for 7 am",
    "Go to the home screen",
    "Open settings and turn on wifi",
]
settings_fuzz = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def _apply(assignments: list[str]) -> Config | None:
    """Apply overrides; None for a clear ConfigError, and anything else propagates."""
    try:
        return apply_overrides(Config(), assignments)
    except ConfigError as err:
        assert str(err), "a ConfigError must say what was wrong"
        return None


def test_every_field_against_hostile_values() -> None:
    """Every leaf field x every hostile value (deterministic, ~10k cases)."""
    accepted = 0
    for name in FIELDS:
        for value in HOSTILE_VALUES:
            cfg = _apply([f"{name}={value}"])
            accepted += cfg is not None
            if cfg is None:
                continue
            # Whatever is accepted must survive a round trip through the dict form.
            from_dict({}, base=cfg)
    total = len(FIELDS) * len(HOSTILE_VALUES)
    assert 0 < accepted < total, f"{accepted} of {total} accepted: the values are not probing"


def test_seeded_random_override_lists() -> None:
    rng = np.random.default_rng(11)
    for _ in range(3000):
        parts = []
        for _ in range(int(rng.integers(1, 4))):
            name = FIELDS[int(rng.integers(0, len(FIELDS)))]
            if rng.random() < 0.15:  # a misspelt or truncated key
                name = name[: int(rng.integers(0, len(name) + 1))] + rng.choice(["", "x", "."])
            value = HOSTILE_VALUES[int(rng.integers(0, len(HOSTILE_VALUES)))]
            sep = "=" if rng.random() < 0.95 else ":"
            parts.append(f"--{name}{sep}{value}")
        _apply(parts)


@settings_fuzz
@given(st.lists(st.text(max_size=40), max_size=4))
def test_arbitrary_override_strings(assignments: list[str]) -> None:
    _apply(assignments)


@settings_fuzz
@given(st.sampled_from(FIELDS), st.text(max_size=30))
def test_arbitrary_values_for_real_fields(name: str, value: str) -> None:
    cfg = _apply([f"{name}={value}"])
    if cfg is not None:
        assert cfg.validate() is cfg


_SCALAR = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10)
_LEAF = _SCALAR | st.lists(_SCALAR, max_size=3)
# A dict under a leaf field (or under a section's leaf) hits the from_dict bug pinned below, so
# the random documents keep dicts at section level; the bug has its own strict-xfail test.
_SECTION = st.dictionaries(st.sampled_from(["lr", "steps", "batch_size", "x", ""]), _LEAF)


@settings(settings_fuzz, derandomize=True)
@given(
    st.dictionaries(st.sampled_from([*FIELDS[:20], "bogus"]), _LEAF)
    | st.dictionaries(st.sampled_from(["learner", "model", "replay", "runtime"]), _SECTION)
)
def test_from_dict_on_arbitrary_documents(data: dict) -> None:
    """A hand-edited resolved-config YAML: a Config or a ConfigError."""
    try:
        from_dict(data)
    except ConfigError as err:
        assert str(err)


@pytest.mark.parametrize("data", [{"name": {"0": []}}, {"learner": {"lr": {"x": [1]}}}])
def test_from_dict_with_a_list_below_a_leaf_field(data: dict) -> None:
    """A nested document below a plain value is a ConfigError (it was a TypeError)."""
    with pytest.raises(ConfigError):
        from_dict(data)


def _parse_or_reason(text: str) -> str:
    try:
        goal = parse(text)
    except UnsupportedTask as err:
        assert err.reason and err.text is not None
        return "unsupported"
    assert goal is not None
    return "goal"


@settings_fuzz
@given(st.text(max_size=120))
def test_arbitrary_unicode_task_strings(text: str) -> None:
    _parse_or_reason(text)


def test_mutated_task_strings() -> None:
    """Seed tasks with random insertions, deletions and unicode: a goal or 'unsupported'."""
    rng = np.random.default_rng(5)
    alphabet = [*"abc xyz0123456789.,;:!?'\"-_/\\()[]{}", "é", "ß", "\u0301", "日", "\t"]
    outcomes = {"goal": 0, "unsupported": 0}
    for k in range(3000):
        chars = list(SEED_TASKS[k % len(SEED_TASKS)])
        for _ in range(int(rng.integers(0, 4))):
            pos = int(rng.integers(0, len(chars) + 1))
            if rng.random() < 0.5 and chars:
                del chars[min(pos, len(chars) - 1)]
            else:
                chars.insert(pos, alphabet[int(rng.integers(0, len(alphabet)))])
        text = "".join(chars)
        if rng.random() < 0.1:
            text = text * int(rng.integers(2, 50))
        outcomes[_parse_or_reason(text)] += 1
    assert outcomes["goal"] > 0 and outcomes["unsupported"] > 0, outcomes


@pytest.mark.parametrize("bad", [None, 5, b"Open the clock app", ["Open"]])
def test_non_string_tasks_are_unsupported(bad: object) -> None:
    with pytest.raises(UnsupportedTask, match="must be a str"):
        parse(bad)  # type: ignore[arg-type]
