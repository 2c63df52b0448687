"""select_platform: cpu works here; gpu/tpu fail at once with what JAX sees; bad values refused.

Each case runs in a fresh interpreter so the platform JAX settles on does not leak into the
process that runs the other tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from distrl_jax.accel import select_platform

PROBE = """
import json, sys
from distrl_jax.accel import AcceleratorUnavailable, select_platform
out = {}
for accel in sys.argv[1:]:
    try:
        out[accel] = {"ok": select_platform(accel)}
    except AcceleratorUnavailable as e:
        out[accel] = {"error": str(e)}
import jax
out["devices"] = sorted({d.platform for d in jax.devices()})
print(json.dumps(out))
"""


def probe(*accels: str, env_platforms: str | None) -> dict:
    env = dict(os.environ)
    env.pop("JAX_PLATFORMS", None)
    if env_platforms is not None:
        env["JAX_PLATFORMS"] = env_platforms
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *accels],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def cpu_only() -> bool:
    import jax

    return {d.platform for d in jax.devices()} == {"cpu"}


@pytest.mark.timeout(120)
def test_cpu_is_selected_without_jax_platforms_set() -> None:
    out = probe("cpu", env_platforms=None)
    assert out["cpu"] == {"ok": "cpu"}
    assert out["devices"] == ["cpu"]


@pytest.mark.timeout(120)
@pytest.mark.skipif(not cpu_only(), reason="this host has an accelerator")
@pytest.mark.parametrize("env_platforms", [None, "cpu"], ids=["probing", "JAX_PLATFORMS=cpu"])
def test_missing_accelerators_fail_with_what_jax_sees(env_platforms: str | None) -> None:
    out = probe("gpu", "tpu", "auto", env_platforms=env_platforms)
    assert out["auto"] == {"ok": "cpu"}
    for accel in ("gpu", "tpu"):
        msg = out[accel]["error"]
        assert f"--accel={accel} was asked for" in msg
        assert f"no {accel.upper()} device" in msg
        assert "it sees cpu:" in msg  # names the platform and kind JAX does see
        assert "--accel=cpu" in msg  # and what to do instead
        assert "pip install" in msg


@pytest.mark.parametrize("bad", ["GPU", "cuda", "", "cpu ", "metal"])
def test_bad_value_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match=r"cpu, gpu, tpu or auto") as exc:
        select_platform(bad)
    assert repr(bad) in str(exc.value)
