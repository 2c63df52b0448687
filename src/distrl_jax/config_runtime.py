"""Config sections for where and how a run executes: the learner's device mesh (and multi-host
setup), its processes and channels, and its checkpoints.

Like :mod:`distrl_jax.config_sections` (whose ``field`` and checks these use), each is a typed,
frozen dataclass with a help text per field and a ``validate`` that names the field, the bad value
and what is allowed; :mod:`distrl_jax.config` re-exports them.
"""

from __future__ import annotations

import dataclasses

from distrl_jax.config_sections import _check, field


@dataclasses.dataclass(frozen=True)
class MeshConfig:
    """How the learner shards over devices (jax.sharding.Mesh with data and model axes)."""

    data: int = field(-1, "size of the data axis (-1 = all devices / model)")
    model: int = field(1, "size of the model axis")
    # Empty = the model's own rules (distrl_jax.models.policy.SHARDING_RULES).
    # Rules contain commas (``_,model``), so a list of them is separated by ';'.
    rules: tuple[str, ...] = field(
        (),
        "parameter sharding rules 'REGEX:AXES;REGEX:AXES' (first match wins; '' = the model's)",
        sep=";",
    )
    coordinator: str = field(
        "", "multi-host: coordinator HOST:PORT for jax.distributed.initialize ('' = one host)"
    )
    num_processes: int = field(1, "multi-host: number of learner processes")
    process_id: int = field(0, "multi-host: this process's index")

    def validate(self) -> None:
        _check(self.data == -1 or self.data >= 1, "mesh.data", self.data, "-1 or an integer >= 1")
        _check(self.model >= 1, "mesh.model", self.model, "an integer >= 1")
        _check(self.num_processes >= 1, "mesh.num_processes", self.num_processes, ">= 1")
        _check(
            0 <= self.process_id < self.num_processes,
            "mesh.process_id",
            self.process_id,
            f"0..num_processes-1 (= {self.num_processes - 1})",
        )
        _check(
            self.num_processes == 1 or bool(self.coordinator),
            "mesh.coordinator",
            self.coordinator,
            "HOST:PORT when num_processes > 1",
        )
        for rule in self.rules:
            _check(
                ":" in rule, "mesh.rules", rule, "'REGEX:AXES' strings, e.g. '.*/up/kernel:_,model'"
            )


@dataclasses.dataclass(frozen=True)
class RuntimeConfig:
    """Processes, channels and their rhythm (DESIGN §6)."""

    mode: str = field("async", "async | sync (the synchronous baseline)")
    num_actors: int = field(2, "actor processes started by --role=all")
    broadcast_every: int = field(25, "learner steps between parameter broadcasts")
    broadcast: str = field(
        "path", "path (actors read Orbax checkpoints) | inline (chunks on the wire)"
    )
    bind_host: str = field(
        "127.0.0.1", "interface the learner binds (non-loopback needs CURVE keys)"
    )
    keys_dir: str = field(
        "", "CURVE keys folder (python -m distrl_jax.transport.keys); '' = plaintext, loopback only"
    )
    insecure: bool = field(
        False, "allow a non-loopback bind without CURVE keys (a trusted network only; warns)"
    )
    port: int = field(0, "first of the learner's ports (0 = OS-chosen)")
    outbox: int = field(64, "actor-side bound on unsent trajectories (drop oldest beyond)")
    ingest_queue: int = field(256, "learner-side bound on received, not yet inserted trajectories")
    seconds: float = field(0.0, "stop after this many seconds (0 = run learner.steps)")
    sync_round: int = field(16, "sync mode: episodes each actor collects per round")
    sync_steps: int = field(4, "sync mode: learner steps per round")

    def validate(self) -> None:
        _check(self.mode in ("async", "sync"), "runtime.mode", self.mode, "async or sync")
        _check(self.num_actors >= 1, "runtime.num_actors", self.num_actors, "an integer >= 1")
        _check(
            not (self.insecure and self.keys_dir),
            "runtime.insecure",
            self.insecure,
            "false when runtime.keys_dir is set (keys make the sockets secure)",
        )
        _check(
            self.broadcast in ("path", "inline"),
            "runtime.broadcast",
            self.broadcast,
            "path or inline",
        )
        _check(self.broadcast_every >= 1, "runtime.broadcast_every", self.broadcast_every, ">= 1")
        _check(0 <= self.port <= 65535, "runtime.port", self.port, "0..65535")
        _check(self.outbox >= 1, "runtime.outbox", self.outbox, ">= 1")
        _check(self.ingest_queue >= 1, "runtime.ingest_queue", self.ingest_queue, ">= 1")
        _check(self.sync_round >= 1, "runtime.sync_round", self.sync_round, ">= 1")
        _check(self.sync_steps >= 1, "runtime.sync_steps", self.sync_steps, ">= 1")
        _check(self.seconds >= 0, "runtime.seconds", self.seconds, ">= 0")


@dataclasses.dataclass(frozen=True)
class CheckpointConfig:
    """Orbax checkpoints."""

    every_steps: int = field(100, "learner steps between checkpoints")
    keep: int = field(3, "checkpoints kept")
    init_from: str = field(
        "",
        "start from: '' = scratch | bc = the behaviour-cloning warm start (trained once, cached "
        "under runs/warm-starts/) | a checkpoint path",
    )
    warm_start_dir: str = field(
        "", "where init_from=bc caches warm starts ('' = warm-starts/ beside the run folder)"
    )

    def validate(self) -> None:
        _check(self.every_steps >= 1, "checkpoint.every_steps", self.every_steps, ">= 1")
        _check(self.keep >= 1, "checkpoint.keep", self.keep, ">= 1")
