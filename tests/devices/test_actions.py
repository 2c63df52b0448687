"""The AitW action codec: both string forms round-trip, the tap rule, and untrusted input."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distrl_jax.devices.actions import (
    BACK,
    COMPLETE,
    ENTER,
    HOME,
    IMPOSSIBLE,
    TAP_DISTANCE,
    Action,
    ActionType,
    from_autoui,
    from_compact,
    invalid,
    parse_action,
    swipe,
    swipe_direction,
    tap,
    to_autoui,
    to_compact,
    type_text,
    validate,
)

KEYS = [BACK, HOME, ENTER, COMPLETE, IMPOSSIBLE]
coord = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
# Texts with the characters that break naive codecs: quotes, commas, brackets, backslashes,
# newlines and non-ASCII. Surrogates are excluded (they are not valid in any encoded string).
nasty_chars = st.sampled_from([*"\"',[]{}:\\\n\t ", "é", "漢", "🙂", "ß"])
texts = st.text(
    alphabet=st.one_of(st.characters(exclude_categories=("Cs",)), nasty_chars),
    min_size=1,
    max_size=40,
)


def far_apart(points: tuple[float, float, float, float]) -> bool:
    y0, x0, y1, x1 = points
    return math.dist((y0, x0), (y1, x1)) > TAP_DISTANCE + 0.01


swipe_points = st.tuples(coord, coord, coord, coord).filter(far_apart)


def assert_points_close(a: Action, b: Action, tol: float) -> None:
    assert a.touch == pytest.approx(b.touch, abs=tol)
    assert a.lift == pytest.approx(b.lift, abs=tol)


# ---------------------------------------------------------------- AutoUI / DigiRL form


@settings(max_examples=60, deadline=None)
@given(y=coord, x=coord)
def test_autoui_tap_round_trip(y: float, x: float) -> None:
    a = tap(y, x)
    back = from_autoui(to_autoui(a))
    assert back.kind is ActionType.DUAL_POINT and back.is_tap
    assert_points_close(back, a, 5.1e-5)  # written with 4 decimals


@settings(max_examples=60, deadline=None)
@given(p=swipe_points)
def test_autoui_swipe_round_trip(p: tuple[float, float, float, float]) -> None:
    a = swipe(*p)
    back = from_autoui(to_autoui(a))
    assert back.kind is ActionType.DUAL_POINT and not back.is_tap
    assert_points_close(back, a, 5.1e-5)
    y0, x0, y1, x1 = p
    if abs(abs(y1 - y0) - abs(x1 - x0)) > 2e-4:  # a near-diagonal may flip with 4-digit rounding
        assert swipe_direction(back) == swipe_direction(a)


@settings(max_examples=150, deadline=None)
@given(text=texts)
def test_autoui_type_round_trip(text: str) -> None:
    encoded = to_autoui(type_text(text))
    assert from_autoui(encoded) == type_text(text)
    assert parse_action(encoded) == type_text(text)


@pytest.mark.parametrize("key", KEYS, ids=lambda a: a.kind.value)
def test_autoui_key_round_trip(key: Action) -> None:
    encoded = to_autoui(key)
    assert f'"action_type": "{key.kind.value}"' in encoded
    assert '"touch_point": "[-1.0000, -1.0000]"' in encoded
    assert from_autoui(encoded) == key
    assert parse_action(encoded) == key


def test_autoui_refuses_to_write_invalid() -> None:
    with pytest.raises(ValueError, match="INVALID"):
        to_autoui(invalid("whatever"))


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            'Action Plan: [DUAL_POINT,TYPE,PRESS_ENTER] ; Action Decision: "action_type": '
            '"DUAL_POINT", "touch_point": "[0.2463, 0.1245]", "lift_point": "[0.2463, 0.1245]", '
            '"typed_text": ""',
            tap(0.2463, 0.1245),
        ),
        (
            'Action Decision: "action_type": "DUAL_POINT", "touch_point": "[0.8, 0.5]", '
            '"lift_point": "[0.2, 0.5]", "typed_text": "" ',  # DigiRL leaves a trailing space
            swipe(0.8, 0.5, 0.2, 0.5),
        ),
        (
            'Action Plan: [TYPE,PRESS_ENTER] ; Action Decision: "action_type": "TYPE", '
            '"touch_point": "[-1.0, -1.0]", "lift_point": "[-1.0, -1.0]", '
            '"typed_text": "macbook air"',
            type_text("macbook air"),
        ),
        (
            'Action Decision: "action_type": "PRESS_ENTER",\n "touch_point": "[-1.0, -1.0]",\n'
            ' "lift_point": "[-1.0, -1.0]",\n "typed_text": ""',
            ENTER,
        ),
        (
            'Action Plan: [STATUS_TASK_COMPLETE] ; Action Decision: "action_type": '
            '"STATUS_TASK_COMPLETE", "touch_point": "[-1.0, -1.0]", "lift_point": "[-1.0, -1.0]", '
            '"typed_text": ""',
            COMPLETE,
        ),
    ],
)
def test_digirl_strings_parse(source: str, expected: Action) -> None:
    got = parse_action(source)
    assert got.kind is expected.kind
    assert got.text == expected.text
    if expected.kind is ActionType.DUAL_POINT:
        assert_points_close(got, expected, 1e-9)


def test_autoui_type_text_mentioning_action_decision_round_trips() -> None:
    a = type_text("Action Decision: buy")
    assert from_autoui(to_autoui(a)) == a


def test_autoui_type_text_mentioning_action_type_round_trips() -> None:
    a = type_text('"action_type": "PRESS_HOME"')
    assert from_autoui(to_autoui(a)) == a


# ---------------------------------------------------------------- compact form


@pytest.mark.parametrize("digits", [2, 4])
@settings(max_examples=40, deadline=None)
@given(y=coord, x=coord)
def test_compact_tap_round_trip(digits: int, y: float, x: float) -> None:
    encoded = to_compact(tap(y, x), digits=digits)
    assert encoded.startswith("TAP ")
    back = from_compact(encoded)
    assert back.is_tap
    assert_points_close(back, tap(y, x), 0.51 * 10**-digits)


@pytest.mark.parametrize("digits", [2, 4])
@settings(max_examples=40, deadline=None)
@given(p=swipe_points)
def test_compact_swipe_round_trip(digits: int, p: tuple[float, float, float, float]) -> None:
    encoded = to_compact(swipe(*p), digits=digits)
    assert encoded.startswith("SWIPE ")
    back = from_compact(encoded)
    assert back.kind is ActionType.DUAL_POINT
    assert_points_close(back, swipe(*p), 0.51 * 10**-digits)


@settings(max_examples=150, deadline=None)
@given(text=texts)
def test_compact_type_round_trip(text: str) -> None:
    encoded = to_compact(type_text(text))
    assert "\n" not in encoded  # histories are one action per line
    assert from_compact(encoded) == type_text(text)
    assert parse_action(encoded) == type_text(text)


def test_parse_action_reads_compact_type_of_the_word_action_type() -> None:
    a = type_text("action_type")
    assert parse_action(to_compact(a)) == a


@pytest.mark.parametrize(
    ("key", "word"),
    [
        (BACK, "BACK"),
        (HOME, "HOME"),
        (ENTER, "ENTER"),
        (COMPLETE, "COMPLETE"),
        (IMPOSSIBLE, "IMPOSSIBLE"),
    ],
)
def test_compact_keys(key: Action, word: str) -> None:
    assert to_compact(key) == word
    assert from_compact(word) == key
    assert from_compact(f"  {word.lower()}  ") == key


def test_compact_invalid_writes_invalid_and_does_not_read_back_as_valid() -> None:
    assert to_compact(invalid("x")) == "INVALID"
    assert not from_compact("INVALID").is_valid


# ---------------------------------------------------------------- the tap rule


@pytest.mark.parametrize(
    ("dy", "dx", "is_tap"),
    [
        (0.0, 0.0, True),
        (0.0, 0.0399, True),
        (0.0399, 0.0, True),
        (0.0, 0.0401, False),
        (-0.0401, 0.0, False),
        (0.028, 0.028, True),  # Euclidean: 0.0396
        (0.029, 0.029, False),  # 0.0410, though each axis alone is under 0.04
    ],
)
def test_tap_threshold(dy: float, dx: float, is_tap: bool) -> None:
    a = swipe(0.5, 0.5, 0.5 + dy, 0.5 + dx)
    assert a.is_tap is is_tap
    assert to_compact(a, digits=4).split()[0] == ("TAP" if is_tap else "SWIPE")
    assert swipe_direction(a) == ("" if is_tap else swipe_direction(a))
    assert (swipe_direction(a) == "") is is_tap


def test_only_dual_point_is_a_tap() -> None:
    assert not type_text("a").is_tap
    assert not BACK.is_tap
    assert not invalid("x").is_tap


@pytest.mark.parametrize(
    ("action", "direction"),
    [
        (swipe(0.8, 0.5, 0.2, 0.5), "up"),
        (swipe(0.2, 0.5, 0.8, 0.5), "down"),
        (swipe(0.5, 0.8, 0.5, 0.2), "left"),
        (swipe(0.5, 0.2, 0.5, 0.8), "right"),
        (swipe(0.2, 0.2, 0.5, 0.3), "down"),  # mostly vertical
        (swipe(0.5, 0.9, 0.4, 0.1), "left"),  # mostly horizontal
        (tap(0.5, 0.5), ""),
        (type_text("a"), ""),
        (BACK, ""),
    ],
)
def test_swipe_direction(action: Action, direction: str) -> None:
    assert swipe_direction(action) == direction


# ---------------------------------------------------------------- untrusted input


def autoui(
    kind: str, touch: str = "[-1.0, -1.0]", lift: str = "[-1.0, -1.0]", text: str = ""
) -> str:
    return (
        f'"action_type": "{kind}", "touch_point": "{touch}", "lift_point": "{lift}", '
        f'"typed_text": "{text}"'
    )


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("", "unknown action"),
        ("hello world", "unknown action"),
        ("TAP", "TAP got 0 numbers"),
        ("TAP 0.5", "TAP got 1 numbers"),
        ("TAP 0.5 0.5 0.5", "TAP got 3 numbers"),
        ("SWIPE 0.1 0.2 0.3", "SWIPE got 3 numbers"),
        ("TAP a b", "needs numbers"),
        ("TAP 1.5 0.5", "touch point"),
        ("TAP -0.1 0.5", "touch point"),
        ("TAP nan 0.5", "touch point"),
        ("TAP inf 0.5", "touch point"),
        ("SWIPE 0.1 0.2 0.3 1.01", "lift point"),
        ("TYPE", "not a quoted string"),
        ("TYPE hello", "not a quoted string"),
        ('TYPE ""', "empty text"),
        ("TYPE 42", "not a string"),
        ('TYPE "unterminated', "not a quoted string"),
        ("BACK now", "unknown action"),
        (autoui("JUMP"), "unknown action_type 'JUMP'"),
        (autoui(""), "unknown action_type ''"),
        (autoui("INVALID"), "INVALID is not an AitW action type"),
        ('"action_type": DUAL_POINT', "unknown action_type"),
        (autoui("DUAL_POINT", touch="[0.5]", lift="[0.5, 0.5]"), "DUAL_POINT needs"),
        (autoui("DUAL_POINT", touch="[a, b]", lift="[0.5, 0.5]"), "DUAL_POINT needs"),
        ('"action_type": "DUAL_POINT", "touch_point": "[0.5, 0.5]"', "DUAL_POINT needs"),
        (autoui("DUAL_POINT", touch="[0.5, 0.5]", lift="[0.5, 2.0]"), "lift point"),
        (autoui("DUAL_POINT", touch="[nan, 0.5]", lift="[0.5, 0.5]"), "touch point"),
        (autoui("DUAL_POINT"), "touch point"),  # the [-1, -1] placeholder is not a point
        (autoui("TYPE"), "empty text"),
        ('"action_type": "TYPE"', "empty text"),
    ],
)
def test_unparseable_gives_invalid_with_reason(source: str, reason: str) -> None:
    got = parse_action(source)
    assert got.kind is ActionType.INVALID and not got.is_valid
    assert reason in got.error


@pytest.mark.parametrize("value", [None, 42, 0.5, b"BACK", ["BACK"], {"action_type": "TYPE"}])
@pytest.mark.parametrize("parser", [parse_action, from_compact, from_autoui])
def test_non_strings_give_invalid(parser, value) -> None:
    got = parser(value)
    assert not got.is_valid
    assert type(value).__name__ in got.error


def test_invalid_reason_is_bounded() -> None:
    assert len(invalid("x" * 10_000).error) == 200
    assert len(parse_action("y" * 10_000).error) < 200


@settings(max_examples=300, deadline=None)
@given(s=st.text(max_size=200))
def test_arbitrary_text_never_raises(s: str) -> None:
    got = parse_action(s)
    assert isinstance(got, Action)
    if got.is_valid:
        assert validate(got) is got
    else:
        assert got.error


@settings(max_examples=200, deadline=None)
@given(
    s=st.builds(
        autoui,
        kind=st.sampled_from([t.value for t in ActionType] + ["", "TAP"]),
        touch=st.text(max_size=20),
        lift=st.text(max_size=20),
        text=st.text(max_size=20),
    )
)
def test_arbitrary_autoui_fields_never_raise(s: str) -> None:
    got = parse_action(s)
    assert isinstance(got, Action)
    assert got.is_valid or got.error


def test_validate() -> None:
    assert validate(tap(0.0, 1.0)) == tap(0.0, 1.0)
    assert not validate(Action(ActionType.DUAL_POINT, (0.5, 0.5, 0.5), (0.5, 0.5))).is_valid
    assert "touch point" in validate(tap(1.2, 0.5)).error
    assert "lift point" in validate(swipe(0.5, 0.5, 0.5, math.nan)).error
    assert validate(BACK) is BACK
