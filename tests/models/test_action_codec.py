"""The action token codec: round trips, malformed input, and the decoding grammar."""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distrl_jax.devices import actions as A
from distrl_jax.models import action_codec as C
from distrl_jax.models.spec import ModelSpec

unit = st.floats(0.0, 1.0, allow_nan=False)
printable = st.text(st.characters(exclude_categories=("Cc", "Cs")), min_size=1)


def _half_cell(bins: int) -> float:
    return 0.5 / bins + 1e-9


@settings(max_examples=60, deadline=None)
@given(y=unit, x=unit, bins=st.sampled_from([2, 16, 64]))
def test_taps_round_trip_as_taps(y: float, x: float, bins: int) -> None:
    codec = C.ActionCodec(32, bins)
    back = codec.decode(codec.encode(A.tap(y, x)))
    assert back.kind is A.ActionType.DUAL_POINT and back.is_tap
    assert abs(back.touch[0] - y) <= _half_cell(bins) and abs(back.touch[1] - x) <= _half_cell(bins)


@settings(max_examples=100, deadline=None)
@given(y0=unit, x0=unit, y1=unit, x1=unit, bins=st.sampled_from([2, 16, 64]))
def test_swipes_round_trip_as_swipes(y0: float, x0: float, y1: float, x1: float, bins: int) -> None:
    action = A.swipe(y0, x0, y1, x1)
    codec = C.ActionCodec(32, bins)
    back = codec.decode(codec.encode(action))
    assert back.kind is A.ActionType.DUAL_POINT
    assert back.is_tap == action.is_tap  # taps stay taps, swipes stay swipes
    if not action.is_tap and abs(abs(y1 - y0) - abs(x1 - x0)) > 2.0 / bins:
        assert A.swipe_direction(back) == A.swipe_direction(action)
    if not action.is_tap and math.dist(action.touch, action.lift) > 4.0 / bins:
        # Not nudged: both ends within half a cell of where they were.
        for got, want in zip((*back.touch, *back.lift), (y0, x0, y1, x1), strict=True):
            assert abs(got - want) <= _half_cell(bins)


@settings(max_examples=60, deadline=None)
@given(text=printable)
def test_typed_text_round_trips_or_is_truncated_at_a_character(text: str) -> None:
    codec = C.ActionCodec(32, 64)
    tokens = codec.encode(A.type_text(text))
    back = codec.decode(tokens)
    assert back.kind is A.ActionType.TYPE
    raw = text.encode("utf-8")
    if len(raw) <= 30:
        assert back.text == text and codec.truncated == 0
    else:
        assert text.startswith(back.text) and len(back.text.encode()) <= 30
        assert codec.truncated == 1


def test_keys_and_status_round_trip_and_layout() -> None:
    for action in (A.BACK, A.HOME, A.ENTER, A.COMPLETE, A.IMPOSSIBLE):
        tokens = C.encode_action(action)
        assert tokens.dtype == np.int32 and tokens.shape == (ModelSpec().action_len,)
        assert tokens[1] == C.EOS_ID and not tokens[2:].any()
        assert C.decode_action(tokens) == action
    assert len(C.token_names()) == C.VOCAB_SIZE
    assert C.token_names()[C.TYPE_ID] == "<type>" and C.token_names()[C.X_OFFSET] == "<x_00>"


def test_control_characters_become_spaces_and_invalid_actions_stay_invalid() -> None:
    assert C.decode_action(C.encode_action(A.type_text("a\tb\nc"))).text == "a b c"
    for bad in (A.invalid("nope"), A.type_text(""), A.tap(1.5, 0.2)):
        tokens = C.encode_action(bad)
        assert tokens[0] == C.INVALID_ID
        assert not C.decode_action(tokens).is_valid


