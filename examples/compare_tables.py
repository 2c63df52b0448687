"""Compare two evaluation tables of the same tasks, task by task (a paired comparison).

Reads two ``.json`` tables written by ``python -m distrl_jax.evaluate`` (e.g. the learner's and
the distilled student's checkpoints of one run, evaluated with the same ``--tasks/--split/--seed``)
and prints one JSON line: each table's success rate over the shared tasks, their difference with
a 95% normal interval over tasks, and how many tasks only one of them solved. Pairing removes the
spread between tasks, so it is far tighter than comparing the two Wilson intervals::

    python examples/compare_tables.py RUN/eval/learner-162.json RUN/eval/student-162.json
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
import sys


def successes(path: str) -> dict[str, float]:
    """Per-task success rate of one table (``{"tasks": [{"task", "successes", "trials"}...]}``)."""
    try:
        rows = json.loads(pathlib.Path(path).read_text())["tasks"]
        return {r["task"]: r["successes"] / r["trials"] for r in rows if r["trials"]}
    except (OSError, ValueError, KeyError, TypeError) as e:
        msg = f"error: {path} is not an evaluation table from distrl_jax.evaluate: {e}"
        raise SystemExit(msg) from None


def main() -> None:
    """Print the paired comparison of the two tables."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("a", help="first table (.json)")
    p.add_argument("b", help="second table (.json)")
    args = p.parse_args()
    a, b = successes(args.a), successes(args.b)
    shared = sorted(set(a) & set(b))
    if len(shared) < 2:
        raise SystemExit(f"error: the tables share {len(shared)} task(s); evaluate the same tasks")
    d = [a[t] - b[t] for t in shared]
    mean = sum(d) / len(d)
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (len(d) - 1))
    out = {
        "tasks": len(shared),
        "a": sum(a[t] for t in shared) / len(shared),
        "b": sum(b[t] for t in shared) / len(shared),
        "diff": mean,
        "diff_ci95": 1.96 * sd / math.sqrt(len(d)),
        "only_a": sum(a[t] > b[t] for t in shared),
        "only_b": sum(b[t] > a[t] for t in shared),
    }
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
