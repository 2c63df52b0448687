"""The notebooks run top to bottom at the tiny budget: the sweep, the curves, the table."""

from __future__ import annotations

import pathlib
import re
import shutil

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = pathlib.Path(__file__).resolve().parents[2] / "notebooks"


def execute(path: pathlib.Path) -> nbformat.NotebookNode:
    """Run every cell in the notebook's folder; raises CellExecutionError on the first error."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute()
    return nb


def images(nb: nbformat.NotebookNode) -> list:
    return [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]


def outputs_text(nb: nbformat.NotebookNode) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            parts.extend(str(v) for v in out.get("data", {}).values())
    return "\n".join(parts)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_ablations_then_results_notebook_at_tiny_budget(tmp_path, monkeypatch) -> None:
    for name in ("ablations.ipynb", "results.ipynb"):
        shutil.copy(NOTEBOOKS / name, tmp_path / name)
    out = tmp_path / "runs"
    monkeypatch.setenv("DISTRL_NB_BUDGET", "tiny")
    monkeypatch.setenv("DISTRL_NB_OUT", str(out))
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    # Two variants keep the suite within its CI budget: the full method (the table's baseline)
    # and the synchronous runtime (every variant runs the same code path through run_variants).
    variants = ["A-RIDE", "sync"]
    monkeypatch.setenv("DISTRL_NB_VARIANTS", ",".join(variants))

    ablations = execute(tmp_path / "ablations.ipynb")
    text = outputs_text(ablations)
    for v in variants:
        assert (out / v / "seed-0" / "eval" / "final.json").is_file(), v
        assert re.search(rf"\| {v} \| 1 \| \d+\.\d \| ([+-]\d+\.\d%|n/a) \|", text), v
    # The baseline's change against itself: +0.0%, or n/a when its success is 0.
    assert re.search(r"\| A-RIDE \| 1 \| \d+\.\d \| (\+0\.0%|n/a) \|", text)
    assert len(images(ablations)) == 1  # success vs wall time and vs device steps

    results = execute(tmp_path / "results.ipynb")
    text = outputs_text(results)
    assert "A-RIDE           1 run(s), 1 finished" in text
    assert len(images(results)) == 1  # the three-panel figure
    for v in variants:
        assert f"| {v} | 1 |" in text
