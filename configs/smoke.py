"""The smoke preset: a run of a minute or two on two CPU cores (README's `make run`, tests, CI).

Everything is shrunk (big_vision style): few tasks, few steps, a small replay.
"""

import dataclasses

from distrl_jax.config import (
    CheckpointConfig,
    Config,
    DeviceConfig,
    EvalConfig,
    LearnerConfig,
    ReplayConfig,
    RuntimeConfig,
    TaskConfig,
)
from distrl_jax.models.spec import preset


def get_config() -> Config:
    """General suite on 4 simphones per actor, tiny model, 200 learner steps."""
    return Config(
        name="smoke",
        model=preset("tiny"),
        device=DeviceConfig(kind="simphone", count=4),
        tasks=TaskConfig(train="general", eval="general", eval_split="val"),
        learner=dataclasses.replace(LearnerConfig(), steps=200, batch_size=8),
        replay=dataclasses.replace(ReplayConfig(), capacity=512, min_size=16),
        runtime=RuntimeConfig(num_actors=1, broadcast_every=20),
        checkpoint=CheckpointConfig(every_steps=50, keep=2),
        eval=EvalConfig(episodes_per_task=1, max_tasks=0),
    )
