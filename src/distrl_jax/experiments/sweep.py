"""Run several configs — variants x seeds — as ``python -m distrl_jax.launch`` processes, a few at
a time within the machine's cores.

Each run gets ``<out_dir>/<variant>/seed-<s>`` as its run folder, with the launch's stdout and
stderr in ``launch.log`` there. All runs share one JAX compilation cache (``<out_dir>/.jax-cache``)
so that later runs skip most of the compiling. Runs that start from the behaviour-cloning warm
start (``checkpoint.init_from=bc``) get it trained once per seed *before* the sweep (with
``python -m distrl_jax.pretrain``, into the shared ``warm-starts/`` folder beside ``out_dir``), so
parallel runs never train the same warm start at once.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence

from distrl_jax.config import Config, ConfigError, apply_overrides, load_preset

LAUNCH = (sys.executable, "-m", "distrl_jax.launch")
PRETRAIN = (sys.executable, "-m", "distrl_jax.pretrain")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


@dataclasses.dataclass(frozen=True)
class Variant:
    """One arm of an ablation: a name (its folder) and ``section.field=value`` overrides."""

    name: str
    overrides: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(
                f"variant name {self.name!r} must be a folder name: letters, digits, '.', '_', "
                "'+', '-' (and not start with a punctuation mark)"
            )
        if isinstance(self.overrides, str):
            raise TypeError(f"Variant {self.name!r}: overrides must be a tuple of strings")
        object.__setattr__(self, "overrides", tuple(self.overrides))
        for o in self.overrides:
            if "=" not in o:
                raise ValueError(f"Variant {self.name!r}: override {o!r} is not field=value")


# The paper's ablations (DistRL §5): each changes one component of full A-RIDE.
ABLATIONS: tuple[Variant, ...] = (
    Variant("A-RIDE"),
    Variant("no-retrace", ("learner.off_policy_correction=false",)),
    Variant("uniform-replay", ("replay.sampling=uniform",)),
    Variant("no-entropy", ("learner.entropy_coef=0",)),
    Variant("digirl-async", ("learner.algo=digirl",)),
    Variant("sync", ("runtime.mode=sync",)),
)
# Included by ablation_variants() only where the config has the field.
DISTILLED_ACTOR = Variant("distilled-actor", ("actor.policy=distilled",))

# A few learner steps from scratch: enough for a curve of 3 points per run, in about half a
# minute per run on two CPU cores once the compilation cache is warm (CI, tests).
TINY_BUDGET: tuple[str, ...] = (
    "learner.steps=4",
    "learner.batch_size=4",
    "replay.min_size=4",
    "checkpoint.init_from=",
    "eval.max_tasks=4",
    "eval.every_steps=2",
    "device.count=2",
    "runtime.num_actors=1",
)
# What a two-core CPU host fits in about 80 minutes for 7 variants x 2 seeds (2 runs at a time):
# 8 minutes of the smoke preset (1 actor of 4 simphones, batch 8) from the behaviour-cloning
# warm start, evaluated on the 71 held-out tasks every 100 learner steps.
SHORT_BUDGET: tuple[str, ...] = (
    "checkpoint.init_from=bc",
    "learner.steps=0",
    "runtime.seconds=480",
    "eval.every_steps=100",
)
# The paper-sized budget: 30 minutes of training from the behaviour-cloning warm start.
FULL_BUDGET: tuple[str, ...] = (
    "checkpoint.init_from=bc",
    "learner.steps=0",
    "runtime.seconds=1800",
    "eval.every_steps=150",
)


@dataclasses.dataclass(frozen=True)
class Budget:
    """A named sweep size: the base config, the seeds and the overrides every run gets."""

    name: str
    base_config: str
    seeds: tuple[int, ...]
    overrides: tuple[str, ...]


BUDGETS: dict[str, Budget] = {
    "tiny": Budget("tiny", "smoke", (0,), TINY_BUDGET),  # checks the pipeline; numbers mean nothing
    "short": Budget("short", "smoke", (0, 1), SHORT_BUDGET),  # about 80 min on two cores
    "full": Budget("full", "simphone_general", (0, 1, 2), FULL_BUDGET),  # about 10 h on two cores
}


def budget(name: str) -> Budget:
    """The named :data:`BUDGETS` entry; an unknown name is a ValueError listing the known ones."""
    try:
        return BUDGETS[name]
    except KeyError:
        raise ValueError(f"budget {name!r} is not one of {', '.join(BUDGETS)}") from None


@dataclasses.dataclass(frozen=True)
class RunStatus:
    """What became of one run (``exit_code`` 0 = it finished; ``skipped``: already done)."""

    variant: str
    seed: int
    path: pathlib.Path
    log: pathlib.Path
    exit_code: int
    seconds: float
    started: float  # time.monotonic() at start (the sweep's clock)
    skipped: bool = False


class SweepError(RuntimeError):
    """Some runs failed; ``.results`` holds every run's status, ``.failed`` the failed ones."""

    def __init__(self, results: list[RunStatus]):
        self.results = results
        self.failed = [r for r in results if r.exit_code != 0]
        lines = [
            f"  {r.variant} seed {r.seed}: exit code {r.exit_code}; log: {r.log}"
            for r in self.failed
        ]
        super().__init__(
            f"{len(self.failed)} of {len(results)} runs failed (read the end of each log):\n"
            + "\n".join(lines)
        )


