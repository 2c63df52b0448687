"""Command line for task lists: coverage reports and single-string parses.

    python -m distrl_jax.tasks coverage general webshop path/to/tasks.txt
    python -m distrl_jax.tasks parse "Set an alarm for 6:30am"

``coverage`` prints, per list, the unique strings, how many parse (and the share), the
train/validation split sizes, a per-intent histogram, and every unsupported string with its
reason; it exits 0. ``parse`` prints the goal's intent and slots, or the reason it is unsupported
(exit 1).
"""

from __future__ import annotations

import argparse
import collections
import sys
from collections.abc import Sequence
from typing import TextIO

from distrl_jax.tasks.parser import UnsupportedTask, parse
from distrl_jax.tasks.suites import is_validation, load_suite


def coverage(lists: Sequence[str], out: TextIO | None = None) -> None:
    """Print the coverage report of each task list (a built-in suite name or a file path)."""
    out = sys.stdout if out is None else out
    for name in lists:
        loaded = load_suite(name, split="all")
        intents = collections.Counter(t.goal.intent.value for t in loaded.tasks if t.goal)
        val = sum(1 for t in loaded.tasks if t.goal and is_validation(t.goal))
        print(name if loaded.source == name else f"{name} ({loaded.source})", file=out)
        print(
            f"  suite: {loaded.name}, horizon {loaded.tasks[0].horizon if loaded.tasks else '-'}",
            file=out,
        )
        print(f"  unique strings: {loaded.unique}", file=out)
        print(
            f"  supported: {len(loaded.tasks)} ({100 * loaded.supported_fraction:.1f}%)",
            file=out,
        )
        print(f"  split: train {len(loaded.tasks) - val}, val {val}", file=out)
        print("  intents:", file=out)
        for intent, n in sorted(intents.items(), key=lambda kv: (-kv[1], kv[0])):
            print(f"    {intent:<20} {n:>5}", file=out)
        print(f"  unsupported ({len(loaded.unsupported)}):", file=out)
        for s, reason in loaded.unsupported:
            print(f"    {s!r}: {reason}", file=out)
        print(file=out)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m distrl_jax.tasks``; returns the exit code."""
    ap = argparse.ArgumentParser(
        prog="python -m distrl_jax.tasks", description=__doc__.split("\n")[0]
    )
    sub = ap.add_subparsers(dest="command", required=True)
    cov = sub.add_parser("coverage", help="parse task lists and report what is supported")
    cov.add_argument(
        "lists", nargs="+", metavar="FILE_OR_SUITE", help="'general', 'webshop' or a path"
    )
    one = sub.add_parser("parse", help="parse one task string and print its goal")
    one.add_argument("text", help="the task string, e.g. 'Set an alarm for 7am'")
    args = ap.parse_args(argv)
    if args.command == "coverage":
        try:
            coverage(args.lists)
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        return 0
    try:
        goal = parse(args.text)
    except UnsupportedTask as err:
        print(f"unsupported: {err.reason}", file=sys.stderr)
        return 1
    print(goal.intent.value)
    for k, v in goal.slots:
        print(f"  {k}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
