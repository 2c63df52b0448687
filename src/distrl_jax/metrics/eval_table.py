"""The evaluation table: per task trials, success rate with a 95% interval, episode length,
invalid-action rate, and infrastructure failures kept apart from policy failures.

The interval is Wilson's score interval, which behaves at 0 and 1 successes (where the normal
approximation collapses to a zero-width interval) — the common case for a few trials per task.
"""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib
from collections.abc import Iterable


def wilson_interval(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion; (0, 1) when there are no trials."""
    if trials <= 0:
        return (0.0, 1.0)
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclasses.dataclass(frozen=True)
class EpisodeRecord:
    """The outcome of one evaluation episode."""

    task: str
    success: bool
    length: int
    invalid_actions: int = 0
    infra_failure: bool = False  # the device or judge failed: not counted as a policy failure
    reason: str = ""


@dataclasses.dataclass(frozen=True)
class TaskRow:
    """Aggregated results for one task."""

    task: str
    trials: int
    successes: int
    success_rate: float
    ci_low: float
    ci_high: float
    mean_length: float
    invalid_rate: float
    infra_failures: int


def build_table(records: Iterable[EpisodeRecord]) -> tuple[list[TaskRow], TaskRow]:
    """Rows per task (in first-seen order) and the suite row (mean over all trials)."""
    by_task: dict[str, list[EpisodeRecord]] = {}
    for r in records:
        by_task.setdefault(r.task, []).append(r)

    def row(name: str, recs: list[EpisodeRecord]) -> TaskRow:
        ok = [r for r in recs if not r.infra_failure]
        n = len(ok)
        s = sum(r.success for r in ok)
        lo, hi = wilson_interval(s, n)
        steps = sum(r.length for r in ok)
        return TaskRow(
            task=name,
            trials=n,
            successes=s,
            success_rate=s / n if n else float("nan"),
            ci_low=lo,
            ci_high=hi,
            mean_length=steps / n if n else float("nan"),
            invalid_rate=sum(r.invalid_actions for r in ok) / steps if steps else 0.0,
            infra_failures=len(recs) - n,
        )

    rows = [row(t, rs) for t, rs in by_task.items()]
    total = row("ALL", [r for rs in by_task.values() for r in rs])
    return rows, total


def to_markdown(rows: list[TaskRow], total: TaskRow, title: str = "") -> str:
    """A Markdown table (the suite row last, in bold)."""
    head = "| task | trials | success | 95% CI | mean length | invalid rate | infra failures |\n"
    head += "|---|---:|---:|---|---:|---:|---:|\n"

    def fmt(r: TaskRow, bold: bool = False) -> str:
        name = f"**{r.task}**" if bold else r.task.replace("|", "\\|")
        return (
            f"| {name} | {r.trials} | {r.success_rate:.1%} | [{r.ci_low:.2f}, {r.ci_high:.2f}] "
            f"| {r.mean_length:.1f} | {r.invalid_rate:.1%} | {r.infra_failures} |\n"
        )

    body = "".join(fmt(r) for r in rows) + fmt(total, bold=True)
    return (f"### {title}\n\n" if title else "") + head + body


def write_table(
    rows: list[TaskRow], total: TaskRow, out_dir: str | pathlib.Path, name: str = "eval"
) -> tuple[pathlib.Path, pathlib.Path]:
    """Write ``<name>.md`` and ``<name>.json`` into ``out_dir``; returns both paths."""
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    md = out / f"{name}.md"
    js = out / f"{name}.json"
    md.write_text(to_markdown(rows, total, title=name))
    js.write_text(
        json.dumps(
            {"tasks": [dataclasses.asdict(r) for r in rows], "total": dataclasses.asdict(total)},
            indent=1,
        )
    )
    return md, js
