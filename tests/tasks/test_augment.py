"""Made-up-name variants of training tasks (``tasks.augment``)."""

from __future__ import annotations

import random

import pytest

from distrl_jax.tasks.augment import augment, made_up_name, variants
from distrl_jax.tasks.parser import parse
from distrl_jax.tasks.suites import is_validation, load_tasks


@pytest.fixture(scope="module")
def train_tasks():
    return load_tasks("general", split="train")


def test_made_up_names_are_capitalised_pseudo_words() -> None:
    rng = random.Random(0)
    names = [made_up_name(rng) for _ in range(200)]
    assert len(set(names)) > 150  # fresh values, not a short list
    for name in names:
        words = name.split()
        assert 1 <= len(words) <= 2
        assert all(w[0].isupper() and w[1:].islower() and w.isalpha() for w in words)


def test_variants_keep_the_intent_and_carry_the_new_name(train_tasks) -> None:
    task = next(t for t in train_tasks if t.text == "Play the new Bruno Mars video on YouTube")
    out = variants(task, 3, random.Random(1))
    assert len(out) == 3
    for v in out:
        assert "Bruno Mars" not in v.text and v.text.endswith("video on YouTube")
        assert v.goal == parse(v.text)
        assert v.goal.intent == task.goal.intent
        name = v.text.removeprefix("Play the new ").removesuffix(" video on YouTube")
        assert v.goal.get("query") == name
        assert v.horizon == task.horizon and v.suite == task.suite


def test_apps_are_never_replaced(train_tasks) -> None:
    rng = random.Random(2)
    for task in train_tasks:
        for v in variants(task, 2, rng):
            assert v.goal.get("app") == task.goal.get("app")


def test_webshop_variants_vary_sites_and_quoted_queries() -> None:
    tasks = load_tasks("webshop", split="train")
    task = next(t for t in tasks if t.text == 'Go to bestbuy.com, search for "logitech g910"')
    out = variants(task, 8, random.Random(3))
    assert len(out) == 8
    sites = {v.goal.get("site") for v in out}
    queries = {v.goal.get("query") for v in out}
    assert len(sites) > 1 and len(queries) > 1  # both kinds of value were replaced
    for v in out:
        assert v.goal == parse(v.text) and v.goal.intent == task.goal.intent
        assert v.goal.get("site").endswith(".com")
        # Exactly one value changed per variant.
        assert (v.goal.get("site") == "bestbuy.com") != (v.goal.get("query") == "logitech g910")


def test_augment_keeps_the_originals_first_and_never_leaks_validation_values(train_tasks) -> None:
    out = augment(train_tasks, 2, seed=0)
    assert out[: len(train_tasks)] == list(train_tasks)
    extra = out[len(train_tasks) :]
    assert len(extra) > len(train_tasks) // 2  # most requests with a name have variants
    assert not any(is_validation(t.goal) for t in extra)
    assert augment(train_tasks, 2, seed=0) == out  # seeded
    assert augment(train_tasks, 0, seed=0) == list(train_tasks)


def test_a_task_without_a_name_or_a_query_has_no_variants(train_tasks) -> None:
    task = next(
        t
        for t in train_tasks
        if not any(w[:1].isupper() for w in t.text.split()[1:]) and not t.goal.get("query")
    )
    assert variants(task, 2, random.Random(0)) == []


def test_lowercase_search_words_are_varied_and_land_in_the_query(train_tasks) -> None:
    """Held-out search terms are plain nouns ("speed"), so the query's lowercase words vary too."""
    task = next(t for t in train_tasks if t.text == "What's the news in Chile?")
    out = variants(task, 6, random.Random(1))
    lowered = [v for v in out if "Chile" in v.text]  # "news" replaced, the name kept
    assert lowered, [v.text for v in out]
    for v in lowered:
        new_word = v.text.split()[2]
        assert new_word != "news" and new_word.islower()
        assert new_word in str(v.goal.get("query")), (v.text, v.goal)
        assert v.goal.intent == task.goal.intent