def resolve_config(base_config: str, overrides: Iterable[str]) -> Config:
    """The validated config a launch with these overrides would run (raises ConfigError)."""
    return apply_overrides(load_preset(base_config), list(overrides))


def variant_supported(variant: Variant, base_config: str = "smoke") -> bool:
    """Whether the config accepts every override of ``variant`` (fields exist, values valid)."""
    try:
        resolve_config(base_config, variant.overrides)
    except ConfigError:
        return False
    return True


def ablation_variants(base_config: str = "smoke") -> list[Variant]:
    """:data:`ABLATIONS`, plus :data:`DISTILLED_ACTOR` when the config has ``actor.policy``."""
    extra = [DISTILLED_ACTOR] if variant_supported(DISTILLED_ACTOR, base_config) else []
    return [*ABLATIONS, *extra]


def _cli(overrides: Iterable[str]) -> list[str]:
    # ``--set`` takes top-level fields (``seed=1``) as well as dotted ones.
    return [a for o in overrides for a in ("--set", o)]


@dataclasses.dataclass
class _Job:
    variant: str
    seed: int
    path: pathlib.Path
    argv: list[str]
    log: pathlib.Path
    proc: subprocess.Popen | None = None
    started: float = 0.0
    log_file: object = None


def _start(job: _Job, env: Mapping[str, str]) -> None:
    job.path.mkdir(parents=True, exist_ok=True)
    job.log_file = job.log.open("w")
    job.started = time.monotonic()
    # A session of its own, so a timeout or an interrupt stops the launch *and* its actors.
    job.proc = subprocess.Popen(
        job.argv,
        stdout=job.log_file,
        stderr=subprocess.STDOUT,
        env=dict(env),
        start_new_session=True,
    )


def _stop(proc: subprocess.Popen, grace_s: float = 30.0) -> None:
    """SIGTERM the process group (the learner stops its actors), then SIGKILL what is left."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def _run_pool(
    jobs: list[_Job], parallel: int, env: Mapping[str, str], timeout_s: float | None, quiet: bool
) -> list[RunStatus]:
    pending, running, done = list(jobs), [], []
    try:
        while pending or running:
            while pending and len(running) < parallel:
                job = pending.pop(0)
                _start(job, env)
                running.append(job)
            time.sleep(0.05)
            for job in list(running):
                code = job.proc.poll()
                if code is None and timeout_s and time.monotonic() - job.started > timeout_s:
                    _stop(job.proc)
                    code = job.proc.wait()
                if code is None:
                    continue
                running.remove(job)
                job.log_file.close()
                status = RunStatus(
                    job.variant,
                    job.seed,
                    job.path,
                    job.log,
                    code,
                    time.monotonic() - job.started,
                    job.started,
                )
                done.append(status)
                if not quiet:
                    outcome = "ok" if code == 0 else f"FAILED (exit {code}; log {job.log})"
                    print(f"{job.variant} seed {job.seed}: {outcome} in {status.seconds:.0f} s")
    finally:  # an interrupt (a notebook's stop button) must not leave runs behind
        for job in running:
            _stop(job.proc, grace_s=10.0)
            job.log_file.close()
    return done


def _warm_start_jobs(
    configs: Mapping[tuple[str, int], Config],
    base_config: str,
    overrides_for: Mapping[tuple[str, int], list[str]],
    out_dir: pathlib.Path,
    pretrain: Sequence[str],
) -> tuple[list[_Job], dict[tuple[str, int], str]]:
    """Pretrain jobs for the missing warm starts, and each bc run's ``init_from`` override."""
    from distrl_jax.runtime.training import warm_start_path

    jobs: dict[pathlib.Path, _Job] = {}
    init: dict[tuple[str, int], str] = {}
    for key, cfg in configs.items():
        if cfg.checkpoint.init_from != "bc":
            continue
        folder = warm_start_path(cfg, out_dir).resolve()  # <out_dir's parent>/warm-starts/...
        init[key] = f"checkpoint.init_from={folder / 'checkpoints'}"
        if (folder / "checkpoints" / "0").is_dir() or folder in jobs:
            continue
        if folder.exists():  # a warm start that did not finish: nothing in it is usable
            shutil.rmtree(folder)
        argv = [*pretrain, f"--config={base_config}", *_cli(overrides_for[key])]
        argv.append(f"--run-dir={folder}")
        jobs[folder] = _Job("warm-start", key[1], folder, argv, folder / "pretrain.log")
    return list(jobs.values()), init


