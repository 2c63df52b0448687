"""The run folder: its files, and paths that may not escape it."""

from __future__ import annotations

import json
import os
import pathlib

import pytest
import yaml

from distrl_jax.config import Config, apply_overrides, from_dict
from distrl_jax.run_folder import create_run_folder, git_revision, inside, under_any, versions


def test_create_run_folder_writes_config_and_meta(tmp_path: pathlib.Path) -> None:
    cfg = apply_overrides(Config(name="unit"), ["learner.lr=0.003", "seed=5"])
    run = create_run_folder(cfg, base=tmp_path / "runs")
    assert run.parent == tmp_path / "runs" and run.name.endswith("-unit")
    assert from_dict(yaml.safe_load((run / "config.yaml").read_text())) == cfg
    meta = json.loads((run / "meta.json").read_text())
    assert set(meta) >= {"git", "versions", "argv", "host", "started"}
    assert meta["versions"]["jax"] != "missing" and meta["versions"]["numpy"] != "missing"
    assert isinstance(meta["argv"], list)


def test_create_run_folder_reuses_run_dir(tmp_path: pathlib.Path) -> None:
    cfg = Config(run_dir=str(tmp_path / "resume"))
    first = create_run_folder(cfg, base=tmp_path / "elsewhere")
    (first / "metrics.jsonl").write_text('{"step": 1}\n')
    second = create_run_folder(cfg, base=tmp_path / "elsewhere")
    assert first == second == tmp_path / "resume"
    assert (second / "metrics.jsonl").read_text() == '{"step": 1}\n'  # resuming keeps what is there
    assert not (tmp_path / "elsewhere").exists()


def test_git_revision_outside_a_repository(tmp_path: pathlib.Path) -> None:
    assert git_revision(tmp_path) == "unknown"


def test_versions_lists_the_stack() -> None:
    v = versions()
    assert {"python", "jax", "flax", "optax", "orbax-checkpoint", "numpy"} <= set(v)
    assert all(isinstance(x, str) and x for x in v.values())


@pytest.mark.parametrize("rel", ["a", "a/b/c.txt", "./a/../b", "", "."])
def test_inside_accepts_paths_under_root(tmp_path: pathlib.Path, rel: str) -> None:
    p = inside(tmp_path, rel)
    root = tmp_path.resolve()
    assert p == (root / rel).resolve()
    assert p == root or root in p.parents


@pytest.mark.parametrize("rel", ["..", "../x", "a/../../x", "a/b/../../../x"])
def test_inside_refuses_dotdot(tmp_path: pathlib.Path, rel: str) -> None:
    root = tmp_path / "run"
    root.mkdir()
    with pytest.raises(ValueError, match=r"escapes its root") as exc:
        inside(root, rel)
    assert repr(rel) in str(exc.value)


def test_inside_absolute_paths(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "run"
    (root / "ckpt").mkdir(parents=True)
    with pytest.raises(ValueError, match="escapes"):
        inside(root, "/etc/passwd")
    with pytest.raises(ValueError, match="escapes"):
        inside(root, tmp_path / "other")
    assert inside(root, root / "ckpt") == (root / "ckpt").resolve()  # absolute but inside


def test_inside_refuses_a_root_prefix_sibling(tmp_path: pathlib.Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run2").mkdir()
    with pytest.raises(ValueError, match="escapes"):
        inside(tmp_path / "run", "../run2/x")  # 'run2' starts with 'run' but is not under it


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks")
def test_inside_refuses_symlinks_that_escape(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "run"
    root.mkdir()
    outside = tmp_path / "secret"
    outside.mkdir()
    (root / "link").symlink_to(outside, target_is_directory=True)
    (root / "file_link").symlink_to(outside / "f.txt")
    (root / "ok").mkdir()
    (root / "inner_link").symlink_to(root / "ok", target_is_directory=True)
    with pytest.raises(ValueError, match="escapes"):
        inside(root, "link/data.bin")
    with pytest.raises(ValueError, match="escapes"):
        inside(root, "file_link")
    assert inside(root, "inner_link/x") == (root / "ok" / "x").resolve()


def test_inside_with_a_symlinked_root(tmp_path: pathlib.Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    alias = tmp_path / "alias"
    alias.symlink_to(real, target_is_directory=True)
    assert inside(alias, "a") == (real / "a").resolve()


# ---------------------------------------------------------------- names and paths from data


@pytest.mark.parametrize("name", ["../../x", "a/b", "/abs", "x/../../y"])
def test_create_run_folder_refuses_a_name_that_is_a_path(tmp_path: pathlib.Path, name: str) -> None:
    """A Config built in code skips validation; the run folder is still one folder under base."""
    base = tmp_path / "deep" / "runs"
    with pytest.raises(ValueError, match="single folder name"):
        create_run_folder(Config(name=name), base=base)
    assert list(tmp_path.rglob("*")) == []  # nothing made, inside base or out of it


@pytest.mark.parametrize("name", ["../../x", "a/b", "/abs"])
def test_warm_start_path_refuses_a_model_name_that_is_a_path(
    tmp_path: pathlib.Path, name: str
) -> None:
    from distrl_jax.models.spec import ModelSpec
    from distrl_jax.runtime.training import warm_start_path

    run = tmp_path / "runs" / "r1"
    good = warm_start_path(Config(), run)
    assert good.parent == (tmp_path / "runs" / "warm-starts").resolve()
    assert good.name.startswith("bc-tiny-")
    with pytest.raises(ValueError, match="single folder name"):
        warm_start_path(Config(model=ModelSpec(name=name)), run)


def test_under_any_accepts_only_paths_below_a_root(tmp_path: pathlib.Path) -> None:
    ckpt = tmp_path / "run" / "checkpoints"
    (ckpt / "3").mkdir(parents=True)
    (tmp_path / "run" / "checkpoints-student").mkdir()
    roots = [ckpt, tmp_path / "run" / "checkpoints-student"]
    assert under_any(ckpt / "3", roots) == (ckpt / "3").resolve()
    assert under_any(str(ckpt), roots) == ckpt.resolve()  # the root itself
    assert under_any(tmp_path / "run" / "checkpoints-student" / "7", roots) is not None
    for bad in (
        "/etc",
        ckpt / ".." / ".." / "elsewhere",
        tmp_path / "run" / "checkpoints2" / "1",  # a sibling sharing the root's prefix
        tmp_path / "run",
        "x\0y",
    ):
        assert under_any(bad, roots) is None, bad
    assert under_any(ckpt / "3", []) is None  # no roots: nothing is trusted


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks")
def test_under_any_follows_symlinks_out(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "checkpoints"
    root.mkdir()
    (tmp_path / "secret").mkdir()
    (root / "5").symlink_to(tmp_path / "secret", target_is_directory=True)
    assert under_any(root / "5", [root]) is None
