"""Accelerator preset for --accel=gpu: the small model, a data x model mesh over every device.

Run: python -m distrl_jax.launch --accel=gpu --config=configs/accel/gpu.py
"""

import dataclasses

from distrl_jax.config import Config, LearnerConfig, MeshConfig, RuntimeConfig
from distrl_jax.models.spec import preset


def get_config() -> Config:
    """simphone General with the small model sharded over all local gpu devices."""
    return Config(
        name="accel_gpu",
        accel="gpu",
        model=preset("small"),
        mesh=MeshConfig(data=-1, model=1),
        learner=dataclasses.replace(LearnerConfig(), steps=20000, batch_size=64),
        runtime=RuntimeConfig(num_actors=8, broadcast_every=50),
    )
