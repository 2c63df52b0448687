"""distrl_jax: asynchronous distributed RL for on-device control agents (DistRL, arXiv 2410.14803).

The flow, as in DESIGN §1::

    worker host(s)                                   learner host
    actor process x N                  trajectories   ingest (ZMQ) -> replay (DPER)
      device: simphone | adb | ...   -------------->   -> learner: jit on a Mesh, A-RIDE
      evaluator: reward + success     ZMQ, zero-copy   -> Orbax CheckpointManager
      policy: distilled copy (CPU)   <--------------   -> broadcast: policy version N
                                        params vN

Neither side waits for the other: actors step devices with whatever parameters they hold, the
learner trains on whatever replay holds, and every trajectory carries the policy version and the
behaviour log-probabilities that let the learner correct for the lag (Retrace / V-trace).

Packages: ``devices`` (where actions land), ``tasks`` (task strings -> goals), ``models``
(Flax NNX policy and critics), ``actor`` (episode loop), ``transport`` (wire format, channels),
``replay`` (prioritized replay), ``learner`` (A-RIDE losses, sharded train step),
``checkpoint`` (Orbax, export), ``metrics`` (console, JSONL, TensorBoard).
"""

__version__ = "0.1.0"
