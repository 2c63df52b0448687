"""The transformers tokenizer (offline, from the package folder) and the context encoder."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distrl_jax.devices import actions as A
from distrl_jax.models import action_codec as C
from distrl_jax.models import tokenizer as T
from distrl_jax.models.spec import ModelSpec


@pytest.fixture(scope="module")
def tok():
    return T.load_tokenizer()


def test_reloads_offline_from_the_package_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    from transformers import PreTrainedTokenizerBase

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    loaded = T.load_tokenizer.__wrapped__(T.TOKENIZER_DIR)  # bypass the per-process cache
    assert isinstance(loaded, PreTrainedTokenizerBase)
    assert len(loaded) == C.VOCAB_SIZE
    assert loaded.pad_token_id == C.PAD_ID and loaded.eos_token_id == C.EOS_ID
    assert loaded.convert_tokens_to_ids("<type>") == C.TYPE_ID
    assert loaded.convert_tokens_to_ids("<y_07>") == C.Y_OFFSET + 7


def test_committed_folder_matches_a_rebuild(tmp_path) -> None:
    T.main(["--rebuild", "--out", str(tmp_path)])
    for name in ("tokenizer.json", "tokenizer_config.json"):
        rebuilt = json.loads((tmp_path / name).read_text())
        committed = json.loads((T.TOKENIZER_DIR / name).read_text())
        assert rebuilt == committed, (
            f"{name} is stale: run python -m distrl_jax.models.tokenizer --rebuild"
        )


def test_missing_folder_says_how_to_make_it(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="--rebuild"):
        T.load_tokenizer.__wrapped__(tmp_path)


@settings(max_examples=50, deadline=None)
@given(st.text(st.characters(exclude_categories=("Cs",)), max_size=40))
def test_one_token_per_utf8_byte(tok, text: str) -> None:
    ids = tok(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]
    assert ids == [C.BYTE_OFFSET + b for b in text.encode("utf-8")]
    assert tok.decode(ids) == text


def test_verbs_and_locations_are_single_tokens_and_decode_by_name(tok) -> None:
    ids = tok("<tap><y_03><x_10><eos>", add_special_tokens=False)["input_ids"]
    assert ids == [C.TAP_ID, C.Y_OFFSET + 3, C.X_OFFSET + 10, C.EOS_ID]
    assert tok.decode(ids) == "<tap><y_03><x_10><eos>"


def test_context_layout_and_determinism(tok) -> None:
    spec = ModelSpec()
    enc = T.ContextEncoder(spec, tok)
    ctx = enc.encode("open settings", ["HOME", "TAP 0.50 0.25"])
    assert ctx.dtype == np.int32 and ctx.shape == (spec.context_len,)
    task_len = len("open settings")
    assert ctx[0] == C.BOS_ID and ctx[1 + task_len] == C.SEP_ID
    assert (
        bytes((ctx[1 : 1 + task_len] - C.BYTE_OFFSET).astype(np.uint8)).decode() == "open settings"
    )
    hist = ctx[2 + task_len :]
    hist = hist[hist != C.PAD_ID]
    home = C.encode_action(A.HOME)
    tap = C.encode_action(A.tap(0.5, 0.25))
    assert hist.tolist() == [*home[home != 0], *tap[tap != 0]]
    assert np.array_equal(ctx, T.encode_context("open settings", ("HOME", "TAP 0.50 0.25")))
    assert np.array_equal(enc.encode_batch(["open settings"], [["HOME", "TAP 0.50 0.25"]])[0], ctx)


def test_task_text_with_special_token_strings_stays_text(tok) -> None:
    ctx = T.ContextEncoder(ModelSpec(), tok).encode("type <tap> please")
    assert C.TAP_ID not in ctx.tolist()


def test_history_keeps_the_last_k_and_drops_the_oldest_over_budget(tok) -> None:
    spec = ModelSpec(history_k=2, history_budget=10)
    enc = T.ContextEncoder(spec, tok)
    ctx = enc.encode("t", ["BACK", "HOME", "TAP 0.1 0.1"])  # k=2: HOME, TAP
    assert C.VERB_OFFSET + 3 not in ctx.tolist()  # <back> is beyond k
    assert C.VERB_OFFSET + 4 in ctx.tolist() and C.TAP_ID in ctx.tolist()
    ctx = enc.encode("t", ['TYPE "abcdef"', "SWIPE 0.9 0.5 0.1 0.5"])  # 8 + 6 tokens > 10
    assert C.TYPE_ID not in ctx.tolist() and C.SWIPE_ID in ctx.tolist()
    ctx = enc.encode("t", ['TYPE "a very long query text"'])  # the newest alone is too long
    hist = ctx[3:][ctx[3:] != C.PAD_ID]  # after <bos> t <sep>
    assert len(hist) == 10 and hist[0] == C.TYPE_ID and hist[-1] == C.EOS_ID


def test_long_task_is_cut_to_leave_room_for_history(tok) -> None:
    spec = ModelSpec()
    ctx = T.ContextEncoder(spec, tok).encode("x" * 500, ["INVALID", "ENTER"])
    assert ctx[-1] != C.PAD_ID  # filled to Lc
    tail = [C.INVALID_ID, C.EOS_ID, C.VERB_OFFSET + 5, C.EOS_ID]
    assert ctx[-4:].tolist() == tail and ctx[-5] == C.SEP_ID


def test_bad_inputs_raise_clear_errors(tok) -> None:
    enc = T.ContextEncoder(ModelSpec(), tok)
    with pytest.raises(ValueError, match="task must be a string"):
        enc.encode(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="histories"):
        enc.encode_batch(["a", "b"], [()])