def run_variants(
    variants: Sequence[Variant],
    seeds: Sequence[int],
    base_config: str = "smoke",
    budget_overrides: Sequence[str] = TINY_BUDGET,
    out_dir: str | pathlib.Path = "runs/sweep",
    parallel: int | None = None,
    *,
    rerun: bool = False,
    timeout_s: float | None = None,
    env: Mapping[str, str] | None = None,
    launcher: Sequence[str] = LAUNCH,
    pretrainer: Sequence[str] = PRETRAIN,
    quiet: bool = False,
) -> list[RunStatus]:
    """Launch every variant x seed, ``parallel`` at a time; returns each run's status.

    Overrides apply in order: ``budget_overrides``, the variant's, then ``seed=<s>``. A run whose
    folder already holds ``eval/final.json`` is not launched again (``skipped``) unless
    ``rerun``; an unfinished folder is cleared and run again (resuming would mix two runs in one
    ``metrics.jsonl``). Every config is validated before anything starts. ``parallel`` defaults
    to half the cores (a run is a learner plus its actor processes). Runs use the CPU
    (``JAX_PLATFORMS=cpu``; ``env`` may change it) and share ``$JAX_COMPILATION_CACHE_DIR``,
    by default ``<out_dir>/.jax-cache``. Raises :class:`SweepError`
    naming the failed runs' log files after all runs have ended. ``launcher``/``pretrainer``
    are the commands run with the launch arguments (tests put a stand-in there).
    """
    if not variants or not seeds:
        raise ValueError("run_variants needs at least one variant and one seed")
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise ValueError(f"variant names must be unique (they name folders): {names}")
    parallel = parallel or max(1, (os.cpu_count() or 2) // 2)
    if parallel < 1:
        raise ValueError(f"parallel={parallel}: need at least one run at a time")
    out = pathlib.Path(out_dir).resolve()
    overrides_for: dict[tuple[str, int], list[str]] = {}
    configs: dict[tuple[str, int], Config] = {}
    for v in variants:
        for s in map(int, seeds):
            ov = [*budget_overrides, *v.overrides, f"seed={s}"]
            try:
                configs[v.name, s] = resolve_config(base_config, ov)
            except ConfigError as e:
                raise ConfigError(f"variant {v.name!r}, seed {s}: {e}") from e
            overrides_for[v.name, s] = ov

    run_env = dict(os.environ)
    run_env["JAX_PLATFORMS"] = "cpu"
    # A cache named by the caller's environment is shared with other sweeps; else one per sweep.
    run_env.setdefault("JAX_COMPILATION_CACHE_DIR", str(out / ".jax-cache"))
    run_env.update(env or {})
    run_env["PYTHONUNBUFFERED"] = "1"  # logs show progress as it happens
    out.mkdir(parents=True, exist_ok=True)

    warm_jobs, init = _warm_start_jobs(configs, base_config, overrides_for, out, pretrainer)
    if warm_jobs:
        if not quiet:
            print(f"training {len(warm_jobs)} behaviour-cloning warm start(s) first")
        warm = _run_pool(warm_jobs, parallel, run_env, timeout_s, quiet)
        if any(r.exit_code != 0 for r in warm):
            raise SweepError(warm)

    results: list[RunStatus] = []
    jobs: list[_Job] = []
    for (name, seed), ov in overrides_for.items():
        path = out / name / f"seed-{seed}"
        log = path / "launch.log"
        if (path / "eval" / "final.json").is_file() and not rerun:
            results.append(RunStatus(name, seed, path, log, 0, 0.0, 0.0, skipped=True))
            continue
        if path.exists():
            shutil.rmtree(path)
        ov = ov + ([init[name, seed]] if (name, seed) in init else [])
        argv = [*launcher, f"--config={base_config}", *_cli(ov), f"--run-dir={path}"]
        jobs.append(_Job(name, seed, path, argv, log))
    if not quiet and results:
        print(f"{len(results)} run(s) already finished: reused (rerun=True runs them again)")
    results += _run_pool(jobs, parallel, run_env, timeout_s, quiet)
    order = {key: i for i, key in enumerate(overrides_for)}
    results.sort(key=lambda r: order[r.variant, r.seed])
    if any(r.exit_code != 0 for r in results):
        raise SweepError(results)
    return results
