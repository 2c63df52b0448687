"""Parity of an exported program with the JAX policy, measured at export time.

Errors are measured where they mean something: step logits only at grammar-allowed tokens
(forbidden ones are the constant -1e9 in both) and only at positions whose greedy prefix is the
same in both programs (after the first different token the two decode different actions, and
their logits are not comparable). Greedy-action agreement counts whole identical token rows.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import jax
import numpy as np

from distrl_jax.models import scoring

Runner = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, ...]]


def run_batched(run: Runner, screens: np.ndarray, contexts: np.ndarray, batch: int):
    """Call a fixed-batch runner over ``n`` rows (``n`` a multiple of ``batch``); concatenated."""
    n = len(screens)
    if n % batch:
        raise ValueError(f"{n} samples is not a multiple of the exported batch size {batch}")
    parts = [run(screens[i : i + batch], contexts[i : i + batch]) for i in range(0, n, batch)]
    return tuple(np.concatenate([p[k] for p in parts]) for k in range(len(parts[0])))


def compare(reference: tuple[np.ndarray, ...], got: tuple[np.ndarray, ...]) -> dict[str, float]:
    """Errors of ``got`` against ``reference``, both ``(tokens, logp, step_logits)``."""
    ref_tokens, ref_logp, ref_logits = (np.asarray(x) for x in reference)
    tokens, logp, logits = (np.asarray(x) for x in got)
    same_row = np.all(ref_tokens == tokens, axis=1)
    # Position i is comparable when tokens 0..i-1 agree (the inputs of step i are the same).
    differs = np.cumsum(ref_tokens != tokens, axis=1)
    same_prefix = np.concatenate([np.ones_like(differs[:, :1]), differs[:, :-1]], axis=1) == 0
    allowed = ref_logits > scoring.NEG / 2
    where = allowed & same_prefix[..., None]
    logit_err = np.abs(logits.astype(np.float64) - ref_logits)
    return {
        "samples": len(ref_tokens),
        "max_abs_logit_error": float(logit_err[where].max(initial=0.0)),
        "mean_abs_logit_error": float(logit_err[where].mean()) if where.any() else 0.0,
        "max_abs_logp_error": float(np.abs(logp - ref_logp)[same_row].max(initial=0.0)),
        "greedy_action_agreement": float(same_row.mean()),
        "first_token_agreement": float(np.mean(ref_tokens[:, 0] == tokens[:, 0])),
    }


def latency_ms(run: Runner, screens: np.ndarray, contexts: np.ndarray, repeats: int) -> dict:
    """p50/p90 wall time of one call in milliseconds (after one warm-up call)."""
    run(screens, contexts)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = run(screens, contexts)
        jax.block_until_ready(out)
        times.append((time.perf_counter() - t0) * 1e3)
    return {"p50": float(np.percentile(times, 50)), "p90": float(np.percentile(times, 90))}
