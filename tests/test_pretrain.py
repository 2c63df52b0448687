"""The behaviour-cloning warm start: demo states, DAgger-style labels, the end-to-end run, the CLI.

The end-to-end run (demos on simphone, three BC steps with the jitted sharded trainer, an Orbax
checkpoint, metrics, the greedy evaluation table) is the expensive part; it runs once per module
on a shrunk smoke config and every check of its outputs reads the same run folder.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
import pathlib
import struct

import chex
import jax
import numpy as np
import pytest
from tensorboardX.proto.event_pb2 import Event

from distrl_jax import pretrain
from distrl_jax.checkpoint.manager import Checkpointer
from distrl_jax.checkpoint.policy_loader import load_policy_state, spec_from_meta
from distrl_jax.config import Config, apply_overrides, load_preset
from distrl_jax.devices.simphone.expert import ScriptedExpert
from distrl_jax.evaluate import eval_tasks, make_env
from distrl_jax.learner.train_step import BC_FIELDS
from distrl_jax.metrics.writers import read_jsonl
from distrl_jax.models.action_codec import ActionCodec
from distrl_jax.pretrain import DemoStates, collect_demos, expert_act
from distrl_jax.tasks.goals import Task
from distrl_jax.tasks.suites import load_tasks
from distrl_jax.types import Trajectory

GAMMA = 0.9
SHRINK = (
    "pretrain.steps=3",
    "pretrain.batch_size=8",
    "pretrain.max_tasks=6",
    "pretrain.demos_per_task=1",
    "eval.max_tasks=4",
)


def small_config(run_dir: pathlib.Path, *extra: str) -> Config:
    """The smoke preset shrunk to seconds of work, writing into ``run_dir``."""
    return apply_overrides(load_preset("smoke"), [*SHRINK, f"run_dir={run_dir}", *extra])


def fake_trajectory(length: int, success: bool, marker: int) -> Trajectory:
    """A valid trajectory whose screen/context values encode (marker, t), so rows are traceable."""
    t1 = length + 1
    screens = np.zeros((t1, 4, 4, 3), np.uint8)
    context = np.zeros((t1, 5), np.int32)
    for t in range(t1):
        screens[t] = 10 * marker + t
        context[t] = 10 * marker + t
    actions = np.arange(length * 3, dtype=np.int32).reshape(length, 3) + 100 * marker
    traj = Trajectory(
        screens=screens,
        context=context,
        actions=actions,
        rewards=np.zeros(length, np.float32),
        penalties=np.zeros(length, np.float32),
        dones=np.zeros(length, np.float32),
        behaviour_logp=np.zeros(length, np.float32),
        task=f"task {marker}",
        success=success,
    )
    traj.validate()
    return traj


# ---------------------------------------------------------------- DemoStates


def test_from_trajectories_flattens_and_labels_values() -> None:
    """Targets are γ^(steps to end)·success; first marks t=0; the final screen is dropped."""
    trajs = [fake_trajectory(3, True, 1), fake_trajectory(2, False, 2), fake_trajectory(1, True, 3)]
    demos = DemoStates.from_trajectories(trajs, GAMMA)

    assert len(demos) == 3 + 2 + 1
    chex.assert_shape(demos.screens, (6, 4, 4, 3))
    chex.assert_shape(demos.context, (6, 5))
    chex.assert_shape(demos.actions, (6, 3))
    chex.assert_shape([demos.value_target, demos.first, demos.success], (6,))
    # Screens and contexts are s_0..s_{T-1} of each episode: the value (10·marker + t) never
    # reaches t = T, the state after the last action.
    want_ids = [10, 11, 12, 20, 21, 30]
    np.testing.assert_array_equal(demos.screens[:, 0, 0, 0], want_ids)
    np.testing.assert_array_equal(demos.context[:, 0], want_ids)
    np.testing.assert_array_equal(demos.actions, np.concatenate([t.actions for t in trajs]))
    np.testing.assert_allclose(demos.value_target, [GAMMA**2, GAMMA, 1.0, 0.0, 0.0, 1.0], rtol=1e-6)
    np.testing.assert_array_equal(demos.first, [1, 0, 0, 1, 0, 1])
    np.testing.assert_array_equal(demos.success, [1, 1, 1, 0, 0, 1])


def test_from_trajectories_rejects_empty() -> None:
    """No demonstrations is an error, not an empty dataset that fails later in training."""
    with pytest.raises(ValueError, match="no demonstrations"):
        DemoStates.from_trajectories([], GAMMA)


def test_batch_has_the_bc_fields() -> None:
    """A batch holds exactly the fields the BC loss reads, indexed consistently."""
    demos = DemoStates.from_trajectories([fake_trajectory(4, True, 1)], GAMMA)
    batch = demos.batch(np.array([3, 0]))
    assert set(batch) == set(BC_FIELDS)
    np.testing.assert_array_equal(batch["context"][:, 0], [13, 10])
    np.testing.assert_array_equal(batch["first"], [0, 1])


def test_save_load_round_trip(tmp_path: pathlib.Path) -> None:
    """Every array comes back equal, with its dtype."""
    demos = DemoStates.from_trajectories(
        [fake_trajectory(3, True, 1), fake_trajectory(2, False, 2)], GAMMA
    )
    path = tmp_path / "demos.npz"
    demos.save(path)
    back = DemoStates.load(path)
    for f in dataclasses.fields(DemoStates):
        a, b = getattr(demos, f.name), getattr(back, f.name)
        assert a.dtype == b.dtype, f.name
        np.testing.assert_array_equal(a, b, err_msg=f.name)


def test_load_missing_or_foreign_file_names_the_path(tmp_path: pathlib.Path) -> None:
    """Missing files, garbage bytes and an .npz without the fields are ValueErrors naming it."""
    missing = tmp_path / "nope.npz"
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"this is not a numpy archive")
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, something=np.zeros(3))
    for path in (missing, garbage, foreign):
        with pytest.raises(ValueError, match="cannot read demonstrations") as info:
            DemoStates.load(path)
        assert str(path) in str(info.value)


# ---------------------------------------------------------------- the demonstrator


@pytest.fixture(scope="module")
def cfg_smoke(tmp_path_factory: pytest.TempPathFactory) -> Config:
    """The shrunk config (its run folder is only used by the end-to-end run)."""
    return small_config(tmp_path_factory.mktemp("unused"))


@pytest.fixture(scope="module")
def train_tasks(cfg_smoke: Config) -> list[Task]:
    """The first training tasks, as ``pretrain.run`` picks them."""
    tasks = load_tasks(cfg_smoke.tasks.train, split=cfg_smoke.tasks.train_split)
    return tasks[: cfg_smoke.pretrain.max_tasks]


def test_expert_act_labels_with_the_clean_expert(cfg_smoke: Config, train_tasks: list[Task]):
    """With noise 1 the executed actions are random, but every label is the clean expert's."""
    codec = ActionCodec.from_spec(cfg_smoke.model)
    act = expert_act(1.0, seed=5, codec=codec)
    clean = ScriptedExpert(noise=0.0)
    env = make_env(cfg_smoke, seed=11)
    steps = differing = 0
    for task in train_tasks[:3]:
        obs = env.reset(task)
        while True:
            want = clean.act(task.goal, env.device)  # asked on the same state, before stepping
            (out,) = act([env], [obs])
            np.testing.assert_array_equal(out.tokens, codec.encode(want))
            assert codec.decode(out.tokens) == codec.decode(codec.encode(want))
            assert codec.decode(out.tokens).kind == want.kind
            differing += out.action != want
            steps += 1
            obs, info = env.step(out.action)
            if info.done:
                break
    assert steps >= 3
    # Noise 1 executes the random expert's choice: it must differ from the label somewhere.
    assert differing >= 1


