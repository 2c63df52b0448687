"""A training run on one machine: the learner here, actor processes beside it, a table at the end.

``train`` is what ``python -m distrl_jax.launch`` runs (``--role=all``): it evaluates the starting
policy on the evaluation tasks, starts the learner's channels, spawns ``runtime.num_actors``
actor processes (``--role=actor --learner=<control endpoint>``, on CPU), prints progress while
the learner trains, stops the actors, and evaluates the final policy, printing both tables and
writing them into ``<run>/eval``. With ``--role=learner`` no actors are spawned: start them on
other machines with the printed command.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import logging
import os
import pathlib
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

from distrl_jax.config import Config, ConfigError, to_dict
from distrl_jax.learner.learner import initialize_distributed, install_signal_handlers
from distrl_jax.metrics.live_view import live_sink
from distrl_jax.metrics.writers import run_writer
from distrl_jax.runtime.learner_service import LearnerService

log = logging.getLogger(__name__)

PROGRESS_KEYS = (
    "loss",
    "entropy",
    "value_mean",
    "rho_mean",
    "train_success_recent",
    "trajectories",
    "actors_alive",
    "learner_steps_per_s",
)


class ActorSupervisor:
    """Starts the actor processes and restarts any that dies, with exponential backoff.

    Actors act on CPU (``JAX_PLATFORMS=cpu``): the accelerator belongs to the learner. With adb
    devices each actor drives its own share of ``device.serials`` (see :meth:`actor_commands`):
    two actors sending taps to one phone would corrupt both their episodes.
    """

    def __init__(self, cfg: Config, endpoint: str, child_argv: Sequence[str]):
        self.commands = self.actor_commands(cfg, endpoint, child_argv)  # index = actor id
        self.env = dict(os.environ, JAX_PLATFORMS="cpu")
        self.procs: dict[int, subprocess.Popen] = {}
        self._started: dict[int, float] = {}
        self.restarts = 0
        self._backoff = dict.fromkeys(range(cfg.runtime.num_actors), 1.0)
        self._stop = threading.Event()
        for i in range(cfg.runtime.num_actors):
            self._start(i)
        self._thread = threading.Thread(target=self._watch, name="actor-supervisor", daemon=True)
        self._thread.start()

    @staticmethod
    def actor_commands(cfg: Config, endpoint: str, child_argv: Sequence[str]) -> list[list[str]]:
        """The command line of each of the ``runtime.num_actors`` actor processes (index = actor
        id). With ``device.kind=adb``, actor i gets ``serials[i::num_actors]`` as a trailing
        ``--devices=adb:...``: launch applies ``--devices`` after every other override and
        argparse keeps the last one, so it wins over whatever ``child_argv`` says. Raises
        ConfigError when there are fewer serials than actors (an actor without a device)."""
        n = cfg.runtime.num_actors
        base = [
            sys.executable,
            "-m",
            "distrl_jax.launch",
            "--role=actor",
            f"--learner={endpoint}",
            *child_argv,
        ]
        if cfg.device.kind != "adb":
            return [[*base, f"--actor-id={i}"] for i in range(n)]
        serials = list(cfg.device.serials)
        if n > len(serials):
            raise ConfigError(
                f"runtime.num_actors={n} but device.serials has only {len(serials)} "
                f"({','.join(serials)}): each actor process needs adb devices of its own (two "
                f"actors must not drive one phone); set --runtime.num_actors={len(serials)} or "
                "fewer, or add serials (--devices=adb:SERIAL,SERIAL,...)"
            )
        return [
            [*base, f"--devices=adb:{','.join(serials[i::n])}", f"--actor-id={i}"] for i in range(n)
        ]

    def _start(self, i: int) -> None:
        self._started[i] = time.monotonic()
        self.procs[i] = subprocess.Popen(self.commands[i], env=self.env)

    def _watch(self) -> None:
        next_try: dict[int, float] = {}
        while not self._stop.wait(0.5):
            for i, proc in list(self.procs.items()):
                if proc.poll() is None:
                    continue
                now = time.monotonic()
                if i not in next_try:
                    if now - self._started.get(i, now) > 60.0:
                        self._backoff[i] = 1.0  # it ran fine for a while: start over
                    delay = self._backoff[i]
                    self._backoff[i] = min(delay * 2, 60.0)
                    next_try[i] = now + delay
                    log.warning(
                        "actor %d exited with %s; restarting in %.0f s", i, proc.returncode, delay
                    )
                elif now >= next_try[i]:
                    del next_try[i]
                    self.restarts += 1
                    self._start(i)

    def alive(self) -> int:
        """How many actor processes are running."""
        return sum(p.poll() is None for p in self.procs.values())

    def stop(self, timeout_s: float = 20.0) -> None:
        """SIGTERM every actor, wait, then SIGKILL what is left (never leave one behind)."""
        self._stop.set()
        self._thread.join(timeout=5)
        procs = list(self.procs.values())
        for p in procs:
            if p.poll() is None:
                p.terminate()
        deadline = time.monotonic() + timeout_s
        for p in procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def evaluate_params(
    cfg: Config, params, version: int, run_dir: pathlib.Path, name: str, *, quiet: bool = False
):
    """Greedy evaluation of ``params`` on the config's evaluation tasks; prints the table
    (unless ``quiet``) and writes it to ``<run>/eval/<name>.md|json``; returns the suite row."""
    from distrl_jax.evaluate import eval_tasks, evaluate_policy, report
    from distrl_jax.metrics.eval_table import build_table, write_table
    from distrl_jax.models.jax_policy import JaxPolicy

    tasks = eval_tasks(cfg)
    # Evaluation measures the policy, not the fleet: no latency model and no injected faults.
    cfg = dataclasses.replace(
        cfg,
        device=dataclasses.replace(cfg.device, latency="none", hang_prob=0.0, offline_prob=0.0),
    )
    policy = JaxPolicy(cfg.model, params, version=version, seed=cfg.seed, greedy=cfg.eval.greedy)
    t0 = time.perf_counter()
    records = evaluate_policy(
        cfg, policy, tasks, episodes_per_task=cfg.eval.episodes_per_task, seed=cfg.seed + 1
    )
    if quiet:
        rows, total = build_table(records)
        write_table(rows, total, run_dir / "eval", name)
        return total
    return report(records, run_dir / "eval", name, time.perf_counter() - t0)


def warm_start_path(cfg: Config, run_dir: pathlib.Path) -> pathlib.Path:
    """Where ``checkpoint.init_from=bc`` keeps its behaviour-cloning warm start: one folder per
    (model, tasks, pretrain settings), beside the run folders, reused by later runs."""
    from distrl_jax.pretrain import DEMO_RECIPE
    from distrl_jax.run_folder import inside

    key = json.dumps(
        [
            DEMO_RECIPE,  # a change in how demonstrations are made invalidates old warm starts
            to_dict(cfg.model),
            to_dict(cfg.pretrain),
            cfg.tasks.train,
            cfg.tasks.train_split,
            cfg.seed,
        ],
        sort_keys=True,
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:10]
    root = pathlib.Path(cfg.checkpoint.warm_start_dir or run_dir.parent / "warm-starts")
    folder = f"bc-{cfg.model.name}-{digest}"
    if pathlib.PurePath(folder).name != folder:  # model.name is validated; a built Config is not
        raise ValueError(f"model.name {cfg.model.name!r} is not a single folder name")
    return inside(root, folder)  # resolved; refuses a folder that escapes the root


def resolve_init(cfg: Config, run_dir: pathlib.Path) -> Config:
    """Turn ``checkpoint.init_from=bc`` into a path, training the warm start first if needed;
    with distilled actors also ``distill.init_from=bc`` (:func:`resolve_student_init`)."""
    if cfg.checkpoint.init_from == "bc":
        folder = _bc_warm_start(cfg, run_dir)
        checkpoints = str(folder / "checkpoints")
        cfg = dataclasses.replace(
            cfg, checkpoint=dataclasses.replace(cfg.checkpoint, init_from=checkpoints)
        )
    return resolve_student_init(cfg, run_dir)


def resolve_student_init(cfg: Config, run_dir: pathlib.Path) -> Config:
    """``distill.init_from=bc``: the student's own behaviour-cloning warm start, trained once on
    the demonstrations of the learner's warm start (the ``demos.npz`` in the run folder that
    ``checkpoint.init_from`` points into) and reused. A learner that does not start from such a
    warm start has a student from scratch (said once); so does a run without distilled actors."""
    if cfg.distill.init_from != "bc":
        return cfg
    scratch = dataclasses.replace(cfg, distill=dataclasses.replace(cfg.distill, init_from=""))
    if cfg.actor.policy != "distilled":
        return scratch
    demos = next(
        (
            folder / "demos.npz"
            for folder in _parents(cfg.checkpoint.init_from)
            if (folder / "demos.npz").is_file()
        ),
        None,
    )
    if demos is None:
        print(
            "the student starts from scratch: checkpoint.init_from is not a behaviour-cloning "
            "warm start with its demos.npz (give distill.init_from a student checkpoint instead)"
        )
        return scratch
    from distrl_jax.models.spec import preset

    demos = demos.resolve()  # one key for the same file however it was named
    student_cfg = dataclasses.replace(
        cfg,
        model=preset(cfg.distill.student),
        pretrain=dataclasses.replace(cfg.pretrain, demos=str(demos)),
        # Beside the learner's warm start, wherever the run folder is.
        checkpoint=dataclasses.replace(
            cfg.checkpoint,
            warm_start_dir=cfg.checkpoint.warm_start_dir or str(demos.parent.parent),
        ),
    )
    folder = _bc_warm_start(student_cfg, run_dir, " for the student")
    return dataclasses.replace(
        cfg, distill=dataclasses.replace(cfg.distill, init_from=str(folder / "checkpoints"))
    )


def _parents(init_from: str) -> list[pathlib.Path]:
    """A checkpoint path's own folder and the two above it (run, checkpoints/, checkpoints/N)."""
    if not init_from:
        return []
    path = pathlib.Path(init_from)
    return [path, path.parent, path.parent.parent]


