"""Actions as short token sequences: the vocabulary layout, the codec and the decoding grammar.

An action is ``La`` int32 tokens, right-padded with the pad id 0 (DESIGN §4):

* ``<tap> <y_i> <x_j> <eos>`` — a DUAL_POINT whose touch and lift are within the tap distance;
* ``<swipe> <y_i> <x_j> <y_k> <x_l> <eos>`` — touch (y, x) then lift (y, x);
* ``<type> b_1 … b_n <eos>`` — the text's UTF-8 bytes, ``1 <= n <= La - 2`` (longer text is
  truncated at a character boundary and counted);
* ``<back> <eos>``, ``<home> <eos>``, ``<enter> <eos>``, ``<complete> <eos>``, ``<impossible> <eos>``.

Points are quantised into ``bins`` cells per axis and decoded to the cell centres. The same
grammar, written as a vectorised automaton in ``jax.numpy`` (:func:`grammar_allowed`,
:func:`grammar_step`), masks the policy's logits both when sampling and when scoring, so that
sampled actions decode to valid actions (typed text is always valid UTF-8) and the probability
mass of the policy lies on decodable sequences only. The layout lives here (not in the
tokenizer) so the codec stays a NumPy-only dependency of the tokenizer, not the other way round.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from distrl_jax.devices import actions as A
from distrl_jax.models.spec import MAX_LOCATION_BINS, ModelSpec

# ---------------------------------------------------------------- vocabulary layout

SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>", "<sep>", "<invalid>")
PAD_ID, BOS_ID, EOS_ID, SEP_ID, INVALID_ID = range(len(SPECIAL_TOKENS))
BYTE_OFFSET = len(SPECIAL_TOKENS)  # byte b has id BYTE_OFFSET + b
VERBS = ("<tap>", "<swipe>", "<type>", "<back>", "<home>", "<enter>", "<complete>", "<impossible>")
VERB_OFFSET = BYTE_OFFSET + 256
TAP_ID, SWIPE_ID, TYPE_ID = VERB_OFFSET, VERB_OFFSET + 1, VERB_OFFSET + 2
Y_OFFSET = VERB_OFFSET + len(VERBS)
X_OFFSET = Y_OFFSET + MAX_LOCATION_BINS
VOCAB_SIZE = X_OFFSET + MAX_LOCATION_BINS

_KEY_VERBS = {
    A.ActionType.PRESS_BACK: VERB_OFFSET + 3,
    A.ActionType.PRESS_HOME: VERB_OFFSET + 4,
    A.ActionType.PRESS_ENTER: VERB_OFFSET + 5,
    A.ActionType.STATUS_TASK_COMPLETE: VERB_OFFSET + 6,
    A.ActionType.STATUS_TASK_IMPOSSIBLE: VERB_OFFSET + 7,
}
_KEY_OF_VERB = {v: k for k, v in _KEY_VERBS.items()}


def token_names() -> list[str]:
    """The name of every id in order (what the tokenizer's vocabulary is built from)."""
    locs = [f"<y_{i:02d}>" for i in range(MAX_LOCATION_BINS)]
    locs += [f"<x_{i:02d}>" for i in range(MAX_LOCATION_BINS)]
    return [*SPECIAL_TOKENS, *(f"<byte_{b:02x}>" for b in range(256)), *VERBS, *locs]


# ---------------------------------------------------------------- quantisation


def quantise(v: float, bins: int) -> int:
    """The bin of a normalised coordinate in [0, 1] (1.0 falls in the last bin)."""
    return min(bins - 1, max(0, math.floor(v * bins)))


def dequantise(i: int, bins: int) -> float:
    """The centre of bin ``i``."""
    return (i + 0.5) / bins


# ---------------------------------------------------------------- codec


class ActionCodec:
    """Encodes actions to ``La`` tokens and decodes tokens back; counts truncated TYPE texts."""

    def __init__(
        self,
        action_len: int = ModelSpec.action_len,  # the default spec's, so defaults agree
        location_bins: int = ModelSpec.location_bins,
    ):
        ModelSpec(action_len=action_len, location_bins=location_bins).validate()
        self.action_len = action_len
        self.bins = location_bins
        self.truncated = 0  # TYPE texts cut to fit La - 2 bytes since construction

    @classmethod
    def from_spec(cls, spec: ModelSpec) -> ActionCodec:
        """The codec for a model spec's La and location bins."""
        return cls(spec.action_len, spec.location_bins)

    def _pad(self, ids: list[int]) -> np.ndarray:
        out = np.zeros(self.action_len, np.int32)  # PAD_ID == 0
        out[: len(ids)] = ids
        return out

    def _point_ids(self, p: tuple[float, float]) -> tuple[int, int]:
        return quantise(p[0], self.bins), quantise(p[1], self.bins)

    def _swipe_ids(self, action: A.Action) -> list[int]:
        (y0, x0), (y1, x1) = self._point_ids(action.touch), self._point_ids(action.lift)
        # Quantisation can pull a short swipe's ends within the tap distance: move the lift cell
        # along the swipe's main axis (or the touch cell backwards, at the screen's edge) until
        # it stays a swipe.
        dy, dx = action.lift[0] - action.touch[0], action.lift[1] - action.touch[1]
        sy = (1 if dy > 0 else -1) if abs(dy) >= abs(dx) else 0
        sx = 0 if sy else (1 if dx > 0 else -1)
        b = self.bins

        def close() -> bool:
            ends = (dequantise(y0, b), dequantise(x0, b)), (dequantise(y1, b), dequantise(x1, b))
            return math.dist(*ends) <= A.TAP_DISTANCE

        while close():
            if 0 <= y1 + sy < b and 0 <= x1 + sx < b:
                y1, x1 = y1 + sy, x1 + sx
            elif 0 <= y0 - sy < b and 0 <= x0 - sx < b:
                y0, x0 = y0 - sy, x0 - sx
            else:
                break
        return [SWIPE_ID, Y_OFFSET + y0, X_OFFSET + x0, Y_OFFSET + y1, X_OFFSET + x1, EOS_ID]

    def _text_bytes(self, text: str) -> bytes:
        # Control characters cannot be typed on a phone and are outside the grammar: spaces.
        clean = "".join(" " if (ord(c) < 0x20 or ord(c) == 0x7F) else c for c in text)
        data = clean.encode("utf-8", errors="replace")
        limit = self.action_len - 2
        if len(data) > limit:
            self.truncated += 1
            cut = limit
            while cut > 0 and (data[cut] & 0xC0) == 0x80:  # do not split a character
                cut -= 1
            data = data[:cut]
        return data

    def encode(self, action: A.Action) -> np.ndarray:
        """``int32[La]`` tokens of an action; INVALID (or malformed) gives ``<invalid> <eos>``."""
        action = A.validate(action)
        kind = action.kind
        if kind is A.ActionType.DUAL_POINT:
            if action.is_tap:
                y, x = self._point_ids(action.touch)
                return self._pad([TAP_ID, Y_OFFSET + y, X_OFFSET + x, EOS_ID])
            return self._pad(self._swipe_ids(action))
        if kind is A.ActionType.TYPE:
            data = self._text_bytes(action.text)
            if data:
                return self._pad([TYPE_ID, *(BYTE_OFFSET + b for b in data), EOS_ID])
            return self._pad([INVALID_ID, EOS_ID])
        if kind in _KEY_VERBS:
            return self._pad([_KEY_VERBS[kind], EOS_ID])
        return self._pad([INVALID_ID, EOS_ID])

    def encode_batch(self, actions: Sequence[A.Action]) -> np.ndarray:
        """``int32[N, La]`` for a list of actions."""
        out = np.zeros((len(actions), self.action_len), np.int32)
        for i, a in enumerate(actions):
            out[i] = self.encode(a)
        return out

    def decode(self, tokens: np.ndarray | Sequence[int]) -> A.Action:
        """The action a token sequence spells; anything malformed is ``invalid(reason)``."""
        try:
            t = np.asarray(tokens).astype(np.int64, copy=False).reshape(-1)
        except (TypeError, ValueError):
            return A.invalid("action tokens are not an integer array")
        if t.size == 0:
            return A.invalid("empty action")
        eos = np.flatnonzero(t == EOS_ID)
        if eos.size == 0:
            return A.invalid("action has no <eos>")
        end = int(eos[0])
        if np.any(t[end + 1 :] != PAD_ID):
            return A.invalid("tokens after <eos> are not padding")
        verb, body = int(t[0]), t[1:end]
        b = self.bins
        if verb in (TAP_ID, SWIPE_ID):
            want = 2 if verb == TAP_ID else 4
            ys, xs = body[0::2] - Y_OFFSET, body[1::2] - X_OFFSET
            if body.size != want or np.any((ys < 0) | (ys >= b)) or np.any((xs < 0) | (xs >= b)):
                return A.invalid(f"{VERBS[verb - VERB_OFFSET]} needs {want} location tokens")
            pts = [dequantise(int(i), b) for i in body - np.tile([Y_OFFSET, X_OFFSET], want // 2)]
            return A.tap(*pts) if verb == TAP_ID else A.swipe(*pts)
        if verb == TYPE_ID:
            raw = body - BYTE_OFFSET
            if raw.size == 0 or np.any((raw < 0) | (raw > 255)):
                return A.invalid("<type> needs 1 or more byte tokens before <eos>")
            try:
                return A.validate(A.type_text(bytes(raw.astype(np.uint8)).decode("utf-8")))
            except UnicodeDecodeError:
                return A.invalid("typed bytes are not valid UTF-8")
        if verb in _KEY_OF_VERB:
            if body.size:
                return A.invalid(f"{VERBS[verb - VERB_OFFSET]} takes no arguments")
            return A.Action(_KEY_OF_VERB[verb])
        if verb == INVALID_ID:
            return A.invalid("<invalid>: the encoded action was itself invalid")
        return A.invalid(f"first token {verb} is not an action verb")

    def decode_batch(self, tokens: np.ndarray) -> list[A.Action]:
        """One action per row of ``int[N, La]``."""
        return [self.decode(row) for row in np.asarray(tokens)]


_DEFAULT = ActionCodec()


def encode_action(action: A.Action, spec: ModelSpec | None = None) -> np.ndarray:
    """``int32[La]`` tokens of ``action`` (the default spec's La and bins unless given)."""
    return (ActionCodec.from_spec(spec) if spec else _DEFAULT).encode(action)


def decode_action(tokens: np.ndarray | Sequence[int], spec: ModelSpec | None = None) -> A.Action:
    """The action ``tokens`` spell; malformed input gives ``actions.invalid(reason)``, never raises."""
    return (ActionCodec.from_spec(spec) if spec else _DEFAULT).decode(tokens)


# ---------------------------------------------------------------- grammar (jax.numpy)

START, TAP, SWIPE, TYPE, KEY, DONE = range(6)  # automaton phases


class GrammarState(NamedTuple):
    """Per-sequence automaton state; every field is int32 [B]."""

    phase: jnp.ndarray  # START | TAP | SWIPE | TYPE | KEY | DONE
    count: jnp.ndarray  # tokens emitted since the verb
    cont: jnp.ndarray  # UTF-8 continuation bytes still owed (TYPE)
    lo: jnp.ndarray  # allowed range of the next continuation byte (UTF-8 rules for E0/ED/F0/F4)
    hi: jnp.ndarray


def grammar_init(batch: int, active: jnp.ndarray | None = None) -> GrammarState:
    """The start state; rows with ``active`` False start DONE (they only emit padding)."""
    phase = jnp.full((batch,), START, jnp.int32)
    if active is not None:
        phase = jnp.where(active, phase, DONE)
    zero = jnp.zeros((batch,), jnp.int32)
    return GrammarState(phase, zero, zero, zero + 0x80, zero + 0xBF)


def _vocab_classes(bins: int) -> dict[str, np.ndarray]:
    ids = np.arange(VOCAB_SIZE)
    byte = ids - BYTE_OFFSET
    is_byte = (byte >= 0) & (byte < 256)
    return {
        "byte": np.where(is_byte, byte, -1),
        "verb": (ids >= VERB_OFFSET) & (ids < VERB_OFFSET + len(VERBS)),
        "y": (ids >= Y_OFFSET) & (ids < Y_OFFSET + bins),
        "x": (ids >= X_OFFSET) & (ids < X_OFFSET + bins),
        "eos": ids == EOS_ID,
        "pad": ids == PAD_ID,
        "ascii": is_byte & (byte >= 0x20) & (byte <= 0x7E),
        "lead2": is_byte & (byte >= 0xC2) & (byte <= 0xDF),
        "lead3": is_byte & (byte >= 0xE0) & (byte <= 0xEF),
        "lead4": is_byte & (byte >= 0xF0) & (byte <= 0xF4),
    }


def grammar_allowed(
    state: GrammarState, pos: jnp.ndarray | int, length: int, bins: int
) -> jnp.ndarray:
    """bool [B, V]: the tokens the grammar allows at position ``pos`` (0-based) of ``length``."""
    c = {k: jnp.asarray(v)[None, :] for k, v in _vocab_classes(bins).items()}
    n = state.count[:, None]
    room = length - 2 - pos  # byte slots left after this one, before the final <eos>
    loc = jnp.where(n % 2 == 0, c["y"], c["x"])
    tap = jnp.where(n < 2, loc, c["eos"])
    swipe = jnp.where(n < 4, loc, c["eos"])
    in_char = (c["byte"] >= state.lo[:, None]) & (c["byte"] <= state.hi[:, None])
    free = (
        c["ascii"]
        | (c["lead2"] & (room >= 1))
        | (c["lead3"] & (room >= 2))
        | (c["lead4"] & (room >= 3))
    )
    free = jnp.where(room >= 0, free, False) | (c["eos"] & (n >= 1))
    typ = jnp.where(state.cont[:, None] > 0, in_char, free)
    phase = state.phase[:, None]
    return jnp.select(
        [phase == START, phase == TAP, phase == SWIPE, phase == TYPE, phase == KEY],
        [c["verb"], tap, swipe, typ, c["eos"]],
        c["pad"],
    )


def grammar_step(state: GrammarState, token: jnp.ndarray) -> GrammarState:
    """The state after emitting ``token`` (int [B]); off-grammar tokens end the sequence."""
    phase, count, cont = state.phase, state.count, state.cont
    verb = token - VERB_OFFSET
    started = jnp.select(
        [verb == 0, verb == 1, verb == 2, (verb >= 3) & (verb < 8)], [TAP, SWIPE, TYPE, KEY], DONE
    )
    b = token - BYTE_OFFSET
    is_byte = (b >= 0) & (b < 256)
    new_cont = jnp.select([b >= 0xF0, b >= 0xE0, b >= 0xC2], [3, 2, 1], 0)
    new_lo = jnp.select([b == 0xE0, b == 0xF0], [0xA0, 0x90], 0x80)
    new_hi = jnp.select([b == 0xED, b == 0xF4], [0x9F, 0x8F], 0xBF)
    in_char = cont > 0
    typing = phase == TYPE
    next_phase = jnp.where(phase == START, started, phase)
    ends = (token == EOS_ID) | (typing & ~is_byte) | (token == PAD_ID)
    next_phase = jnp.where((phase != START) & ends, DONE, next_phase)
    return GrammarState(
        phase=next_phase.astype(jnp.int32),
        count=jnp.where(phase == START, 0, count + 1).astype(jnp.int32),
        cont=jnp.where(typing & is_byte, jnp.where(in_char, cont - 1, new_cont), cont).astype(
            jnp.int32
        ),
        lo=jnp.where(typing & is_byte & ~in_char, new_lo, 0x80).astype(jnp.int32),
        hi=jnp.where(typing & is_byte & ~in_char, new_hi, 0xBF).astype(jnp.int32),
    )