def test_clean_demos_succeed_on_every_task(cfg_smoke: Config, train_tasks: list[Task]) -> None:
    """With noise 0 the demonstrator solves every training task; targets follow from that."""
    cfg = dataclasses.replace(
        cfg_smoke, pretrain=dataclasses.replace(cfg_smoke.pretrain, demo_noise=0.0)
    )
    demos, rate = collect_demos(cfg, train_tasks, num_envs=4, seed=0)
    assert rate == 1.0
    np.testing.assert_array_equal(demos.success, 1.0)
    assert int(demos.first.sum()) == len(train_tasks)  # one episode per task
    # Each successful episode ends with value 1 (γ^0) on its last state.
    last = np.flatnonzero(np.r_[demos.first[1:], 1.0])
    np.testing.assert_allclose(demos.value_target[last], 1.0)
    assert np.all(demos.value_target > 0) and np.all(demos.value_target <= 1)
    assert demos.screens.dtype == np.uint8 and demos.actions.dtype == np.int32
    chex.assert_equal_shape_prefix([demos.screens, demos.context, demos.actions], 1)


# ---------------------------------------------------------------- the end-to-end run


@dataclasses.dataclass
class PretrainRuns:
    """Two runs: the first generates demos, the second reads a subset of them back."""

    cfg: Config
    run_dir: pathlib.Path
    figures: dict[str, float]
    reread_dir: pathlib.Path
    reread_figures: dict[str, float]
    reread_states: int
    reread_stdout: str


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> PretrainRuns:
    """Run the warm start end to end twice (about 50 s on two cores: two train-step compiles)."""
    run_dir = tmp_path_factory.mktemp("bc")
    cfg = small_config(run_dir)
    figures = pretrain.run(cfg, run_dir, progress=False)

    # The second run reads a strict subset of the recorded demos, so its state count proves
    # that it used the file instead of generating demonstrations again.
    subset = tmp_path_factory.mktemp("subset") / "subset.npz"
    demos = DemoStates.load(run_dir / "demos.npz")
    keep = len(demos) // 2
    DemoStates(**demos.batch(np.arange(keep))).save(subset)
    reread_dir = tmp_path_factory.mktemp("bc_reread")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        reread = pretrain.run(
            small_config(reread_dir, f"pretrain.demos={subset}"), reread_dir, progress=False
        )
    return PretrainRuns(cfg, run_dir, figures, reread_dir, reread, keep, out.getvalue())


