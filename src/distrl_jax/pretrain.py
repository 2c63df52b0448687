"""``python -m distrl_jax.pretrain``: the behaviour-cloning warm start that RL starts from.

DistRL (like DigiRL) fine-tunes a policy that already acts sensibly (AutoUI, trained on Android
in the Wild demonstrations). Here the demonstrations come from simphone's scripted expert:

1. Demonstrations: the expert plays the training tasks (plus variants with made-up names,
   ``tasks.augment``, so the clone learns to copy names it has never seen) with probability
   ``pretrain.demo_noise``
   of a random action, so the states include mistakes and recoveries; every visited state is
   labelled with the *clean* expert's action (DAgger-style relabelling), so the clone learns to
   recover instead of copying the noise. Recorded demos can be saved and read back (``.npz``).
2. Training: negative log-likelihood of the labels plus a Monte Carlo warm start of both critics,
   on random minibatches of states, with the learner's jitted sharded step and optax.
3. Output: an Orbax checkpoint in ``<run>/checkpoints`` (its meta records the model spec, so
   ``evaluate --checkpoint`` and ``checkpoint.init_from`` need nothing else), loss curves in
   ``metrics.jsonl`` and TensorBoard, and the greedy policy's table on the evaluation split.
"""

from __future__ import annotations

import dataclasses
import logging
import pathlib
import sys
import time
from collections.abc import Sequence

import numpy as np

from distrl_jax.actor.rollout import BatchActFn, VectorRollout
from distrl_jax.config import Config
from distrl_jax.core import Observation, PolicyOutput
from distrl_jax.devices.simphone.expert import ScriptedExpert
from distrl_jax.devices.task_env import TaskEnv
from distrl_jax.models.action_codec import ActionCodec
from distrl_jax.models.tokenizer import ContextEncoder
from distrl_jax.tasks.augment import augment
from distrl_jax.tasks.goals import Task
from distrl_jax.tasks.suites import load_tasks
from distrl_jax.types import Trajectory

log = logging.getLogger(__name__)

# Bump when the demonstrations change for the same settings (expert, augmentation, relabelling):
# cached warm starts (runtime/training.warm_start_path) are keyed on it. 2: search words varied.
DEMO_RECIPE = 2


