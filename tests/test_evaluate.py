"""``python -m distrl_jax.evaluate``: checkpoint paths, task files, tables, bad input, batching.

A real Orbax checkpoint of the tiny model (initial parameters, meta with the model spec, as the
BC warm start writes it) is saved once per module under ``<run>/checkpoints/7``; the CLI is run
on it with a three-line AitW-style task file, through each of the three path forms it accepts.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import pathlib

import jax
import numpy as np
import pytest
from flax import nnx

from distrl_jax import evaluate
from distrl_jax.checkpoint.manager import Checkpointer, CheckpointError
from distrl_jax.checkpoint.policy_loader import (
    load_policy_state,
    resolve,
    spec_from_meta,
    spec_meta,
)
from distrl_jax.config import Config
from distrl_jax.models import policy as P
from distrl_jax.models.jax_policy import JaxPolicy
from distrl_jax.models.spec import tiny
from distrl_jax.tasks.suites import load_tasks

SPEC = tiny()
STEP = 7
TASKS = (
    "Open the settings",
    "Search for hotels in Paris on Google",
    "Set an alarm for 7am",
)


@dataclasses.dataclass
class Saved:
    """The module's checkpoint: its run folder, checkpoints folder, step folder and params."""

    run: pathlib.Path
    checkpoints: pathlib.Path
    step: pathlib.Path
    params: nnx.State


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Saved:
    """Initial tiny-model parameters saved as step 7 with the meta a BC warm start writes."""
    run = tmp_path_factory.mktemp("run")
    params = nnx.state(P.init_model(SPEC, seed=1))
    with Checkpointer(run / "checkpoints", use_async=False) as ck:
        assert ck.save(STEP, params, {"kind": "bc", "model": spec_meta(SPEC), "step": STEP})
    ckpts = (run / "checkpoints").resolve()
    return Saved(run, ckpts, ckpts / str(STEP), params)


