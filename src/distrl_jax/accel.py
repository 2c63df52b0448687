"""Choosing the JAX platform: ``--accel=cpu|gpu|tpu|auto``, failing at once when it is absent.

JAX picks its backend when first used, so the choice is made before anything touches a device:
for ``cpu`` we set ``JAX_PLATFORMS=cpu`` (no probing for CUDA/TPU plugins, which is slow and noisy
on worker hosts); for ``gpu``/``tpu`` we ask JAX for that platform and, when it is missing, raise
an error that names what JAX does see and how to install the missing backend.
"""

from __future__ import annotations

import os

_INSTALL_HINT = {
    "gpu": 'pip install -U "jax[cuda12]" (or cuda13) matching your driver',
    "tpu": 'pip install -U "jax[tpu]" on a TPU VM',
}


class AcceleratorUnavailable(RuntimeError):
    """The requested accelerator is not visible to JAX."""


def select_platform(accel: str) -> str:
    """Configure JAX for ``accel`` and return the platform name in use ('cpu', 'gpu' or 'tpu')."""
    if accel not in ("cpu", "gpu", "tpu", "auto"):
        raise ValueError(f"--accel={accel!r} is not allowed: cpu, gpu, tpu or auto")
    if accel == "cpu":
        os.environ["JAX_PLATFORMS"] = "cpu"
    import jax

    if accel == "cpu":
        jax.config.update("jax_platforms", "cpu")
        return "cpu"
    if accel == "auto":
        return jax.default_backend()
    try:
        devs = jax.devices(accel)
    except RuntimeError:
        devs = []
    if not devs:
        try:
            seen = sorted({f"{d.platform}:{d.device_kind}" for d in jax.devices()})
        except RuntimeError:
            seen = []
        raise AcceleratorUnavailable(
            f"--accel={accel} was asked for, but JAX sees no {accel.upper()} device; it sees "
            f"{', '.join(seen) or 'nothing'}. Install the backend ({_INSTALL_HINT[accel]}), or run "
            f"with --accel=cpu."
        )
    return accel
