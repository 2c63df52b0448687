"""The run folder: everything a run leaves behind, in one place.

``runs/<time>-<preset>/`` holds ``config.yaml`` (the resolved config), ``meta.json`` (git revision,
versions, command line, host), ``metrics.jsonl`` and ``tb/`` (metrics), ``checkpoints/`` (Orbax)
and ``eval/`` (evaluation tables). Paths derived from config or data are resolved under the
folder and may not escape it.
"""

from __future__ import annotations

import datetime
import json
import pathlib
import platform
import subprocess
import sys
from collections.abc import Iterable
from importlib import metadata

from distrl_jax.config import Config, save_yaml


def git_revision(cwd: str | pathlib.Path | None = None) -> str:
    """The current git commit (with '+dirty' when the tree has changes), or 'unknown'."""
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def versions() -> dict[str, str]:
    """Versions of the packages a run depends on."""
    out = {"python": platform.python_version()}
    for pkg in (
        "jax",
        "jaxlib",
        "flax",
        "optax",
        "orbax-checkpoint",
        "chex",
        "pyzmq",
        "adbutils",
        "transformers",
        "numpy",
    ):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "missing"
    return out


def create_run_folder(cfg: Config, base: str | pathlib.Path = "runs") -> pathlib.Path:
    """Make (or reuse, for resuming) the run folder and write config.yaml and meta.json.

    ``run_dir`` (when set) is the folder itself; otherwise the folder is ``<base>/<time>-<name>``
    and ValueError is raised if that would not be a folder directly under ``base``."""
    if cfg.run_dir:
        run = pathlib.Path(cfg.run_dir)
    else:
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        folder = f"{stamp}-{cfg.name}"
        # cfg.name is validated as one folder name, but a Config built in code skips validation.
        if pathlib.PurePath(folder).name != folder:
            raise ValueError(f"name {cfg.name!r} is not a single folder name")
        inside(base, folder)
        run = pathlib.Path(base) / folder
    run.mkdir(parents=True, exist_ok=True)
    save_yaml(cfg, run / "config.yaml")
    meta = {
        "git": git_revision(pathlib.Path(__file__).parent),
        "versions": versions(),
        "argv": sys.argv,
        "host": platform.node(),
        "started": datetime.datetime.now().isoformat(timespec="seconds"),
    }
    (run / "meta.json").write_text(json.dumps(meta, indent=1))
    return run


def inside(root: str | pathlib.Path, relative: str | pathlib.Path) -> pathlib.Path:
    """``root / relative``, refusing paths that escape ``root`` (``..``, absolute, symlinks out)."""
    root_p = pathlib.Path(root).resolve()
    p = (root_p / relative).resolve()
    if p != root_p and root_p not in p.parents:
        raise ValueError(f"path {str(relative)!r} escapes its root {str(root_p)!r}")
    return p


def under_any(path: str | pathlib.Path, roots: Iterable[str | pathlib.Path]) -> pathlib.Path | None:
    """``path`` resolved (symlinks followed), if it is one of ``roots`` or lies below one; else
    None. For paths that arrive as data (a parameter broadcast's checkpoint path)."""
    try:
        p = pathlib.Path(path).resolve()
    except (OSError, ValueError):  # a NUL byte, a symlink loop: not a path to load from
        return None
    for root in roots:
        r = pathlib.Path(root).resolve()
        if p == r or r in p.parents:
            return p
    return None
