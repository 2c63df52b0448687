"""Word normalisation shared by the task parser and the judges."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distrl_jax.tasks.text import STOPWORDS, covers, keywords, words


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Open the Calculator", ["open", "the", "calculator"]),
        ("What’s the weather in Paris?", ["what", "the", "weather", "in", "paris"]),  # curly quote
        (
            "Search for AT&T and 5-star hotels in the U.S.",
            ["search", "for", "at&t", "and", "5-star", "hotel", "in", "the", "u.s"],
        ),
        ("Lowe's  ladders,restaurants;cities", ["lowe", "ladder", "restaurant", "city"]),
        ("", []),
        ("?!  ...", []),
    ],
)
def test_words(text: str, expected: list[str]) -> None:
    assert words(text) == expected


@pytest.mark.parametrize(
    ("word", "stem"),
    [
        ("restaurants", "restaurant"),
        ("cities", "city"),
        ("pies", "pie"),  # 'ies' folds to 'y' only in words longer than 4 letters
        ("glass", "glass"),
        ("status", "status"),
        ("analysis", "analysis"),
        ("gas", "gas"),  # 3 letters: never shortened
        ("bus", "bus"),
        ("shoes", "shoe"),
        ("macy's", "macy"),
    ],
)
def test_plural_and_possessive_fold(word: str, stem: str) -> None:
    assert words(word) == [stem]


def test_keywords_drop_stopwords_and_duplicates_in_order() -> None:
    assert keywords("How much does a 2 bedroom apartment rent for in Chicago?") == (
        "2",
        "bedroom",
        "apartment",
        "rent",
        "chicago",
    )
    assert keywords("Pizza places, pizza PLACE near me") == ("pizza", "place")
    assert keywords("what is the best one") == ("one",)
    assert keywords("the of and") == ()


def test_covers() -> None:
    need = keywords("What's the weather in Paris?")
    assert covers("paris weather", need)
    assert covers("Weather forecast for PARIS, France", need)
    assert not covers("weather in london", need)
    assert not covers("", need)
    assert covers("best restaurants", "restaurant")  # plurals fold on the query side
    assert covers("anything", ())  # nothing required
    assert covers("new york pizza", "pizza york")  # a space-separated string of keywords


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_every_text_covers_its_own_keywords(text: str) -> None:
    k = keywords(text)
    assert covers(text, k)
    if text.isascii():  # non-ASCII case mappings change length ("ß".upper() == "SS")
        assert covers(text.upper() + " extra words", k)
    assert not set(k) & STOPWORDS
    assert len(set(k)) == len(k)


word_chars = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=10)


@settings(max_examples=300, deadline=None)
@given(st.lists(word_chars, max_size=8))
def test_keywords_typed_as_a_query_cover_themselves(parts: list[str]) -> None:
    # An expert may type the keywords slot itself: normalising it again must keep it covered.
    k = keywords(" ".join(parts))
    assert covers(" ".join(k), k)
    assert keywords(" ".join(k)) == k


def test_plural_fold_never_leaves_a_trailing_joiner() -> None:
    for text in ("P.J.s", "grown-ups x-s", "11.S"):
        k = keywords(text)
        assert covers(" ".join(k), k), k