def tb_scalars(logdir: pathlib.Path) -> dict[str, list[tuple[int, float]]]:
    """{tag: [(step, value)]} from the TFRecord event files under ``logdir`` (CRCs not checked)."""
    files = sorted(logdir.glob("events.out.tfevents.*"))
    assert files, f"no event files in {logdir}"
    out: dict[str, list[tuple[int, float]]] = {}
    for f in files:
        buf, pos = f.read_bytes(), 0
        while pos < len(buf):
            (length,) = struct.unpack("<Q", buf[pos : pos + 8])
            ev = Event.FromString(buf[pos + 12 : pos + 12 + length])
            for v in ev.summary.value:
                out.setdefault(v.tag, []).append((ev.step, v.simple_value))
            pos += 16 + length
    return out


@pytest.mark.slow
def test_run_writes_demos(runs: PretrainRuns) -> None:
    """demos.npz holds the states the run trained on: one episode per training task and per
    made-up-name variant of it, times demos_per_task."""
    from distrl_jax.tasks.augment import augment

    pc = runs.cfg.pretrain
    tasks = load_tasks(runs.cfg.tasks.train, split=runs.cfg.tasks.train_split)[: pc.max_tasks]
    episodes = len(augment(tasks, pc.augment_per_task, seed=runs.cfg.seed)) * pc.demos_per_task
    demos = DemoStates.load(runs.run_dir / "demos.npz")
    assert len(demos) == runs.figures["demo_states"]
    assert int(demos.first.sum()) == episodes > pc.max_tasks
    assert 0.0 <= runs.figures["demo_success"] <= 1.0
    # The reported demonstrator success is the share of successful episodes (first states).
    assert runs.figures["demo_success"] == pytest.approx(
        float(demos.success[demos.first == 1].mean())
    )


