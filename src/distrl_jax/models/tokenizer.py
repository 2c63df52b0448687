"""The byte-level tokenizer (``transformers``) and the context encoder of the policy.

The vocabulary (layout in :mod:`distrl_jax.models.action_codec`) is: ``<pad> <bos> <eos> <sep>
<invalid>``, the 256 bytes, the action verbs ``<tap> … <impossible>`` and the location tokens
``<y_00>…<y_63> <x_00>…<x_63>``. It is a ``tokenizers`` BPE model without merges over a
byte-level alphabet (one token per UTF-8 byte), wrapped as a ``PreTrainedTokenizerFast``, saved
with ``save_pretrained`` into the package folder ``models/tokenizer/`` and loaded offline with
``AutoTokenizer.from_pretrained``. Regenerate the folder with::

    python -m distrl_jax.models.tokenizer --rebuild

A context (``int32[Lc]``) is ``<bos> task-bytes <sep> a_{t-k} … a_{t-1} <pad>…``: the task text
through the tokenizer, then the last k actions in their action-token form (the same tokens the
decoder emits, so the model sees its own recent actions in its own vocabulary). History gets at
most ``spec.history_budget`` tokens (oldest actions dropped first), the task the rest (cut at its
end). Both pieces are cached, so per-step encoding is a few dictionary look-ups and one copy.
"""

from __future__ import annotations

import argparse
import functools
import pathlib
import threading
from collections.abc import Sequence

import numpy as np

from distrl_jax.devices.actions import parse_action
from distrl_jax.models import action_codec as codec
from distrl_jax.models.spec import ModelSpec

_LOAD_LOCK = threading.Lock()

TOKENIZER_DIR = pathlib.Path(__file__).with_name("tokenizer")


def build_tokenizer():  # -> transformers.PreTrainedTokenizerFast
    """Build the tokenizer in memory from the layout (no files, no network)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    names = codec.token_names()
    # The byte-level pre-tokenizer maps byte b to the printable character bytes_to_unicode()[b];
    # giving those characters the ids BYTE_OFFSET + b makes "one byte, one token, id = offset + b".
    byte_chars = bytes_to_unicode()
    for b in range(256):
        names[codec.BYTE_OFFSET + b] = byte_chars[b]
    vocab = {name: i for i, name in enumerate(names)}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    special = [
        *codec.SPECIAL_TOKENS,
        *codec.VERBS,
        *codec.token_names()[codec.Y_OFFSET :],
    ]
    backend.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in special])
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="<pad>",
        bos_token="<bos>",
        eos_token="<eos>",
        sep_token="<sep>",
        additional_special_tokens=[s for s in special if s not in codec.SPECIAL_TOKENS[:4]],
        model_max_length=4096,
    )


def save_tokenizer(path: str | pathlib.Path = TOKENIZER_DIR) -> pathlib.Path:
    """Write the tokenizer files into ``path`` (the package folder by default)."""
    path = pathlib.Path(path)
    path.mkdir(parents=True, exist_ok=True)
    build_tokenizer().save_pretrained(str(path))
    return path


def check_layout(tokenizer) -> None:
    """Raise ValueError when a tokenizer's ids disagree with the codec's layout."""
    expect = {
        "<pad>": codec.PAD_ID,
        "<eos>": codec.EOS_ID,
        "<sep>": codec.SEP_ID,
        "<tap>": codec.TAP_ID,
        "<impossible>": codec.VERB_OFFSET + len(codec.VERBS) - 1,
        "<y_00>": codec.Y_OFFSET,
        "<x_63>": codec.VOCAB_SIZE - 1,
    }
    got = {name: tokenizer.convert_tokens_to_ids(name) for name in expect}
    probe = tokenizer("Az\u00e9", add_special_tokens=False)["input_ids"]
    want_probe = [codec.BYTE_OFFSET + b for b in "Az\u00e9".encode()]
    if got != expect or list(probe) != want_probe or len(tokenizer) != codec.VOCAB_SIZE:
        raise ValueError(
            f"tokenizer layout {got} (bytes {probe}, size {len(tokenizer)}) does not match the "
            f"action codec's {expect} (bytes {want_probe}, size {codec.VOCAB_SIZE}); "
            "regenerate it with `python -m distrl_jax.models.tokenizer --rebuild`"
        )


@functools.lru_cache(maxsize=4)
def load_tokenizer(path: str | pathlib.Path = TOKENIZER_DIR):  # -> PreTrainedTokenizerFast
    """Load the saved tokenizer offline (no network) and check it matches the codec's layout."""
    from transformers import AutoTokenizer

    path = pathlib.Path(path)
    if not (path / "tokenizer.json").is_file():
        raise FileNotFoundError(
            f"no tokenizer.json in {path}; create it with `python -m distrl_jax.models.tokenizer --rebuild`"
        )
    with _LOAD_LOCK:  # transformers' lazy imports race when threads load at once
        tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    check_layout(tok)
    return tok