@dataclasses.dataclass
class DemoStates:
    """Demonstration states, flat over episodes: what one BC batch samples from."""

    screens: np.ndarray  # [N, H, W, 3] uint8
    context: np.ndarray  # [N, Lc] int32
    actions: np.ndarray  # [N, La] int32: the clean expert's label
    value_target: np.ndarray  # [N] float32: γ^(steps to success) · success of the demo
    first: np.ndarray  # [N] float32: 1 on an episode's first state
    success: np.ndarray  # [N] float32: whether the demo episode succeeded

    def __len__(self) -> int:
        return int(self.actions.shape[0])

    @classmethod
    def from_trajectories(cls, trajs: Sequence[Trajectory], gamma: float) -> DemoStates:
        """Flatten demo trajectories (their last screen, after the last action, is dropped)."""
        if not trajs:
            raise ValueError("no demonstrations to learn from")
        parts: dict[str, list[np.ndarray]] = {f.name: [] for f in dataclasses.fields(cls)}
        for tr in trajs:
            t = tr.length
            steps_to_end = np.arange(t - 1, -1, -1, dtype=np.float32)
            parts["screens"].append(tr.screens[:-1])
            parts["context"].append(tr.context[:-1])
            parts["actions"].append(tr.actions)
            parts["value_target"].append(float(tr.success) * gamma**steps_to_end)
            parts["first"].append((np.arange(t) == 0).astype(np.float32))
            parts["success"].append(np.full(t, float(tr.success), np.float32))
        return cls(**{k: np.concatenate(v) for k, v in parts.items()})

    def save(self, path: str | pathlib.Path) -> None:
        """Write a compressed ``.npz`` (no pickle)."""
        np.savez_compressed(path, **dataclasses.asdict(self))

    @classmethod
    def load(cls, path: str | pathlib.Path) -> DemoStates:
        """Read demos written by :meth:`save`; a missing or foreign file is a clear error."""
        try:
            with np.load(path, allow_pickle=False) as f:
                return cls(**{fld.name: f[fld.name] for fld in dataclasses.fields(cls)})
        except (OSError, KeyError, ValueError) as e:
            raise ValueError(f"cannot read demonstrations from {str(path)!r}: {e}") from None

    def batch(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        """The states at ``idx`` as a BC batch."""
        return {f.name: getattr(self, f.name)[idx] for f in dataclasses.fields(self)}


def expert_act(noise: float, seed: int, codec: ActionCodec) -> BatchActFn:
    """The demonstrator: executes a noisy expert's action, labels the state with the clean one."""
    clean = ScriptedExpert(noise=0.0, seed=seed)
    random_expert = ScriptedExpert(noise=1.0, seed=seed + 1)  # a random action (COMPLETE when done)
    rng = np.random.default_rng(seed)

    def act(envs: Sequence[TaskEnv], observations: Sequence[Observation]) -> list[PolicyOutput]:
        out = []
        for env in envs:
            assert env.task is not None
            label = clean.act(env.task.goal, env.device)
            take = random_expert.act(env.task.goal, env.device) if rng.random() < noise else label
            out.append(PolicyOutput(take, codec.encode(label), 0.0))
        return out

    return act


def collect_demos(
    cfg: Config, tasks: Sequence[Task], *, num_envs: int = 16, seed: int = 0
) -> tuple[DemoStates, float]:
    """Play every task ``pretrain.demos_per_task`` times; returns (states, demo success rate)."""
    from distrl_jax.evaluate import make_envs

    spec = cfg.model
    todo = [t for t in tasks for _ in range(cfg.pretrain.demos_per_task)]
    envs = make_envs(cfg, min(num_envs, len(todo)), seed + 7)
    rollout = VectorRollout(
        envs,
        expert_act(cfg.pretrain.demo_noise, seed, ActionCodec.from_spec(spec)),
        contexts=ContextEncoder(spec),
        record=True,
    )
    try:
        trajs = [r.trajectory for r in rollout.run(todo) if r.trajectory is not None]
    finally:
        rollout.close()
    rate = float(np.mean([t.success for t in trajs])) if trajs else 0.0
    return DemoStates.from_trajectories(trajs, cfg.learner.gamma), rate


def train_bc(cfg: Config, demos: DemoStates, run_dir: pathlib.Path, *, progress: bool = True):
    """Train the warm start; returns the trainer (its state holds the cloned parameters)."""
    import rich.progress

    from distrl_jax.learner import sharding
    from distrl_jax.learner.train_step import BC_FIELDS, ShardedTrainer, bc_loss, make_optimizer
    from distrl_jax.metrics.writers import run_writer

    pc = cfg.pretrain
    mesh = sharding.make_mesh(cfg.mesh.data, cfg.mesh.model)
    trainer = ShardedTrainer.create(
        cfg.model,
        lambda g: bc_loss(g, pc.critic_coef),
        make_optimizer(pc.lr, cfg.learner.grad_clip, decay_steps=pc.steps),
        mesh,
        rules=cfg.mesh.rules,
        seed=cfg.seed,
        fields=BC_FIELDS,
    )
    rng = np.random.default_rng(cfg.seed)
    # A terminal shows the progress bar; a log file gets plain lines instead.
    plain = () if sys.stdout.isatty() else ("bc/nll", "bc/action_accuracy", "bc/states_per_s")
    writer = run_writer(run_dir, console_keys=plain, console_every_s=15.0)
    sums: dict[str, float] = {}
    t0 = time.perf_counter()
    columns = (
        *rich.progress.Progress.get_default_columns(),
        rich.progress.TextColumn("{task.fields[info]}"),
    )
    with rich.progress.Progress(*columns, disable=not progress, transient=False) as bar:
        task = bar.add_task("behaviour cloning", total=pc.steps, info="")
        for step in range(1, pc.steps + 1):
            idx = rng.integers(0, len(demos), pc.batch_size)
            metrics, _ = trainer.step(demos.batch(idx))
            for k, v in metrics.items():
                sums[k] = sums.get(k, 0.0) + v
            if step % pc.log_every == 0 or step == pc.steps:
                n = pc.log_every if step % pc.log_every == 0 else step % pc.log_every
                mean = {f"bc/{k}": v / n for k, v in sums.items()}
                mean["bc/states_per_s"] = step * pc.batch_size / (time.perf_counter() - t0)
                writer.write(step, mean)
                sums.clear()
                info = f"nll {mean['bc/nll']:.3f}  acc {mean['bc/action_accuracy']:.1%}"
                bar.update(task, info=info)
            bar.advance(task)
    writer.close()
    return trainer


def save_warm_start(cfg: Config, trainer, run_dir: pathlib.Path, extra: dict) -> pathlib.Path:
    """Write the parameters (no optimizer: RL starts its own) as step 0 of ``<run>/checkpoints``."""
    from distrl_jax.checkpoint.manager import Checkpointer
    from distrl_jax.checkpoint.policy_loader import spec_meta

    meta = {"kind": "bc", "model": spec_meta(cfg.model), "config": cfg.name, **extra}
    with Checkpointer(run_dir / "checkpoints", keep=cfg.checkpoint.keep, use_async=False) as ck:
        ck.save(0, trainer.state.params, meta, force=True)
        return ck.path(0)


def run(cfg: Config, run_dir: pathlib.Path, *, progress: bool = True) -> dict[str, float]:
    """The whole warm start: demos, training, checkpoint, evaluation. Returns headline figures."""
    from distrl_jax.evaluate import eval_tasks, evaluate_policy, report
    from distrl_jax.models.jax_policy import JaxPolicy

    pc = cfg.pretrain
    t0 = time.perf_counter()
    if pc.demos:
        demos, demo_rate = DemoStates.load(pc.demos), float("nan")
        print(f"read {len(demos)} demonstration states from {pc.demos}")
    else:
        tasks = load_tasks(
            cfg.tasks.train, split=cfg.tasks.train_split, horizon=cfg.tasks.horizon or None
        )
        tasks = tasks[: pc.max_tasks] if pc.max_tasks else tasks
        tasks = augment(tasks, pc.augment_per_task, seed=cfg.seed)
        demos, demo_rate = collect_demos(cfg, tasks, seed=cfg.seed)
        demos.save(run_dir / "demos.npz")
        print(
            f"demonstrations: {len(tasks)} tasks (with made-up-name variants) x "
            f"{pc.demos_per_task}, noise {pc.demo_noise}: "
            f"{len(demos)} states, demonstrator success {demo_rate:.1%} "
            f"({time.perf_counter() - t0:.1f} s) -> {run_dir / 'demos.npz'}"
        )
    t1 = time.perf_counter()
    trainer = train_bc(cfg, demos, run_dir, progress=progress)
    train_s = time.perf_counter() - t1
    path = save_warm_start(cfg, trainer, run_dir, {"bc_steps": pc.steps, "train_seconds": train_s})
    print(f"trained {pc.steps} steps in {train_s:.1f} s; checkpoint: {path}")

    t2 = time.perf_counter()
    policy = JaxPolicy(cfg.model, trainer.state.params, seed=cfg.seed, greedy=cfg.eval.greedy)
    tasks = eval_tasks(cfg)
    records = evaluate_policy(
        cfg, policy, tasks, episodes_per_task=cfg.eval.episodes_per_task, seed=cfg.seed + 1
    )
    total = report(records, run_dir / "eval", "bc", time.perf_counter() - t2)
    return {
        "demo_success": demo_rate,
        "demo_states": float(len(demos)),
        "train_seconds": train_s,
        "eval_success": total.success_rate,
        "eval_episodes": float(total.trials),
        "total_seconds": time.perf_counter() - t0,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: the same flags and ``--section.field=value`` overrides as ``launch``."""
    from distrl_jax.launch import prepare
    from distrl_jax.run_folder import create_run_folder

    prepared = prepare(list(sys.argv[1:] if argv is None else argv))
    if isinstance(prepared, int):
        return prepared
    _, cfg, platform = prepared
    if cfg.pretrain.demos and not pathlib.Path(cfg.pretrain.demos).is_file():
        print(f"error: pretrain.demos={cfg.pretrain.demos!r} is not a file", file=sys.stderr)
        return 2
    if not cfg.run_dir:
        cfg = dataclasses.replace(cfg, name=f"{cfg.name}-bc")
    run_dir = create_run_folder(cfg)
    print(f"run folder: {run_dir}  (platform: {platform}, preset: {cfg.name})")
    try:
        figures = run(cfg, run_dir)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(" ".join(f"{k}={v:.4g}" for k, v in figures.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