@pytest.mark.parametrize(
    ("tokens", "reason"),
    [
        ([], "empty"),
        ([C.TAP_ID, C.Y_OFFSET, C.X_OFFSET], "no <eos>"),
        ([C.TAP_ID, C.Y_OFFSET, C.X_OFFSET, C.EOS_ID, 7], "after <eos>"),
        ([C.TAP_ID, C.Y_OFFSET, C.EOS_ID], "location"),
        ([C.SWIPE_ID, C.X_OFFSET, C.Y_OFFSET, C.Y_OFFSET, C.X_OFFSET, C.EOS_ID], "location"),
        ([C.TYPE_ID, C.EOS_ID], "byte"),
        ([C.TYPE_ID, C.BYTE_OFFSET + 0xC3, C.EOS_ID], "UTF-8"),
        ([C.VERB_OFFSET + 3, C.BYTE_OFFSET, C.EOS_ID], "no arguments"),
        ([C.BYTE_OFFSET + 65, C.EOS_ID], "verb"),
        ("TAP", "integer"),
    ],
)
def test_malformed_tokens_decode_to_invalid(tokens, reason: str) -> None:
    action = C.decode_action(tokens)
    assert action.kind is A.ActionType.INVALID and reason in action.error


def test_location_beyond_the_specs_bins_is_invalid() -> None:
    spec = ModelSpec(location_bins=2)
    tokens = [C.TAP_ID, C.Y_OFFSET + 5, C.X_OFFSET + 1, C.EOS_ID]
    assert not C.decode_action(tokens, spec).is_valid
    assert C.decode_action(tokens).is_valid  # fine with 64 bins


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(-5, C.VOCAB_SIZE + 5), max_size=40))
def test_decoding_random_tokens_never_raises(tokens: list[int]) -> None:
    assert isinstance(C.decode_action(np.array(tokens, dtype=np.int64)), A.Action)


def test_codec_rejects_bad_sizes_naming_the_field() -> None:
    with pytest.raises(ValueError, match="action_len"):
        C.ActionCodec(action_len=4)
    with pytest.raises(ValueError, match="location_bins"):
        C.ActionCodec(location_bins=65)


# ---------------------------------------------------------------- grammar


_allowed = jax.jit(C.grammar_allowed, static_argnums=(2, 3))
_step = jax.jit(C.grammar_step)


def _allowed_path(tokens: np.ndarray, bins: int) -> np.ndarray:
    """bool [B, La]: whether each token was allowed by the grammar given its prefix."""
    batch, length = tokens.shape
    state = C.grammar_init(batch)
    ok = np.zeros((batch, length), bool)
    for pos in range(length):
        allowed = np.asarray(_allowed(state, pos, length, bins))
        ok[:, pos] = allowed[np.arange(batch), tokens[:, pos]]
        state = _step(state, tokens[:, pos])
    return ok


def test_every_encoded_action_is_grammatical() -> None:
    codec = C.ActionCodec(32, 64)
    actions = [
        A.tap(0.1, 0.9),
        A.swipe(0.9, 0.5, 0.1, 0.5),
        A.type_text("ab"),
        A.type_text("x" * 29 + "é"),  # a 2-byte character that just does not fit
        A.type_text("日本語の検索 " * 3),
        A.type_text("\u0800\ud7ff\U00010000\U0010ffff"),  # UTF-8 lead bytes E0, ED, F0, F4
        A.BACK,
        A.IMPOSSIBLE,
    ]
    tokens = codec.encode_batch(actions)
    assert _allowed_path(tokens, 64).all()


def test_random_walks_under_the_grammar_always_decode_to_valid_actions() -> None:
    rng = np.random.default_rng(0)
    batch, length, bins = 512, 12, 3  # a short La stresses the truncation rule for UTF-8 text
    state = C.grammar_init(batch)
    tokens = np.zeros((batch, length), np.int32)
    for pos in range(length):
        allowed = np.asarray(_allowed(state, pos, length, bins))
        # Bias towards TYPE and multi-byte characters: the hard cases.
        weights = allowed * (1.0 + 20.0 * (np.arange(C.VOCAB_SIZE) >= C.BYTE_OFFSET + 0xC2))
        weights[:, C.TYPE_ID] *= 20
        cum = np.cumsum(weights, axis=1)
        u = rng.random(batch) * cum[:, -1]
        tokens[:, pos] = (cum < u[:, None]).sum(axis=1)
        state = _step(state, tokens[:, pos])
    assert np.all(np.asarray(state.phase) == C.DONE)
    codec = C.ActionCodec(length, bins)
    decoded = codec.decode_batch(tokens)
    assert all(a.is_valid for a in decoded), [a.error for a in decoded if not a.is_valid][:3]
    kinds = {a.kind for a in decoded}
    assert A.ActionType.TYPE in kinds and A.ActionType.DUAL_POINT in kinds
    assert any(any(ord(c) > 0x7F for c in a.text) for a in decoded)
