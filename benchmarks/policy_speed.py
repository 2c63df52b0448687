"""Policy speed on one CPU core: actor actions/s (batch 1 and 8) and learner log-prob throughput.

Prints one JSON line. The actor figures go through ``JaxPolicy.act`` end to end (context
encoding, the jitted sampler with its grammar mask and key/value cache, token decoding) with an
untrained model sampling at temperature 1, so actions are random: about a third of the
decoding loops run to the full La because some row in the batch types text (``mean_action_tokens``
says how long the actions were). The learner figures are ``scoring.action_logprob`` at batch 64,
forward alone and forward + backward (``jax.value_and_grad`` of the policy-gradient surrogate).

One core without taskset: XLA's CPU thread pools are limited by flags set before jax is imported
(when run as a script: ``distill_speed.py`` imports the observations and ``actions_per_second``
from here after setting its own).

    python benchmarks/policy_speed.py [--quick] [--preset tiny]
"""

from __future__ import annotations

import os

if __name__ == "__main__":  # before jax is imported: XLA reads its flags once, at start-up
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "")
        + " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    )
    os.environ.setdefault("JAX_PLATFORMS", "cpu")

import argparse
import json
import platform
import time

import jax
import numpy as np
from flax import nnx

from distrl_jax import core
from distrl_jax.models import action_codec as codec
from distrl_jax.models import policy as P
from distrl_jax.models import scoring
from distrl_jax.models import spec as specs
from distrl_jax.models.jax_policy import JaxPolicy

TASKS = (
    "Open the settings",
    "Go to costco.com, search for 'bose soundsport free', and select the first entry",
    "What's the weather in Paris?",
)
HISTORIES = ((), ("HOME",), ("TAP 0.52 0.31", 'TYPE "weather paris"', "ENTER"))


def observations(spec: specs.ModelSpec, n: int, seed: int) -> list[core.Observation]:
    """``n`` observations with random screens and a mix of tasks and histories."""
    rng = np.random.default_rng(seed)
    screens = rng.integers(0, 256, (n, *spec.image_size, 3), dtype=np.uint8)
    return [
        core.Observation(screens[i], TASKS[i % len(TASKS)], HISTORIES[i % len(HISTORIES)])
        for i in range(n)
    ]


def actions_per_second(policy: JaxPolicy, batch: int, calls: int) -> tuple[float, float, float]:
    """(actions/s, mean real tokens per action, mean decoding-loop steps per call) for ``act``.

    The sampler's loop runs until the longest action of the batch is done, so the loop steps
    (the longest action's tokens) set the cost of a call.
    """
    obs = observations(policy.spec, batch, seed=batch)
    policy.act(obs)  # compile this bucket outside the timing
    tokens = steps = 0
    start = time.perf_counter()
    for _ in range(calls):
        lengths = [int((o.tokens != codec.PAD_ID).sum()) for o in policy.act(obs)]
        tokens += sum(lengths)
        steps += max(lengths)
    elapsed = time.perf_counter() - start
    return batch * calls / elapsed, tokens / (batch * calls), steps / calls


def learner_throughput(spec: specs.ModelSpec, batch: int, calls: int) -> tuple[float, float]:
    """(sequences/s of action_logprob, sequences/s of its value_and_grad) at ``batch``."""
    graphdef, state = nnx.split(P.init_model(spec))
    obs = observations(spec, batch, seed=1)
    policy_ctx = JaxPolicy(spec, state, buckets=(batch,))
    sampled = policy_ctx.act(obs)
    screens = np.stack([o.screen for o in obs])
    context = policy_ctx.contexts.encode_batch([o.task for o in obs], [o.history for o in obs])
    actions = np.stack([o.tokens for o in sampled])
    advantages = np.random.default_rng(0).standard_normal(batch).astype(np.float32)

    forward = jax.jit(scoring.action_logprob, static_argnums=0)

    def surrogate(st):
        logp, ent, _ = scoring.action_logprob(graphdef, st, screens, context, actions)
        return -(advantages * logp).mean() - 0.05 * ent.mean()

    backward = jax.jit(jax.value_and_grad(surrogate))

    def rate(fn) -> float:
        jax.block_until_ready(fn())  # compile
        start = time.perf_counter()
        for _ in range(calls):
            jax.block_until_ready(fn())
        return batch * calls / (time.perf_counter() - start)

    fwd = rate(lambda: forward(graphdef, state, screens, context, actions))
    bwd = rate(lambda: backward(state))
    return fwd, bwd


def main() -> None:
    """Run and print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations (same keys)")
    parser.add_argument("--preset", default="tiny", choices=sorted(specs.PRESETS))
    args = parser.parse_args()
    spec = specs.preset(args.preset)
    calls_b1, calls_b8, calls_lp = (20, 10, 3) if args.quick else (200, 60, 20)

    policy = JaxPolicy(spec, buckets=(1, 8), seed=0)
    b1, tokens_b1, steps_b1 = actions_per_second(policy, 1, calls_b1)
    b8, tokens_b8, steps_b8 = actions_per_second(policy, 8, calls_b8)
    fwd, bwd = learner_throughput(spec, 64, calls_lp)
    print(
        json.dumps(
            {
                "benchmark": "policy_speed",
                "preset": spec.name,
                "params": P.param_count(P.abstract_model(spec)),
                "cpu_threads": 1,
                "actions_per_s_batch1": round(b1, 1),
                "actions_per_s_batch8": round(b8, 1),
                "mean_action_tokens_batch1": round(tokens_b1, 2),
                "mean_action_tokens_batch8": round(tokens_b8, 2),
                "mean_loop_steps_batch1": round(steps_b1, 2),
                "mean_loop_steps_batch8": round(steps_b8, 2),
                "logprob_seqs_per_s_batch64": round(fwd, 1),
                "logprob_grad_seqs_per_s_batch64": round(bwd, 1),
                "invalid_actions": policy.invalid_count,
                "quick": args.quick,
                "jax": jax.__version__,
                "machine": platform.machine(),
            }
        )
    )


if __name__ == "__main__":
    main()
