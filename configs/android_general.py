"""AitW General on real Android emulators through adb (see actors/README.md to provision them).

Run on the learner host:  python -m distrl_jax.launch --role=learner --accel=gpu --config=android_general
Run on each worker host:  python -m distrl_jax.launch --role=actor --learner=tcp://HOST:PORT \
                            --config=android_general --device.serials=emulator-5554,emulator-5556
"""

import dataclasses

from distrl_jax.config import Config, DeviceConfig, LearnerConfig, RuntimeConfig, TaskConfig
from distrl_jax.models.spec import preset


def get_config() -> Config:
    """Emulators via adb, the small model on an accelerator, more actors."""
    return Config(
        name="android_general",
        accel="gpu",
        model=preset("small"),
        device=DeviceConfig(kind="adb", serials=("emulator-5554",)),
        tasks=TaskConfig(train="general", eval="general", eval_split="val"),
        learner=dataclasses.replace(LearnerConfig(), steps=20000, batch_size=64),
        runtime=RuntimeConfig(num_actors=8, broadcast_every=50, bind_host="0.0.0.0"),
    )
