"""The smoke preset: README's `make run` on two CPU cores.

Everything is shrunk (big_vision style): the tiny model, one actor of 4 simphones, 200 learner
steps, a small replay. The first run also trains the behaviour-cloning warm start (about 5-10
minutes here), which later runs reuse from runs/warm-starts/.
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
        # The behaviour-cloning warm start is trained on the first run and reused after.
        checkpoint=CheckpointConfig(every_steps=50, keep=2, init_from="bc"),
        eval=EvalConfig(episodes_per_task=1, max_tasks=0),
    )
