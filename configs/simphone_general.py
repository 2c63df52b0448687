"""AitW General on simphone with the tiny model: the paper's General setting, sized for a CPU host.

Run: python -m distrl_jax.launch --accel=cpu --config=simphone_general
"""

import dataclasses

from distrl_jax.config import Config, DeviceConfig, LearnerConfig, RuntimeConfig, TaskConfig
from distrl_jax.models.spec import preset


def get_config() -> Config:
    """General suite, horizon 10, async A-RIDE with 2 actor processes of 8 simphones each."""
    return Config(
        name="simphone_general",
        model=preset("tiny"),
        device=DeviceConfig(kind="simphone", count=8),
        tasks=TaskConfig(train="general", eval="general", eval_split="val"),
        learner=dataclasses.replace(LearnerConfig(), steps=3000, batch_size=16),
        runtime=RuntimeConfig(num_actors=2, broadcast_every=25),
    )