class ContextEncoder:
    """Turns (task, last k actions) into ``int32[Lc]`` context tokens; caches the pieces."""

    def __init__(self, spec: ModelSpec, tokenizer=None, cache_size: int = 4096):
        self.spec = spec.validate()
        self.tokenizer = tokenizer if tokenizer is not None else load_tokenizer()
        self.codec = codec.ActionCodec.from_spec(spec)
        self._task_ids = functools.lru_cache(maxsize=cache_size)(self._encode_task)
        self._action_ids = functools.lru_cache(maxsize=cache_size)(self._encode_history_item)

    def _encode_task(self, task: str) -> np.ndarray:
        # split_special_tokens: a task that contains "<tap>" is text, not a verb.
        ids = self.tokenizer(task, add_special_tokens=False, split_special_tokens=True)
        return np.asarray(ids["input_ids"], np.int32)

    def _encode_history_item(self, item: str) -> np.ndarray:
        tokens = self.codec.encode(parse_action(item))
        return tokens[tokens != codec.PAD_ID]

    def _history_ids(self, history: Sequence[str]) -> np.ndarray:
        k, budget = self.spec.history_k, self.spec.history_budget
        recent = list(history)[-k:] if k > 0 else []
        pieces: list[np.ndarray] = []
        used = 0
        for item in reversed(recent):  # newest first: the oldest is what gets dropped
            ids = self._action_ids(item)
            if used + len(ids) > budget:
                if not pieces and budget >= 2:  # the newest alone is too long: keep its head
                    pieces.append(np.append(ids[: budget - 1], codec.EOS_ID).astype(np.int32))
                break
            pieces.append(ids)
            used += len(ids)
        return np.concatenate(pieces[::-1]) if pieces else np.zeros(0, np.int32)

    def encode(self, task: str, history: Sequence[str] = ()) -> np.ndarray:
        """``int32[Lc]``: ``<bos> task <sep> history <pad>…`` (deterministic truncation)."""
        if not isinstance(task, str):
            raise ValueError(f"task must be a string, got {type(task).__name__}")
        hist = self._history_ids(tuple(history))
        task_ids = self._task_ids(task)[: self.spec.context_len - 2 - len(hist)]
        out = np.zeros(self.spec.context_len, np.int32)
        n = len(task_ids)
        out[0] = codec.BOS_ID
        out[1 : 1 + n] = task_ids
        out[1 + n] = codec.SEP_ID
        out[2 + n : 2 + n + len(hist)] = hist
        return out

    def encode_batch(self, tasks: Sequence[str], histories: Sequence[Sequence[str]]) -> np.ndarray:
        """``int32[N, Lc]`` for parallel lists of tasks and histories."""
        if len(tasks) != len(histories):
            raise ValueError(f"got {len(tasks)} tasks but {len(histories)} histories")
        out = np.zeros((len(tasks), self.spec.context_len), np.int32)
        for i, (task, hist) in enumerate(zip(tasks, histories, strict=True)):
            out[i] = self.encode(task, hist)
        return out


@functools.lru_cache(maxsize=8)
def _default_encoder(spec: ModelSpec) -> ContextEncoder:
    return ContextEncoder(spec)


def encode_context(
    task: str, history: Sequence[str] = (), spec: ModelSpec | None = None
) -> np.ndarray:
    """``int32[Lc]`` context tokens of a task and its last k compact actions (tiny spec unless given)."""
    return _default_encoder(spec or ModelSpec()).encode(task, history)


def main(argv: Sequence[str] | None = None) -> None:
    """CLI: ``--rebuild`` regenerates the package's tokenizer folder (or ``--out DIR``)."""
    parser = argparse.ArgumentParser(prog="python -m distrl_jax.models.tokenizer")
    parser.add_argument("--rebuild", action="store_true", help="write the tokenizer files")
    parser.add_argument("--out", default=str(TOKENIZER_DIR), help="folder to write into")
    args = parser.parse_args(argv)
    if not args.rebuild:
        parser.print_help()
        return
    path = save_tokenizer(args.out)
    check_layout(load_tokenizer(path))
    print(f"wrote the tokenizer ({codec.VOCAB_SIZE} tokens) to {path}")


if __name__ == "__main__":
    main()
