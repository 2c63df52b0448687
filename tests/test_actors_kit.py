"""The actors/ worker-host kit: scripts parse, help works offline, --dry-run prints runnable
commands (checked with launch's real parser) and the Dockerfile copies files that exist."""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from distrl_jax.launch import parse_args

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[1]
KIT = ROOT / "actors"
SETUP = KIT / "setup_worker.sh"
LAUNCH = KIT / "launch_emulators.py"
BASE = 42000 + (os.getpid() % 500) * 16  # a port range of our own on a shared host


def _launch_module():
    """actors/launch_emulators.py imported in process (it is a script, not a package module)."""
    spec = importlib.util.spec_from_file_location("launch_emulators", LAUNCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(*argv: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=30, **kw)


def test_setup_script_parses_and_passes_shellcheck() -> None:
    assert _run("bash", "-n", str(SETUP)).returncode == 0
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck not installed (apt-get install shellcheck)")
    res = _run("shellcheck", str(SETUP))
    assert res.returncode == 0, res.stdout


def test_setup_script_help_and_bad_flag_touch_nothing(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    res = _run("bash", str(SETUP), "--help", env=env)
    assert res.returncode == 0 and "--snapshot-only" in res.stdout and "ANDROID_API" in res.stdout
    bad = _run("bash", str(SETUP), "--frobnicate", env=env)
    assert bad.returncode == 2 and "unknown argument '--frobnicate'" in bad.stderr
    assert list(tmp_path.iterdir()) == []  # nothing downloaded or created


def test_launch_emulators_help() -> None:
    res = _run(sys.executable, str(LAUNCH), "--help")
    assert res.returncode == 0
    for flag in ("--count", "--avd", "--learner", "--dry-run", "--stagger-s", "--actors"):
        assert flag in res.stdout


def test_dry_run_prints_emulators_and_actor_commands(tmp_path: Path) -> None:
    res = _run(
        sys.executable,
        str(LAUNCH),
        "--dry-run",
        "--count=3",
        "--actors=2",
        "--avd=distrl_pixel",
        "--learner=tcp://10.1.2.3:5555",
        f"--first-port={BASE}",
        f"--last-port={BASE + 100}",
        f"--lock-dir={tmp_path}",
        "--stagger-s=15",
        "--tasks.train=webshop",  # unknown here: passed on to the actor
    )
    assert res.returncode == 0, res.stderr
    lines = [ln for ln in res.stdout.splitlines() if not ln.startswith("#")]
    emus = [shlex.split(ln) for ln in lines if "-avd" in ln]
    actors = [shlex.split(ln) for ln in lines if "distrl_jax.launch" in ln]
    assert len(emus) == 3 and len(actors) == 2
    ports = [int(cmd[cmd.index("-port") + 1]) for cmd in emus]
    assert len(set(ports)) == 3 and all(BASE <= p <= BASE + 100 and p % 2 == 0 for p in ports)
    assert all("-no-window" in cmd and "-read-only" in cmd for cmd in emus)
    assert re.findall(r"starts at \+(\d+) s", res.stdout) == ["0", "15", "30"]

    serials: list[str] = []
    for i, cmd in enumerate(actors):
        assert cmd[1:3] == ["-m", "distrl_jax.launch"]
        ns, cfg = parse_args(cmd[3:])
        assert ns.role == "actor" and ns.learner == "tcp://10.1.2.3:5555" and ns.actor_id == i
        assert cfg.device.kind == "adb" and cfg.tasks.train == "webshop"
        serials += cfg.device.serials
    assert sorted(serials) == sorted(f"emulator-{p}" for p in ports)  # each driven once


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--count=0"], "--count >= 1"),
        (["--count=2", "--actors=3"], "--actors <= --count"),
        (["--count=1", "--learner=10.0.0.1:5555"], "tcp://HOST:PORT"),
        (["--count=1", "--avd=bad name"], "AVD name"),
    ],
)
def test_dry_run_rejects_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture, args: list[str], message: str
) -> None:
    base = ["--avd=distrl_pixel", "--learner=tcp://h:5555", f"--lock-dir={tmp_path}"]
    base += [f"--first-port={BASE}", f"--last-port={BASE + 100}", "--dry-run"]
    assert _launch_module().main([*base, *args]) == 2
    assert message in capsys.readouterr().err


def test_dockerfile_copies_files_that_exist() -> None:
    text = (KIT / "Dockerfile").read_text()
    sources = [
        src for line in text.splitlines() if line.startswith("COPY ") for src in line.split()[1:-1]
    ]
    assert "actors/setup_worker.sh" in sources and "src" in sources
    missing = [s for s in sources if not (ROOT / s).exists()]
    assert missing == []
    assert "actors/launch_emulators.py" in text and "--device /dev/kvm" in text
