"""examples/compare_tables.py: the paired comparison of two evaluation tables."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "examples" / "compare_tables.py"


def _table(path: pathlib.Path, wins: dict[str, int]) -> str:
    rows = [{"task": t, "trials": 1, "successes": s} for t, s in wins.items()]
    path.write_text(json.dumps({"tasks": rows, "total": {}}))
    return str(path)


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=60
    )


def test_paired_difference_over_the_shared_tasks(tmp_path) -> None:
    a = _table(tmp_path / "a.json", {"t1": 1, "t2": 1, "t3": 0, "t4": 1, "only-a": 1})
    b = _table(tmp_path / "b.json", {"t1": 1, "t2": 0, "t3": 1, "t4": 0, "only-b": 0})
    out = _run(a, b)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["tasks"] == 4  # tasks in one table only are left out
    assert got["a"] == pytest.approx(0.75) and got["b"] == pytest.approx(0.5)
    assert got["diff"] == pytest.approx(0.25)
    # d = [0, 1, -1, 1]: sample sd = sqrt(11/12); 1.96 * sd / 2
    assert got["diff_ci95"] == pytest.approx(1.96 * (11 / 12) ** 0.5 / 2)
    assert (got["only_a"], got["only_b"]) == (2, 1)


def test_unreadable_or_disjoint_tables_are_clear_errors(tmp_path) -> None:
    a = _table(tmp_path / "a.json", {"t1": 1, "t2": 0})
    out = _run(a, str(tmp_path / "missing.json"))
    assert out.returncode == 1 and "is not an evaluation table" in out.stderr
    c = _table(tmp_path / "c.json", {"x": 1, "y": 0})
    out = _run(a, c)
    assert out.returncode == 1 and "share 0 task(s)" in out.stderr
