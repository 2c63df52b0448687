"""AitW Web Shopping on simphone with the tiny model (horizon 20).

Run: python -m distrl_jax.launch --accel=cpu --config=simphone_webshop
"""

import dataclasses

from distrl_jax.config import Config, DeviceConfig, LearnerConfig, RuntimeConfig, TaskConfig
from distrl_jax.models.spec import preset


def get_config() -> Config:
    """Web Shopping suite, horizon 20, async A-RIDE."""
    return Config(
        name="simphone_webshop",
        model=preset("tiny"),
        device=DeviceConfig(kind="simphone", count=8),
        tasks=TaskConfig(train="webshop", eval="webshop", eval_split="val"),
        learner=dataclasses.replace(LearnerConfig(), steps=3000, batch_size=16),
        runtime=RuntimeConfig(num_actors=2, broadcast_every=25),
    )