@pytest.mark.slow
def test_run_writes_a_bc_checkpoint_with_the_spec(runs: PretrainRuns) -> None:
    """Step 0 of <run>/checkpoints is a BC checkpoint whose meta rebuilds the model spec."""
    with Checkpointer(runs.run_dir / "checkpoints", use_async=False) as ck:
        assert ck.steps() == [0]
        meta = ck.read_meta(0)
    assert meta["kind"] == "bc"
    assert meta["bc_steps"] == 3
    assert meta["config"] == runs.cfg.name
    assert spec_from_meta(meta) == runs.cfg.model
    # What evaluate and checkpoint.init_from do: the run folder alone is enough.
    spec, params, loaded_meta = load_policy_state(runs.run_dir)
    assert spec == runs.cfg.model
    assert loaded_meta["kind"] == "bc" and loaded_meta["step"] == 0
    leaves = [np.asarray(x) for x in jax.tree.leaves(params)]
    assert leaves and all(np.isfinite(x).all() for x in leaves)


@pytest.mark.slow
def test_run_writes_metrics_and_tensorboard(runs: PretrainRuns) -> None:
    """metrics.jsonl has the BC losses at the last step; tb/ holds the same scalars."""
    rows = [r for r in read_jsonl(runs.run_dir / "metrics.jsonl") if "bc/nll" in r]
    # log_every (50) exceeds steps (3): one record, at the final step, averaged over 3 steps.
    assert [r["step"] for r in rows] == [3]
    (row,) = rows
    assert math.isfinite(row["bc/nll"]) and row["bc/nll"] > 0
    assert 0.0 <= row["bc/action_accuracy"] <= 1.0
    assert row["bc/states_per_s"] > 0
    tb = tb_scalars(runs.run_dir / "tb")
    assert [s for s, _ in tb["bc/nll"]] == [3]
    assert tb["bc/nll"][0][1] == pytest.approx(row["bc/nll"], rel=1e-5)


@pytest.mark.slow
def test_run_evaluates_the_clone(runs: PretrainRuns) -> None:
    """eval/bc.md|json cover every evaluation task once; the figures agree with the table."""
    tasks = eval_tasks(runs.cfg)
    assert len(tasks) == runs.cfg.eval.max_tasks == 4
    assert runs.figures["eval_episodes"] == len(tasks)
    md = (runs.run_dir / "eval" / "bc.md").read_text()
    table = json.loads((runs.run_dir / "eval" / "bc.json").read_text())
    assert [r["task"] for r in table["tasks"]] == [t.text for t in tasks]
    assert all(r["trials"] == 1 for r in table["tasks"])
    assert table["total"]["trials"] == len(tasks)
    assert table["total"]["success_rate"] == pytest.approx(runs.figures["eval_success"])
    assert "**ALL**" in md and all(t.text in md for t in tasks)
    assert runs.figures["train_seconds"] > 0
    assert runs.figures["total_seconds"] >= runs.figures["train_seconds"]


@pytest.mark.slow
def test_second_run_reads_recorded_demos(runs: PretrainRuns) -> None:
    """With pretrain.demos set, no demos are generated: the file's states are the training set."""
    assert runs.reread_figures["demo_states"] == runs.reread_states
    assert runs.reread_states < runs.figures["demo_states"]
    assert math.isnan(runs.reread_figures["demo_success"])  # unknown for recorded demos
    assert not (runs.reread_dir / "demos.npz").exists()
    assert f"read {runs.reread_states} demonstration states from" in runs.reread_stdout
    with Checkpointer(runs.reread_dir / "checkpoints", use_async=False) as ck:
        assert ck.steps() == [0]
    assert runs.reread_figures["eval_episodes"] == runs.figures["eval_episodes"]


# ---------------------------------------------------------------- the CLI


def test_main_rejects_a_bad_override(capsys: pytest.CaptureFixture[str]) -> None:
    """A field that fails validation exits with 2 and names the field; nothing runs."""
    assert pretrain.main(["--pretrain.steps=0"]) == 2
    err = capsys.readouterr().err
    assert "config error" in err and "pretrain.steps" in err


def test_main_reports_unreadable_demos(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing demos file is a clean exit 2 naming the file, before any training."""
    missing = tmp_path / "missing.npz"
    code = pretrain.main(
        [
            f"--run-dir={tmp_path / 'run'}",
            f"--pretrain.demos={missing}",
            *(f"--{o}" for o in SHRINK),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert str(missing) in err
    assert not (tmp_path / "run" / "checkpoints").exists()