@pytest.fixture(scope="module")
def task_file(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """Three parseable task strings, with a comment and a blank line (both skipped)."""
    path = tmp_path_factory.mktemp("tasks") / "tasks.txt"
    path.write_text("# a tiny suite\n\n" + "\n".join(TASKS) + "\n")
    assert [t.text for t in load_tasks(path, split="all")] == list(TASKS)
    return path


def run_main(
    checkpoint: pathlib.Path,
    task_file: pathlib.Path,
    out: pathlib.Path | None,
    name: str | None,
) -> int:
    """``evaluate.main`` on the task file, 2 episodes per task on 3 simphones."""
    argv = ["--checkpoint", str(checkpoint), "--tasks", str(task_file)]
    argv += ["--episodes-per-task", "2", "--envs", "3"]
    argv += ["--out", str(out)] if out is not None else []
    argv += ["--name", name] if name is not None else []
    return evaluate.main(argv)


@dataclasses.dataclass
class CliRun:
    """What one CLI run left: exit code, stdout, the JSON table and the Markdown table."""

    code: int
    stdout: str
    table: dict
    md: str


@pytest.fixture(scope="module")
def run_folder_eval(
    saved: Saved, task_file: pathlib.Path, tmp_path_factory: pytest.TempPathFactory
) -> CliRun:
    """The CLI given the run folder (module-scoped: other tests compare against it)."""
    out = tmp_path_factory.mktemp("eval")
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = run_main(saved.run, task_file, out, "run")
    table = json.loads((out / "run.json").read_text()) if code == 0 else {}
    md = (out / "run.md").read_text() if code == 0 else ""
    return CliRun(code, buf.getvalue(), table, md)


def test_main_end_to_end(run_folder_eval: CliRun) -> None:
    """Exit 0; each task played twice; the ALL row sums the tasks; the table is printed."""
    r = run_folder_eval
    assert r.code == 0
    rows = r.table["tasks"]
    assert [row["task"] for row in rows] == list(TASKS)
    assert all(row["trials"] == 2 and row["infra_failures"] == 0 for row in rows)
    total = r.table["total"]
    assert total["task"] == "ALL"
    assert total["trials"] == sum(row["trials"] for row in rows) == 6
    assert total["successes"] == sum(row["successes"] for row in rows)
    assert total["mean_length"] == pytest.approx(
        sum(row["mean_length"] * row["trials"] for row in rows) / 6
    )
    assert all(1 <= row["mean_length"] <= 10 for row in rows)  # the general suite's horizon
    assert "**ALL**" in r.md and all(t in r.md for t in TASKS)
    assert "| task | trials | success |" in r.stdout and "**ALL**" in r.stdout
    assert f"step {STEP}" in r.stdout and "3 tasks x 2 episodes" in r.stdout


def test_checkpoints_folder_gives_the_same_results(
    saved: Saved,
    task_file: pathlib.Path,
    run_folder_eval: CliRun,
    tmp_path: pathlib.Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The checkpoints folder (newest step) gives the run folder's exact table."""
    assert run_main(saved.checkpoints, task_file, tmp_path, "ckpts") == 0
    table = json.loads((tmp_path / "ckpts.json").read_text())
    assert table == run_folder_eval.table  # same parameters, seeds and greedy decoding
    assert "ckpts" in capsys.readouterr().out


def test_step_folder_gives_the_same_results_next_to_the_run(
    saved: Saved,
    task_file: pathlib.Path,
    run_folder_eval: CliRun,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A step folder gives the same table; without --out/--name it is <run>/eval/checkpoint-7."""
    assert run_main(saved.step, task_file, None, None) == 0
    table = json.loads((saved.run / "eval" / f"checkpoint-{STEP}.json").read_text())
    assert table == run_folder_eval.table
    assert (saved.run / "eval" / f"checkpoint-{STEP}.md").is_file()
    assert f"checkpoint-{STEP}" in capsys.readouterr().out


# ---------------------------------------------------------------- bad input


def test_missing_checkpoint_path(
    tmp_path: pathlib.Path, task_file: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A path that does not exist: exit 2 and say so."""
    missing = tmp_path / "no_such_run"
    assert run_main(missing, task_file, tmp_path / "out", "x") == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and str(missing) in err
    assert not (tmp_path / "out").exists()


def test_folder_without_steps(
    tmp_path: pathlib.Path, task_file: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A folder with no step folders (nor checkpoints/ holding some): exit 2, explained."""
    (tmp_path / "empty_run" / "checkpoints").mkdir(parents=True)
    (tmp_path / "empty_run" / "checkpoints" / "notes").mkdir()
    assert run_main(tmp_path / "empty_run", task_file, tmp_path / "out", "x") == 2
    err = capsys.readouterr().err
    assert "holds no checkpoint steps" in err
    assert "run folder" in err  # tells what to pass instead


def test_task_file_without_supported_tasks(
    saved: Saved, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A task file where no line parses: exit 2 naming the file, no table written."""
    bad = tmp_path / "bad_tasks.txt"
    bad.write_text("xyzzy plugh\nblah blah nothing\n")
    assert run_main(saved.run, bad, tmp_path / "out", "x") == 2
    err = capsys.readouterr().err
    assert "no supported tasks" in err and str(bad) in err
    assert not (tmp_path / "out").exists()


def test_task_file_that_does_not_exist(
    saved: Saved, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A --tasks value that is neither a suite nor a file: exit 2 with the reason."""
    assert run_main(saved.run, tmp_path / "nope.txt", tmp_path / "out", "x") == 2
    assert "neither a built-in suite" in capsys.readouterr().err


@pytest.mark.parametrize(
    "flag, value", [("--episodes-per-task", "0"), ("--envs", "0"), ("--max-tasks", "-1")]
)
def test_bad_counts(
    flag: str,
    value: str,
    saved: Saved,
    task_file: pathlib.Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Counts out of range are rejected before anything is loaded."""
    argv = ["--checkpoint", str(saved.run), "--tasks", str(task_file), flag, value]
    assert evaluate.main(argv) == 2
    assert flag in capsys.readouterr().err


# ---------------------------------------------------------------- evaluate_policy


@pytest.fixture(scope="module")
def greedy_policy(saved: Saved) -> JaxPolicy:
    """A greedy policy on the saved parameters; one bucket, so it compiles once for the module."""
    return JaxPolicy(SPEC, saved.params, greedy=True, buckets=(8,))


def test_evaluate_policy_records_and_batching(greedy_policy: JaxPolicy) -> None:
    """2 tasks x 2 episodes give 4 records in task order, reproducibly per num_envs.

    Note: a simphone draws each episode's start state from (phone seed, its episode count), so
    which phone plays which episode (that is, num_envs) changes the start states and hence a
    greedy policy's outcomes; only a rerun with the same num_envs is bit-for-bit identical.
    """
    cfg = dataclasses.replace(Config(), model=SPEC)
    tasks = load_tasks("general", split="val")[:2]
    runs = {
        n: evaluate.evaluate_policy(
            cfg, greedy_policy, tasks, episodes_per_task=2, num_envs=n, seed=3
        )
        for n in (1, 4)
    }
    for n, records in runs.items():
        assert [r.task for r in records] == [t.text for t in tasks for _ in range(2)], n
        assert all(
            not r.infra_failure and 1 <= r.length <= t.horizon
            for r, t in zip(records, [t for t in tasks for _ in range(2)], strict=True)
        ), n
        assert all(0 <= r.invalid_actions <= r.length for r in records), n
    again = evaluate.evaluate_policy(
        cfg, greedy_policy, tasks, episodes_per_task=2, num_envs=4, seed=3
    )
    assert again == runs[4]
    # More environments than episodes: capped at the number of episodes, same outcomes.
    capped = evaluate.evaluate_policy(
        cfg, greedy_policy, tasks, episodes_per_task=2, num_envs=16, seed=3
    )
    assert capped == runs[4]


# ---------------------------------------------------------------- policy_loader


def test_spec_meta_round_trip() -> None:
    """spec_from_meta(spec_meta(s)) == s, also after the JSON trip a checkpoint meta takes."""
    meta = {"model": spec_meta(SPEC)}
    assert spec_from_meta(meta) == SPEC
    assert spec_from_meta(json.loads(json.dumps(meta))) == SPEC
    wide = dataclasses.replace(SPEC, history_k=SPEC.history_k + 1)
    assert spec_from_meta(json.loads(json.dumps({"model": spec_meta(wide)}))) == wide


def test_spec_from_bad_meta() -> None:
    """No spec, unknown fields or invalid values are CheckpointErrors that say which."""
    with pytest.raises(CheckpointError, match="no model spec"):
        spec_from_meta({"kind": "bc"})
    with pytest.raises(CheckpointError, match=r"unknown fields.*bogus"):
        spec_from_meta({"model": {**spec_meta(SPEC), "bogus": 1}})
    with pytest.raises(CheckpointError, match="invalid"):
        spec_from_meta({"model": {**spec_meta(SPEC), "action_len": -3}})


def test_resolve_path_forms(saved: Saved, tmp_path: pathlib.Path) -> None:
    """Run folder and checkpoints folder: newest step; step folder: that step."""
    assert resolve(saved.run) == (saved.checkpoints, None)
    assert resolve(saved.checkpoints) == (saved.checkpoints, None)
    assert resolve(saved.step) == (saved.checkpoints, STEP)
    with pytest.raises(CheckpointError, match="does not exist"):
        resolve(tmp_path / "missing")
    with pytest.raises(CheckpointError, match="holds no checkpoint steps"):
        resolve(tmp_path)


def test_load_policy_state_restores_the_parameters(saved: Saved) -> None:
    """The spec comes from the meta and the restored parameters equal the saved ones."""
    spec, params, meta = load_policy_state(saved.checkpoints)
    assert spec == SPEC
    assert meta["kind"] == "bc" and meta["step"] == STEP
    for a, b in zip(jax.tree.leaves(saved.params), jax.tree.leaves(params), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_load_policy_state_without_spec(saved: Saved, tmp_path: pathlib.Path) -> None:
    """A checkpoint whose meta has no model spec cannot be loaded without one: clear error."""
    with Checkpointer(tmp_path / "checkpoints", use_async=False) as ck:
        assert ck.save(1, saved.params, {"kind": "rl"})
    with pytest.raises(CheckpointError, match="no model spec"):
        load_policy_state(tmp_path)
    # Given the spec explicitly, the same checkpoint loads.
    spec, _, meta = load_policy_state(tmp_path, spec=SPEC)
    assert spec == SPEC and meta["step"] == 1


def test_default_action_length_types_every_suite_query():
    """No General or Web Shopping task is impossible by construction: the default spec's TYPE
    action holds every search query, while a 32-token action could not type 12 held-out ones."""
    from distrl_jax.evaluate import untypeable
    from distrl_jax.models.spec import ModelSpec
    from distrl_jax.tasks.suites import load_tasks

    la = ModelSpec().action_len
    for suite in ("general", "webshop"):
        for split in ("train", "val"):
            tasks = load_tasks(suite, split=split)
            assert untypeable(tasks, la) == [], (suite, split)
    short = untypeable(load_tasks("general", split="val"), 32)
    assert len(short) == 12
    assert all(len(dict(t.goal.slots)["query"]) > 30 for t in short)