def _bc_warm_start(cfg: Config, run_dir: pathlib.Path, whom: str = "") -> pathlib.Path:
    """The folder of ``cfg``'s behaviour-cloning warm start, trained first if missing."""
    folder = warm_start_path(cfg, run_dir)
    folder.parent.mkdir(parents=True, exist_ok=True)
    # Runs started together (a sweep) train the warm start once: the others wait for it.
    with open(folder.parent / f".{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / "checkpoints" / "0").is_dir():
            from distrl_jax import pretrain
            from distrl_jax.run_folder import create_run_folder

            print(f"no behaviour-cloning warm start{whom} yet: training one into {folder} (once)")
            bc_cfg = dataclasses.replace(cfg, run_dir=str(folder), name=f"{cfg.name}-bc")
            pretrain.run(bc_cfg, create_run_folder(bc_cfg))
        else:
            print(f"warm start{whom}: {folder} (behaviour cloning, reused)")
    return folder


def warn_untypeable(cfg: Config) -> int:
    """Print a warning when evaluation tasks ask for a query longer than the model can type
    (``model.action_len``); returns how many do."""
    from distrl_jax.evaluate import eval_tasks, untypeable

    tasks = eval_tasks(cfg)
    bad = untypeable(tasks, cfg.model.action_len)
    if bad:
        print(
            f"warning: {len(bad)} of {len(tasks)} evaluation tasks search for more than "
            f"{cfg.model.action_len - 2} characters, which no policy with model.action_len="
            f"{cfg.model.action_len} can type (e.g. {bad[0].text!r}); raise --model.action_len"
        )
    return len(bad)


def train(
    cfg: Config, run_dir: pathlib.Path, *, spawn_actors: bool = True, child_argv: Sequence[str] = ()
) -> int:
    """Run the learner (and, on one machine, the actors); returns the exit status."""
    initialize_distributed(cfg)
    cfg = resolve_init(cfg, run_dir)
    writer = run_writer(run_dir, console_keys=())
    writer.sinks.append(live_sink(PROGRESS_KEYS))
    service = LearnerService(cfg, run_dir, writer)
    install_signal_handlers(service.learner)
    print(f"learner: {service.learner.start_kind}; control endpoint {service.endpoint}")
    if service.learner.student is not None:
        print(f"student (the actors' policy): {service.learner.student.start_kind}")
    warn_untypeable(cfg)
    before = evaluate_params(cfg, service.learner.params, service.learner.version, run_dir, "start")
    supervisor = None
    if spawn_actors:
        supervisor = ActorSupervisor(cfg, service.endpoint, child_argv)
        service.extra_metrics = lambda: {"actor_restarts": float(supervisor.restarts)}
        print(
            f"started {len(supervisor.procs)} actor processes x {cfg.device.count} {cfg.device.kind}"
        )
    else:
        print(
            "start actors elsewhere with: python -m distrl_jax.launch --role=actor "
            f"--learner={service.endpoint} --actor-id=N (same --config and overrides)"
        )
    t0 = time.monotonic()
    try:
        service.run()
    finally:
        if supervisor is not None:
            supervisor.stop()
        service.close()
        writer.close()
    seconds = time.monotonic() - t0
    print(
        f"trained {service.learner.version} steps on {service.inserted} trajectories in "
        f"{seconds:.0f} s; checkpoints: {service.learner.checkpoints.directory}"
    )
    for actor, versions in service.versions_by_actor().items():
        shown = f"{versions[:4]} ... {versions[-4:]}" if len(versions) > 10 else f"{versions}"
        print(f"trajectories from actor {actor} were played with policy versions {shown}")
    after = evaluate_params(cfg, service.learner.params, service.learner.version, run_dir, "final")
    print(
        f"\nsuccess on {cfg.tasks.eval}:{cfg.tasks.eval_split}: start {before.success_rate:.1%} "
        f"-> final {after.success_rate:.1%} ({after.success_rate - before.success_rate:+.1%})"
    )
    return 0
