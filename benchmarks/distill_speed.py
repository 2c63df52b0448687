"""Actor speed of the distilled student vs its ``tiny`` teacher on one CPU core (DESIGN §4).

Prints one JSON line: actions/s through ``JaxPolicy.act`` end to end (context encoding, the
jitted grammar-masked sampler, token decoding; timed as in ``policy_speed.py``, whose timing and
observations it imports) at batch 1, 8 and 32 for both presets, measured side by side in the same
process, their ratio (the goal is >= 3x) and the parameter counts. An actor process steps all
its devices with one batched call, so its batch is its device count (8 in ``simphone_general``).

A fair comparison needs the same actions: the sampler's cost is set by how many tokens it
decodes, and two untrained models sample action lengths that differ by chance (a TYPE action
runs to ``La`` tokens, a BACK is two). So both models get the same output-bias offsets on top
of their random weights, which dominate their near-uniform logits: a fixed action mix (taps
mostly, some swipes, typed text of about ten bytes, key presses). ``mean_loop_steps_*`` (the
decoding-loop steps per call) shows the two decoded equally long actions.

Run it pinned to one core so the other core's load does not leak in; XLA's own thread pools are
limited to one thread by flags set before jax is imported:

    taskset -c 0 python benchmarks/distill_speed.py [--quick]
"""

from __future__ import annotations

import os

# Before jax is imported: XLA reads its flags once, at start-up.
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "")
    + " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
)
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import argparse
import json
import math
import platform
import sys

import jax
import numpy as np
from flax import nnx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # policy_speed beside us

from policy_speed import actions_per_second

from distrl_jax.models import action_codec as codec
from distrl_jax.models import policy as P
from distrl_jax.models import spec as specs
from distrl_jax.models.jax_policy import JaxPolicy

# The action mix both models sample (probabilities of the first token).
VERB_MIX = {
    codec.TAP_ID: 0.6,
    codec.SWIPE_ID: 0.1,
    codec.TYPE_ID: 0.1,
    **{codec.VERB_OFFSET + i: 0.04 for i in range(3, 8)},
}
# The vocabulary's share of <eos> while typing: ~146 byte tokens are allowed at 0 offset.
EOS_SHARE = 0.2


def biased_params(spec: specs.ModelSpec, seed: int) -> dict:
    """Random parameters whose output bias fixes the action mix (see the module docstring)."""
    params = nnx.to_pure_dict(nnx.state(P.init_model(spec, seed)))
    bias = np.asarray(params["decoder"]["head"]["bias"]).copy()
    for token, p in VERB_MIX.items():
        bias[token] += math.log(p) + 10.0  # +10: far above the other verbs' random logits
    bias[codec.EOS_ID] += math.log(146 * EOS_SHARE / (1 - EOS_SHARE))
    params["decoder"]["head"]["bias"] = bias
    return params


def main() -> None:
    """Run and print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations (same keys)")
    parser.add_argument("--teacher", default="tiny", choices=sorted(specs.PRESETS))
    parser.add_argument("--student", default="student", choices=sorted(specs.PRESETS))
    args = parser.parse_args()
    calls = {1: 100, 8: 25, 32: 8} if args.quick else {1: 400, 8: 100, 32: 30}
    rounds = 2 if args.quick else 3
    out: dict = {"benchmark": "distill_speed", "cpu_threads": 1}
    policies = {}
    for role, name in (("teacher", args.teacher), ("student", args.student)):
        spec = specs.preset(name)
        policies[role] = JaxPolicy(spec, biased_params(spec, 0), buckets=tuple(calls), seed=0)
        out[f"{role}_preset"] = name
        out[f"{role}_params"] = P.param_count(P.abstract_model(spec))
    # Interleaved rounds, best of each: a burst of load from elsewhere hits both models alike.
    rates: dict[str, list[tuple[float, float]]] = {}
    for _ in range(rounds):
        for role, policy in policies.items():
            for batch, n in calls.items():
                rate, _, steps = actions_per_second(policy, batch, n)
                rates.setdefault(f"{role}_b{batch}", []).append((rate, steps))
    for key, runs in rates.items():
        role, batch = key.split("_b")
        out[f"{role}_actions_per_s_batch{batch}"] = round(max(r for r, _ in runs), 1)
        out[f"{role}_mean_loop_steps_batch{batch}"] = round(float(np.mean([s for _, s in runs])), 2)
    for batch in calls:
        ratio = (
            out[f"student_actions_per_s_batch{batch}"] / out[f"teacher_actions_per_s_batch{batch}"]
        )
        out[f"speedup_batch{batch}"] = round(ratio, 2)
    out["param_ratio"] = round(out["teacher_params"] / out["student_params"], 2)
    out.update(quick=args.quick, jax=jax.__version__, machine=platform.machine())
    print(json.dumps(out))


if __name__ == "__main__":
    main()
