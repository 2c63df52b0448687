"""The cheapest runtime benchmarks run end to end with ``--quick`` and print their JSON line.

``scaling`` (devices and the rollout loop, no model) and ``broadcast`` (the real learner and an
actor over loopback ZeroMQ, both broadcast modes) run in subprocesses with small settings; the
heavier ones (async_vs_sync, actor_efficiency, training_efficiency) share their harness and are
left to ``make bench``.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

BENCH = pathlib.Path(__file__).resolve().parents[2] / "benchmarks"
COMMON = {"benchmark", "quick", "host", "setting", "config", "goal", "passed"}


def run_quick(script: str, *flags: str) -> dict:
    """Run ``benchmarks/<script> --quick FLAGS``; returns its one JSON line (the last stdout line)."""
    proc = subprocess.run(
        [sys.executable, str(BENCH / script), "--quick", *flags],
        capture_output=True,
        text=True,
        timeout=500,
        env=dict(os.environ, JAX_PLATFORMS="cpu"),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, f"expected exactly one stdout line, got {proc.stdout!r}"
    return json.loads(lines[0])


@pytest.mark.slow
@pytest.mark.extended
@pytest.mark.timeout(900)
def test_scaling_and_broadcast_quick_print_their_figures():
    """Both scripts print one JSON line with the shared keys and their own figures."""
    scaling = run_quick("scaling.py", "--max-devices=4", "--window=2")
    assert scaling.keys() >= COMMON
    assert scaling["benchmark"] == "scaling" and scaling["quick"] is True
    assert [p["devices"] for p in scaling["points"]] == [1, 2, 4]
    assert scaling["points"][0]["device_steps_per_s"] > 0  # the devices did step
    assert scaling["points"][0]["efficiency"] == 1.0
    assert scaling["host"]["jax_backend"] == "cpu" and scaling["host"]["cpus"] >= 1
    assert scaling["setting"]["latency"]["median_s"] == 2.0
    assert isinstance(scaling["passed"], bool) and scaling["note"]

    bcast = run_quick(
        "broadcast.py", "--actors=1", "--devices-per-actor=2", "--window=10", "--broadcast-every=2"
    )
    assert bcast.keys() >= COMMON and {"path", "inline", "fraction"} <= bcast.keys()
    for mode in ("path", "inline"):
        figures = bcast[mode]
        assert figures["broadcasts"] >= 1, figures  # the learner published during the window
        assert {"update_interval_s", "lag_median_s", "fraction", "passed"} <= figures.keys()
    assert isinstance(bcast["passed"], bool)
